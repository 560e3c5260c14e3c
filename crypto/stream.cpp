#include "crypto/stream.hpp"

#include <algorithm>
#include <array>
#include <cassert>
#include <string>
#include <utility>

namespace starling::crypto {
namespace {

using Header = std::array<std::uint8_t, kFrameHeaderBytes>;

Header encode_header(std::uint8_t flags, std::size_t body_bytes) noexcept {
    const auto word =
        static_cast<std::uint32_t>(flags) << 24 | static_cast<std::uint32_t>(body_bytes);
    return {static_cast<std::uint8_t>(word >> 24), static_cast<std::uint8_t>(word >> 16),
            static_cast<std::uint8_t>(word >> 8), static_cast<std::uint8_t>(word)};
}

std::uint32_t decode_word(std::span<const std::uint8_t> header) noexcept {
    return static_cast<std::uint32_t>(header[0]) << 24 |
           static_cast<std::uint32_t>(header[1]) << 16 |
           static_cast<std::uint32_t>(header[2]) << 8 | static_cast<std::uint32_t>(header[3]);
}

RekeyPolicy clamp(RekeyPolicy policy) noexcept {
    policy.after_bytes =
        std::clamp<std::uint64_t>(policy.after_bytes, 1, limits::kStreamRekeyAfterBytes);
    policy.after_milliseconds =
        std::min(policy.after_milliseconds, limits::kStreamRekeyAfterMilliseconds);
    return policy;
}

}  // namespace

// ---- StreamSealer ----

StreamSealer::StreamSealer(noise::CipherState send, std::uint64_t now_ms, RekeyPolicy policy)
    : cipher_(std::move(send)), policy_(clamp(policy)), key_since_ms_(now_ms) {
    assert(cipher_.has_key());
}

Status StreamSealer::seal_frame(std::span<const std::uint8_t> chunk, std::uint8_t flags,
                                std::uint64_t now_ms, std::vector<std::uint8_t>& out) {
    // Rekey before sealing, so no frame is sealed under a key past its byte or time budget.
    const bool key_too_old =
        now_ms >= key_since_ms_ && now_ms - key_since_ms_ >= policy_.after_milliseconds;
    if (bytes_under_key_ >= policy_.after_bytes || key_too_old) {
        cipher_.rekey();
        flags |= kFrameRekeyed;
        bytes_under_key_ = 0;
        key_since_ms_ = now_ms;
        ++rekeys_;
    }
    const std::size_t body = chunk.size() + noise::kTagBytes;
    const Header header = encode_header(flags, body);
    const std::size_t start = out.size();
    out.resize(start + kFrameHeaderBytes + body);
    std::copy(header.begin(), header.end(), out.begin() + static_cast<std::ptrdiff_t>(start));
    const std::span<std::uint8_t> sealed(out.data() + start + kFrameHeaderBytes, body);
    if (Status s = cipher_.encrypt_with_ad(header, chunk, sealed); !s) {
        out.resize(start);
        failed_ = true;
        return s;
    }
    bytes_under_key_ += chunk.size();
    bytes_sealed_ += chunk.size();
    return Ok{};
}

Status StreamSealer::seal(std::span<const std::uint8_t> data, std::uint64_t now_ms,
                          std::vector<std::uint8_t>& out) {
    if (finished_ || failed_) {
        return make_error(ErrorCode::invalid_argument, "stream: sealing after the end or an error");
    }
    const std::size_t frames =
        (data.size() + limits::kMaxStreamChunkBytes - 1) / limits::kMaxStreamChunkBytes;
    out.reserve(out.size() + data.size() + frames * (kFrameHeaderBytes + noise::kTagBytes));
    while (!data.empty()) {
        const std::size_t n = std::min(data.size(), limits::kMaxStreamChunkBytes);
        if (Status s = seal_frame(data.first(n), 0, now_ms, out); !s) return s;
        data = data.subspan(n);
    }
    return Ok{};
}

Status StreamSealer::finish(std::uint64_t now_ms, std::vector<std::uint8_t>& out) {
    if (finished_ || failed_) {
        return make_error(ErrorCode::invalid_argument, "stream: finishing twice or after an error");
    }
    if (Status s = seal_frame({}, kFrameEnd, now_ms, out); !s) return s;
    finished_ = true;
    return Ok{};
}

// ---- StreamOpener ----

StreamOpener::StreamOpener(noise::CipherState receive, RekeyPolicy policy,
                           std::uint64_t max_stream_bytes)
    : cipher_(std::move(receive)), policy_(clamp(policy)), max_stream_bytes_(max_stream_bytes) {
    assert(cipher_.has_key());
}

Error StreamOpener::fail(ErrorCode code, const char* what) {
    failed_ = true;
    pending_.clear();
    pending_.shrink_to_fit();
    return make_error(code, std::string("stream: ") + what + " after " +
                                std::to_string(bytes_opened_) + " plaintext bytes");
}

Result<std::size_t> StreamOpener::check_header(std::span<const std::uint8_t> header) {
    const std::uint32_t word = decode_word(header);
    const auto flags = static_cast<std::uint8_t>(word >> 24);
    const std::size_t body = word & 0x00ff'ffffu;
    if ((flags & ~(kFrameEnd | kFrameRekeyed)) != 0) {
        return fail(ErrorCode::malformed, "unknown frame flags");
    }
    if (body > kMaxFrameBodyBytes) {
        return fail(ErrorCode::too_large, "frame over kMaxStreamChunkBytes");
    }
    if (body < noise::kTagBytes) return fail(ErrorCode::malformed, "frame shorter than its tag");
    const bool empty = body == noise::kTagBytes;
    if ((flags & kFrameEnd) != 0 && !empty) {
        return fail(ErrorCode::malformed, "end frame carries data");
    }
    if ((flags & kFrameEnd) == 0 && empty) return fail(ErrorCode::malformed, "empty data frame");
    if (bytes_opened_ + (body - noise::kTagBytes) > max_stream_bytes_) {
        return fail(ErrorCode::too_large, "stream over its byte limit");
    }
    return body;
}

Status StreamOpener::open_frame(std::span<const std::uint8_t> frame,
                                std::vector<std::uint8_t>& out) {
    const auto header = frame.first(kFrameHeaderBytes);
    const auto body = frame.subspan(kFrameHeaderBytes);
    const auto flags = static_cast<std::uint8_t>(header[0]);
    const std::size_t plaintext_bytes = body.size() - noise::kTagBytes;

    if ((flags & kFrameRekeyed) != 0) {
        cipher_.rekey();  // an unauthenticated flag only risks this stream: a lie fails the tag
        bytes_under_key_ = 0;
        ++rekeys_;
    }
    // A sender must rekey once its budget is spent; the frame that crosses it may be whole.
    if (bytes_under_key_ + plaintext_bytes > policy_.after_bytes + limits::kMaxStreamChunkBytes) {
        return fail(ErrorCode::too_large, "sender overused its key (no rekey)");
    }
    const std::size_t start = out.size();
    out.resize(start + plaintext_bytes);
    if (Status s =
            cipher_.decrypt_with_ad(header, body, std::span(out.data() + start, plaintext_bytes));
        !s) {
        out.resize(start);
        return fail(ErrorCode::corrupt,
                    "frame failed authentication (altered, reordered or replayed)");
    }
    bytes_under_key_ += plaintext_bytes;
    bytes_opened_ += plaintext_bytes;
    if ((flags & kFrameEnd) != 0) finished_ = true;
    return Ok{};
}

Status StreamOpener::on_bytes_received(std::span<const std::uint8_t> bytes,
                                       std::vector<std::uint8_t>& out) {
    if (failed_) return make_error(ErrorCode::invalid_argument, "stream: already failed");
    while (!bytes.empty()) {
        if (finished_) return fail(ErrorCode::malformed, "bytes after the end-of-stream frame");

        // Fast path: whole frames straight from the caller's bytes, no copy.
        if (pending_.empty() && bytes.size() >= kFrameHeaderBytes) {
            auto body = check_header(bytes.first(kFrameHeaderBytes));
            if (!body) return body.error();
            const std::size_t frame = kFrameHeaderBytes + *body;
            if (bytes.size() >= frame) {
                if (Status s = open_frame(bytes.first(frame), out); !s) return s;
                bytes = bytes.subspan(frame);
                continue;
            }
        }

        // Slow path: gather one partial frame, header first, then exactly its body.
        if (pending_.capacity() < kMaxFrameBytes) pending_.reserve(kMaxFrameBytes);
        const std::size_t target = pending_.size() < kFrameHeaderBytes
                                       ? kFrameHeaderBytes
                                       : kFrameHeaderBytes + pending_body_bytes_;
        const std::size_t take = std::min(target - pending_.size(), bytes.size());
        pending_.insert(pending_.end(), bytes.begin(),
                        bytes.begin() + static_cast<std::ptrdiff_t>(take));
        bytes = bytes.subspan(take);
        if (pending_.size() == kFrameHeaderBytes && target == kFrameHeaderBytes) {
            auto body = check_header(pending_);
            if (!body) return body.error();
            pending_body_bytes_ = *body;
        }
        if (pending_.size() == kFrameHeaderBytes + pending_body_bytes_ &&
            pending_body_bytes_ != 0) {
            if (Status s = open_frame(pending_, out); !s) return s;
            pending_.clear();
            pending_body_bytes_ = 0;
        }
    }
    return Ok{};
}

Status StreamOpener::on_end_of_input() const {
    if (failed_) return make_error(ErrorCode::invalid_argument, "stream: already failed");
    if (!finished_) {
        return make_error(ErrorCode::truncated,
                          "stream: input ended before the end-of-stream frame after " +
                              std::to_string(bytes_opened_) + " plaintext bytes");
    }
    return Ok{};
}

}  // namespace starling::crypto

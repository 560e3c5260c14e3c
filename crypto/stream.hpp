#pragma once
// Model bytes after the handshake: a stream of sealed frames whose order, integrity and end are
// authenticated, so a reordered, replayed, altered or cut-short transfer is refused, never used.
//
// Frame layout:  u32 big-endian word W  ||  ChaChaPoly(chunk) || 16-byte tag
//   W = flags << 24 | body length (ciphertext + tag); W is the AEAD's associated data.
//   flags: kFrameEnd     the end-of-stream frame: empty chunk, nothing may follow it
//          kFrameRekeyed the sender ran Noise Rekey() just before sealing this frame
// Nonces are the CipherState's counter: frame i uses nonce i, on both sides, without being sent.
// Sans-I/O: callers pass bytes and a monotonic time in; threading: one thread per object.

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "crypto/noise.hpp"
#include "protocol/limits.hpp"
#include "protocol/result.hpp"

namespace starling::crypto {

inline constexpr std::size_t kFrameHeaderBytes = 4;
inline constexpr std::uint8_t kFrameEnd = 0x01;
inline constexpr std::uint8_t kFrameRekeyed = 0x02;
inline constexpr std::size_t kMaxFrameBodyBytes = limits::kMaxStreamChunkBytes + noise::kTagBytes;
inline constexpr std::size_t kMaxFrameBytes = kFrameHeaderBytes + kMaxFrameBodyBytes;
static_assert(kMaxFrameBodyBytes < (std::size_t{1} << 24), "the length must fit 24 bits");

// When a sender moves to a fresh key: after `after_bytes` of plaintext or `after_milliseconds`
// under one key, whichever comes first. An opener uses `after_bytes` to refuse a sender that
// never rekeys. Neither may exceed its limit in protocol/limits.hpp.
struct RekeyPolicy {
    std::uint64_t after_bytes = limits::kStreamRekeyAfterBytes;
    std::uint64_t after_milliseconds = limits::kStreamRekeyAfterMilliseconds;
};

// The sending half: chunks plaintext into frames and seals them.
class StreamSealer {
public:
    StreamSealer(noise::CipherState send, std::uint64_t now_ms, RekeyPolicy policy = {});

    // Appends `data` to `out` as sealed frames of at most kMaxStreamChunkBytes of plaintext each.
    [[nodiscard]] Status seal(std::span<const std::uint8_t> data, std::uint64_t now_ms,
                              std::vector<std::uint8_t>& out);
    // Appends the end-of-stream frame; the sealer accepts nothing after it.
    [[nodiscard]] Status finish(std::uint64_t now_ms, std::vector<std::uint8_t>& out);

    std::uint64_t bytes_sealed() const noexcept { return bytes_sealed_; }
    std::uint64_t rekeys() const noexcept { return rekeys_; }
    bool finished() const noexcept { return finished_; }

private:
    [[nodiscard]] Status seal_frame(std::span<const std::uint8_t> chunk, std::uint8_t flags,
                                    std::uint64_t now_ms, std::vector<std::uint8_t>& out);

    noise::CipherState cipher_;
    RekeyPolicy policy_;
    std::uint64_t key_since_ms_;
    std::uint64_t bytes_under_key_ = 0;
    std::uint64_t bytes_sealed_ = 0;
    std::uint64_t rekeys_ = 0;
    bool finished_ = false;
    bool failed_ = false;
};

// The receiving half: takes bytes in whatever pieces the transport delivers, buffers at most one
// partial frame (kMaxFrameBytes), and releases plaintext only once its frame authenticated.
// Any error is final: the stream is dead and every later call fails.
class StreamOpener {
public:
    explicit StreamOpener(noise::CipherState receive, RekeyPolicy policy = {},
                          std::uint64_t max_stream_bytes = limits::kMaxStreamBytes);

    // Opens every complete frame in `bytes` (plus what was buffered) and appends the plaintext
    // to `out`. Errors: too_large (length or stream over a limit), malformed (bad flags, data
    // after the end), corrupt (authentication: altered, reordered, replayed or foreign frames).
    [[nodiscard]] Status on_bytes_received(std::span<const std::uint8_t> bytes,
                                           std::vector<std::uint8_t>& out);
    // The transport reached its end: truncated unless the end-of-stream frame was opened.
    [[nodiscard]] Status on_end_of_input() const;

    bool finished() const noexcept { return finished_; }
    bool failed() const noexcept { return failed_; }
    std::uint64_t bytes_opened() const noexcept { return bytes_opened_; }
    std::uint64_t rekeys() const noexcept { return rekeys_; }
    std::size_t buffered_bytes() const noexcept { return pending_.size(); }

private:
    // Checks a header before any of its body is buffered; returns the body length.
    [[nodiscard]] Result<std::size_t> check_header(std::span<const std::uint8_t> header);
    [[nodiscard]] Status open_frame(std::span<const std::uint8_t> frame,
                                    std::vector<std::uint8_t>& out);
    Error fail(ErrorCode code, const char* what);

    noise::CipherState cipher_;
    RekeyPolicy policy_;
    std::uint64_t max_stream_bytes_;
    std::vector<std::uint8_t> pending_;   // one partial frame, never more than kMaxFrameBytes
    std::size_t pending_body_bytes_ = 0;  // body length once pending_ holds a checked header
    std::uint64_t bytes_under_key_ = 0;
    std::uint64_t bytes_opened_ = 0;
    std::uint64_t rekeys_ = 0;
    bool finished_ = false;
    bool failed_ = false;
};

}  // namespace starling::crypto

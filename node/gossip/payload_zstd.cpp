#include "node/gossip/payload_zstd.hpp"

#include <zstd.h>

#include <memory>
#include <new>
#include <string>

namespace starling::gossip::detail {
namespace {

// zstd's level 1: its entropy stage is what shrinks quantised values (they repeat little), and
// the higher levels' longer match searches find next to nothing more in them.
constexpr int kZstdLevel = 1;

// One decompression context per thread that decodes (a gossip thread, a test), made on first use.
ZSTD_DCtx* decompression_context() {
    thread_local const std::unique_ptr<ZSTD_DCtx, decltype(&ZSTD_freeDCtx)> context(
        ZSTD_createDCtx(), &ZSTD_freeDCtx);
    return context.get();
}

ModelRefusal refuse(Refusal reason, std::string detail) {
    return ModelRefusal{reason, "zstd payload" + detail};
}

}  // namespace

ZstdCompressor::ZstdCompressor() : context_(ZSTD_createCCtx()) {
    if (context_ == nullptr) throw std::bad_alloc();
}

ZstdCompressor::~ZstdCompressor() { ZSTD_freeCCtx(context_); }

std::optional<std::span<const std::uint8_t>> ZstdCompressor::compress(
    std::span<const std::uint8_t> payload) {
    frame_.resize(ZSTD_compressBound(payload.size()));
    const std::size_t size = ZSTD_compressCCtx(context_, frame_.data(), frame_.size(),
                                               payload.data(), payload.size(), kZstdLevel);
    // Into a buffer of compressBound's size, compressing fails only when memory runs out.
    if (ZSTD_isError(size)) {
        ++failures_;
        return std::nullopt;
    }
    if (size >= payload.size()) return std::nullopt;
    return std::span<const std::uint8_t>(frame_.data(), size);
}

std::optional<ModelRefusal> decompress_payload(std::span<const std::uint8_t> frame,
                                               std::size_t expected,
                                               std::vector<std::uint8_t>& out) {
    const std::size_t frame_size = ZSTD_findFrameCompressedSize(frame.data(), frame.size());
    if (ZSTD_isError(frame_size))
        return refuse(Refusal::malformed, std::string(": ") + ZSTD_getErrorName(frame_size));
    if (frame_size != frame.size())
        return refuse(Refusal::malformed,
                      ": " + std::to_string(frame.size() - frame_size) + " bytes after its frame");
    const unsigned long long declared = ZSTD_getFrameContentSize(frame.data(), frame.size());
    if (declared != expected) {
        const bool sized =
            declared != ZSTD_CONTENTSIZE_UNKNOWN && declared != ZSTD_CONTENTSIZE_ERROR;
        return refuse(Refusal::size_mismatch,
                      " declares " + (sized ? std::to_string(declared) + " bytes" : "no size") +
                          ", the widths need " + std::to_string(expected));
    }
    ZSTD_DCtx* context = decompression_context();
    if (context == nullptr) return refuse(Refusal::malformed, ": out of memory to open it");
    out.resize(expected);
    const std::size_t size =
        ZSTD_decompressDCtx(context, out.data(), out.size(), frame.data(), frame.size());
    if (ZSTD_isError(size))
        return refuse(Refusal::malformed, std::string(": ") + ZSTD_getErrorName(size));
    if (size != expected)
        return refuse(Refusal::size_mismatch, " holds " + std::to_string(size) +
                                                  " bytes, the widths need " +
                                                  std::to_string(expected));
    return std::nullopt;
}

}  // namespace starling::gossip::detail

#pragma once
// zstd over a model message's payload (Compression::zstd): the frame a sender makes, and the
// only frames a receiver opens from a peer. Internal to model_wire.cpp, apart because it is its
// own idea and its own library.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "node/gossip/model_wire.hpp"

struct ZSTD_CCtx_s;

namespace starling::gossip::detail {

// Compresses payloads one after another, reusing its context and frame buffer.
class ZstdCompressor {
public:
    ZstdCompressor();  // std::bad_alloc when zstd cannot make its context
    ~ZstdCompressor();
    ZstdCompressor(const ZstdCompressor&) = delete;
    ZstdCompressor& operator=(const ZstdCompressor&) = delete;

    // The frame of `payload` (valid until the next call), or nullopt when it would be no smaller
    // or zstd failed (out of memory: counted in failures(); the payload then goes as it is).
    std::optional<std::span<const std::uint8_t>> compress(std::span<const std::uint8_t> payload);
    std::uint64_t failures() const noexcept { return failures_; }

private:
    ZSTD_CCtx_s* context_;
    std::vector<std::uint8_t> frame_;
    std::uint64_t failures_ = 0;
};

// A zstd payload into `out`: one frame, nothing after it, declaring exactly `expected` bytes and
// holding them. The output buffer is the bound: a frame cannot make the receiver allocate more.
std::optional<ModelRefusal> decompress_payload(std::span<const std::uint8_t> frame,
                                               std::size_t expected,
                                               std::vector<std::uint8_t>& out);

}  // namespace starling::gossip::detail

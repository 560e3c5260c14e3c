#pragma once
// Blockwise quantisation of model values, internal to model_wire.cpp: what each encoding's
// payload holds, block by block, and how a lattice payload resolves against the local model.

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "node/gossip/model_wire.hpp"

namespace starling::gossip::detail {

// int4 and plain lattice blocks: 15 levels, -7..7.
inline constexpr float kInt4Levels = 7.0f;

// What one message quantises, block by block: the parameters plus the error the previous
// message left behind (error feedback). Each block is staged, quantised and its new error kept
// while it is in L1: one pass over the model instead of a staged copy, a decoded copy and a
// pass for the error.
struct Staging {
    std::span<const float> values;
    const float* carried = nullptr;  // the previous message's error, or null for none
    float* residual = nullptr;       // where this message's error goes (may be `carried`), or null
};

// Quantises the staged values into `payload` (and `scales` for the blockwise encodings),
// keeping the error each leaves where `st` says. Not the lattice: quantise_lattice.
void quantise(Encoding encoding, const Staging& st, std::uint8_t* payload,
              std::vector<float>& scales);

// The lattice: block b's step follows `margin` x spread[b]; one 16-bit check per block.
void quantise_lattice(const Staging& st, std::span<const float> spread, float margin,
                      std::uint8_t* payload, std::vector<float>& scales,
                      std::vector<std::uint16_t>& checks);

// Resolves lattice residues against `local` into `out`; a block that fails its check keeps the
// local values and is listed in `unresolved`. `scales` and `checks` hold one entry per block.
void resolve_lattice(const std::uint8_t* payload, std::span<const float> scales,
                     std::span<const std::uint16_t> checks, std::uint16_t format_version,
                     std::span<const float> local, std::span<float> out,
                     std::vector<std::uint32_t>& unresolved);

// The values an fp32, fp16, int8 or int4 payload holds (scales: one per block), into `out`.
void dequantise(Encoding encoding, const std::uint8_t* payload, std::span<const float> scales,
                std::span<float> out);

// The largest of |values| (0 for none); NaNs are passed over.
float absmax(const float* values, std::size_t count);

}  // namespace starling::gossip::detail

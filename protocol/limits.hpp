#pragma once
// Every bound on untrusted input in one place: each a named constant with its unit in the name,
// so a reviewer can check what a hostile peer or a rotted disk can make Starling allocate.

#include <cstddef>
#include <cstdint>

namespace starling::limits {

// Parameters in one model: 4 Mi fp32 weights (16 MiB) is far above an edge MLP (784-256-128-10 is
// ~235 K) and leaves room in a checkpoint for Adam's two state vectors of the same size.
inline constexpr std::size_t kMaxModelParameters = std::size_t{4} << 20;

// Weight layers in one model: deeper nets do not train on the devices we target.
inline constexpr std::size_t kMaxLayers = 64;

// Neurons in one layer (input and output included): bounds in×out before any multiplication.
inline constexpr std::uint32_t kMaxLayerNeurons = std::uint32_t{1} << 20;

// Dimensions of one tensor: matrices and vectors today; batched or convolutional shapes later.
inline constexpr std::size_t kMaxTensorDims = 8;

// A checkpoint file: parameters plus two optimizer state vectors, 4 bytes each, plus slack for
// the envelope and FlatBuffer bookkeeping; read whole into RAM, so it must fit a small device.
inline constexpr std::size_t kMaxCheckpointBytes = std::size_t{64} << 20;
static_assert(3 * kMaxModelParameters * sizeof(float) + (std::size_t{1} << 20) <=
                  kMaxCheckpointBytes,
              "a maximal Adam checkpoint must fit in kMaxCheckpointBytes");

// FlatBuffers Verifier nesting depth (tables and vectors): our schemas nest 3 deep; the library's
// default of 64 only lets a hostile buffer spend more stack.
inline constexpr std::uint32_t kFlatbuffersMaxDepth = 32;

// FlatBuffers tables verified in one buffer (library default 1,000,000): a network message or a
// checkpoint (root, parameters and at most two state tensors) needs a handful.
inline constexpr std::uint32_t kFlatbuffersMaxTables = 1000;

// One sealed datagram (beacon, membership, control), header and MAC included: memberlist's UDP
// size, under a 1,500-byte Ethernet MTU after IPv6 and UDP headers. Checked before parsing.
inline constexpr std::size_t kMaxDatagramBytes = 1400;

// Replay windows held at once, one per (sender, key epoch), each ~1 KiB: 100 devices across two
// or three overlapping epochs, with headroom. Created only after a datagram authenticated.
inline constexpr std::size_t kMaxReplayWindows = 512;

// Pairwise datagram keys cached, one entry per (peer, key epoch): same sizing as the replay
// windows. A miss costs one X25519 (~30 µs); eviction only costs a recomputation.
inline constexpr std::size_t kMaxPairwiseKeyEntries = 512;

}  // namespace starling::limits

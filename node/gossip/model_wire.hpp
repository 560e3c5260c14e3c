#pragma once
// A model as peers exchange it: who trained it, how much it has seen, its shape, and its
// parameters in fp32, fp16, blockwise int8 or int4, or as lattice residues that the receiver
// resolves against its own model. Decoding treats every byte as hostile and answers with a
// refusal reason the caller counts.

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "crypto/keys.hpp"

namespace starling::gossip {

using crypto::DeviceId;
namespace detail {
class ZstdCompressor;
}

// The newest model message layout this build reads. 2: the lattice blocks' checks are weighted
// sums (version 1's hash chains are still read). 3: the payload may be zstd-compressed; only
// such messages are written as 3, so peers a release behind still read every other one.
inline constexpr std::uint16_t kModelFormatVersion = 3;
inline constexpr std::uint16_t kUncompressedFormatVersion = 2;

// Values sharing one int8 scale: small enough that one large weight does not flatten its block,
// large enough that the fp32 scales add ~1.6% to the int8 payload.
inline constexpr std::uint32_t kInt8BlockValues = 256;
// int4 has 15 levels, so one large weight costs its neighbours more: smaller blocks (the scales
// add 12.5% to the int4 payload).
inline constexpr std::uint32_t kInt4BlockValues = 64;
// A lattice block shares a step and a 16-bit check; a block that does not resolve is not merged,
// so blocks stay small enough that one far value costs little (6 bytes per 128 values).
inline constexpr std::uint32_t kLatticeBlockValues = 128;
// A lattice step is this many eighths of the distance last measured to a peer (block by
// block): a receiver resolves values within 8 steps of the sender's. The measure includes the
// peer message's own rounding (up to a step), so a margin under 8 keeps steps from feeding on
// themselves; 3 leaves ~1% of blocks unresolved (100 simulated devices, IID).
inline constexpr float kDefaultLatticeMargin = 3.0f;

enum class Encoding : std::uint8_t {
    fp32,  // exact; 4 bytes per parameter
    fp16,  // 2 bytes per parameter, ~3 significant digits
    int8,  // ~1 byte per parameter, blockwise absmax scale
    int4,  // ~0.56 bytes per parameter, blockwise absmax scale: twice the exchanges of int8 on
           // the same link, with error feedback carrying the coarser rounding to the next send
    // ~0.55 bytes per parameter. The sender's model and the receiver's are close, so the
    // sender sends only each value's index on a fine lattice, modulo 16, and the receiver takes
    // the index nearest its own value. The step follows how far apart models are, not how
    // large the values are: int4's bytes, and finer steps than int8's once models agree. A
    // device with no measure of that distance yet sends int8; catch-up answers go as fp32 (the
    // asker has no model near).
    lattice,
};
std::string_view to_string(Encoding encoding) noexcept;
// "fp32", "fp16", "int8", "int4" or "lattice"; false for anything else.
bool parse_encoding(std::string_view text, Encoding& out) noexcept;

// A lossless pass over the encoded payload, chosen per cluster. zstd's entropy coder takes
// what the quantised values leave (int8 and int4 levels cluster near zero); the lattice's
// residues are near uniform, so a message stays uncompressed whenever zstd would not shrink it.
enum class Compression : std::uint8_t { none, zstd };
std::string_view to_string(Compression compression) noexcept;
// "none" or "zstd"; false for anything else.
bool parse_compression(std::string_view text, Compression& out) noexcept;

// Bytes of a message carrying `parameters` values in `encoding`, widths of `layers + 1` entries.
std::size_t encoded_size_estimate(Encoding encoding, std::size_t parameters, std::size_t layers);

// What a model message says, once decoded (parameters always as fp32).
struct ModelMessage {
    DeviceId origin{};
    std::uint64_t version = 0;       // per-origin, increasing
    std::uint64_t samples_seen = 0;  // examples behind the model
    double mass = 1.0;               // push-sum mass (1 when the merge does not use it)
    std::vector<std::uint32_t> widths;
    std::vector<float> parameters;
    // Lattice encoding: blocks resolved against the local model, and those that were not (the
    // local values stand in for them; a merge leaves them as they are).
    std::uint32_t lattice_blocks = 0;
    std::vector<std::uint32_t> unresolved_blocks;
    bool compressed = false;  // the payload came as a zstd frame
    // decode_model_into's buffer for a compressed payload, reused like `parameters`.
    std::vector<std::uint8_t> payload_scratch;
};

// Why a received model was not used: each one is counted by the learner.
enum class Refusal : std::uint8_t {
    too_large,            // over limits::kMaxModelMessageBytes, before parsing
    malformed,            // size prefix, identifier, FlatBuffers bounds, depth or tables
    unsupported_version,  // a format version newer than kModelFormatVersion
    bad_origin,           // origin is not kDeviceIdBytes long
    wrong_widths,         // not the local model's architecture
    bad_encoding,         // unknown encoding or compression, a block size other than the
                          // encoding's, padding != 0
    size_mismatch,        // payload or scales do not hold exactly the widths' parameters (a
                          // zstd payload: its frame, or what it decompresses to)
    not_finite,           // NaN or Inf in a value, a scale or the mass
    bad_mass,             // push-sum mass <= 0
    duplicate,            // same origin and a version already merged (learner)
    outlier,              // merge: too far from the local model against recent history
    unresolved,           // lattice: half the blocks or more too far from the local model
    count_                // number of reasons, for counter arrays
};
inline constexpr std::size_t kRefusalReasons = static_cast<std::size_t>(Refusal::count_);
std::string_view to_string(Refusal refusal) noexcept;

struct ModelRefusal {
    Refusal reason;
    std::string detail;  // names the field and values involved
};

using DecodeResult = std::variant<ModelMessage, ModelRefusal>;

// Decodes a size-prefixed model message. `expected_widths` is the local architecture: anything
// else is refused before the payload is read. `local` is the receiver's model, needed only to
// resolve the lattice encoding (refused as bad_encoding without it).
DecodeResult decode_model(std::span<const std::uint8_t> bytes,
                          std::span<const std::uint32_t> expected_widths,
                          std::span<const float> local = {});
// The same into `out`, reusing its buffers: a gossip thread takes in a model every millisecond
// or two, and a fresh model-sized buffer each time costs page faults. nullopt when it decoded;
// after a refusal what `out` holds means nothing.
std::optional<ModelRefusal> decode_model_into(std::span<const std::uint8_t> bytes,
                                              std::span<const std::uint32_t> expected_widths,
                                              std::span<const float> local, ModelMessage& out);

// Encodes models for one stream of updates. For fp16, int8, int4 and lattice it keeps the
// quantisation error of the previous message (error feedback) and adds it to the next, so what
// receivers get is, over time, unbiased. fp32 keeps no state.
class ModelEncoder {
public:
    explicit ModelEncoder(Encoding encoding, bool error_feedback = true,
                          float lattice_margin = kDefaultLatticeMargin,
                          Compression compression = Compression::none);
    ~ModelEncoder();
    ModelEncoder(ModelEncoder&&) noexcept;
    ModelEncoder& operator=(ModelEncoder&&) noexcept;

    Encoding encoding() const noexcept { return encoding_; }
    Compression compression() const noexcept { return compression_; }

    // The message for `header` (origin, version, samples, mass, widths) with `parameters` as
    // its values; parameters.size() must equal the widths' parameter count (a bug otherwise).
    std::vector<std::uint8_t> encode(const ModelMessage& header, std::span<const float> parameters);

    // A peer's decoded model beside the local one as it was before merging: how far apart
    // models are, block by block, sets the lattice steps of the next messages. A block the
    // peer's message left unresolved doubles its step.
    void observe_peer(std::span<const float> local, const ModelMessage& peer);

    // Forgets the carried error (e.g. after the local model was replaced by a pulled one).
    void reset() noexcept { residual_.clear(); }

    // Compression::zstd: messages sent compressed, and those zstd failed on (out of memory; they
    // went uncompressed). A message zstd would not shrink is neither.
    std::uint64_t messages_compressed() const noexcept { return compressed_; }
    std::uint64_t compression_failures() const noexcept;

private:
    Encoding encoding_;
    bool error_feedback_;
    float lattice_margin_;
    Compression compression_;
    std::unique_ptr<detail::ZstdCompressor> zstd_;  // compression_ == zstd
    std::vector<std::uint8_t> unpacked_;  // zstd: the payload, before compression
    std::uint64_t compressed_ = 0;
    std::vector<float> residual_;
    std::vector<float> spread_;  // lattice: per block, the last measured distance to a peer
};

// No NaN or Inf among `values`: one vectorised pass (a learner checks its model each round).
bool all_finite(std::span<const float> values) noexcept;

// Half-precision conversion (round to nearest even), exposed for the tests.
std::uint16_t float_to_half(float value) noexcept;
float half_to_float(std::uint16_t half) noexcept;

}  // namespace starling::gossip

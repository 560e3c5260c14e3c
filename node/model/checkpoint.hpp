#pragma once
// A trained model and the optimizer state needed to resume training, stored so that a crash
// mid-write never loses the previous good copy and a corrupt file is refused, never half-loaded.

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/result.hpp"

namespace starling::model {

struct Checkpoint {
    std::vector<std::uint32_t> widths;  // layer widths, input first: {784, 256, 128, 10}
    std::vector<float> parameters;      // every layer's W (in×out, row-major) then b, in order
    std::string optimizer;              // "sgd" or "adam"
    std::vector<std::vector<float>> optimizer_state;  // each the size of `parameters`
    std::uint64_t step = 0;             // optimizer steps taken
    std::uint64_t samples_seen = 0;     // training examples consumed
    std::uint32_t epoch = 0;            // completed local epochs
    std::uint64_t seed = 0;             // the run's RNG seed
    // A running average of `parameters` (a gossiping device's served model); empty: none.
    std::vector<float> served;

    // What the device serves and evaluates: `served` when present, else `parameters`.
    const std::vector<float>& serving() const noexcept {
        return served.empty() ? parameters : served;
    }
};

// The envelope format version this build writes and the newest it reads.
inline constexpr std::uint16_t kCheckpointFormatVersion = 1;

// Writes durably, keeping the replaced file as "<file>.prev". invalid_argument for a checkpoint
// that load_checkpoint would refuse; too_large over limits::kMaxCheckpointBytes; io from the disk.
[[nodiscard]] Status save_checkpoint(const std::filesystem::path& file,
                                     const Checkpoint& checkpoint);
// Every failure is an Error naming the file and the reason; nothing is half-loaded.
[[nodiscard]] Result<Checkpoint> load_checkpoint(const std::filesystem::path& file);

// The bytes save_checkpoint writes, and the inverse of load_checkpoint over bytes already in
// memory (untrusted: size, envelope, FlatBuffers Verifier, then every semantic rule).
[[nodiscard]] Result<std::vector<std::uint8_t>> encode_checkpoint(const Checkpoint& checkpoint);
[[nodiscard]] Result<Checkpoint> decode_checkpoint(std::span<const std::uint8_t> bytes,
                                                   std::string_view name_for_errors);

}  // namespace starling::model

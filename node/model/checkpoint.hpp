#pragma once
// A trained model and the optimizer state needed to resume training, stored so that a crash
// mid-write never loses the previous good copy and a corrupt file is refused, never half-loaded.

#include <cstdint>
#include <filesystem>
#include <string>
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
};

Status save_checkpoint(const std::filesystem::path& file, const Checkpoint& checkpoint);
Result<Checkpoint> load_checkpoint(const std::filesystem::path& file);

}  // namespace starling::model

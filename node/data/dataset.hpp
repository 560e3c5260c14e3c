#pragma once
// A device's local examples, kept compact (uint8 pixels stay uint8) and turned into floats one
// mini-batch at a time, so 60,000 Fashion-MNIST images cost 47 MB, not 188 MB.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <vector>

#include "protocol/result.hpp"

namespace starling::data {

struct Dataset {
    std::uint32_t features = 0;         // values per example (784 for a 28×28 image)
    std::uint32_t classes = 0;          // 1 + the largest label seen
    std::vector<std::uint8_t> labels;   // one per example
    std::vector<std::uint8_t> bytes;    // size()*features values, when stored as bytes (IDX)
    std::vector<float> values;          // size()*features values, when stored as floats (CSV)
    float byte_scale = 1.0f / 255.0f;   // bytes are multiplied by this when gathered

    std::size_t size() const noexcept { return labels.size(); }
    bool stored_as_bytes() const noexcept { return !bytes.empty() || values.empty(); }

    // Writes the examples at `rows` as floats into out[rows.size() * features], in order.
    void gather(std::span<const std::uint32_t> rows, float* out) const;

    // A new dataset holding copies of the examples at `rows`, in order.
    Dataset subset(std::span<const std::uint32_t> rows) const;
};

enum class Split { train, test };

// IDX files (Yann LeCun's format, as in Debian's dataset-fashion-mnist), gzip or plain.
Result<Dataset> load_idx(const std::filesystem::path& images, const std::filesystem::path& labels);

// CSV: one example per line, label first, then the features; an optional header line.
Result<Dataset> load_csv(const std::filesystem::path& file);

// Finds a split in a directory by its conventional names: train-images-idx3-ubyte[.gz] and
// train-labels-idx1-ubyte[.gz] (t10k-* for test), else train.csv (test.csv).
Result<Dataset> load_dir(const std::filesystem::path& dir, Split split);

// Writes a split into `dir` under the conventional names: plain IDX when stored as bytes,
// CSV otherwise. Files are written crash-safely.
Status save_dir(const Dataset& ds, const std::filesystem::path& dir, Split split);

}  // namespace starling::data

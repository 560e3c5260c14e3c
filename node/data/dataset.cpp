// Batches, subsets, and finding or writing a split in a directory under its conventional names.

#include "node/data/dataset.hpp"

#include <algorithm>
#include <array>
#include <cassert>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "node/data/formats.hpp"
#include "node/kernels/kernels.hpp"
#include "protocol/durable_file.hpp"

namespace starling::data {
namespace fs = std::filesystem;
namespace {

struct SplitNames {
    const char* images;
    const char* labels;
    const char* csv;
};

SplitNames names_for(Split split) {
    if (split == Split::train)
        return {"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "train.csv"};
    return {"t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", "test.csv"};
}

// The plain file if present, else its .gz sibling, else nothing.
std::optional<fs::path> find_idx(const fs::path& dir, const char* name) {
    std::error_code ec;
    for (const fs::path& candidate : {dir / name, dir / (std::string(name) + ".gz")})
        if (fs::is_regular_file(candidate, ec)) return candidate;
    return std::nullopt;
}

// Writes a staged file's content through the format writers' byte sink, then makes it durable
// under its temp name; publishing is left to the caller.
template <class Encode>
Result<StagedFile> stage(const fs::path& target, const Encode& encode) {
    auto staged = StagedFile::create(target);
    if (!staged) return staged.error();
    const detail::ByteSink sink = [&](std::span<const std::uint8_t> bytes) {
        return staged->write(bytes);
    };
    if (Status st = encode(sink); !st) return st.error();
    if (Status st = staged->seal(); !st) return st.error();
    return staged;
}

Status check_shape(const Dataset& ds) {
    const std::size_t values = ds.size() * ds.features;
    const bool fits = ds.stored_as_bytes() ? ds.bytes.size() == values : ds.values.size() == values;
    if (ds.size() == 0 || ds.features == 0 || !fits)
        return make_error(
            ErrorCode::invalid_argument,
            "dataset of " + std::to_string(ds.size()) + " examples x " +
                std::to_string(ds.features) + " features has " +
                std::to_string(ds.stored_as_bytes() ? ds.bytes.size() : ds.values.size()) +
                " values");
    return Ok{};
}

Status save_idx(const Dataset& ds, const fs::path& dir, const SplitNames& names) {
    auto images = stage(dir / names.images,
                        [&](const auto& out) { return detail::write_idx_images(ds, out); });
    if (!images) return images.error();
    auto labels = stage(dir / names.labels,
                        [&](const auto& out) { return detail::write_idx_labels(ds, out); });
    if (!labels) return labels.error();
    // Both files are durable before either is renamed: a crash can fall only between renames.
    if (Status st = images->publish(); !st) return st;
    return labels->publish();
}

Status save_csv(const Dataset& ds, const fs::path& dir, const SplitNames& names) {
    auto csv = stage(dir / names.csv, [&](const auto& out) { return detail::write_csv(ds, out); });
    if (!csv) return csv.error();
    return csv->publish();
}

}  // namespace

void Dataset::gather(std::span<const std::uint32_t> rows, float* out) const {
    const std::size_t width = features;
    assert((stored_as_bytes() ? bytes.size() : values.size()) == size() * width);
    if (stored_as_bytes()) {
        const auto widen = kernels::active().bytes_to_floats;
        for (std::size_t i = 0; i < rows.size(); ++i) {
            assert(rows[i] < size());
            widen(bytes.data() + rows[i] * width, out + i * width, width, byte_scale);
        }
        return;
    }
    for (std::size_t i = 0; i < rows.size(); ++i) {
        assert(rows[i] < size());
        std::memcpy(out + i * width, values.data() + rows[i] * width, width * sizeof(float));
    }
}

Dataset Dataset::subset(std::span<const std::uint32_t> rows) const {
    Dataset out;
    out.features = features;
    out.byte_scale = byte_scale;
    out.labels.reserve(rows.size());
    const std::size_t width = features;
    const bool as_bytes = stored_as_bytes();
    if (as_bytes)
        out.bytes.reserve(rows.size() * width);
    else
        out.values.reserve(rows.size() * width);
    for (std::uint32_t row : rows) {
        assert(row < size());
        out.labels.push_back(labels[row]);
        if (as_bytes)
            out.bytes.insert(out.bytes.end(), bytes.begin() + row * width,
                             bytes.begin() + (row + 1) * width);
        else
            out.values.insert(out.values.end(), values.begin() + row * width,
                              values.begin() + (row + 1) * width);
    }
    // A shard's classes count only the labels it holds, as for any loaded dataset.
    out.classes =
        out.labels.empty() ? 0u : 1u + *std::max_element(out.labels.begin(), out.labels.end());
    return out;
}

Result<Dataset> load_dir(const fs::path& dir, Split split) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec))
        return make_error(ErrorCode::not_found, dir.string() + ": no such directory");
    const SplitNames names = names_for(split);
    const std::optional<fs::path> images = find_idx(dir, names.images);
    const std::optional<fs::path> labels = find_idx(dir, names.labels);
    if (images && labels) return load_idx(*images, *labels);
    if (images || labels)
        return make_error(ErrorCode::not_found,
                          (images ? *images : *labels).string() + " has no partner: looked for " +
                              (dir / (images ? names.labels : names.images)).string() + "[.gz]");
    if (fs::is_regular_file(dir / names.csv, ec)) return load_csv(dir / names.csv);
    return make_error(ErrorCode::not_found,
                      dir.string() + ": no " + (split == Split::train ? "train" : "test") +
                          " split: looked for " + names.images + "[.gz] with " + names.labels +
                          "[.gz], and for " + names.csv);
}

Status save_dir(const Dataset& ds, const fs::path& dir, Split split) {
    if (Status st = check_shape(ds); !st) return st;
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return make_error(ErrorCode::io, dir.string() + ": cannot create: " + ec.message());
    const SplitNames names = names_for(split);
    Status written = ds.stored_as_bytes() ? save_idx(ds, dir, names) : save_csv(ds, dir, names);
    if (!written) return written;
    // The renames themselves become durable only once the directory is synced.
    return sync_directory(dir);
}

}  // namespace starling::data

// Batches, subsets, and finding or writing a split in a directory under its conventional names.

#include "node/data/dataset.hpp"

#include <fcntl.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cassert>
#include <cerrno>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include "node/data/formats.hpp"
#include "node/kernels/kernels.hpp"

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

Error os_error(const fs::path& path, std::string_view action) {
    return make_error(ErrorCode::io, path.string() + ": " + std::string(action) +
                                         " failed: " + std::strerror(errno));
}

// The plain file if present, else its .gz sibling, else nothing.
std::optional<fs::path> find_idx(const fs::path& dir, const char* name) {
    std::error_code ec;
    for (const fs::path& candidate : {dir / name, dir / (std::string(name) + ".gz")})
        if (fs::is_regular_file(candidate, ec)) return candidate;
    return std::nullopt;
}

Status write_all(int fd, const fs::path& path, std::span<const std::uint8_t> bytes) {
    while (!bytes.empty()) {
        const ssize_t n = ::write(fd, bytes.data(), bytes.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return os_error(path, "write");
        bytes = bytes.subspan(static_cast<std::size_t>(n));
    }
    return Ok{};
}

Status sync_directory(const fs::path& dir) {
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return os_error(dir, "open");
    const bool synced = ::fsync(fd) == 0;
    Status st = synced ? Status(Ok{}) : os_error(dir, "fsync");
    ::close(fd);
    return st;
}

// A file written beside its target and renamed over it only once its bytes are on disk, so a
// crash leaves the old file or the new one, never a torn one. Private until the shared durable
// file helper in protocol/ lands.
class StagedFile {
  public:
    explicit StagedFile(fs::path target)
        : target_(std::move(target)),
          temp_(target_.parent_path() /
                ("." + target_.filename().string() + ".tmp-" + std::to_string(::getpid()))) {}
    StagedFile(const StagedFile&) = delete;
    StagedFile& operator=(const StagedFile&) = delete;
    ~StagedFile() {
        if (fd_ >= 0) ::close(fd_);
        if (!published_) ::unlink(temp_.c_str());
    }

    template <class Encode>
    Status write(const Encode& encode) {
        fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd_ < 0) return os_error(temp_, "create");
        const detail::ByteSink sink = [this](std::span<const std::uint8_t> bytes) {
            return write_all(fd_, temp_, bytes);
        };
        if (Status st = encode(sink); !st) return st;
        if (::fsync(fd_) != 0) return os_error(temp_, "fsync");
        const int fd = std::exchange(fd_, -1);
        if (::close(fd) != 0) return os_error(temp_, "close");
        return Ok{};
    }

    Status publish() {
        if (::rename(temp_.c_str(), target_.c_str()) != 0) return os_error(target_, "rename");
        published_ = true;
        return Ok{};
    }

  private:
    fs::path target_;
    fs::path temp_;
    int fd_ = -1;
    bool published_ = false;
};

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
    StagedFile images(dir / names.images);
    StagedFile labels(dir / names.labels);
    Status st = images.write([&](const auto& out) { return detail::write_idx_images(ds, out); });
    if (st) st = labels.write([&](const auto& out) { return detail::write_idx_labels(ds, out); });
    // Both files are durable before either is renamed: a crash can fall only between renames.
    if (st) st = images.publish();
    if (st) st = labels.publish();
    return st;
}

Status save_csv(const Dataset& ds, const fs::path& dir, const SplitNames& names) {
    StagedFile csv(dir / names.csv);
    Status st = csv.write([&](const auto& out) { return detail::write_csv(ds, out); });
    if (st) st = csv.publish();
    return st;
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

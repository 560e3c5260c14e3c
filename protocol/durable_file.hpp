#pragma once
// Files that survive a crash mid-write: the old copy stays whole until the new one is on disk,
// and reads refuse a file over its limit before allocating for it.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <vector>

#include "protocol/result.hpp"

namespace starling {

struct DurableOptions {
    std::uint32_t mode = 0644;  // permission bits of the new file (umask applies); 0600 for secrets
    bool keep_previous = false;  // keep the file being replaced as "<name>.prev"
};

// Writes a temp file beside `file`, fsyncs it, optionally keeps the old file as "<name>.prev",
// renames the temp over `file` and fsyncs the directory. On failure the temp file is removed, the
// old `file` is untouched, and the Error (io) names the path and the system's reason.
[[nodiscard]] Status write_file_durably(const std::filesystem::path& file,
                                        std::span<const std::uint8_t> bytes,
                                        DurableOptions opts = {});

// A file written in pieces beside its target and moved over it only once it is on disk: for
// files too big to hold twice in memory, and for sets of files that must all be durable before
// any replaces its old copy. Until published, destroying it removes the temp file.
class StagedFile {
public:
    [[nodiscard]] static Result<StagedFile> create(const std::filesystem::path& file,
                                                  DurableOptions opts = {});
    StagedFile(StagedFile&& other) noexcept;
    StagedFile& operator=(StagedFile&&) = delete;
    StagedFile(const StagedFile&) = delete;
    StagedFile& operator=(const StagedFile&) = delete;
    ~StagedFile();

    [[nodiscard]] Status write(std::span<const std::uint8_t> bytes);
    // fsync and close: the bytes are durable under the temp name. Call once, before publish.
    [[nodiscard]] Status seal();
    // Renames the sealed temp over the target (keeping "<name>.prev" if asked). The rename is
    // durable once the caller syncs the directory (sync_directory).
    [[nodiscard]] Status publish();

private:
    StagedFile(std::filesystem::path file, std::filesystem::path temp, int fd, DurableOptions opts);
    std::filesystem::path file_;
    std::filesystem::path temp_;
    int fd_;
    DurableOptions opts_;
    bool published_ = false;
};

// fsyncs a directory so the renames inside it survive a crash.
[[nodiscard]] Status sync_directory(const std::filesystem::path& dir);

// Reads a whole regular file. not_found when it is missing; too_large, before reading, when it is
// over `max_bytes`; io for any other refusal.
[[nodiscard]] Result<std::vector<std::uint8_t>> read_file_bounded(const std::filesystem::path& file,
                                                                  std::size_t max_bytes);

// Where keep_previous puts the replaced copy: "<name>.prev" in the same directory.
[[nodiscard]] std::filesystem::path previous_copy_path(const std::filesystem::path& file);

}  // namespace starling

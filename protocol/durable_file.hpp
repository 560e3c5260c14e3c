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

// Reads a whole regular file. not_found when it is missing; too_large, before reading, when it is
// over `max_bytes`; io for any other refusal.
[[nodiscard]] Result<std::vector<std::uint8_t>> read_file_bounded(const std::filesystem::path& file,
                                                                  std::size_t max_bytes);

// Where keep_previous puts the replaced copy: "<name>.prev" in the same directory.
[[nodiscard]] std::filesystem::path previous_copy_path(const std::filesystem::path& file);

}  // namespace starling

#pragma once
// The node's metrics history on disk, for `starling-inspect report`: one JSON object per line,
// appended every interval to <state>/history/metrics.0.jsonl; a full file is rotated to .1, .2, …
// and the oldest beyond the cap is deleted, so the history never exceeds its bound. A crash can
// leave at most a torn last line, which the reader skips (no line is ever rewritten in place).

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/result.hpp"

namespace starling::runtime {

inline constexpr std::uint64_t kMaxHistoryFileBytes = std::uint64_t{1} << 20;
inline constexpr std::size_t kMaxHistoryFiles = 8;  // 8 MiB in all: ~2 days of 100 nodes at 10 s
inline constexpr std::size_t kMaxHistoryLineBytes = 256 * 1024;  // a line of ~1,500 members

class MetricsHistory {
public:
    // `dir` is created (mode 0700) if needed. Limits are injectable for tests.
    [[nodiscard]] static Result<MetricsHistory> open(const std::filesystem::path& dir,
                                                     std::uint64_t max_file_bytes = kMaxHistoryFileBytes,
                                                     std::size_t max_files = kMaxHistoryFiles);
    // Appends `json` (one object, no newline inside) and a newline; rotates first when the
    // current file would pass its bound. too_large for a line over kMaxHistoryLineBytes.
    [[nodiscard]] Status append(std::string_view json);
    [[nodiscard]] const std::filesystem::path& dir() const noexcept { return dir_; }

private:
    MetricsHistory(std::filesystem::path dir, std::uint64_t max_file_bytes, std::size_t max_files)
        : dir_(std::move(dir)), max_file_bytes_(max_file_bytes), max_files_(max_files) {}
    [[nodiscard]] Status rotate();

    std::filesystem::path dir_;
    std::uint64_t max_file_bytes_;
    std::size_t max_files_;
};

// <dir>/metrics.<index>.jsonl
[[nodiscard]] std::filesystem::path history_file(const std::filesystem::path& dir, std::size_t index);
// Where a state directory keeps its history.
[[nodiscard]] std::filesystem::path history_dir(const std::filesystem::path& state_dir);

// Every complete line of the history, oldest first (files .N … .0); torn or over-long lines are
// skipped and counted in `skipped`. not_found when the directory holds no history file.
[[nodiscard]] Result<std::vector<std::string>> read_history(const std::filesystem::path& dir,
                                                            std::size_t& skipped);

}  // namespace starling::runtime

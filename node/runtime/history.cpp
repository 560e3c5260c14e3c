#include "node/runtime/history.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <system_error>

namespace starling::runtime {
namespace {

Error io_error(const std::string& what, const std::filesystem::path& path) {
    return make_error(ErrorCode::io, what + " '" + path.string() + "': " + std::strerror(errno));
}

}  // namespace

std::filesystem::path history_file(const std::filesystem::path& dir, std::size_t index) {
    return dir / ("metrics." + std::to_string(index) + ".jsonl");
}

std::filesystem::path history_dir(const std::filesystem::path& state_dir) {
    return state_dir / "history";
}

Result<MetricsHistory> MetricsHistory::open(const std::filesystem::path& dir,
                                            std::uint64_t max_file_bytes, std::size_t max_files) {
    if (max_files == 0 || max_file_bytes == 0)
        return make_error(ErrorCode::invalid_argument, "history limits must be positive");
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) return make_error(ErrorCode::io, "cannot create '" + dir.string() + "': " + ec.message());
    std::filesystem::permissions(dir, std::filesystem::perms::owner_all,
                                 std::filesystem::perm_options::replace, ec);
    return MetricsHistory(dir, max_file_bytes, max_files);
}

Status MetricsHistory::rotate() {
    std::error_code ec;
    std::filesystem::remove(history_file(dir_, max_files_ - 1), ec);
    for (std::size_t i = max_files_ - 1; i > 0; --i) {
        const std::filesystem::path from = history_file(dir_, i - 1);
        if (!std::filesystem::exists(from, ec)) continue;
        std::filesystem::rename(from, history_file(dir_, i), ec);
        if (ec)
            return make_error(ErrorCode::io,
                              "cannot rotate '" + from.string() + "': " + ec.message());
    }
    return Ok{};
}

Status MetricsHistory::append(std::string_view json) {
    if (json.size() + 1 > kMaxHistoryLineBytes || json.find('\n') != std::string_view::npos)
        return make_error(ErrorCode::too_large, "history line over its bound or not one line");
    const std::filesystem::path current = history_file(dir_, 0);
    std::error_code ec;
    const std::uintmax_t size = std::filesystem::file_size(current, ec);
    if (!ec && size > 0 && size + json.size() + 1 > max_file_bytes_)
        if (Status s = rotate(); !s) return s;
    const int fd = ::open(current.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) return io_error("cannot open", current);
    std::string line(json);
    line += '\n';
    const ssize_t written = ::write(fd, line.data(), line.size());  // one write: O_APPEND keeps it whole
    const bool ok = written == static_cast<ssize_t>(line.size());
    const Error failure = ok ? Error{} : io_error("cannot append to", current);
    ::close(fd);
    if (!ok) return failure;
    return Ok{};
}

Result<std::vector<std::string>> read_history(const std::filesystem::path& dir,
                                              std::size_t& skipped) {
    skipped = 0;
    std::vector<std::string> lines;
    bool any = false;
    for (std::size_t i = kMaxHistoryFiles * 4; i-- > 0;) {  // tolerate a larger cap once used
        const std::filesystem::path path = history_file(dir, i);
        std::error_code ec;
        const std::uintmax_t size = std::filesystem::file_size(path, ec);
        if (ec) continue;
        any = true;
        if (size > kMaxHistoryFileBytes * 4) {  // not one we wrote: refuse to load it whole
            ++skipped;
            continue;
        }
        std::ifstream in(path, std::ios::binary);
        if (!in) continue;
        std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        std::size_t start = 0;
        while (start < text.size()) {
            const std::size_t end = text.find('\n', start);
            if (end == std::string::npos) {  // torn last line
                ++skipped;
                break;
            }
            if (end - start > kMaxHistoryLineBytes || end == start) ++skipped;
            else lines.emplace_back(text, start, end - start);
            start = end + 1;
        }
    }
    if (!any) return make_error(ErrorCode::not_found, "no metrics history in '" + dir.string() + "'");
    return lines;
}

}  // namespace starling::runtime

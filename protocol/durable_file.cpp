#include "protocol/durable_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

namespace starling {
namespace {

namespace fs = std::filesystem;

// Stale temp names left by a crashed process with a recycled pid, skipped before giving up.
constexpr int kMaxNameAttempts = 16;
// Bytes per read/write call: Linux transfers at most ~2 GiB per call anyway.
constexpr std::size_t kMaxIoChunkBytes = std::size_t{1} << 30;

Error os_error(std::string_view action, const fs::path& path, int err) {
    return make_error(ErrorCode::io, std::string(action) + " '" + path.string() +
                                         "': " + std::generic_category().message(err));
}

// Owns one file descriptor; closing is explicit where its result matters.
class FileDescriptor {
  public:
    explicit FileDescriptor(int fd) noexcept : fd_(fd) {}
    FileDescriptor(FileDescriptor&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    FileDescriptor& operator=(FileDescriptor&&) = delete;
    FileDescriptor(const FileDescriptor&) = delete;
    FileDescriptor& operator=(const FileDescriptor&) = delete;
    ~FileDescriptor() {
        if (fd_ >= 0) ::close(fd_);
    }

    int get() const noexcept { return fd_; }
    // close(2)'s result: NFS and some FUSE filesystems report write errors only here.
    int close() noexcept { return ::close(std::exchange(fd_, -1)); }

  private:
    int fd_;
};

// Removes a temp file on every early return; disarmed once it has been renamed into place.
class TempFileGuard {
  public:
    explicit TempFileGuard(fs::path path) : path_(std::move(path)) {}
    TempFileGuard(const TempFileGuard&) = delete;
    TempFileGuard& operator=(const TempFileGuard&) = delete;
    ~TempFileGuard() {
        if (armed_) ::unlink(path_.c_str());
    }
    void disarm() noexcept { armed_ = false; }

  private:
    fs::path path_;
    bool armed_ = true;
};

// A hidden sibling of `file` whose name no other process or thread of this one will pick.
fs::path sibling_name(const fs::path& file, std::string_view tag) {
    static std::atomic<unsigned> counter{0};
    const std::string name = "." + file.filename().string() + "." + std::string(tag) + "-" +
                             std::to_string(::getpid()) + "-" + std::to_string(counter++);
    return file.parent_path() / name;
}

Status write_all(int fd, std::span<const std::uint8_t> bytes, const fs::path& path) {
    while (!bytes.empty()) {
        const ssize_t n = ::write(fd, bytes.data(), std::min(bytes.size(), kMaxIoChunkBytes));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return os_error("cannot write", path, errno);
        if (n == 0) return os_error("cannot write", path, EIO);
        bytes = bytes.subspan(static_cast<std::size_t>(n));
    }
    return Ok{};
}

Status sync(int fd, const fs::path& path) {
    while (::fsync(fd) != 0) {
        if (errno != EINTR) return os_error("cannot fsync", path, errno);
    }
    return Ok{};
}

Status rename_file(const fs::path& from, const fs::path& to) {
    if (::rename(from.c_str(), to.c_str()) != 0)
        return os_error("cannot rename '" + from.string() + "' to", to, errno);
    return Ok{};
}

bool links_unsupported(int err) {
    return err == EPERM || err == ENOTSUP || err == EMLINK;
}

// How the replaced file was kept: moving it away means it must come back if the write fails.
enum class Previous { none, linked, moved };

// Replaces "<name>.prev" with the current `file`. A hard link staged under a temp name keeps
// `file` present throughout; filesystems without links (FAT on SD cards) fall back to rename, and
// the caller moves it back if the final rename fails.
Result<Previous> preserve_previous(const fs::path& file) {
    struct stat st {};
    if (::lstat(file.c_str(), &st) != 0) {
        if (errno == ENOENT) return Previous::none;
        return os_error("cannot stat", file, errno);
    }
    if (!S_ISREG(st.st_mode))
        return make_error(ErrorCode::io, "cannot keep a previous copy of '" + file.string() +
                                             "': not a regular file");
    const fs::path prev = previous_copy_path(file);
    for (int attempt = 0; attempt < kMaxNameAttempts; ++attempt) {
        const fs::path staging = sibling_name(file, "prev");
        if (::link(file.c_str(), staging.c_str()) == 0) {
            TempFileGuard guard(staging);
            if (auto s = rename_file(staging, prev); !s) return s.error();
            guard.disarm();
            return Previous::linked;
        }
        if (links_unsupported(errno)) {
            if (auto s = rename_file(file, prev); !s) return s.error();
            return Previous::moved;
        }
        if (errno != EEXIST) return os_error("cannot link the previous copy of", file, errno);
    }
    return os_error("cannot find a free temp file name for", file, EEXIST);
}

Result<std::size_t> read_up_to(int fd, std::span<std::uint8_t> buffer, const fs::path& path) {
    std::size_t got = 0;
    while (got < buffer.size()) {
        const std::size_t want = std::min(buffer.size() - got, kMaxIoChunkBytes);
        const ssize_t n = ::read(fd, buffer.data() + got, want);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return os_error("cannot read", path, errno);
        if (n == 0) break;
        got += static_cast<std::size_t>(n);
    }
    return got;
}

}  // namespace

// Filesystems that cannot fsync a directory (EINVAL) order metadata themselves or not at all;
// neither is a reason to fail the write.
Status sync_directory(const fs::path& dir) {
    const int raw = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (raw < 0) return os_error("cannot open directory", dir, errno);
    FileDescriptor fd(raw);
    while (::fsync(fd.get()) != 0) {
        if (errno == EINVAL) return Ok{};
        if (errno != EINTR) return os_error("cannot fsync directory", dir, errno);
    }
    return Ok{};
}

Result<StagedFile> StagedFile::create(const fs::path& file, DurableOptions opts) {
    for (int attempt = 0; attempt < kMaxNameAttempts; ++attempt) {
        fs::path temp = sibling_name(file, "tmp");
        const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
                              static_cast<mode_t>(opts.mode));
        if (fd >= 0) return StagedFile(file, std::move(temp), fd, opts);
        if (errno != EEXIST && errno != EINTR)
            return os_error("cannot create a temp file for", file, errno);
    }
    return os_error("cannot find a free temp file name for", file, EEXIST);
}

StagedFile::StagedFile(fs::path file, fs::path temp, int fd, DurableOptions opts)
    : file_(std::move(file)), temp_(std::move(temp)), fd_(fd), opts_(opts) {}

StagedFile::StagedFile(StagedFile&& other) noexcept
    : file_(std::move(other.file_)),
      temp_(std::move(other.temp_)),
      fd_(std::exchange(other.fd_, -1)),
      opts_(other.opts_),
      published_(std::exchange(other.published_, true)) {}

StagedFile::~StagedFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!published_) ::unlink(temp_.c_str());
}

Status StagedFile::write(std::span<const std::uint8_t> bytes) {
    return write_all(fd_, bytes, temp_);
}

Status StagedFile::seal() {
    if (auto s = sync(fd_, temp_); !s) return s;
    if (::close(std::exchange(fd_, -1)) != 0) return os_error("cannot close", temp_, errno);
    return Ok{};
}

Status StagedFile::publish() {
    auto previous =
        opts_.keep_previous ? preserve_previous(file_) : Result<Previous>(Previous::none);
    if (!previous) return previous.error();
    if (auto s = rename_file(temp_, file_); !s) {
        if (*previous == Previous::moved)
            (void)::rename(previous_copy_path(file_).c_str(), file_.c_str());
        return s;
    }
    published_ = true;
    return Ok{};
}

fs::path previous_copy_path(const fs::path& file) {
    fs::path prev = file;
    prev += ".prev";
    return prev;
}

Status write_file_durably(const fs::path& file, std::span<const std::uint8_t> bytes,
                          DurableOptions opts) {
    auto staged = StagedFile::create(file, opts);
    if (!staged) return staged.error();
    if (auto s = staged->write(bytes); !s) return s;
    if (auto s = staged->seal(); !s) return s;
    if (auto s = staged->publish(); !s) return s;
    return sync_directory(file.parent_path().empty() ? fs::path(".") : file.parent_path());
}

Result<std::vector<std::uint8_t>> read_file_bounded(const fs::path& file, std::size_t max_bytes) {
    const int raw = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (raw < 0 && errno == ENOENT)
        return make_error(ErrorCode::not_found, "'" + file.string() + "': no such file");
    if (raw < 0) return os_error("cannot open", file, errno);
    FileDescriptor fd(raw);

    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return os_error("cannot stat", file, errno);
    if (!S_ISREG(st.st_mode))
        return make_error(ErrorCode::io, "'" + file.string() + "': not a regular file");
    const auto size = static_cast<std::uint64_t>(st.st_size);
    if (size > max_bytes) {
        return make_error(ErrorCode::too_large, "'" + file.string() + "': " + std::to_string(size) +
                                                    " bytes, over the limit of " +
                                                    std::to_string(max_bytes));
    }

    std::vector<std::uint8_t> bytes(static_cast<std::size_t>(size));
    auto got = read_up_to(fd.get(), bytes, file);
    if (!got) return got.error();
    bytes.resize(*got);  // a file that shrank since fstat: the envelope check reports the rest
    return bytes;
}

}  // namespace starling

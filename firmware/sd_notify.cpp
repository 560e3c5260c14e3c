#include "firmware/sd_notify.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string>

namespace starling::firmware {
namespace {

Error os_error(std::string_view what) {
    return make_error(ErrorCode::io, std::string(what) + ": " + std::strerror(errno));
}

// Closes the socket on every path out.
struct Fd {
    int fd;
    ~Fd() {
        if (fd >= 0) ::close(fd);
    }
};

}  // namespace

Status notify_socket(std::string_view socket_name, std::string_view state) noexcept {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    const bool abstract = !socket_name.empty() && socket_name.front() == '@';
    if (socket_name.size() < 2 || socket_name.size() >= sizeof(addr.sun_path) ||
        (!abstract && socket_name.front() != '/'))
        return make_error(ErrorCode::invalid_argument,
                          "NOTIFY_SOCKET: expected an absolute path or @name");
    std::memcpy(addr.sun_path, socket_name.data(), socket_name.size());
    if (abstract) addr.sun_path[0] = '\0';  // the abstract namespace: a leading NUL, no terminator
    const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + socket_name.size() +
                                            (abstract ? 0 : 1));

    const Fd s{::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)};
    if (s.fd < 0) return os_error("socket");
    const ssize_t sent = ::sendto(s.fd, state.data(), state.size(), MSG_NOSIGNAL,
                                  reinterpret_cast<const sockaddr*>(&addr), len);
    if (sent < 0) return os_error("sendto NOTIFY_SOCKET");
    if (static_cast<std::size_t>(sent) != state.size())
        return make_error(ErrorCode::io, "sendto NOTIFY_SOCKET: short write");
    return Ok{};
}

Status sd_notify_status(std::string_view text) {
    std::string state(kNotifyStatusPrefix);
    state.append(text.substr(0, kMaxNotifyStatusBytes));
    for (char& c : state)
        if (c == '\n' || c == '\r') c = ' ';
    return sd_notify(state);
}

std::optional<std::chrono::microseconds> watchdog_ping_interval(const char* watchdog_usec,
                                                                const char* watchdog_pid,
                                                                long self) noexcept {
    if (watchdog_usec == nullptr) return std::nullopt;
    if (watchdog_pid != nullptr && *watchdog_pid != '\0') {
        const std::string_view pid(watchdog_pid);
        long value = 0;
        const auto [end, ec] = std::from_chars(pid.data(), pid.data() + pid.size(), value);
        if (ec != std::errc() || end != pid.data() + pid.size() || value != self)
            return std::nullopt;  // the watchdog is some other process's
    }
    const std::string_view usec(watchdog_usec);
    unsigned long long value = 0;
    const auto [end, ec] = std::from_chars(usec.data(), usec.data() + usec.size(), value);
    if (ec != std::errc() || end != usec.data() + usec.size() || value == 0) return std::nullopt;
    return std::chrono::microseconds(static_cast<std::chrono::microseconds::rep>(value / 2));
}

std::optional<std::chrono::microseconds> watchdog_ping_interval() noexcept {
    return watchdog_ping_interval(std::getenv("WATCHDOG_USEC"), std::getenv("WATCHDOG_PID"),
                                  static_cast<long>(::getpid()));
}

Status sd_notify(std::string_view state) noexcept {
    const char* name = std::getenv("NOTIFY_SOCKET");
    if (name == nullptr || *name == '\0') return Ok{};
    return notify_socket(name, state);
}

}  // namespace starling::firmware

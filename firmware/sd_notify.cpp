#include "firmware/sd_notify.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
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

Status sd_notify(std::string_view state) noexcept {
    const char* name = std::getenv("NOTIFY_SOCKET");
    if (name == nullptr || *name == '\0') return Ok{};
    return notify_socket(name, state);
}

}  // namespace starling::firmware

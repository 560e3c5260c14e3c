#include <doctest/doctest.h>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string>

#include "firmware/sd_notify.hpp"
#include "tests/protocol/temp_dir.hpp"

using namespace starling::firmware;

namespace {

// A datagram socket standing in for systemd's notify socket; `name` as in $NOTIFY_SOCKET.
struct Listener {
    int fd = -1;
    explicit Listener(const std::string& name) {
        fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::memcpy(addr.sun_path, name.data(), name.size());
        const bool abstract = name[0] == '@';
        if (abstract) addr.sun_path[0] = '\0';
        const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size() +
                                                (abstract ? 0 : 1));
        REQUIRE(::bind(fd, reinterpret_cast<const sockaddr*>(&addr), len) == 0);
    }
    ~Listener() { ::close(fd); }
    std::string receive() const {
        char buffer[256] = {};
        const ssize_t n = ::recv(fd, buffer, sizeof(buffer), MSG_DONTWAIT);
        return n < 0 ? std::string{} : std::string(buffer, static_cast<std::size_t>(n));
    }
};

}  // namespace

TEST_CASE("sd_notify reaches an abstract socket") {
    const std::string name = "@starling-notify-test-" + std::to_string(::getpid());
    Listener systemd(name);
    REQUIRE(notify_socket(name, kNotifyReady).ok());
    CHECK(systemd.receive() == "READY=1");
    REQUIRE(notify_socket(name, kNotifyWatchdog).ok());
    CHECK(systemd.receive() == "WATCHDOG=1");
}

TEST_CASE("sd_notify reaches a path socket through $NOTIFY_SOCKET, and is silent without it") {
    starling::testing::TempDir dir("notify");
    const std::string path = (dir / "notify").string();
    Listener systemd(path);
    REQUIRE(::setenv("NOTIFY_SOCKET", path.c_str(), 1) == 0);
    REQUIRE(sd_notify(kNotifyStopping).ok());
    CHECK(systemd.receive() == "STOPPING=1");
    REQUIRE(::unsetenv("NOTIFY_SOCKET") == 0);
    CHECK(sd_notify(kNotifyReady).ok());
    CHECK(systemd.receive().empty());
}

TEST_CASE("bad socket names and absent listeners are errors, not crashes") {
    CHECK(notify_socket("relative/path", kNotifyReady).error().code ==
          starling::ErrorCode::invalid_argument);
    CHECK_FALSE(notify_socket("@", kNotifyReady).ok());
    CHECK_FALSE(notify_socket(std::string(200, '/'), kNotifyReady).ok());
    CHECK(notify_socket("/nonexistent/starling/notify", kNotifyReady).error().code ==
          starling::ErrorCode::io);
}

TEST_CASE("the watchdog is pinged at half WATCHDOG_USEC, only when it is ours") {
    using std::chrono::microseconds;
    CHECK(watchdog_ping_interval("30000000", nullptr, 42) == microseconds(15'000'000));
    CHECK(watchdog_ping_interval("30000000", "42", 42) == microseconds(15'000'000));
    CHECK(watchdog_ping_interval("30000000", "", 42) == microseconds(15'000'000));
    CHECK_FALSE(watchdog_ping_interval("30000000", "41", 42).has_value());
    CHECK_FALSE(watchdog_ping_interval(nullptr, nullptr, 42).has_value());
    CHECK_FALSE(watchdog_ping_interval("0", nullptr, 42).has_value());
    CHECK_FALSE(watchdog_ping_interval("30s", nullptr, 42).has_value());
}

TEST_CASE("STATUS= is one bounded line") {
    const std::string name = "@starling-status-test-" + std::to_string(::getpid());
    Listener systemd(name);
    REQUIRE(::setenv("NOTIFY_SOCKET", name.c_str(), 1) == 0);
    REQUIRE(sd_notify_status("waiting\nfor a bundle").ok());
    CHECK(systemd.receive() == "STATUS=waiting for a bundle");
    REQUIRE(sd_notify_status(std::string(1000, 'x')).ok());
    CHECK(systemd.receive().size() == kNotifyStatusPrefix.size() + kMaxNotifyStatusBytes);
    REQUIRE(::unsetenv("NOTIFY_SOCKET") == 0);
}

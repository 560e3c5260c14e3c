#pragma once
// systemd's readiness and watchdog protocol (sd_notify), spoken by the static binary itself:
// no libsystemd. A datagram "READY=1", "WATCHDOG=1", "STOPPING=1" to $NOTIFY_SOCKET.

#include <chrono>
#include <optional>
#include <string_view>

#include "protocol/result.hpp"

namespace starling::firmware {

inline constexpr std::string_view kNotifyReady = "READY=1";
inline constexpr std::string_view kNotifyWatchdog = "WATCHDOG=1";
inline constexpr std::string_view kNotifyStopping = "STOPPING=1";
inline constexpr std::string_view kNotifyStatusPrefix = "STATUS=";
// Asks for more start-up time while the node waits for something (its first-boot bundle).
inline constexpr std::string_view kNotifyExtendTimeoutPrefix = "EXTEND_TIMEOUT_USEC=";
inline constexpr std::size_t kMaxNotifyStatusBytes = 200;

// Sends `state` to the socket named like $NOTIFY_SOCKET: a path, or "@name" for an abstract one.
[[nodiscard]] Status notify_socket(std::string_view socket_name, std::string_view state) noexcept;

// Sends to $NOTIFY_SOCKET; Ok and nothing sent when it is unset (not started by systemd).
[[nodiscard]] Status sd_notify(std::string_view state) noexcept;
// "STATUS=<text>": one line (newlines become spaces), at most kMaxNotifyStatusBytes of text.
[[nodiscard]] Status sd_notify_status(std::string_view text);

// How often to send WATCHDOG=1: half of WATCHDOG_USEC, when WATCHDOG_PID is unset or `self`.
// nullopt: no watchdog asked for (or malformed values).
[[nodiscard]] std::optional<std::chrono::microseconds> watchdog_ping_interval(
    const char* watchdog_usec, const char* watchdog_pid, long self) noexcept;
// The same from this process's environment.
[[nodiscard]] std::optional<std::chrono::microseconds> watchdog_ping_interval() noexcept;

}  // namespace starling::firmware

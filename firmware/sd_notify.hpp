#pragma once
// systemd's readiness and watchdog protocol (sd_notify), spoken by the static binary itself:
// no libsystemd. A datagram "READY=1", "WATCHDOG=1", "STOPPING=1" to $NOTIFY_SOCKET.

#include <string_view>

#include "protocol/result.hpp"

namespace starling::firmware {

inline constexpr std::string_view kNotifyReady = "READY=1";
inline constexpr std::string_view kNotifyWatchdog = "WATCHDOG=1";
inline constexpr std::string_view kNotifyStopping = "STOPPING=1";

// Sends `state` to the socket named like $NOTIFY_SOCKET: a path, or "@name" for an abstract one.
[[nodiscard]] Status notify_socket(std::string_view socket_name, std::string_view state) noexcept;

// Sends to $NOTIFY_SOCKET; Ok and nothing sent when it is unset (not started by systemd).
[[nodiscard]] Status sd_notify(std::string_view state) noexcept;

}  // namespace starling::firmware

#pragma once
// Linux reports an ICMP "unreachable" for a UDP datagram on the socket's error queue
// (IP_RECVERR); this reads it back as the destination that refused. node/net internal.

#include <cstddef>
#include <functional>

#include "node/net/address.hpp"

namespace starling::net::detail {

// Error-queue entries read per wake-up: each is one refused datagram.
inline constexpr std::size_t kMaxRefusalsPerDrain = 64;

// Asks the kernel to queue ICMP errors for this unconnected socket. False if refused.
[[nodiscard]] bool enable_refusal_reports(int fd) noexcept;

// Reads the socket's error queue; calls `refused` with the destination of each datagram a host
// answered with port or host unreachable. Returns how many entries were read.
std::size_t drain_refusals(int fd, const std::function<void(const Ipv4Endpoint&)>& refused);

}  // namespace starling::net::detail

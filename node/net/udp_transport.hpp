#pragma once
// The real Transport: IPv4 UDP on one bound address, optionally listening to a multicast group on
// one interface (LAN discovery), with refusals (ICMP unreachable) reported to the node.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>

#include "node/net/event_loop.hpp"
#include "node/net/transport.hpp"
#include "protocol/result.hpp"

namespace starling::net {

// Test-only loss and delay on the receive path (tc netem is unavailable where tests run): each
// arriving datagram is dropped with probability `drop_rate`, else held for a uniform random time
// in [0, max_delay] (which also reorders). Seeded: a seed replays the same choices.
struct FaultOptions {
    double drop_rate = 0.0;               // 0..1
    std::chrono::microseconds max_delay{0};
    std::uint64_t seed = 1;
    [[nodiscard]] bool enabled() const noexcept {
        return drop_rate > 0.0 || max_delay.count() > 0;
    }
};
// Datagrams held by the delay hook at once; past this they are dropped (and counted).
inline constexpr std::size_t kMaxDelayedDatagrams = 1024;

struct MulticastOptions {
    Ipv4Endpoint group;           // e.g. 239.255.77.77:7947
    Ipv4Address interface_address{};  // the interface's own address: joins and sends there
};

struct UdpOptions {
    Ipv4Endpoint bind;  // port 0 picks a free one
    std::optional<MulticastOptions> multicast;
    FaultOptions faults;
};

// io: the address is taken, the interface has no multicast, and the like (the message says).
[[nodiscard]] Result<std::unique_ptr<Transport>> open_udp_transport(EventLoop& loop,
                                                                    const UdpOptions& options);

}  // namespace starling::net

#pragma once
// An in-process network of fake transports for tests: datagrams wait in one queue until the test
// calls deliver(), so nothing moves unless the test says so. A datagram to an address nobody is
// bound to is reported unreachable to its sender, as a host's ICMP would; one to a group reaches
// every other transport that joined it (a LAN's multicast).

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "node/net/transport.hpp"

namespace starling::net::testing {

class FakeTransport;

class FakeNetwork {
public:
    // A transport bound at `bind` (port 0: the next free port from 40000), in `group` if set.
    std::unique_ptr<Transport> open(Ipv4Endpoint bind,
                                    std::optional<Ipv4Endpoint> group = std::nullopt);
    // Delivers the datagrams queued before the call; returns how many it handled.
    std::size_t deliver();
    // True: lose this datagram.
    std::function<bool(const Ipv4Endpoint& from, const Ipv4Endpoint& to)> drop;

private:
    friend class FakeTransport;
    struct InFlight {
        Ipv4Endpoint from;
        Ipv4Endpoint to;
        std::vector<std::uint8_t> bytes;
    };
    std::deque<InFlight> queue_;
    std::map<Ipv4Endpoint, FakeTransport*> bound_;
    std::map<Ipv4Endpoint, std::vector<FakeTransport*>> groups_;
    std::uint16_t next_port_ = 40000;
};

}  // namespace starling::net::testing

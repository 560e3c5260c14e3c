#pragma once
// Real transports' contract (node/net/transport.hpp) over the seeded packet simulator in virtual
// time, so the node runtime itself — crypto, discovery and all — runs under loss, duplication,
// reordering, latency and partitions, and one seed replays the run exactly.
//
// Time moves only when the driver says: next_arrival() tells when the next datagram lands,
// deliver_until(t) hands over everything due by t. Single-threaded, like every transport.

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <vector>

#include "node/membership/types.hpp"
#include "node/net/transport.hpp"
#include "tools/sim/network.hpp"

namespace starling::sim {

// Distinct endpoints one simulated network can hold (each gets a slot in the packet simulator).
inline constexpr std::size_t kMaxSimulatedEndpoints = 1024;

class SimulatedTransport;

class SimulatedNetwork {
public:
    SimulatedNetwork(const LinkSettings& link, std::uint64_t seed);
    ~SimulatedNetwork();
    SimulatedNetwork(const SimulatedNetwork&) = delete;
    SimulatedNetwork& operator=(const SimulatedNetwork&) = delete;

    // A transport bound at `bind` (port 0: the next free port from 40000), in `group` if set.
    // Binding an endpoint that is already bound is a bug in the caller.
    [[nodiscard]] std::unique_ptr<net::Transport> open(
        net::Ipv4Endpoint bind, std::optional<net::Ipv4Endpoint> group = std::nullopt);

    // The virtual time of the next arrival or refusal, if anything is in flight.
    [[nodiscard]] std::optional<membership::Time> next_arrival() const;
    // Delivers everything due at or before `now` (the driver's clock reads `now` meanwhile);
    // returns how many datagrams and refusals it handed over.
    std::size_t deliver_until(membership::Time now);
    // The clock the network stamps sends with: the driver moves it before each input.
    void set_now(membership::Time now) { now_ = now; }
    [[nodiscard]] membership::Time now() const { return now_; }

    // Endpoints in different groups cannot reach each other; unnamed ones form one more group.
    void partition(const std::vector<std::vector<net::Ipv4Endpoint>>& groups);
    void heal();
    void set_loss(double loss) { packets_.set_loss(loss); }

    [[nodiscard]] std::uint64_t in_flight() const { return static_cast<std::uint64_t>(queue_.size()); }

private:
    friend class SimulatedTransport;
    struct InFlight {
        membership::Time at{};
        std::uint64_t order = 0;  // ties broken by sending order: the run is deterministic
        bool refusal = false;     // an ICMP "unreachable" travelling back to `from`
        net::Ipv4Endpoint from;
        net::Ipv4Endpoint to;
        std::vector<std::uint8_t> bytes;
        bool operator>(const InFlight& other) const {
            return at != other.at ? at > other.at : order > other.order;
        }
    };

    void send(SimulatedTransport& sender, const net::Ipv4Endpoint& to,
              std::span<const std::uint8_t> bytes);
    void route(const net::Ipv4Endpoint& from, const net::Ipv4Endpoint& to,
               std::span<const std::uint8_t> bytes);
    std::uint32_t slot_of(const net::Ipv4Endpoint& endpoint);
    void unbind(SimulatedTransport& transport);

    PacketSimulator packets_;
    membership::Time now_{0};
    std::uint64_t next_order_ = 0;
    std::priority_queue<InFlight, std::vector<InFlight>, std::greater<>> queue_;
    std::map<net::Ipv4Endpoint, SimulatedTransport*> bound_;
    std::map<net::Ipv4Endpoint, std::vector<SimulatedTransport*>> groups_;
    std::map<net::Ipv4Endpoint, std::uint32_t> slots_;
    std::vector<Duration> arrivals_;  // scratch for PacketSimulator::route
    std::uint16_t next_port_ = 40000;
};

}  // namespace starling::sim

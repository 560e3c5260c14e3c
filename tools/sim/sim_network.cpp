// Transports over the packet simulator.
#include "tools/sim/sim_network.hpp"

#include <algorithm>
#include <cassert>
#include <utility>

#include "protocol/limits.hpp"

namespace starling::sim {

class SimulatedTransport final : public net::Transport {
public:
    SimulatedTransport(SimulatedNetwork& network, net::Ipv4Endpoint local,
                       std::optional<net::Ipv4Endpoint> group)
        : network_(network), local_(local), group_(group) {}
    ~SimulatedTransport() override { close(); }

    void start(net::TransportHandlers handlers) override { handlers_ = std::move(handlers); }

    net::SendStatus send_to(const net::Ipv4Endpoint& to,
                            std::span<const std::uint8_t> bytes) override {
        if (bytes.size() > limits::kMaxDatagramBytes) return net::SendStatus::too_large;
        if (closed_) {
            ++counters_.send_dropped;
            return net::SendStatus::dropped;
        }
        ++counters_.sent;
        counters_.sent_bytes += bytes.size();
        network_.send(*this, to, bytes);
        return net::SendStatus::sent;
    }

    net::Ipv4Endpoint local_endpoint() const override { return local_; }
    const net::TransportCounters& counters() const override { return counters_; }

    void close() override {
        if (closed_) return;
        closed_ = true;
        network_.unbind(*this);
    }

    const std::optional<net::Ipv4Endpoint>& group() const { return group_; }

    void receive(const net::Ipv4Endpoint& from, std::span<const std::uint8_t> bytes) {
        ++counters_.received;
        counters_.received_bytes += bytes.size();
        if (handlers_.datagram) handlers_.datagram(from, bytes);
    }
    void refused(const net::Ipv4Endpoint& to) {
        ++counters_.unreachable;
        if (handlers_.unreachable) handlers_.unreachable(to);
    }

private:
    SimulatedNetwork& network_;
    net::Ipv4Endpoint local_;
    std::optional<net::Ipv4Endpoint> group_;
    net::TransportHandlers handlers_;
    net::TransportCounters counters_;
    bool closed_ = false;
};

SimulatedNetwork::SimulatedNetwork(const LinkSettings& link, std::uint64_t seed)
    : packets_(link, static_cast<std::uint32_t>(kMaxSimulatedEndpoints), seed) {}

SimulatedNetwork::~SimulatedNetwork() = default;

std::unique_ptr<net::Transport> SimulatedNetwork::open(net::Ipv4Endpoint bind,
                                                       std::optional<net::Ipv4Endpoint> group) {
    if (bind.port == 0) {
        while (bound_.contains({bind.ip, next_port_})) ++next_port_;
        bind.port = next_port_++;
    }
    assert(!bound_.contains(bind) && "an endpoint is bound once at a time");
    (void)slot_of(bind);
    auto transport = std::make_unique<SimulatedTransport>(*this, bind, group);
    bound_[bind] = transport.get();
    if (group) groups_[*group].push_back(transport.get());
    return transport;
}

std::uint32_t SimulatedNetwork::slot_of(const net::Ipv4Endpoint& endpoint) {
    auto [it, fresh] = slots_.try_emplace(endpoint, static_cast<std::uint32_t>(slots_.size()));
    // A test that binds more endpoints than the simulator has slots is broken, not unlucky.
    assert(slots_.size() <= kMaxSimulatedEndpoints);
    (void)fresh;
    return it->second;
}

void SimulatedNetwork::unbind(SimulatedTransport& transport) {
    bound_.erase(transport.local_endpoint());
    if (transport.group()) std::erase(groups_[*transport.group()], &transport);
}

void SimulatedNetwork::send(SimulatedTransport& sender, const net::Ipv4Endpoint& to,
                            std::span<const std::uint8_t> bytes) {
    const net::Ipv4Endpoint from = sender.local_endpoint();
    if (auto group = groups_.find(to); group != groups_.end()) {
        // Multicast: every other member gets its own copy, each lost or delayed on its own.
        std::vector<net::Ipv4Endpoint> members;
        for (const SimulatedTransport* member : group->second)
            if (member->local_endpoint() != from) members.push_back(member->local_endpoint());
        for (const net::Ipv4Endpoint& member : members) route(from, member, bytes);
        return;
    }
    route(from, to, bytes);
}

void SimulatedNetwork::route(const net::Ipv4Endpoint& from, const net::Ipv4Endpoint& to,
                             std::span<const std::uint8_t> bytes) {
    packets_.route(slot_of(from), slot_of(to), arrivals_);
    for (const Duration delay : arrivals_)
        queue_.push(InFlight{now_ + delay, next_order_++, false, from, to, {bytes.begin(), bytes.end()}});
}

std::optional<membership::Time> SimulatedNetwork::next_arrival() const {
    if (queue_.empty()) return std::nullopt;
    return queue_.top().at;
}

std::size_t SimulatedNetwork::deliver_until(membership::Time now) {
    std::size_t handled = 0;
    while (!queue_.empty() && queue_.top().at <= now) {
        InFlight d = queue_.top();
        queue_.pop();
        now_ = std::max(now_, d.at);
        ++handled;
        if (d.refusal) {
            if (auto sender = bound_.find(d.from); sender != bound_.end())
                sender->second->refused(d.to);
            continue;
        }
        if (auto to = bound_.find(d.to); to != bound_.end()) {
            to->second->receive(d.from, d.bytes);
        } else if (packets_.connected(slot_of(d.to), slot_of(d.from))) {
            // Nobody listens there: the host answers "port unreachable" across the same wire.
            queue_.push(InFlight{now_ + packets_.latency(), next_order_++, true, d.from, d.to, {}});
        }
    }
    now_ = std::max(now_, now);
    return handled;
}

void SimulatedNetwork::partition(const std::vector<std::vector<net::Ipv4Endpoint>>& groups) {
    std::vector<std::vector<std::uint32_t>> indices;
    for (const auto& group : groups) {
        indices.emplace_back();
        for (const net::Ipv4Endpoint& e : group) indices.back().push_back(slot_of(e));
    }
    packets_.partition(indices);
}

void SimulatedNetwork::heal() { packets_.heal(); }

}  // namespace starling::sim

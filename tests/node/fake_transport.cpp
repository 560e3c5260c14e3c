#include "tests/node/fake_transport.hpp"

#include <utility>

#include "protocol/limits.hpp"

namespace starling::net::testing {

class FakeTransport final : public Transport {
public:
    FakeTransport(FakeNetwork& network, Ipv4Endpoint local, std::optional<Ipv4Endpoint> group)
        : network_(network), local_(local), group_(group) {
        network_.bound_[local_] = this;
        if (group_) network_.groups_[*group_].push_back(this);
    }
    ~FakeTransport() override { close(); }

    void start(TransportHandlers handlers) override { handlers_ = std::move(handlers); }

    SendStatus send_to(const Ipv4Endpoint& to, std::span<const std::uint8_t> bytes) override {
        if (bytes.size() > limits::kMaxDatagramBytes) return SendStatus::too_large;
        if (closed_ || queued_ >= kMaxQueuedSends) {
            ++counters_.send_dropped;
            return SendStatus::dropped;
        }
        network_.queue_.push_back({local_, to, {bytes.begin(), bytes.end()}});
        ++queued_;
        ++counters_.sent;
        counters_.sent_bytes += bytes.size();
        return SendStatus::sent;
    }

    Ipv4Endpoint local_endpoint() const override { return local_; }
    const TransportCounters& counters() const override { return counters_; }

    void close() override {
        if (closed_) return;
        closed_ = true;
        network_.bound_.erase(local_);
        if (group_) std::erase(network_.groups_[*group_], this);
    }

    void left_queue() {  // one of its datagrams was delivered or lost
        if (queued_ > 0) --queued_;
    }

    void receive(const Ipv4Endpoint& from, std::span<const std::uint8_t> bytes) {
        ++counters_.received;
        counters_.received_bytes += bytes.size();
        if (handlers_.datagram) handlers_.datagram(from, bytes);
    }
    void refused(const Ipv4Endpoint& to) {
        ++counters_.unreachable;
        if (handlers_.unreachable) handlers_.unreachable(to);
    }

private:
    FakeNetwork& network_;
    Ipv4Endpoint local_;
    std::optional<Ipv4Endpoint> group_;
    TransportHandlers handlers_;
    TransportCounters counters_;
    bool closed_ = false;
    std::size_t queued_ = 0;  // its datagrams in the network's queue: at most kMaxQueuedSends
};

std::unique_ptr<Transport> FakeNetwork::open(Ipv4Endpoint bind,
                                             std::optional<Ipv4Endpoint> group) {
    if (bind.port == 0) bind.port = next_port_++;
    return std::make_unique<FakeTransport>(*this, bind, group);
}

std::size_t FakeNetwork::deliver() {
    std::size_t handled = 0;
    for (std::size_t n = queue_.size(); n > 0 && !queue_.empty(); --n, ++handled) {
        InFlight d = std::move(queue_.front());
        queue_.pop_front();
        if (auto sender = bound_.find(d.from); sender != bound_.end()) sender->second->left_queue();
        if (drop && drop(d.from, d.to)) continue;
        if (auto group = groups_.find(d.to); group != groups_.end()) {
            const std::vector<FakeTransport*> members = group->second;  // a handler may close one
            for (FakeTransport* member : members)
                if (member->local_endpoint() != d.from && bound_.contains(member->local_endpoint()))
                    member->receive(d.from, d.bytes);
        } else if (auto to = bound_.find(d.to); to != bound_.end()) {
            to->second->receive(d.from, d.bytes);
        } else if (auto from = bound_.find(d.from); from != bound_.end()) {
            from->second->refused(d.to);
        }
    }
    return handled;
}

}  // namespace starling::net::testing

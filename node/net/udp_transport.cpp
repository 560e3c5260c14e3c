// The UDP transport: two sockets at most (the node's own address; the discovery group), a bounded
// send queue drained when the socket is writable, and the seeded fault hook on the receive path.

#include "node/net/udp_transport.hpp"

#include <asio/ip/multicast.hpp>
#include <asio/ip/udp.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <netinet/in.h>

#include <array>
#include <deque>
#include <list>
#include <string>
#include <utility>
#include <vector>

#include "node/model/rng.hpp"
#include "node/net/loop_impl.hpp"
#include "node/net/refusals.hpp"
#include "protocol/limits.hpp"

namespace starling::net {
namespace {

using asio::ip::udp;

// Larger than any datagram we accept, so an oversized one shows up as such instead of truncated.
constexpr std::size_t kReceiveBufferBytes = 2048;
static_assert(kReceiveBufferBytes > limits::kMaxDatagramBytes);

udp::endpoint to_asio(const Ipv4Endpoint& e) {
    return {asio::ip::address_v4(e.ip), e.port};
}

Ipv4Endpoint from_asio(const udp::endpoint& e) {
    return {e.address().to_v4().to_bytes(), e.port()};
}

bool is_refusal(const std::error_code& ec) {
    return ec == asio::error::connection_refused || ec == asio::error::host_unreachable ||
           ec == asio::error::network_unreachable;
}

Error io_error(const std::string& what, const std::error_code& ec) {
    return make_error(ErrorCode::io, what + ": " + ec.message());
}

struct Receiver {
    explicit Receiver(asio::io_context& io) : socket(io) {}
    udp::socket socket;
    udp::endpoint from;
    std::array<std::uint8_t, kReceiveBufferBytes> buffer{};
};

struct Delayed {
    Delayed(asio::io_context& io, const Ipv4Endpoint& f, std::span<const std::uint8_t> b)
        : timer(io), from(f), bytes(b.begin(), b.end()) {}
    asio::steady_timer timer;
    Ipv4Endpoint from;
    std::vector<std::uint8_t> bytes;
};

// Shared with every pending handler, so a handler that runs after close() finds it alive.
struct UdpState : std::enable_shared_from_this<UdpState> {
    UdpState(asio::io_context& context, const FaultOptions& fault_options)
        : io(context), unicast(context), faults(fault_options), rng(fault_options.seed) {}

    asio::io_context& io;
    Receiver unicast;
    std::unique_ptr<Receiver> group;  // set when listening to a multicast group
    Ipv4Endpoint local;
    TransportHandlers handlers;
    TransportCounters counters;
    std::deque<std::pair<udp::endpoint, std::vector<std::uint8_t>>> queue;
    bool waiting_writable = false;
    bool closed = false;
    FaultOptions faults;
    model::Rng rng;
    std::list<Delayed> delayed;

    void receive(Receiver& r) {
        r.socket.async_receive_from(
            asio::buffer(r.buffer), r.from,
            [self = shared_from_this(), &r](const std::error_code& ec, std::size_t n) {
                self->on_received(r, ec, n);
            });
    }

    void on_received(Receiver& r, const std::error_code& ec, std::size_t n) {
        if (closed || ec == asio::error::operation_aborted) return;
        if (ec) {
            if (is_refusal(ec)) drain(r);
        } else if (n > limits::kMaxDatagramBytes) {
            ++counters.oversized;
        } else {
            arrived(from_asio(r.from), std::span<const std::uint8_t>(r.buffer.data(), n));
        }
        if (!closed) receive(r);
    }

    // Reports refusals now (receive path) or from a posted handler (send path: the contract
    // forbids callbacks from inside send_to).
    void drain(Receiver& r, bool defer = false) {
        detail::drain_refusals(r.socket.native_handle(), [this, defer](const Ipv4Endpoint& to) {
            ++counters.unreachable;
            if (!defer) return refused(to);
            asio::post(io, [self = shared_from_this(), to] { self->refused(to); });
        });
    }

    void refused(const Ipv4Endpoint& to) {
        if (!closed && handlers.unreachable) handlers.unreachable(to);
    }

    void arrived(const Ipv4Endpoint& from, std::span<const std::uint8_t> bytes) {
        if (!faults.enabled()) return deliver(from, bytes);
        if (rng.uniform() < faults.drop_rate || delayed.size() >= kMaxDelayedDatagrams) {
            ++counters.fault_dropped;
            return;
        }
        const auto max_us = static_cast<std::uint64_t>(faults.max_delay.count());
        if (max_us == 0) return deliver(from, bytes);
        auto it = delayed.emplace(delayed.end(), io, from, bytes);
        it->timer.expires_after(std::chrono::microseconds(rng.below(max_us + 1)));
        it->timer.async_wait([self = shared_from_this(), it](const std::error_code& ec) {
            if (!ec && !self->closed) self->deliver(it->from, it->bytes);
            if (!self->closed) self->delayed.erase(it);
        });
    }

    void deliver(const Ipv4Endpoint& from, std::span<const std::uint8_t> bytes) {
        ++counters.received;
        counters.received_bytes += bytes.size();
        if (handlers.datagram) handlers.datagram(from, bytes);
    }

    // One attempt; a pending refusal from an earlier datagram may fail it once, so retry once.
    std::error_code try_send(const udp::endpoint& to, std::span<const std::uint8_t> bytes) {
        std::error_code ec;
        for (int attempt = 0; attempt < 2; ++attempt) {
            unicast.socket.send_to(asio::buffer(bytes.data(), bytes.size()), to, 0, ec);
            if (!is_refusal(ec)) break;
            drain(unicast, true);
        }
        if (!ec) {
            ++counters.sent;
            counters.sent_bytes += bytes.size();
        }
        return ec;
    }

    SendStatus send(const Ipv4Endpoint& to, std::span<const std::uint8_t> bytes) {
        if (bytes.size() > limits::kMaxDatagramBytes) return SendStatus::too_large;
        if (closed) return dropped();
        const udp::endpoint destination = to_asio(to);
        if (queue.empty()) {
            const std::error_code ec = try_send(destination, bytes);
            if (!ec) return SendStatus::sent;
            if (ec != asio::error::would_block) return dropped();
        }
        if (queue.size() >= kMaxQueuedSends) return dropped();
        queue.emplace_back(destination, std::vector<std::uint8_t>(bytes.begin(), bytes.end()));
        wait_writable();
        return SendStatus::queued;
    }

    SendStatus dropped() {
        ++counters.send_dropped;
        return SendStatus::dropped;
    }

    void wait_writable() {
        if (waiting_writable) return;
        waiting_writable = true;
        unicast.socket.async_wait(udp::socket::wait_write,
                                  [self = shared_from_this()](const std::error_code& ec) {
                                      self->waiting_writable = false;
                                      if (!ec && !self->closed) self->flush();
                                  });
    }

    void flush() {
        while (!queue.empty()) {
            const std::error_code ec = try_send(queue.front().first, queue.front().second);
            if (ec == asio::error::would_block) return wait_writable();
            if (ec) ++counters.send_dropped;
            queue.pop_front();
        }
    }

    void close() {
        if (closed) return;
        closed = true;
        std::error_code ignored;
        unicast.socket.close(ignored);
        if (group) group->socket.close(ignored);
        for (Delayed& d : delayed) d.timer.cancel();
        counters.send_dropped += queue.size();
        queue.clear();
    }
};

Result<Ok> open_unicast(UdpState& s, const UdpOptions& options) {
    std::error_code ec;
    udp::socket& socket = s.unicast.socket;
    if (socket.open(udp::v4(), ec); ec) return io_error("cannot open a UDP socket", ec);
    if (socket.bind(to_asio(options.bind), ec); ec)
        return io_error("cannot bind " + options.bind.to_string(), ec);
    if (socket.non_blocking(true, ec); ec) return io_error("cannot make the socket non-blocking", ec);
    // Best effort: without it kill -9 is noticed by timeouts alone.
    (void)detail::enable_refusal_reports(socket.native_handle());
    s.local = from_asio(socket.local_endpoint(ec));
    if (ec) return io_error("cannot read the bound address", ec);
    return Ok{};
}

Result<Ok> open_group(UdpState& s, const MulticastOptions& m) {
    std::error_code ec;
    const asio::ip::address_v4 interface_address(m.interface_address);
    udp::socket& sender = s.unicast.socket;
    // Beacons leave by the chosen interface, stay on the LAN and do not loop back to this host.
    if (sender.set_option(asio::ip::multicast::outbound_interface(interface_address), ec); ec)
        return io_error("cannot send multicast on " + to_string(m.interface_address), ec);
    sender.set_option(asio::ip::multicast::hops(1), ec);
    sender.set_option(asio::ip::multicast::enable_loopback(false), ec);

    s.group = std::make_unique<Receiver>(s.io);
    udp::socket& socket = s.group->socket;
    if (socket.open(udp::v4(), ec); ec) return io_error("cannot open the multicast socket", ec);
    socket.set_option(udp::socket::reuse_address(true), ec);
    // Bound to the group address, so only the group's datagrams arrive on it.
    if (socket.bind(to_asio(m.group), ec); ec)
        return io_error("cannot bind " + m.group.to_string(), ec);
    const asio::ip::multicast::join_group join(asio::ip::address_v4(m.group.ip), interface_address);
    if (socket.set_option(join, ec); ec)
        return io_error("cannot join " + to_string(m.group.ip) + " on " +
                            to_string(m.interface_address),
                        ec);
    return Ok{};
}

class UdpTransport final : public Transport {
public:
    explicit UdpTransport(std::shared_ptr<UdpState> state) : state_(std::move(state)) {}
    ~UdpTransport() override { state_->close(); }

    void start(TransportHandlers handlers) override {
        state_->handlers = std::move(handlers);
        state_->receive(state_->unicast);
        if (state_->group) state_->receive(*state_->group);
    }
    SendStatus send_to(const Ipv4Endpoint& to, std::span<const std::uint8_t> bytes) override {
        return state_->send(to, bytes);
    }
    Ipv4Endpoint local_endpoint() const override { return state_->local; }
    const TransportCounters& counters() const override { return state_->counters; }
    void close() override { state_->close(); }

private:
    std::shared_ptr<UdpState> state_;
};

}  // namespace

Result<std::unique_ptr<Transport>> open_udp_transport(EventLoop& loop, const UdpOptions& options) {
    auto state = std::make_shared<UdpState>(loop.impl().io, options.faults);
    if (Result<Ok> r = open_unicast(*state, options); !r) return r.error();
    if (options.multicast)
        if (Result<Ok> r = open_group(*state, *options.multicast); !r) return r.error();
    return std::unique_ptr<Transport>(std::make_unique<UdpTransport>(std::move(state)));
}

}  // namespace starling::net

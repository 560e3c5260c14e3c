#pragma once
// The seam between a node and the network: unreliable datagrams in and out, so the node runs
// unchanged over real UDP (udp_transport.hpp) and over the in-process fake of the tests.
//
// Contract, for every implementation:
// - Unreliable datagrams: one send_to() is one datagram, delivered at most once to the transport
//   bound at `to`, maybe never, maybe late, maybe after a later one. Nothing is retried, split or
//   joined; payloads over limits::kMaxDatagramBytes are refused, not sent.
// - send_to() never blocks and never calls back: the bytes are sent or copied into a queue of at
//   most kMaxQueuedSends datagrams; past that the datagram is dropped and counted.
// - Callbacks run on the thread inside the event loop that drives the transport (EventLoop::run
//   for UDP, the fake network's deliver() in tests), one at a time, never from inside send_to()
//   or close(). The byte span is valid only during the call.
// - `unreachable` reports that the host at an address refused a datagram (ICMP port or host
//   unreachable); best effort: a transport may never report it.
// - After close() no callback runs and sends are dropped. Close and destroy on the loop's thread.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>

#include "node/net/address.hpp"

namespace starling::net {

// Datagrams waiting for the socket to take them; a LAN node sends a few per probe period.
inline constexpr std::size_t kMaxQueuedSends = 256;

enum class SendStatus : std::uint8_t {
    sent,       // handed to the network (or to the fake)
    queued,     // the socket was busy; it goes out when it drains
    dropped,    // queue full, transport closed, or the OS refused it (counted)
    too_large,  // over limits::kMaxDatagramBytes: a bug in the caller, never sent
};

struct TransportHandlers {
    std::function<void(const Ipv4Endpoint& from, std::span<const std::uint8_t> bytes)> datagram;
    std::function<void(const Ipv4Endpoint& to)> unreachable;
};

// What happened to datagrams, for metrics and tests.
struct TransportCounters {
    std::uint64_t sent = 0;
    std::uint64_t sent_bytes = 0;
    std::uint64_t send_dropped = 0;   // queue full, closed, or refused by the OS
    std::uint64_t received = 0;
    std::uint64_t received_bytes = 0;
    std::uint64_t oversized = 0;      // arrived over limits::kMaxDatagramBytes: dropped
    std::uint64_t fault_dropped = 0;  // dropped by the test-only fault hook (FaultOptions)
    std::uint64_t unreachable = 0;    // refusals reported
};

class Transport {
public:
    virtual ~Transport() = default;
    // Begins receiving; handlers are called from then on, as the contract above says.
    virtual void start(TransportHandlers handlers) = 0;
    [[nodiscard]] virtual SendStatus send_to(const Ipv4Endpoint& to,
                                             std::span<const std::uint8_t> bytes) = 0;
    // Where peers reach this transport (the bound address and port).
    [[nodiscard]] virtual Ipv4Endpoint local_endpoint() const = 0;
    [[nodiscard]] virtual const TransportCounters& counters() const = 0;
    virtual void close() = 0;
};

}  // namespace starling::net

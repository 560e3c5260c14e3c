#pragma once
// The seam for reliable byte streams (model transfers): Asio TCP behind narrow interfaces, so the
// model channel above sees connections, bytes and ends, never sockets or Asio types.
//
// Contract:
// - Bytes arrive in order, in pieces of any size; `received` may be called many times.
// - send() never blocks and never calls back: it copies the bytes into the connection's queue,
//   bounded by StreamOptions::max_queued_bytes; past that it refuses (too_large) and sends nothing.
// - finish_sending() half-closes after the queued bytes are written: the peer sees the end.
//   Destroying a connection after finish_sending() still lets its queued bytes go out (for at
//   most kStreamLinger); close() drops them.
// - `ended` runs once: with nullptr when the peer finished cleanly, else with the error (reset,
//   timeout of the connect). No callback runs after it, nor after close().
// - Callbacks run on the event loop's thread, one at a time, never from inside send(),
//   finish_sending() or close(). Close and destroy on that thread.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>

#include "node/net/address.hpp"
#include "node/net/event_loop.hpp"
#include "protocol/result.hpp"

namespace starling::net {

// Read size of one receive: one stream frame (64 KiB of model bytes) plus its header and tag.
inline constexpr std::size_t kStreamReadBytes = (std::size_t{64} << 10) + 64;
// Connections a listener keeps open at once; more are accepted and closed at once (counted), so
// the backlog never fills with peers we will not serve.
inline constexpr std::size_t kDefaultMaxStreamConnections = 16;
// Bytes a connection queues for sending unless told otherwise: a 0.94 MB fp32 MLP with room.
inline constexpr std::size_t kDefaultMaxQueuedStreamBytes = std::size_t{4} << 20;
// How long a dropped, finished connection may keep writing its queued bytes.
inline constexpr std::chrono::milliseconds kStreamLinger{10'000};

struct StreamOptions {
    std::size_t max_queued_bytes = kDefaultMaxQueuedStreamBytes;
};

struct StreamHandlers {
    std::function<void(std::span<const std::uint8_t> bytes)> received;
    std::function<void(const Error* error)> ended;  // nullptr: the peer's clean end of stream
};

struct StreamCounters {
    std::uint64_t sent_bytes = 0;
    std::uint64_t received_bytes = 0;
};

class StreamConnection {
public:
    virtual ~StreamConnection() = default;
    virtual void start(StreamHandlers handlers) = 0;
    // too_large when the queue would exceed its bound; invalid_argument after finish or close.
    [[nodiscard]] virtual Status send(std::span<const std::uint8_t> bytes) = 0;
    virtual void finish_sending() = 0;
    [[nodiscard]] virtual Ipv4Endpoint remote_endpoint() const = 0;
    [[nodiscard]] virtual const StreamCounters& counters() const = 0;
    virtual void close() = 0;
};

struct ListenerCounters {
    std::uint64_t accepted = 0;
    std::uint64_t refused_full = 0;  // over max_connections: closed at once
    std::uint64_t accept_errors = 0;
};

struct ListenOptions {
    Ipv4Endpoint bind;  // port 0 picks a free one
    std::size_t max_connections = kDefaultMaxStreamConnections;
    StreamOptions stream;
};

using AcceptHandler = std::function<void(std::unique_ptr<StreamConnection> connection)>;

class StreamListener {
public:
    virtual ~StreamListener() = default;
    virtual void start(AcceptHandler on_accept) = 0;
    [[nodiscard]] virtual Ipv4Endpoint local_endpoint() const = 0;
    [[nodiscard]] virtual const ListenerCounters& counters() const = 0;
    virtual void close() = 0;
};

// io when the address is taken or cannot be bound.
[[nodiscard]] Result<std::unique_ptr<StreamListener>> open_stream_listener(
    EventLoop& loop, const ListenOptions& options);

using ConnectHandler = std::function<void(Result<std::unique_ptr<StreamConnection>> connection)>;

// Connects to `to`; `done` runs once on the loop's thread (never inside this call) with the
// connection or an io error (refused, unreachable, or not connected within `timeout`).
// The returned handle cancels the attempt when destroyed before `done` ran.
class ConnectAttempt {
public:
    virtual ~ConnectAttempt() = default;
};
[[nodiscard]] std::unique_ptr<ConnectAttempt> connect_stream(EventLoop& loop,
                                                            const Ipv4Endpoint& to,
                                                            std::chrono::milliseconds timeout,
                                                            StreamOptions options,
                                                            ConnectHandler done);

}  // namespace starling::net

// TCP streams: one connection's state shared with its pending handlers (so a handler that runs
// after close() finds it alive), a bounded write queue, and a listener that counts its live
// connections through slots the connections hold.

#include "node/net/stream_transport.hpp"

#include <asio/connect.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>

#include <deque>
#include <string>
#include <utility>
#include <vector>

#include "node/net/loop_impl.hpp"

namespace starling::net {
namespace {

using asio::ip::tcp;

tcp::endpoint to_asio(const Ipv4Endpoint& e) { return {asio::ip::address_v4(e.ip), e.port}; }

Ipv4Endpoint from_asio(const tcp::endpoint& e) {
    return {e.address().to_v4().to_bytes(), e.port()};
}

Error io_error(const std::string& what, const std::error_code& ec) {
    return make_error(ErrorCode::io, what + ": " + ec.message());
}

// One place in a listener's count of live connections, released when the connection dies.
struct Slot {
    explicit Slot(std::shared_ptr<std::size_t> l) : live(std::move(l)) { ++*live; }
    ~Slot() { --*live; }
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;
    std::shared_ptr<std::size_t> live;
};

struct ConnectionState : std::enable_shared_from_this<ConnectionState> {
    ConnectionState(tcp::socket s, StreamOptions o, std::unique_ptr<Slot> slot_held)
        : socket(std::move(s)), linger(socket.get_executor()), options(o), slot(std::move(slot_held)) {
        std::error_code ec;
        const tcp::endpoint r = socket.remote_endpoint(ec);
        if (!ec) remote = from_asio(r);
        socket.set_option(tcp::no_delay(true), ec);  // small handshake messages go at once
    }

    tcp::socket socket;
    asio::steady_timer linger;
    StreamOptions options;
    std::unique_ptr<Slot> slot;
    Ipv4Endpoint remote;
    StreamHandlers handlers;
    StreamCounters counters;
    std::vector<std::uint8_t> read_buffer = std::vector<std::uint8_t>(kStreamReadBytes);
    std::deque<std::vector<std::uint8_t>> queue;
    std::size_t queued_bytes = 0;
    bool writing = false;
    bool finishing = false;
    bool closed = false;
    bool released = false;  // the handle is gone: no callbacks; queued bytes still go out
    bool peer_ended = false;
    bool reading = false;

    void read() {
        reading = true;
        socket.async_read_some(asio::buffer(read_buffer),
                               [self = shared_from_this()](const std::error_code& ec, std::size_t n) {
                                   self->reading = false;
                                   self->on_read(ec, n);
                               });
    }

    void on_read(const std::error_code& ec, std::size_t n) {
        if (closed) return;
        if (released) {
            if (ec) return close();  // the peer ended or reset: nothing more will be read
            return read();
        }
        if (ec == asio::error::eof) {
            peer_ended = true;
            return end(nullptr);
        }
        if (ec) {
            const Error e = io_error("stream from " + remote.to_string(), ec);
            return end(&e);
        }
        counters.received_bytes += n;
        if (handlers.received) handlers.received(std::span<const std::uint8_t>(read_buffer.data(), n));
        if (!closed) read();
    }

    void end(const Error* error) {
        auto ended = std::move(handlers.ended);
        if (error != nullptr || !finishing) close();
        if (ended) ended(error);
    }

    // The handle was dropped after finish_sending(): the queued bytes still go out (bounded by
    // kStreamLinger), then the socket closes; the peer sees a clean end, not a reset.
    void release() {
        if (closed) return;
        released = true;
        if (!finishing) return close();
        if (!writing && queue.empty() && peer_ended) return close();
        linger.expires_after(kStreamLinger);
        linger.async_wait([self = shared_from_this()](const std::error_code& ec) {
            if (!ec) self->close();
        });
        if (!peer_ended && !reading) read();
    }

    Status send(std::span<const std::uint8_t> bytes) {
        if (closed || finishing)
            return make_error(ErrorCode::invalid_argument, "send on a finished stream");
        if (queued_bytes + bytes.size() > options.max_queued_bytes)
            return make_error(ErrorCode::too_large,
                              "stream queue over " + std::to_string(options.max_queued_bytes) +
                                  " bytes");
        queue.emplace_back(bytes.begin(), bytes.end());
        queued_bytes += bytes.size();
        write_next();
        return Ok{};
    }

    void finish() {
        if (closed || finishing) return;
        finishing = true;
        write_next();
    }

    void write_next() {
        if (writing || closed) return;
        if (queue.empty()) {
            if (finishing) {
                std::error_code ignored;
                socket.shutdown(tcp::socket::shutdown_send, ignored);
            }
            return;
        }
        writing = true;
        asio::async_write(socket, asio::buffer(queue.front()),
                          [self = shared_from_this()](const std::error_code& ec, std::size_t n) {
                              self->writing = false;
                              if (self->closed) return;
                              if (ec) {
                                  const Error e = io_error("stream to " + self->remote.to_string(), ec);
                                  return self->end(&e);
                              }
                              self->counters.sent_bytes += n;
                              self->queued_bytes -= self->queue.front().size();
                              self->queue.pop_front();
                              self->write_next();
                              if (self->released && self->queue.empty() && self->peer_ended)
                                  self->close();
                          });
    }

    void close() {
        if (closed) return;
        closed = true;  // handlers stay: one may be running now; closed keeps them from running
        std::error_code ignored;
        linger.cancel();
        socket.close(ignored);
        queue.clear();
        queued_bytes = 0;
        slot.reset();
    }
};

class TcpConnection final : public StreamConnection {
public:
    explicit TcpConnection(std::shared_ptr<ConnectionState> s) : state_(std::move(s)) {}
    ~TcpConnection() override { state_->release(); }
    void start(StreamHandlers handlers) override {
        state_->handlers = std::move(handlers);
        state_->read();
    }
    Status send(std::span<const std::uint8_t> bytes) override { return state_->send(bytes); }
    void finish_sending() override { state_->finish(); }
    Ipv4Endpoint remote_endpoint() const override { return state_->remote; }
    const StreamCounters& counters() const override { return state_->counters; }
    void close() override { state_->close(); }

private:
    std::shared_ptr<ConnectionState> state_;
};

struct ListenerState : std::enable_shared_from_this<ListenerState> {
    ListenerState(asio::io_context& io, const ListenOptions& o) : acceptor(io), options(o) {}
    tcp::acceptor acceptor;
    ListenOptions options;
    AcceptHandler on_accept;
    ListenerCounters counters;
    std::shared_ptr<std::size_t> live = std::make_shared<std::size_t>(0);
    Ipv4Endpoint local;
    bool closed = false;

    void accept() {
        acceptor.async_accept([self = shared_from_this()](const std::error_code& ec, tcp::socket s) {
            self->on_accepted(ec, std::move(s));
        });
    }

    void on_accepted(const std::error_code& ec, tcp::socket socket) {
        if (closed || ec == asio::error::operation_aborted) return;
        if (ec) {
            ++counters.accept_errors;  // e.g. out of descriptors: try again on the next one
        } else if (*live >= options.max_connections) {
            ++counters.refused_full;
            std::error_code ignored;
            socket.close(ignored);
        } else {
            ++counters.accepted;
            auto state = std::make_shared<ConnectionState>(std::move(socket), options.stream,
                                                           std::make_unique<Slot>(live));
            if (on_accept) on_accept(std::make_unique<TcpConnection>(std::move(state)));
        }
        if (!closed) accept();
    }

    void close() {
        if (closed) return;
        closed = true;
        std::error_code ignored;
        acceptor.close(ignored);
    }
};

class TcpListener final : public StreamListener {
public:
    explicit TcpListener(std::shared_ptr<ListenerState> s) : state_(std::move(s)) {}
    ~TcpListener() override { state_->close(); }
    void start(AcceptHandler on_accept) override {
        state_->on_accept = std::move(on_accept);
        state_->accept();
    }
    Ipv4Endpoint local_endpoint() const override { return state_->local; }
    const ListenerCounters& counters() const override { return state_->counters; }
    void close() override { state_->close(); }

private:
    std::shared_ptr<ListenerState> state_;
};

struct ConnectState : std::enable_shared_from_this<ConnectState> {
    ConnectState(asio::io_context& io, StreamOptions o, ConnectHandler d)
        : socket(io), timer(io), options(o), done(std::move(d)) {}
    tcp::socket socket;
    asio::steady_timer timer;
    StreamOptions options;
    ConnectHandler done;
    Ipv4Endpoint to;

    void finish(Result<std::unique_ptr<StreamConnection>> result) {
        timer.cancel();
        if (auto d = std::exchange(done, nullptr)) d(std::move(result));
    }

    void cancel() {
        done = nullptr;
        timer.cancel();
        std::error_code ignored;
        socket.close(ignored);
    }
};

class TcpConnectAttempt final : public ConnectAttempt {
public:
    explicit TcpConnectAttempt(std::shared_ptr<ConnectState> s) : state_(std::move(s)) {}
    ~TcpConnectAttempt() override { state_->cancel(); }

private:
    std::shared_ptr<ConnectState> state_;
};

}  // namespace

Result<std::unique_ptr<StreamListener>> open_stream_listener(EventLoop& loop,
                                                             const ListenOptions& options) {
    auto state = std::make_shared<ListenerState>(loop.impl().io, options);
    std::error_code ec;
    tcp::acceptor& a = state->acceptor;
    if (a.open(tcp::v4(), ec); ec) return io_error("cannot open a TCP socket", ec);
    a.set_option(tcp::acceptor::reuse_address(true), ec);  // restart while old ones linger
    if (a.bind(to_asio(options.bind), ec); ec)
        return io_error("cannot bind TCP " + options.bind.to_string(), ec);
    if (a.listen(asio::socket_base::max_listen_connections, ec); ec)
        return io_error("cannot listen on " + options.bind.to_string(), ec);
    state->local = from_asio(a.local_endpoint(ec));
    if (ec) return io_error("cannot read the bound address", ec);
    return std::unique_ptr<StreamListener>(std::make_unique<TcpListener>(std::move(state)));
}

std::unique_ptr<ConnectAttempt> connect_stream(EventLoop& loop, const Ipv4Endpoint& to,
                                               std::chrono::milliseconds timeout,
                                               StreamOptions options, ConnectHandler done) {
    auto state = std::make_shared<ConnectState>(loop.impl().io, options, std::move(done));
    state->to = to;
    state->timer.expires_after(timeout);
    state->timer.async_wait([weak = std::weak_ptr<ConnectState>(state)](const std::error_code& ec) {
        auto s = weak.lock();
        if (ec || !s || !s->done) return;
        std::error_code ignored;
        s->socket.close(ignored);  // the connect handler then reports the timeout
        s->finish(make_error(ErrorCode::io, "connect to " + s->to.to_string() + ": timed out"));
    });
    state->socket.async_connect(to_asio(to), [state](const std::error_code& ec) {
        if (!state->done) return;  // cancelled or timed out
        if (ec) return state->finish(io_error("connect to " + state->to.to_string(), ec));
        auto connection = std::make_shared<ConnectionState>(std::move(state->socket),
                                                            state->options, nullptr);
        state->finish(std::unique_ptr<StreamConnection>(
            std::make_unique<TcpConnection>(std::move(connection))));
    });
    return std::make_unique<TcpConnectAttempt>(std::move(state));
}

}  // namespace starling::net

#include "node/net/http_server.hpp"

#include <asio/ip/tcp.hpp>
#include <asio/read_until.hpp>
#include <asio/steady_timer.hpp>
#include <asio/streambuf.hpp>
#include <asio/write.hpp>

#include <istream>
#include <utility>

#include "node/net/loop_impl.hpp"

namespace starling::net {
namespace {

using asio::ip::tcp;

struct Shared {
    HttpHandler handler;
    std::size_t open_sessions = 0;
    bool listening = true;
};

std::string response(std::string_view status, std::string_view body) {
    std::string out = "HTTP/1.0 ";
    out += status;
    out += "\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: ";
    out += std::to_string(body.size());
    out += "\r\nConnection: close\r\n\r\n";
    out += body;
    return out;
}

struct Session : std::enable_shared_from_this<Session> {
    Session(asio::io_context& io, std::shared_ptr<Shared> s)
        : socket(io), deadline(io), request(kMaxHttpRequestBytes), shared(std::move(s)) {
        ++shared->open_sessions;
    }
    ~Session() { --shared->open_sessions; }

    void start() {
        deadline.expires_after(kHttpTimeout);
        deadline.async_wait([self = shared_from_this()](const std::error_code& ec) {
            std::error_code ignored;
            if (!ec) self->socket.close(ignored);
        });
        asio::async_read_until(socket, request, "\r\n\r\n",
                               [self = shared_from_this()](const std::error_code& ec, std::size_t) {
                                   if (!self->shared->listening) return;
                                   if (ec) return self->reply(response("400 Bad Request", "bad request\n"));
                                   self->answer();
                               });
    }

    void answer() {
        std::istream in(&request);
        std::string line;
        std::getline(in, line);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        const HttpRequestLine parsed = parse_http_request_line(line);
        if (!parsed.well_formed) return reply(response("400 Bad Request", "bad request\n"));
        if (!parsed.method_ok) return reply(response("405 Method Not Allowed", "GET only\n"));
        std::optional<std::string> body = shared->handler(parsed.path);
        if (!body) return reply(response("404 Not Found", "try /metrics\n"));
        reply(response("200 OK", *body));
    }

    void reply(std::string text) {
        out = std::move(text);
        asio::async_write(socket, asio::buffer(out),
                          [self = shared_from_this()](const std::error_code&, std::size_t) {
                              std::error_code ignored;
                              self->socket.shutdown(tcp::socket::shutdown_both, ignored);
                              self->socket.close(ignored);
                              self->deadline.cancel();
                          });
    }

    tcp::socket socket;
    asio::steady_timer deadline;
    asio::streambuf request;  // max size: a longer request fails the read (400)
    std::string out;
    std::shared_ptr<Shared> shared;
};

}  // namespace

HttpRequestLine parse_http_request_line(std::string_view line) {
    HttpRequestLine r;
    const std::size_t sp1 = line.find(' ');
    if (sp1 == std::string_view::npos || sp1 == 0) return r;
    const std::size_t sp2 = line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos) return r;
    const std::string_view method = line.substr(0, sp1);
    const std::string_view path = line.substr(sp1 + 1, sp2 - sp1 - 1);
    const std::string_view version = line.substr(sp2 + 1);
    if (path.empty() || path.front() != '/' || version.size() != 8 ||
        !version.starts_with("HTTP/1.") || version[7] < '0' || version[7] > '9')
        return r;
    for (const char c : method)
        if (c < 'A' || c > 'Z') return r;
    for (const char c : path)
        if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7F) return r;
    r.well_formed = true;
    r.method_ok = method == "GET";
    r.path = std::string(path.substr(0, path.find('?')));  // query strings are ignored
    return r;
}

struct HttpServer::Impl : std::enable_shared_from_this<Impl> {
    Impl(asio::io_context& context, HttpHandler h)
        : io(context), acceptor(context), shared(std::make_shared<Shared>(Shared{std::move(h)})) {}

    void accept() {
        auto session = std::make_shared<Session>(io, shared);
        acceptor.async_accept(session->socket,
                              [self = shared_from_this(), session](const std::error_code& ec) {
                                  if (ec == asio::error::operation_aborted || !self->shared->listening)
                                      return;
                                  // Over the bound the connection is closed unanswered.
                                  if (!ec && self->shared->open_sessions <= kMaxHttpConnections)
                                      session->start();
                                  self->accept();
                              });
    }

    asio::io_context& io;
    tcp::acceptor acceptor;
    std::shared_ptr<Shared> shared;
};

HttpServer::HttpServer(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() {
    impl_->shared->listening = false;
    std::error_code ignored;
    impl_->acceptor.close(ignored);
}

Result<std::unique_ptr<HttpServer>> HttpServer::open(EventLoop& loop, const Ipv4Endpoint& at,
                                                     HttpHandler handler) {
    auto impl = std::make_shared<Impl>(loop.impl().io, std::move(handler));
    const tcp::endpoint endpoint(asio::ip::address_v4(at.ip), at.port);
    std::error_code ec;
    impl->acceptor.open(endpoint.protocol(), ec);
    if (!ec) impl->acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) impl->acceptor.bind(endpoint, ec);
    if (!ec) impl->acceptor.listen(static_cast<int>(kMaxHttpConnections), ec);
    if (ec)
        return make_error(ErrorCode::io,
                          "cannot listen for metrics on " + at.to_string() + ": " + ec.message());
    impl->accept();
    return std::make_unique<HttpServer>(std::move(impl));
}

Ipv4Endpoint HttpServer::endpoint() const {
    std::error_code ec;
    const tcp::endpoint local = impl_->acceptor.local_endpoint(ec);
    Ipv4Endpoint e;
    if (ec) return e;
    e.ip = local.address().to_v4().to_bytes();
    e.port = local.port();
    return e;
}

}  // namespace starling::net

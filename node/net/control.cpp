#include "node/net/control.hpp"

#include <asio/local/stream_protocol.hpp>
#include <asio/read_until.hpp>
#include <asio/steady_timer.hpp>
#include <asio/streambuf.hpp>
#include <asio/write.hpp>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <istream>
#include <utility>

#include "node/net/loop_impl.hpp"

namespace starling::net {
namespace {

using asio::local::stream_protocol;

// What the server and its sessions share: a session may outlive the server by one handler.
struct Shared {
    ControlHandler handler;
    std::size_t open_sessions = 0;
    bool listening = true;
};

struct Session : std::enable_shared_from_this<Session> {
    Session(asio::io_context& io, std::shared_ptr<Shared> s)
        : socket(io), deadline(io), request(kMaxControlRequestBytes), shared(std::move(s)) {
        ++shared->open_sessions;
    }
    ~Session() { --shared->open_sessions; }

    void start() {
        deadline.expires_after(kControlTimeout);
        deadline.async_wait([self = shared_from_this()](const std::error_code& ec) {
            std::error_code ignored;
            if (!ec) self->socket.close(ignored);
        });
        asio::async_read_until(socket, request, '\n',
                               [self = shared_from_this()](const std::error_code& ec, std::size_t) {
                                   if (!ec && self->shared->listening) self->answer();
                               });
    }

    void answer() {
        std::istream in(&request);
        std::string line;
        std::getline(in, line);
        reply = shared->handler(line);
        if (reply.size() > kMaxControlReplyBytes) reply = "error: reply too large\n";
        asio::async_write(socket, asio::buffer(reply),
                          [self = shared_from_this()](const std::error_code&, std::size_t) {
                              std::error_code ignored;
                              self->socket.shutdown(stream_protocol::socket::shutdown_both, ignored);
                              self->deadline.cancel();
                          });
    }

    stream_protocol::socket socket;
    asio::steady_timer deadline;
    asio::streambuf request;  // max size: a longer line fails the read
    std::string reply;
    std::shared_ptr<Shared> shared;
};

}  // namespace

struct ControlServer::Impl : std::enable_shared_from_this<Impl> {
    Impl(asio::io_context& context, std::filesystem::path socket_path, ControlHandler h)
        : io(context),
          acceptor(context),
          path(std::move(socket_path)),
          shared(std::make_shared<Shared>(Shared{std::move(h)})) {}

    void accept() {
        auto session = std::make_shared<Session>(io, shared);
        acceptor.async_accept(session->socket,
                              [self = shared_from_this(), session](const std::error_code& ec) {
                                  if (ec == asio::error::operation_aborted ||
                                      !self->shared->listening)
                                      return;
                                  if (!ec && self->shared->open_sessions <= kMaxControlConnections)
                                      session->start();
                                  self->accept();
                              });
    }

    asio::io_context& io;
    stream_protocol::acceptor acceptor;
    std::filesystem::path path;
    std::shared_ptr<Shared> shared;
};

ControlServer::ControlServer(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

ControlServer::~ControlServer() {
    impl_->shared->listening = false;
    std::error_code ignored;
    impl_->acceptor.close(ignored);
    std::filesystem::remove(impl_->path, ignored);
}

Result<std::unique_ptr<ControlServer>> ControlServer::open(EventLoop& loop,
                                                           const std::filesystem::path& path,
                                                           ControlHandler handler) {
    if (path.string().size() >= sizeof(sockaddr_un::sun_path))
        return make_error(ErrorCode::invalid_argument,
                          "control socket path too long: '" + path.string() + "'");
    auto impl = std::make_shared<Impl>(loop.impl().io, path, std::move(handler));
    std::error_code ec;
    std::filesystem::remove(path, ec);  // a socket left by a node that was killed
    const stream_protocol::endpoint endpoint(path.string());
    impl->acceptor.open(endpoint.protocol(), ec);
    // Created owner-only: the umask is process-wide, so restrict the file right after bind.
    if (!ec) impl->acceptor.bind(endpoint, ec);
    if (!ec && ::chmod(path.c_str(), S_IRUSR | S_IWUSR) != 0)
        ec = std::error_code(errno, std::generic_category());
    if (!ec) impl->acceptor.listen(static_cast<int>(kMaxControlConnections), ec);
    if (ec)
        return make_error(ErrorCode::io,
                          "cannot listen on '" + path.string() + "': " + ec.message());
    impl->accept();
    return std::make_unique<ControlServer>(std::move(impl));
}

Result<std::string> query_control(const std::filesystem::path& path, std::string_view request) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    const std::string name = path.string();
    if (name.size() >= sizeof address.sun_path)
        return make_error(ErrorCode::invalid_argument, "socket path too long: '" + name + "'");
    std::memcpy(address.sun_path, name.c_str(), name.size() + 1);

    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return make_error(ErrorCode::io, std::string("socket: ") + std::strerror(errno));
    const timeval timeout{kControlTimeout.count() / 1000, (kControlTimeout.count() % 1000) * 1000};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    auto fail = [fd, &name](ErrorCode code, const std::string& what) {
        const std::string reason = std::strerror(errno);
        ::close(fd);
        return make_error(code, what + " '" + name + "': " + reason);
    };
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0)
        return fail(errno == ENOENT || errno == ECONNREFUSED ? ErrorCode::not_found : ErrorCode::io,
                    "no node answers at");
    const std::string line = std::string(request) + '\n';
    if (::send(fd, line.data(), line.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(line.size()))
        return fail(ErrorCode::io, "cannot send to");
    std::string reply;
    std::array<char, 4096> chunk{};
    for (;;) {
        const ssize_t n = ::recv(fd, chunk.data(), chunk.size(), 0);
        if (n == 0) break;
        if (n < 0) return fail(ErrorCode::io, "no complete reply from");
        reply.append(chunk.data(), static_cast<std::size_t>(n));
        if (reply.size() > kMaxControlReplyBytes) return fail(ErrorCode::too_large, "reply from");
    }
    ::close(fd);
    return reply;
}

}  // namespace starling::net

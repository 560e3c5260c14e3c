#pragma once
// A tiny HTTP/1.0 responder for the node's opt-in metrics endpoint (Prometheus scrapes GET
// /metrics): one request per connection, bounded request size, connection count and time, then
// the connection closes. Anything but "GET <path> HTTP/1.x" is answered 400/404/405.

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "node/net/address.hpp"
#include "node/net/event_loop.hpp"
#include "protocol/result.hpp"

namespace starling::net {

inline constexpr std::size_t kMaxHttpRequestBytes = 4096;  // request line and headers
inline constexpr std::size_t kMaxHttpConnections = 4;       // more are closed at once
inline constexpr std::chrono::milliseconds kHttpTimeout{3000};

// The body for `path` ("text/plain; version=0.0.4"), or nullopt for 404. On the loop's thread.
using HttpHandler = std::function<std::optional<std::string>(std::string_view path)>;

class HttpServer {
public:
    // Listens on `at` (port 0 picks one: see endpoint()); io if it cannot.
    [[nodiscard]] static Result<std::unique_ptr<HttpServer>> open(EventLoop& loop,
                                                                  const Ipv4Endpoint& at,
                                                                  HttpHandler handler);
    ~HttpServer();
    HttpServer(const HttpServer&) = delete;
    HttpServer& operator=(const HttpServer&) = delete;
    [[nodiscard]] Ipv4Endpoint endpoint() const;

    struct Impl;
    explicit HttpServer(std::shared_ptr<Impl> impl);

private:
    std::shared_ptr<Impl> impl_;
};

// The first line of a request: well formed when it reads "METHOD /path HTTP/1.<digit>";
// `method_ok` is false when the line is well formed but the method is not GET.
struct HttpRequestLine {
    bool well_formed = false;
    bool method_ok = false;
    std::string path;
};
[[nodiscard]] HttpRequestLine parse_http_request_line(std::string_view line);

}  // namespace starling::net

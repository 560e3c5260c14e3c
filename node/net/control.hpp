#pragma once
// The node's local control socket: a unix stream socket in the state directory (mode 0600, so
// only the node's user can ask), one request line in, one reply out, then the connection closes.

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "node/net/event_loop.hpp"
#include "protocol/result.hpp"

namespace starling::net {

// A request line: the longest is `revoke HEX`, a revocation (<= limits::kMaxRevocationBytes) in hex.
inline constexpr std::size_t kMaxControlRequestBytes = 1100;
inline constexpr std::size_t kMaxControlReplyBytes = std::size_t{1} << 20;  // ~4,000 members
inline constexpr std::size_t kMaxControlConnections = 8;  // more wait in the listen backlog
inline constexpr std::chrono::milliseconds kControlTimeout{2000};  // a client that stalls is cut

// Answers requests on the loop's thread. The reply must fit kMaxControlReplyBytes.
using ControlHandler = std::function<std::string(std::string_view request)>;

class ControlServer {
public:
    // Replaces a stale socket file at `path` (a node that died); io if it cannot listen.
    [[nodiscard]] static Result<std::unique_ptr<ControlServer>> open(
        EventLoop& loop, const std::filesystem::path& path, ControlHandler handler);
    ~ControlServer();  // stops listening and removes the socket file
    ControlServer(const ControlServer&) = delete;
    ControlServer& operator=(const ControlServer&) = delete;

    struct Impl;
    explicit ControlServer(std::shared_ptr<Impl> impl);

private:
    std::shared_ptr<Impl> impl_;
};

// A blocking client for the CLI: sends `request` and returns the whole reply. not_found when no
// node listens at `path`; io on other failures or after kControlTimeout.
[[nodiscard]] Result<std::string> query_control(const std::filesystem::path& path,
                                                std::string_view request);

}  // namespace starling::net

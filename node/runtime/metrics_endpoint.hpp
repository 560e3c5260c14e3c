#pragma once
// The node's opt-in Prometheus endpoint: `--metrics [ADDR:]PORT` serves GET /metrics from the
// running node (localhost unless an address is given, so nothing is exposed by accident).

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "node/net/http_server.hpp"
#include "node/runtime/node.hpp"

namespace starling::runtime {

inline constexpr net::Ipv4Address kDefaultMetricsAddress{127, 0, 0, 1};

// "9100" → 127.0.0.1:9100; "ADDR:PORT" as given. invalid_argument for anything else.
[[nodiscard]] Result<net::Ipv4Endpoint> parse_metrics_address(std::string_view text);

// `node` is borrowed and must outlive the server; both live on `loop`'s thread. `more_stats`,
// when set, returns a stats answer with more lines (the training layer's): those the node's own
// "stats" lacks become starling_training_* gauges.
[[nodiscard]] Result<std::unique_ptr<net::HttpServer>> serve_metrics(
    net::EventLoop& loop, std::string_view address, const Node& node,
    std::function<std::string()> more_stats = {});

}  // namespace starling::runtime

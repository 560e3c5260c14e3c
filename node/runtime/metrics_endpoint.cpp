#include "node/runtime/metrics_endpoint.hpp"

#include <charconv>

#include "node/runtime/metrics.hpp"

namespace starling::runtime {

Result<net::Ipv4Endpoint> parse_metrics_address(std::string_view text) {
    if (text.find(':') != std::string_view::npos) return net::parse_endpoint(text);
    std::uint16_t port = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), port);
    if (ec != std::errc{} || end != text.data() + text.size() || port == 0)
        return make_error(ErrorCode::invalid_argument,
                          "--metrics wants PORT or ADDR:PORT, not '" + std::string(text) + "'");
    return net::Ipv4Endpoint{kDefaultMetricsAddress, port};
}

Result<std::unique_ptr<net::HttpServer>> serve_metrics(net::EventLoop& loop, std::string_view address,
                                                       const Node& node,
                                                       std::function<std::string()> more_stats) {
    Result<net::Ipv4Endpoint> at = parse_metrics_address(address);
    if (!at) return at.error();
    return net::HttpServer::open(
        loop, *at,
        [&node, more = std::move(more_stats)](std::string_view path) -> std::optional<std::string> {
            if (path != "/metrics") return std::nullopt;
            std::string text = node.metrics();
            if (more) text += stats_as_gauges(more(), node.answer("stats"), "starling_training_");
            return text;
        });
}

}  // namespace starling::runtime

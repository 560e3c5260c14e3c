#include "node/net/address.hpp"

#include <charconv>
#include <cstddef>

namespace starling::net {
namespace {

Error bad(std::string_view text, std::string_view why) {
    return make_error(ErrorCode::invalid_argument,
                      "'" + std::string(text) + "' is not an IPv4 address: " + std::string(why));
}

// A decimal number of at most `max`, all of `text`.
bool parse_number(std::string_view text, unsigned max, unsigned& out) {
    if (text.empty() || text.size() > 5) return false;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc{} && end == text.data() + text.size() && out <= max;
}

}  // namespace

std::string to_string(const Ipv4Address& ip) {
    return std::to_string(ip[0]) + '.' + std::to_string(ip[1]) + '.' + std::to_string(ip[2]) +
           '.' + std::to_string(ip[3]);
}

std::string Ipv4Endpoint::to_string() const {
    return net::to_string(ip) + ':' + std::to_string(port);
}

Result<Ipv4Address> parse_ipv4(std::string_view text) {
    Ipv4Address ip{};
    std::string_view rest = text;
    for (std::size_t i = 0; i < ip.size(); ++i) {
        const std::size_t dot = rest.find('.');
        const bool last = i + 1 == ip.size();
        if (last != (dot == std::string_view::npos)) return bad(text, "want four dotted numbers");
        unsigned value = 0;
        if (!parse_number(rest.substr(0, dot), 255, value)) return bad(text, "each part 0..255");
        ip[i] = static_cast<std::uint8_t>(value);
        if (!last) rest.remove_prefix(dot + 1);
    }
    return ip;
}

Result<Ipv4Endpoint> parse_endpoint(std::string_view text, std::uint16_t default_port) {
    const std::size_t colon = text.rfind(':');
    if (colon == std::string_view::npos && default_port == 0)
        return make_error(ErrorCode::invalid_argument,
                          "'" + std::string(text) + "' needs a port: ADDR:PORT");
    Result<Ipv4Address> ip = parse_ipv4(text.substr(0, colon));
    if (!ip) return ip.error();
    Ipv4Endpoint endpoint{*ip, default_port};
    if (colon != std::string_view::npos) {
        unsigned port = 0;
        if (!parse_number(text.substr(colon + 1), 65535, port) || port == 0)
            return make_error(ErrorCode::invalid_argument,
                              "'" + std::string(text) + "': the port must be 1..65535");
        endpoint.port = static_cast<std::uint16_t>(port);
    }
    return endpoint;
}

}  // namespace starling::net

#pragma once
// An IPv4 UDP endpoint as the node and its command line spell it ("10.77.0.5:7946"), so the
// runtime and the CLI name addresses without seeing Asio.

#include <array>
#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

#include "protocol/result.hpp"

namespace starling::net {

using Ipv4Address = std::array<std::uint8_t, 4>;

struct Ipv4Endpoint {
    Ipv4Address ip{};
    std::uint16_t port = 0;

    [[nodiscard]] bool is_multicast() const noexcept { return (ip[0] & 0xF0) == 0xE0; }
    [[nodiscard]] bool is_unspecified() const noexcept { return ip == Ipv4Address{}; }
    [[nodiscard]] std::string to_string() const;  // "10.77.0.5:7946"

    friend bool operator==(const Ipv4Endpoint&, const Ipv4Endpoint&) = default;
    friend auto operator<=>(const Ipv4Endpoint&, const Ipv4Endpoint&) = default;
};

[[nodiscard]] std::string to_string(const Ipv4Address& ip);  // "10.77.0.5"

// "A.B.C.D" (dotted quad, nothing else): invalid_argument otherwise.
[[nodiscard]] Result<Ipv4Address> parse_ipv4(std::string_view text);

// "A.B.C.D:PORT", or "A.B.C.D" alone when `default_port` is given (non-zero).
[[nodiscard]] Result<Ipv4Endpoint> parse_endpoint(std::string_view text,
                                                  std::uint16_t default_port = 0);

}  // namespace starling::net

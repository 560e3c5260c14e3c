#pragma once
// Which network interface a node announces itself on: the one named on the command line, or the
// one the default route leaves by, and that interface's own IPv4 address.

#include <string>
#include <string_view>

#include "node/net/address.hpp"
#include "protocol/result.hpp"

namespace starling::net {

// The interface of the IPv4 default route (/proc/net/route); not_found when there is none.
[[nodiscard]] Result<std::string> default_route_interface();

// The first IPv4 address of interface `name`; not_found when it has none or does not exist.
[[nodiscard]] Result<Ipv4Address> interface_ipv4(std::string_view name);

}  // namespace starling::net

#include "node/net/interfaces.hpp"

#include <ifaddrs.h>
#include <netinet/in.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>

namespace starling::net {
namespace {

constexpr const char* kRouteTable = "/proc/net/route";
constexpr std::size_t kMaxRouteLines = 4096;  // a routing table is read, never trusted to end

}  // namespace

Result<std::string> default_route_interface() {
    std::ifstream table(kRouteTable);
    if (!table) return make_error(ErrorCode::not_found, std::string("cannot read ") + kRouteTable);
    std::string line;
    std::getline(table, line);  // the column names
    for (std::size_t i = 0; i < kMaxRouteLines && std::getline(table, line); ++i) {
        std::istringstream fields(line);
        std::string name, destination, gateway, flags, refcnt, use, metric, mask;
        fields >> name >> destination >> gateway >> flags >> refcnt >> use >> metric >> mask;
        if (fields && destination == "00000000" && mask == "00000000") return name;
    }
    return make_error(ErrorCode::not_found,
                      "no IPv4 default route: name the LAN interface with --interface");
}

Result<Ipv4Address> interface_ipv4(std::string_view name) {
    ifaddrs* list = nullptr;
    if (::getifaddrs(&list) != 0)
        return make_error(ErrorCode::io, std::string("getifaddrs: ") + std::strerror(errno));
    const std::unique_ptr<ifaddrs, void (*)(ifaddrs*)> owner(list, ::freeifaddrs);
    for (const ifaddrs* a = list; a != nullptr; a = a->ifa_next) {
        if (a->ifa_addr == nullptr || a->ifa_addr->sa_family != AF_INET || name != a->ifa_name)
            continue;
        sockaddr_in in{};
        std::memcpy(&in, a->ifa_addr, sizeof in);
        Ipv4Address ip{};
        std::memcpy(ip.data(), &in.sin_addr.s_addr, ip.size());
        return ip;
    }
    return make_error(ErrorCode::not_found,
                      "interface '" + std::string(name) + "' has no IPv4 address");
}

}  // namespace starling::net

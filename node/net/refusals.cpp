#include "node/net/refusals.hpp"

#include <linux/errqueue.h>
#include <netinet/in.h>
#include <netinet/ip_icmp.h>
#include <sys/socket.h>

#include <array>
#include <cstring>

namespace starling::net::detail {
namespace {

bool is_refusal(const sock_extended_err& err) {
    if (err.ee_origin != SO_EE_ORIGIN_ICMP || err.ee_type != ICMP_DEST_UNREACH) return false;
    return err.ee_code == ICMP_PORT_UNREACH || err.ee_code == ICMP_HOST_UNREACH ||
           err.ee_code == ICMP_NET_UNREACH;
}

}  // namespace

bool enable_refusal_reports(int fd) noexcept {
    const int on = 1;
    return ::setsockopt(fd, SOL_IP, IP_RECVERR, &on, sizeof on) == 0;
}

std::size_t drain_refusals(int fd, const std::function<void(const Ipv4Endpoint&)>& refused) {
    std::size_t read = 0;
    for (; read < kMaxRefusalsPerDrain; ++read) {
        sockaddr_in destination{};
        std::array<char, 512> control{};
        std::array<char, 64> payload{};  // the refused datagram's start: not needed
        iovec io{payload.data(), payload.size()};
        msghdr message{};
        message.msg_name = &destination;
        message.msg_namelen = sizeof destination;
        message.msg_iov = &io;
        message.msg_iovlen = 1;
        message.msg_control = control.data();
        message.msg_controllen = control.size();
        if (::recvmsg(fd, &message, MSG_ERRQUEUE | MSG_DONTWAIT) < 0) break;
        for (cmsghdr* c = CMSG_FIRSTHDR(&message); c != nullptr; c = CMSG_NXTHDR(&message, c)) {
            if (c->cmsg_level != SOL_IP || c->cmsg_type != IP_RECVERR) continue;
            sock_extended_err err{};
            std::memcpy(&err, CMSG_DATA(c), sizeof err);
            if (!is_refusal(err) || destination.sin_family != AF_INET) continue;
            Ipv4Endpoint to;
            std::memcpy(to.ip.data(), &destination.sin_addr.s_addr, to.ip.size());
            to.port = ntohs(destination.sin_port);
            refused(to);
        }
    }
    return read;
}

}  // namespace starling::net::detail

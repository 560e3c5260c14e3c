// PeerAddress, state names, the id hash and the canonical signed bytes.
#include <cstdio>
#include <cstring>

#include "node/membership/authenticator.hpp"
#include "node/membership/types.hpp"

namespace starling::membership {

PeerAddress PeerAddress::ipv4(const std::array<std::uint8_t, 4>& ip, std::uint16_t port) {
    PeerAddress a;
    std::memcpy(a.bytes_.data(), ip.data(), ip.size());
    a.port_ = port;
    a.kind_ = Kind::ipv4;
    return a;
}

PeerAddress PeerAddress::ipv6(const Bytes& ip, std::uint16_t port) {
    PeerAddress a;
    a.bytes_ = ip;
    a.port_ = port;
    a.kind_ = Kind::ipv6;
    return a;
}

PeerAddress PeerAddress::sim(std::uint32_t node, std::uint16_t generation) {
    PeerAddress a;
    for (int i = 0; i < 4; ++i) a.bytes_[i] = static_cast<std::uint8_t>(node >> (8 * i));
    a.port_ = generation;
    a.kind_ = Kind::sim;
    return a;
}

std::optional<PeerAddress> PeerAddress::from_wire(std::uint8_t kind, const Bytes& bytes,
                                                  std::uint16_t port) {
    std::size_t used = 0;
    switch (kind) {
        case static_cast<std::uint8_t>(Kind::ipv4): used = 4; break;
        case static_cast<std::uint8_t>(Kind::sim): used = 4; break;
        case static_cast<std::uint8_t>(Kind::ipv6): used = 16; break;
        default: return std::nullopt;
    }
    for (std::size_t i = used; i < kBytes; ++i)
        if (bytes[i] != 0) return std::nullopt;  // one encoding per address
    PeerAddress a;
    a.bytes_ = bytes;
    a.port_ = port;
    a.kind_ = static_cast<Kind>(kind);
    return a;
}

std::uint32_t PeerAddress::sim_node() const noexcept {
    std::uint32_t node = 0;
    for (int i = 0; i < 4; ++i) node |= std::uint32_t{bytes_[i]} << (8 * i);
    return node;
}

std::string PeerAddress::to_string() const {
    char text[64];
    switch (kind_) {
        case Kind::ipv4:
            std::snprintf(text, sizeof text, "%u.%u.%u.%u:%u", bytes_[0], bytes_[1], bytes_[2],
                          bytes_[3], unsigned{port_});
            return text;
        case Kind::ipv6: {
            std::string out = "[";
            for (std::size_t i = 0; i < kBytes; i += 2) {
                std::snprintf(text, sizeof text, "%s%x", i == 0 ? "" : ":",
                              unsigned{bytes_[i]} << 8 | bytes_[i + 1]);
                out += text;
            }
            std::snprintf(text, sizeof text, "]:%u", unsigned{port_});
            return out + text;
        }
        case Kind::sim:
            std::snprintf(text, sizeof text, "sim:%u/%u", sim_node(), unsigned{port_});
            return text;
        case Kind::none: break;
    }
    return "none";
}

const char* to_string(MemberState state) noexcept {
    switch (state) {
        case MemberState::alive: return "alive";
        case MemberState::suspect: return "suspect";
        case MemberState::dead: return "dead";
        case MemberState::left: return "left";
    }
    return "?";
}

std::size_t DeviceIdHash::operator()(const DeviceId& id) const noexcept {
    std::uint64_t a = 0, b = 0;
    std::memcpy(&a, id.data(), 8);
    std::memcpy(&b, id.data() + 8, 8);
    // Ids are random in production; tests use small ones, so mix both halves anyway.
    std::uint64_t x = a ^ (b * 0x9E3779B97F4A7C15ull);
    x ^= x >> 31;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 29;
    return static_cast<std::size_t>(x);
}

SignedRecordMessage signed_record_message(const SignedRecord& record) {
    static constexpr char kLabel[] = "starling member v1";
    static_assert(sizeof kLabel - 1 == 18);
    SignedRecordMessage m{};
    std::size_t at = 0;
    std::memcpy(m.data(), kLabel, 18);
    at += 18;
    std::memcpy(m.data() + at, record.id.data(), record.id.size());
    at += record.id.size();
    for (int i = 0; i < 8; ++i) m[at++] = static_cast<std::uint8_t>(record.incarnation >> (8 * i));
    m[at++] = static_cast<std::uint8_t>(record.state);
    m[at++] = static_cast<std::uint8_t>(record.address.kind());
    std::memcpy(m.data() + at, record.address.bytes().data(), PeerAddress::kBytes);
    at += PeerAddress::kBytes;
    m[at++] = static_cast<std::uint8_t>(record.address.port());
    m[at++] = static_cast<std::uint8_t>(record.address.port() >> 8);
    return m;
}

}  // namespace starling::membership

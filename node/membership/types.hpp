#pragma once
// The vocabulary of membership: who a peer is (DeviceId), where it is now (PeerAddress), how fresh
// a statement about it is (Incarnation) and what it is believed to be (MemberState).

#include <array>
#include <chrono>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <unordered_map>

#include "crypto/keys.hpp"

namespace starling::membership {

// Monotonic time since an arbitrary start: always an input, never read from a clock here.
using Time = std::chrono::microseconds;
using Duration = std::chrono::microseconds;
inline constexpr Time kNever = Time::max();

using DeviceId = crypto::DeviceId;
using Signature = crypto::Signature;

// A member's own counter: raised by the member itself to refute a suspicion, to announce a new
// address, or on every start (the node persists it), so the newest statement about it wins.
using Incarnation = std::uint64_t;

// Where a member can be reached: an opaque value to the core, compared and copied, never parsed.
// IPv4 or IPv6 plus a UDP port for the real driver; a node number and generation in the simulator.
class PeerAddress {
public:
    enum class Kind : std::uint8_t { none = 0, ipv4 = 1, ipv6 = 2, sim = 3 };
    static constexpr std::size_t kBytes = 16;
    using Bytes = std::array<std::uint8_t, kBytes>;

    PeerAddress() = default;
    static PeerAddress ipv4(const std::array<std::uint8_t, 4>& ip, std::uint16_t port);
    static PeerAddress ipv6(const Bytes& ip, std::uint16_t port);
    // The simulator's addresses: a node number and a generation that changes when it "moves".
    static PeerAddress sim(std::uint32_t node, std::uint16_t generation);
    // nullopt for a kind this build does not know, or bytes beyond the kind's length.
    [[nodiscard]] static std::optional<PeerAddress> from_wire(std::uint8_t kind, const Bytes& bytes,
                                                              std::uint16_t port);

    Kind kind() const noexcept { return kind_; }
    const Bytes& bytes() const noexcept { return bytes_; }
    std::uint16_t port() const noexcept { return port_; }
    bool empty() const noexcept { return kind_ == Kind::none; }
    std::uint32_t sim_node() const noexcept;  // for Kind::sim

    std::string to_string() const;  // "10.0.0.7:7946", "[fe80::1]:7946", "sim:17/2"

    friend bool operator==(const PeerAddress&, const PeerAddress&) = default;
    friend auto operator<=>(const PeerAddress&, const PeerAddress&) = default;

private:
    Bytes bytes_{};
    std::uint16_t port_ = 0;
    Kind kind_ = Kind::none;
};

// What a node believes about a member. Order matters: at the same incarnation a later state
// overrides an earlier one (suspect beats alive, dead beats suspect, left beats dead).
enum class MemberState : std::uint8_t { alive = 0, suspect = 1, dead = 2, left = 3 };
const char* to_string(MemberState state) noexcept;

// True when (incarnation a, state a) is newer news than (b, b).
[[nodiscard]] constexpr bool is_newer(Incarnation a_incarnation, MemberState a_state,
                                      Incarnation b_incarnation, MemberState b_state) noexcept {
    if (a_incarnation != b_incarnation) return a_incarnation > b_incarnation;
    return static_cast<int>(a_state) > static_cast<int>(b_state);
}

// A member's own statement about itself: alive at an address, or left. Signed with its device
// key, so nobody else can move it, revive it or make it leave.
struct SignedRecord {
    DeviceId id{};
    Incarnation incarnation = 0;
    MemberState state = MemberState::alive;  // alive or left
    PeerAddress address;
    Signature signature{};
};

// `accuser`'s statement that `id` is suspect or dead at `incarnation`. Authenticated only as far
// as the datagram that carried it: any member may accuse; the accused refutes.
struct Accusation {
    DeviceId id{};
    Incarnation incarnation = 0;
    MemberState state = MemberState::suspect;  // suspect or dead
    DeviceId accuser{};
    bool refused = false;  // the accuser's probe was refused by the host, not just unanswered
};

// Anti-entropy: what a node knows about one member, without the record.
struct Digest {
    DeviceId id{};
    Incarnation incarnation = 0;
    MemberState state = MemberState::alive;
};

// Hash and equality of device ids for unordered containers (two 8-byte compares, where
// std::array's operator== calls memcmp: the simulator's hottest path).
struct DeviceIdHash {
    std::size_t operator()(const DeviceId& id) const noexcept;
};
struct DeviceIdEqual {
    bool operator()(const DeviceId& a, const DeviceId& b) const noexcept {
        std::uint64_t a0, a1, b0, b1;
        std::memcpy(&a0, a.data(), 8);
        std::memcpy(&a1, a.data() + 8, 8);
        std::memcpy(&b0, b.data(), 8);
        std::memcpy(&b1, b.data() + 8, 8);
        return a0 == b0 && a1 == b1;
    }
};
template <class Value>
using DeviceIdMap = std::unordered_map<DeviceId, Value, DeviceIdHash, DeviceIdEqual>;

}  // namespace starling::membership

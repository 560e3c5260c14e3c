#pragma once
// Who is in the cluster, as a sans-I/O state machine: SWIM probing with Lifeguard's health and
// suspicion rules, gossip, anti-entropy and authenticated self-records. Time, bytes and
// randomness come in; datagrams to send and peer events come out. No sockets, clocks or threads,
// so the real node (Asio) and the simulator (tools/sim) drive the very same code.
//
// Driver contract: call on_tick(now) whenever now >= next_wakeup(), pass every datagram that
// opened (sender authenticated by crypto/datagram.hpp) to on_message, then perform
// take_actions() in order. Persist IncarnationChanged before any later Send goes out.
// Not thread-safe: one thread drives one Membership. Expected failures are counted, never thrown.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <variant>
#include <vector>

#include "node/membership/authenticator.hpp"
#include "node/membership/config.hpp"
#include "node/membership/types.hpp"
#include "node/model/rng.hpp"

namespace starling::membership {

enum class PeerEventKind : std::uint8_t { up, suspect, failed, left, address_changed, revoked };
// The node's log wording: "peer up", "peer suspect", "peer failed", "peer left",
// "peer address changed", "peer revoked".
const char* to_string(PeerEventKind kind) noexcept;

struct PeerEvent {
    PeerEventKind kind = PeerEventKind::up;
    DeviceId peer{};
    Incarnation incarnation = 0;
    PeerAddress address;  // the newest known
};

// A datagram for the driver to seal and send. `device` is the receiver's id when known (seal
// to_peer); empty for a seed address nobody has vouched for yet (seal to_cluster).
struct Send {
    PeerAddress to;
    std::optional<DeviceId> device;
    std::vector<std::uint8_t> bytes;
};

// This node's incarnation moved (start, refutation, new address, leave): persist it.
struct IncarnationChanged {
    Incarnation incarnation = 0;
};

using Action = std::variant<Send, PeerEvent, IncarnationChanged>;

// One member as this node sees it.
struct MemberView {
    DeviceId id{};
    Incarnation incarnation = 0;
    MemberState state = MemberState::alive;
    PeerAddress address;
};

// What was dropped, and why: one metric each. Nothing here is ever answered.
struct Counters {
    std::uint64_t oversized = 0;        // over limits::kMaxMessageBytes, before parsing
    std::uint64_t malformed = 0;        // Verifier, enum, length or address checks failed
    std::uint64_t unverifiable = 0;     // a signed record whose signature did not verify
    std::uint64_t not_for_us = 0;       // a ping or ping-req naming another device or ourselves
    std::uint64_t unexpected = 0;       // an ack or nack for no probe in flight
    std::uint64_t table_full = 0;       // a new member past max_members
    std::uint64_t relays_full = 0;      // a ping-req past limits::kMaxPendingRelays
    std::uint64_t replies_limited = 0;  // a join or digest reply past its per-second limit
    std::uint64_t summaries_matched = 0;  // a peer's table summary equal to ours: no exchange
    std::uint64_t sends_dropped = 0;    // the driver did not drain take_actions() in time
    std::uint64_t newcomer_probes_spared = 0;  // a silent probe of a member within newcomer_grace
};

namespace detail {
struct Engine;
}

class Membership {
public:
    // Starts alive at config.last_incarnation + 1 (an IncarnationChanged is the first action).
    // `authenticator` must outlive the Membership.
    Membership(const Config& config, RecordAuthenticator& authenticator, model::Rng rng, Time now);
    ~Membership();
    Membership(Membership&&) noexcept;
    Membership& operator=(Membership&&) noexcept;

    // Inputs, named after what happened.
    // A seed address was configured or discovered (beacon, --seed, last known peers): join
    // through it now and again while no live peer is known (limits::kMaxSeeds remembered); once
    // in a cluster, an address no live member has gets a digest exchange, which merges two
    // groups that formed apart. Cheap to repeat for known members.
    void on_seed_discovered(Time now, const PeerAddress& seed);
    // An authenticated datagram from `sender`, which arrived from `from`.
    void on_message(Time now, const PeerAddress& from, const DeviceId& sender,
                    std::span<const std::uint8_t> bytes);
    // The host at `to` refused a datagram we sent (ICMP port or host unreachable).
    void on_unreachable(Time now, const PeerAddress& to);
    // Timers: call when now >= next_wakeup() (calling earlier is harmless).
    void on_tick(Time now);
    // This node's own address changed: announce it under a new incarnation.
    void on_address_changed(Time now, const PeerAddress& address);
    // The owner revoked this member (the driver verified the revocation and no longer accepts
    // its certificate, so its records stop verifying): it is marked dead at once, not suspected.
    void on_member_revoked(Time now, const DeviceId& id);
    // Graceful leave: a signed "left" record goes out; probing stops, answering continues. The
    // driver may stop once broadcasts_pending() is false or after a few gossip intervals.
    void on_leave_requested(Time now);

    // Outputs.
    [[nodiscard]] Time next_wakeup() const;
    [[nodiscard]] std::vector<Action> take_actions();

    // Views.
    [[nodiscard]] const DeviceId& self() const;
    // This node's signed record as a gossip message (for a beacon: members hear of it at once).
    [[nodiscard]] std::vector<std::uint8_t> self_announcement();
    [[nodiscard]] Incarnation incarnation() const;
    [[nodiscard]] std::optional<MemberView> member(const DeviceId& id) const;
    [[nodiscard]] std::vector<MemberView> members() const;  // without this node
    [[nodiscard]] std::size_t live_count() const;   // alive or suspect, this node excluded
    [[nodiscard]] std::size_t alive_count() const;  // alive only, this node excluded
    [[nodiscard]] std::uint32_t health_multiplier() const;   // Lifeguard: 1 (healthy) .. 8
    [[nodiscard]] bool broadcasts_pending() const;
    [[nodiscard]] bool has_left() const;
    [[nodiscard]] const Counters& counters() const;

private:
    std::unique_ptr<detail::Engine> engine_;
};

}  // namespace starling::membership

#pragma once
// Internal to node/runtime: the state of a running node, shared by node.cpp (datagrams, timers,
// membership actions), node_discovery.cpp (beacons, certificates) and node_report.cpp.

#include <array>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "crypto/datagram.hpp"
#include "node/membership/membership.hpp"
#include "node/membership/wire.hpp"
#include "node/runtime/discovery.hpp"
#include "node/runtime/discovery_wire.hpp"
#include "node/runtime/history.hpp"
#include "node/runtime/node.hpp"
#include "node/runtime/observe.hpp"
#include "node/runtime/peer_table.hpp"
#include "protocol/datagram.hpp"

namespace starling::runtime {

// Records held until their certificates arrive (a node that just joined hears of members before
// it has their certificates), as records-only messages, bounded both ways. The rest of each
// message goes in at once, so the wait delays no ack: it can be long enough for a certificate
// request to be answered on a loaded host, and for one retry.
inline constexpr std::size_t kMaxParkedMessages = 256;
inline constexpr Duration kParkedWait = 1500ms;
inline constexpr Duration kCertificateRequestRetry = 500ms;
// Datagrams from a device whose certificate this node lacks (a member that heard of us first
// probes us before we heard of it) are held while the certificate is fetched, then opened: a
// ping dropped there would fail its probe and get its sender suspected. Bounded both ways; a
// sender id is unauthenticated until then, so a held datagram costs memory and nothing else.
inline constexpr std::size_t kMaxHeldDatagrams = 256;
inline constexpr Duration kHeldWait = 2s;
// A join or digest request to an address whose node may not know this one goes right after a
// beacon (our certificate), at most once per interval per address, for this many addresses.
inline constexpr Duration kIntroductionInterval = 1s;
inline constexpr std::size_t kMaxIntroductions = 64;
inline constexpr Duration kAnswerMemory = 10s;
// Revocations spread by gossip (node_revocations.cpp): a node passes a new one on once, to this
// many random live members; each interval, one random live member gets a hash of the revoked
// ids this node holds, and a node holding a different set answers with its revocations, at
// most this many per exchange (the next exchange goes on from there), at most this many
// answers per second (an answer costs up to ~10 datagrams).
inline constexpr std::size_t kRevocationFanout = 4;
inline constexpr Duration kRevocationSyncInterval = 30s;
// After a new one, the summary goes out this soon as well: a lost first copy is repaired at once.
inline constexpr Duration kRevocationFollowUp = 1s;
inline constexpr std::size_t kMaxRevocationsPerExchange = 64;
inline constexpr std::uint32_t kRevocationAnswersPerSecond = 10;
// A leave is given this long to spread before the node exits anyway.
inline constexpr Duration kMaxLeaveDrain = 2s;
// The last known peers are written at most this often (and at exit).
inline constexpr Duration kPeersSaveInterval = 10s;
inline constexpr std::size_t kDropReasons = static_cast<std::size_t>(DatagramDrop::too_many_senders) + 1;

// The network keys of the bundle's ring, as DatagramCrypto asks for them.
class RingEpochs final : public crypto::EpochKeys {
public:
    explicit RingEpochs(const crypto::NetworkKeyRing& ring) : ring_(ring) {}
    const crypto::SymmetricKey* network_key(std::uint32_t epoch,
                                            std::uint64_t now_unix_seconds) const noexcept override;

private:
    const crypto::NetworkKeyRing& ring_;
};

struct NodeStats {
    std::array<std::uint64_t, kDropReasons> drops{};  // by DatagramDrop
    std::uint64_t opened = 0;
    std::uint64_t unknown_channel = 0;
    std::uint64_t discovery_malformed = 0;
    std::uint64_t certificates_refused = 0;
    std::uint64_t parked = 0;
    std::uint64_t parked_expired = 0;
    std::uint64_t seal_failed = 0;
    std::uint64_t beacons_sent = 0;
    std::uint64_t answers_limited = 0;
    std::uint64_t certificate_requests = 0;
    std::uint64_t certificates_pushed = 0;  // joins answered with every member's certificate
    std::uint64_t revocations_accepted = 0;  // new, verified (from the wire, control, state dir)
    std::uint64_t revocations_refused = 0;   // bad bytes or not signed by the owner
    std::uint64_t revocations_sent = 0;      // datagrams carrying revocations
    std::uint64_t revocations_unsaved = 0;   // accepted, but the state directory refused the file
    std::uint64_t revoked_refused = 0;       // datagrams from a revoked device
    std::uint64_t held = 0;          // datagrams from an unknown sender held for its certificate
    std::uint64_t held_expired = 0;  // ... whose certificate did not come in time (or no room)
};

// The inspector's view (node_observe.cpp): taps, events, message counts, history and log level.
// Written from const paths too (log lines, decoding kinds), hence held mutable in the Impl.
struct Observed {
    Ring<TraceEntry> trace{kMaxTraceEntries};
    Ring<Event> events{kMaxEventEntries};
    LogLevel level = LogLevel::info;
    WindowLimit refusal_events{kMaxRefusalEventsPerSecond, 1s};
    std::map<std::string, std::uint64_t> sent_kinds;
    std::map<std::string, std::uint64_t> received_kinds;
    membership::detail::Codec codec;
    membership::detail::Message message;
    std::optional<MetricsHistory> history;
    bool history_failed = false;
    Time next_history{};
    membership::Incarnation first_incarnation = 0;
    std::function<std::string()> history_members;  // Node::set_history_members
    std::function<std::string()> history_fields;   // Node::set_history_fields
};

struct Parked {
    Time deadline{};
    Time retry{};  // when the missing certificates are asked for again
    membership::PeerAddress from;
    crypto::DeviceId sender{};
    std::vector<std::uint8_t> bytes;
    std::vector<crypto::DeviceId> missing;
};

struct Held {
    Time deadline{};
    net::Ipv4Endpoint from;
    crypto::DeviceId sender{};
    std::vector<std::uint8_t> datagram;
};

struct Node::Impl {
    Impl(crypto::EnrollmentBundle bundle, StateDir state_dir, net::Transport& net_transport,
         const Clock& node_clock, Alarm& node_alarm, NodeOptions node_options, LogSink sink,
         std::uint32_t boot, std::uint64_t rng_seed);

    // node.cpp
    void on_datagram(const net::Ipv4Endpoint& from, std::span<const std::uint8_t> bytes);
    void on_unreachable(const net::Ipv4Endpoint& to);
    void on_timer();
    void on_membership(const membership::PeerAddress& from, const crypto::DeviceId& sender,
                       std::span<const std::uint8_t> bytes);
    void perform_actions();
    void reschedule();
    void seal_and_send(const net::Ipv4Endpoint& to, const std::optional<crypto::DeviceId>& device,
                       std::span<const std::uint8_t> plaintext);
    void log_event(const membership::PeerEvent& event);
    void log(const std::string& text) const;
    void fatal(const std::string& message);
    void save_peers();
    void finish_leave();
    [[nodiscard]] bool alone() const;

    // node_discovery.cpp
    void beacon_to(const net::Ipv4Endpoint& to, std::uint8_t flags);
    void introduce(const net::Ipv4Endpoint& to);
    // The member that answered our seeking beacon from `address` (recently), if any.
    std::optional<crypto::DeviceId> answerer_at(const net::Ipv4Endpoint& address) const;
    void on_discovery(const net::Ipv4Endpoint& from, const crypto::DeviceId& sender,
                      std::span<const std::uint8_t> plaintext);
    void on_beacon(const crypto::DeviceId& sender, const Beacon& beacon);
    [[nodiscard]] bool among_answerers(const crypto::DeviceId& newcomer) const;
    // Every live member's certificate, to a device joining through us.
    void push_certificates(const net::Ipv4Endpoint& to, const crypto::DeviceId& joiner);
    // The certificates of `ids` this node holds, packed into datagrams; false when there was
    // nothing to send or the rate limit refused it.
    bool send_certificates(const net::Ipv4Endpoint& to, const crypto::DeviceId& device,
                           std::span<const crypto::DeviceId> ids);
    void on_certificate_request(const crypto::DeviceId& sender, const net::Ipv4Endpoint& from,
                                std::span<const crypto::DeviceId> wants);
    void on_certificates(std::span<const std::vector<std::uint8_t>> certificates);
    void on_unknown_sender(const net::Ipv4Endpoint& from, std::span<const std::uint8_t> datagram);
    void open_held(Time now);
    void request_certificates(const net::Ipv4Endpoint& from, const crypto::DeviceId& holder,
                              std::span<const crypto::DeviceId> ids);
    [[nodiscard]] std::vector<crypto::DeviceId> missing_signers(
        std::span<const std::uint8_t> bytes);
    void park(Parked parked);
    void release_parked(Time now);
    void discovery_tick(Time now);

    // node_revocations.cpp
    // Verifies, applies (the device is refused from now on, marked revoked in the core),
    // persists in the state directory when `persist`, and passes it on. True when new.
    [[nodiscard]] Result<bool> accept_revocation(std::span<const std::uint8_t> bytes,
                                                 const std::optional<crypto::DeviceId>& from,
                                                 bool persist);
    void on_revocations(const crypto::DeviceId& sender,
                        std::span<const std::vector<std::uint8_t>> revocations);
    void on_revocation_summary(const crypto::DeviceId& sender, const net::Ipv4Endpoint& from,
                               std::uint64_t summary, std::uint8_t flags);
    void send_revocations(const crypto::DeviceId& device, const net::Ipv4Endpoint& to);
    void revocation_tick(Time now);
    [[nodiscard]] std::uint64_t revocation_summary() const;

    // node_report.cpp
    [[nodiscard]] std::string members_table() const;
    [[nodiscard]] std::string members_json() const;
    [[nodiscard]] std::string stats_text() const;

    // node_observe.cpp
    [[nodiscard]] std::string message_kind(std::span<const std::uint8_t> plaintext) const;
    void tap(Direction direction, const net::Ipv4Endpoint& peer,
             const std::optional<crypto::DeviceId>& device, std::span<const std::uint8_t> plaintext,
             std::size_t wire_bytes);
    void tap_refused(const net::Ipv4Endpoint& from, DatagramDrop drop, std::size_t wire_bytes);
    void note(LogLevel level, const std::string& kind, const std::string& text) const;
    [[nodiscard]] std::string metrics_text() const;
    [[nodiscard]] std::string history_line() const;
    void history_tick(Time now);
    [[nodiscard]] std::optional<std::string> observe_answer(std::string_view request);

    // Identity: the bundle's keys, held for the node's life.
    crypto::ClusterId cluster;
    crypto::SignPublicKey owner;
    crypto::Certificate own;
    std::vector<std::uint8_t> own_certificate_bytes;
    crypto::SignKeyPair sign;
    crypto::KxKeyPair kx;
    crypto::NetworkKeyRing ring;
    RingEpochs epochs{ring};

    StateDir state;
    net::Transport& transport;
    const Clock& clock;
    Alarm& alarm;
    NodeOptions options;
    LogSink log_sink;
    std::function<void(const std::string&)> stop;
    OtherChannelHandler other_channel;  // node_members.cpp

    PeerTable peers;
    crypto::DatagramCrypto sealer;
    DatagramCounter counter;
    model::Rng rng;
    membership::Membership core;
    membership::detail::Codec codec;
    membership::detail::Message scratch;

    BeaconSchedule beacons;
    WindowLimit answers;              // beacons sent back
    WindowLimit certificate_answers;  // certificate requests answered
    std::vector<net::Ipv4Endpoint> direct_targets;  // seeds, then last known peers
    std::deque<Parked> parked;
    std::deque<Held> held;
    // Revocations held, encoded, by revoked device (as many as PeerTable accepts).
    std::map<crypto::DeviceId, std::vector<std::uint8_t>> revocations;
    std::size_t revocation_cursor = 0;  // where the next answer starts
    Time next_revocation_sync{};
    bool revocations_offered = false;  // our summary went to a member since we joined
    WindowLimit revocation_answers{kRevocationAnswersPerSecond, 1s};
    std::map<crypto::DeviceId, Time> requested;  // certificate requests in flight
    std::map<net::Ipv4Endpoint, Time> introduced;  // direct beacons before joins
    // Members that answered our seeking beacon, by address: they hold our certificate (the
    // beacon carried it) and we theirs, so a join to them needs no introduction and no
    // signature. Kept kAnswerMemory, at most kMaxIntroductions.
    std::map<net::Ipv4Endpoint, std::pair<crypto::DeviceId, Time>> answered_by;
    NodeStats stats;
    mutable Observed observed;
    bool started = false;
    bool leaving = false;
    bool failed = false;
    Time leave_deadline{};
    std::function<void()> left;
    Time next_peers_save{};
    bool peers_dirty = false;
};

[[nodiscard]] membership::PeerAddress to_peer_address(const net::Ipv4Endpoint& e);
[[nodiscard]] std::optional<net::Ipv4Endpoint> to_endpoint(const membership::PeerAddress& a);

}  // namespace starling::runtime

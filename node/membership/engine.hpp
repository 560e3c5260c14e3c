#pragma once
// The membership state machine's insides, shared by the files that split it by idea:
// membership.cpp (inputs, outputs, dispatch), probing.cpp (SWIM probes, Lifeguard health),
// merge.cpp (records, accusations, suspicion, refutation), spread.cpp (gossip, anti-entropy,
// joins, reconnects). Internal: only node/membership/*.cpp include it.

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>
#include <unordered_map>
#include <utility>
#include <vector>

#include "node/membership/broadcasts.hpp"
#include "node/membership/health.hpp"
#include "node/membership/member_table.hpp"
#include "node/membership/suspicion.hpp"
#include "node/membership/membership.hpp"
#include "node/membership/wire.hpp"

namespace starling::membership::detail {

// Where a record or accusation came from, which decides whether it is passed on.
enum class Via : std::uint8_t {
    gossip,       // piggybacked news: apply, pass on
    sync,         // anti-entropy: apply (a death becomes a suspicion, memberlist's rule), pass on
    join_answer,  // a seed's full state: old news to everyone else, apply only
};

struct Probe {
    bool active = false;
    DeviceId target{};
    Incarnation incarnation = 0;  // the target's, when the probe began
    PeerAddress address;
    std::uint32_t seq = 0;
    Time ack_deadline{};          // direct ping unanswered by then: ask for indirect probes
    Time end{};                   // unanswered by then: suspect the target
    bool indirect_sent = false;
    std::uint32_t expected_nacks = 0;
    std::uint32_t nacks = 0;
    // Whose acks and nacks count: the target and the helpers asked (seqs are guessable).
    std::array<DeviceId, limits::kMaxIndirectProbes> helpers{};
    std::uint32_t helper_count = 0;
    bool answered_by(const DeviceId& sender) const;
};

// A ping-req this node forwards: the target's ack goes back to the requester, or a nack at the
// deadline (Lifeguard: the requester learns its own network works).
struct Relay {
    std::uint32_t seq = 0;  // of our ping to the target
    DeviceId target{};
    PeerAddress requester;
    DeviceId requester_id{};
    std::uint32_t requester_seq = 0;
    Time deadline{};
};

// A ping to a failed member: an answer means it is reachable again, so a sync follows.
struct Reconnect {
    std::uint32_t seq = 0;
    DeviceId target{};
    Time deadline{};
};

// At most `limit` events per second (a fixed one-second window).
struct RateWindow {
    std::uint32_t limit = 0;
    Time start{};
    std::uint32_t used = 0;
    [[nodiscard]] bool allow(Time now);
};

// Senders served within the last limits::kRecentSenderCooldownMilliseconds (a small ring).
struct RecentSenders {
    std::array<std::pair<DeviceId, Time>, limits::kMaxRecentSenders> entries{};
    std::size_t next = 0;
};

struct Engine {
    Engine(const Config& config, RecordAuthenticator& authenticator, model::Rng rng, Time now);

    // ---- membership.cpp: inputs, outputs, dispatch ----
    void on_message(Time now, const PeerAddress& from, const DeviceId& sender,
                    std::span<const std::uint8_t> bytes);
    void on_tick(Time now);
    Time next_wakeup() const;
    void send(const PeerAddress& to, const std::optional<DeviceId>& device, Message& message,
              bool piggyback);
    void emit(PeerEventKind kind, const Member& member);
    std::uint32_t transmit_limit() const;

    // ---- probing.cpp ----
    void start_probe(Time now);
    void on_probe_timers(Time now);
    void send_indirect_probes(Time now);
    void finish_probe(Time now, bool refused);
    void on_ping(const PeerAddress& from, const DeviceId& sender, const Message& m);
    void on_ping_req(Time now, const PeerAddress& from, const DeviceId& sender, const Message& m);
    void on_ack(Time now, const DeviceId& sender, const Message& m);
    void on_nack(const DeviceId& sender, const Message& m);
    void on_relay_timers(Time now);
    void on_unreachable(Time now, const PeerAddress& to);
    void add_to_probe_order(const DeviceId& id);
    bool next_probe_target(DeviceId& out);

    // ---- merge.cpp ----
    void on_record(Time now, const SignedRecord& record, Via via);
    void on_accusation(Time now, const Accusation& accusation, Via via);
    void on_suspicion_timers(Time now);
    void suspect(Time now, Member& member, const Accusation& accusation);
    void declare_dead(Time now, Member& member, const Accusation& accusation);
    void refute(Incarnation at_least);
    void set_state(Time now, Member& member, MemberState state);
    void schedule_suspicion(Time now, Member& member);
    void schedule_query(Time now, const Member& member, Suspicion& suspicion);
    Accusation accusation_of(const Member& member) const;
    [[nodiscard]] bool verify(const SignedRecord& record);
    void sign_self();
    void reap(Time now);

    // ---- spread.cpp ----
    void gossip(Time now);
    void start_sync(Time now, const PeerAddress& to, const std::optional<DeviceId>& device);
    // The periodic opener: one small datagram carrying table_summary().
    void offer_summary(const PeerAddress& to, const DeviceId& device);
    // Order-independent hash of every (id, incarnation, state) this node holds, itself included.
    [[nodiscard]] std::uint64_t table_summary() const;
    void on_sync(Time now, const PeerAddress& from, const DeviceId& sender, const Message& m);
    void send_join(Time now, const PeerAddress& seed);
    void reconnect(Time now);
    void retry_joins(Time now);
    void send_sync_entries(const PeerAddress& to, const std::optional<DeviceId>& device,
                           std::uint8_t flags, const std::vector<SignedRecord>& records,
                           const std::vector<Accusation>& accusations,
                           const std::vector<Digest>& digests, const std::vector<DeviceId>& wants);
    void append_state_of(const DeviceId& id, std::vector<SignedRecord>& records,
                         std::vector<Accusation>& accusations) const;
    void on_sender(Time now, const PeerAddress& from, const DeviceId& sender);
    // True if `sender` was served within the cooldown; otherwise records it and returns false.
    [[nodiscard]] static bool recently(RecentSenders& recent, Time now, const DeviceId& sender);
    Duration sync_interval() const;
    // Up to `count` distinct random live members other than `except`.
    void pick_live(std::size_t count, const DeviceId* except, std::vector<const Member*>& out);
    const Member* pick_dead();

    // ---- state ----
    Config config;
    RecordAuthenticator& authenticator;
    model::Rng rng;
    Codec codec;

    SignedRecord self;  // this node's own record, signed
    bool leaving = false;
    MemberTable members;
    std::size_t live = 0;  // alive or suspect members
    std::size_t dead = 0;  // dead members (left ones excluded)
    BroadcastQueue broadcasts;
    LocalHealth health;
    Counters counters;

    std::vector<Action> actions;
    std::size_t queued_sends = 0;

    DeviceIdMap<Suspicion> suspicions;  // of suspect members
    std::set<std::pair<Time, DeviceId>> suspicion_deadlines;
    std::set<std::pair<Time, DeviceId>> suspicion_queries;

    std::vector<DeviceId> probe_order;
    std::size_t probe_cursor = 0;
    Probe probe;
    Time next_probe_at{};
    std::uint32_t next_seq = 1;
    std::vector<Relay> relays;
    std::optional<Reconnect> reconnect_ping;

    Time next_gossip_at{};
    Time next_sync_at{};
    std::uint32_t early_syncs_left = 0;
    Time next_early_sync_at = kNever;
    Time next_reconnect_at{};
    Time next_join_at = kNever;
    Time next_reap_at{};
    std::vector<PeerAddress> seeds;
    RateWindow join_answers{limits::kMaxJoinAnswersPerSecond};
    RateWindow digest_replies{limits::kMaxDigestRepliesPerSecond};
    RecentSenders introduced;      // asked for their record or told they are held failed
    RecentSenders digest_replied;  // sent our digests to

    Incarnation incarnation_before_message = 0;  // to notice a refutation a message caused
    Message incoming;  // reused: decoding keeps its vectors' capacity
    Message outgoing;
};

}  // namespace starling::membership::detail

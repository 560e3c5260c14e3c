// Inputs, outputs and message dispatch of the membership state machine.
#include "node/membership/membership.hpp"

#include <algorithm>
#include <cmath>

#include "node/membership/engine.hpp"

namespace starling::membership {

const char* to_string(PeerEventKind kind) noexcept {
    switch (kind) {
        case PeerEventKind::up: return "peer up";
        case PeerEventKind::suspect: return "peer suspect";
        case PeerEventKind::failed: return "peer failed";
        case PeerEventKind::left: return "peer left";
        case PeerEventKind::address_changed: return "peer address changed";
        case PeerEventKind::revoked: return "peer revoked";
    }
    return "peer ?";
}

namespace detail {

namespace {
Duration random_below(model::Rng& rng, Duration bound) {
    return bound.count() <= 0 ? Duration{0} : Duration(static_cast<Duration::rep>(rng.below(
                                                  static_cast<std::uint64_t>(bound.count()))));
}
}  // namespace

Engine::Engine(const Config& config_in, RecordAuthenticator& authenticator_in, model::Rng rng_in,
               Time now)
    : config(config_in), authenticator(authenticator_in), rng(std::move(rng_in)) {
    config.timers.indirect_probes = std::min(config.timers.indirect_probes, limits::kMaxIndirectProbes);
    config.max_members = std::min(config.max_members, limits::kMaxMembers);
    self.id = config.self;
    self.address = config.address;
    self.state = MemberState::alive;
    self.incarnation = config.last_incarnation + 1;
    sign_self();
    actions.emplace_back(IncarnationChanged{self.incarnation});
    // Announce ourselves too (memberlist does): members who joined before us hear it from us as
    // well as from the seed, and whoever holds an older record of ours learns the new one.
    broadcasts.push(self);
    // Random phases, so nodes started together do not probe and sync in lockstep.
    const Timers& t = config.timers;
    next_probe_at = now + random_below(rng, t.probe_interval);
    next_gossip_at = now;
    next_sync_at = now + t.sync_interval / 2 + random_below(rng, t.sync_interval / 2);
    next_reconnect_at = now + random_below(rng, t.reconnect_interval);
    next_reap_at = now + t.left_retention;
    for (RecentSenders* recent : {&introduced, &digest_replied})
        for (auto& [id, at] : recent->entries) at = now - std::chrono::hours(1);
}

void Engine::on_message(Time now, const PeerAddress& from, const DeviceId& sender,
                        std::span<const std::uint8_t> bytes) {
    switch (codec.decode(bytes, incoming)) {
        case DecodeStatus::oversized: ++counters.oversized; return;
        case DecodeStatus::malformed: ++counters.malformed; return;
        case DecodeStatus::ok: break;
    }
    const Message& m = incoming;
    incarnation_before_message = self.incarnation;
    const std::size_t live_before = live;
    const bool sync = m.kind == MessageKind::sync;
    const Via via = !sync ? Via::gossip
                    : (m.sync_flags & kSyncJoinAnswer) != 0 ? Via::join_answer
                                                            : Via::sync;
    // Records first: a ping may carry its sender's first record, which the ack then relies on.
    for (const SignedRecord& record : m.records) on_record(now, record, via);
    for (const Accusation& accusation : m.accusations) on_accusation(now, accusation, via);
    on_sender(now, from, sender);
    switch (m.kind) {
        case MessageKind::ping: on_ping(from, sender, m); break;
        case MessageKind::ping_req: on_ping_req(now, from, sender, m); break;
        case MessageKind::ack: on_ack(now, sender, m); break;
        case MessageKind::nack: on_nack(sender, m); break;
        case MessageKind::gossip: break;
        case MessageKind::sync: on_sync(now, from, sender, m); break;
    }
    // Just found the cluster (a join answer, or gossip when the seed was too busy to answer):
    // news that spread before we were known, and join-answer datagrams that were lost, missed
    // us, so a few early digest exchanges, one per probe period, fill the gap.
    if (live_before == 0 && live > 0 && !leaving) {
        early_syncs_left = limits::kEarlySyncs;
        next_early_sync_at = now + config.timers.probe_interval;
    }
}

void Engine::on_tick(Time now) {
    on_suspicion_timers(now);
    on_relay_timers(now);
    if (!leaving) {
        on_probe_timers(now);
        if (now >= next_sync_at) {
            std::vector<const Member*> peer;
            pick_live(1, nullptr, peer);
            if (!peer.empty()) offer_summary(peer.front()->record.address, peer.front()->id());
            next_sync_at = now + sync_interval();
        }
        if (early_syncs_left > 0 && now >= next_early_sync_at) {
            std::vector<const Member*> peer;
            pick_live(1, nullptr, peer);
            if (!peer.empty()) start_sync(now, peer.front()->record.address, peer.front()->id());
            --early_syncs_left;
            next_early_sync_at = now + config.timers.probe_interval;
        }
        if (now >= next_reconnect_at) {
            reconnect(now);
            next_reconnect_at = now + config.timers.reconnect_interval;
        }
        if (now >= next_join_at) retry_joins(now);
    }
    if (now >= next_gossip_at && !broadcasts.empty()) gossip(now);
    if (now >= next_reap_at) {
        reap(now);
        next_reap_at = now + std::min(config.timers.left_retention, config.timers.dead_retention) / 4;
    }
}

Time Engine::next_wakeup() const {
    Time next = next_reap_at;
    if (!broadcasts.empty()) next = std::min(next, next_gossip_at);
    if (!suspicion_deadlines.empty()) next = std::min(next, suspicion_deadlines.begin()->first);
    if (!suspicion_queries.empty()) next = std::min(next, suspicion_queries.begin()->first);
    for (const Relay& relay : relays) next = std::min(next, relay.deadline);
    if (leaving) return next;
    next = std::min({next, next_probe_at, next_sync_at, next_reconnect_at, next_join_at});
    if (early_syncs_left > 0) next = std::min(next, next_early_sync_at);
    if (probe.active) next = std::min(next, probe.indirect_sent ? probe.end : probe.ack_deadline);
    return next;
}

void Engine::send(const PeerAddress& to, const std::optional<DeviceId>& device, Message& message,
                  bool piggyback) {
    if (queued_sends >= limits::kMaxQueuedSends) {
        ++counters.sends_dropped;
        return;
    }
    if (piggyback) {
        const std::size_t used = message.entry_bytes();
        if (used < limits::kPacketPayloadBytes)
            broadcasts.take(limits::kPacketPayloadBytes - used, transmit_limit(), message.records,
                            message.accusations);
    }
    ++queued_sends;
    actions.emplace_back(Send{to, device, codec.encode(message)});
}

void Engine::emit(PeerEventKind kind, const Member& member) {
    actions.emplace_back(PeerEvent{kind, member.id(), member.incarnation, member.record.address});
}

std::uint32_t Engine::transmit_limit() const {
    const double scale = std::ceil(std::log10(static_cast<double>(live + 2)));
    return config.timers.retransmit_mult * static_cast<std::uint32_t>(std::max(1.0, scale));
}

}  // namespace detail

// ---- The public face: forwards to the engine. ----

Membership::Membership(const Config& config, RecordAuthenticator& authenticator, model::Rng rng,
                       Time now)
    : engine_(std::make_unique<detail::Engine>(config, authenticator, std::move(rng), now)) {}
Membership::~Membership() = default;
Membership::Membership(Membership&&) noexcept = default;
Membership& Membership::operator=(Membership&&) noexcept = default;

void Membership::on_seed_discovered(Time now, const PeerAddress& seed) {
    auto& e = *engine_;
    if (seed.empty() || seed == e.self.address || e.leaving) return;
    if (std::find(e.seeds.begin(), e.seeds.end(), seed) == e.seeds.end()) {
        if (e.seeds.size() >= limits::kMaxSeeds) e.seeds.erase(e.seeds.begin());
        e.seeds.push_back(seed);
    }
    if (e.next_join_at == kNever) e.next_join_at = now + e.config.timers.join_retry_interval;
    if (e.live == 0) {
        e.send_join(now, seed);
        return;
    }
    // Already in a cluster: a live member there needs nothing; anyone else may belong to a group
    // that formed apart from ours, so exchange digests (both sides pass the news on).
    for (const detail::Member& m : e.members)
        if (m.live() && m.record.address == seed) return;
    e.start_sync(now, seed, std::nullopt);
}

void Membership::on_message(Time now, const PeerAddress& from, const DeviceId& sender,
                            std::span<const std::uint8_t> bytes) {
    engine_->on_message(now, from, sender, bytes);
}

void Membership::on_unreachable(Time now, const PeerAddress& to) { engine_->on_unreachable(now, to); }

void Membership::on_tick(Time now) { engine_->on_tick(now); }

void Membership::on_member_revoked(Time now, const DeviceId& id) {
    detail::Member* m = engine_->members.find(id);
    if (m == nullptr || m->state == MemberState::dead) return;
    engine_->set_state(now, *m, MemberState::dead);
    engine_->broadcasts.forget(id);  // its last record no longer verifies anywhere
    engine_->emit(PeerEventKind::revoked, *m);
}

void Membership::on_address_changed(Time, const PeerAddress& address) {
    if (address == engine_->self.address || engine_->leaving) return;
    engine_->self.address = address;
    engine_->refute(engine_->self.incarnation + 1);
}

void Membership::on_leave_requested(Time now) {
    auto& e = *engine_;
    if (e.leaving) return;
    e.leaving = true;
    e.probe.active = false;
    e.self.state = MemberState::left;
    e.refute(e.self.incarnation + 1);
    e.next_gossip_at = now;
    e.gossip(now);
}

Time Membership::next_wakeup() const { return engine_->next_wakeup(); }

std::vector<Action> Membership::take_actions() {
    engine_->queued_sends = 0;
    return std::exchange(engine_->actions, {});
}

const DeviceId& Membership::self() const { return engine_->self.id; }

std::vector<std::uint8_t> Membership::self_announcement() {
    detail::Message message;
    message.kind = detail::MessageKind::gossip;
    message.records.push_back(engine_->self);
    return engine_->codec.encode(message);
}
Incarnation Membership::incarnation() const { return engine_->self.incarnation; }

std::optional<MemberView> Membership::member(const DeviceId& id) const {
    const detail::Member* m = engine_->members.find(id);
    if (m == nullptr) return std::nullopt;
    return MemberView{m->id(), m->incarnation, m->state, m->record.address};
}

std::vector<MemberView> Membership::members() const {
    std::vector<MemberView> out;
    out.reserve(engine_->members.size());
    for (const detail::Member& m : engine_->members)
        out.push_back(MemberView{m.id(), m.incarnation, m.state, m.record.address});
    return out;
}

std::size_t Membership::live_count() const { return engine_->live; }
std::size_t Membership::alive_count() const { return engine_->live - engine_->suspicions.size(); }
std::uint32_t Membership::health_multiplier() const { return engine_->health.multiplier(); }
bool Membership::broadcasts_pending() const { return !engine_->broadcasts.empty(); }
bool Membership::has_left() const { return engine_->leaving; }
const Counters& Membership::counters() const { return engine_->counters; }

}  // namespace starling::membership

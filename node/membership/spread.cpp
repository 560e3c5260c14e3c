// How knowledge spreads: gossip of news to a few random peers, anti-entropy (digests, then the
// records each side lacks) with one random peer per period, joins through seeds, and pings to
// failed members so the two sides of a healed partition find each other.
#include <algorithm>
#include <cmath>

#include "node/membership/engine.hpp"
#include "protocol/set_summary.hpp"

namespace starling::membership::detail {

void Engine::pick_live(std::size_t count, const DeviceId* except, std::vector<const Member*>& out) {
    out.clear();
    const auto wanted = [&](const Member& m) {
        return m.live() && (except == nullptr || m.id() != *except) &&
               std::find(out.begin(), out.end(), &m) == out.end();
    };
    if (members.size() == 0) return;
    // Random draws first (cheap when most members are live), then a scan from a random start.
    for (std::size_t attempt = 0; attempt < 4 * count && out.size() < count; ++attempt) {
        const Member& m = members.at(static_cast<std::size_t>(rng.below(members.size())));
        if (wanted(m)) out.push_back(&m);
    }
    const std::size_t start = static_cast<std::size_t>(rng.below(members.size()));
    for (std::size_t i = 0; i < members.size() && out.size() < count; ++i) {
        const Member& m = members.at((start + i) % members.size());
        if (wanted(m)) out.push_back(&m);
    }
}

const Member* Engine::pick_dead() {
    if (dead == 0 || members.size() == 0) return nullptr;
    const std::size_t start = static_cast<std::size_t>(rng.below(members.size()));
    for (std::size_t i = 0; i < members.size(); ++i) {
        const Member& m = members.at((start + i) % members.size());
        if (m.state == MemberState::dead) return &m;
    }
    return nullptr;
}

void Engine::gossip(Time now) {
    next_gossip_at = now + config.timers.gossip_interval;
    std::vector<const Member*> peers;
    pick_live(config.timers.gossip_fanout, nullptr, peers);
    for (const Member* peer : peers) {
        if (broadcasts.empty()) break;
        outgoing.clear();
        outgoing.kind = MessageKind::gossip;
        send(peer->record.address, peer->id(), outgoing, true);
    }
}

Duration Engine::sync_interval() const {
    // memberlist's push/pull scaling: x1 up to 32 members, then one more per doubling.
    const double n = static_cast<double>(live + 1);
    const double scale = n <= 32.0 ? 1.0 : std::ceil(std::log2(n) - std::log2(32.0)) + 1.0;
    return config.timers.sync_interval * static_cast<int>(scale);
}

bool RateWindow::allow(Time now) {
    if (now - start >= std::chrono::seconds(1)) {
        start = now;
        used = 0;
    }
    if (used >= limit) return false;
    ++used;
    return true;
}

bool Engine::recently(RecentSenders& recent, Time now, const DeviceId& sender) {
    const auto cooldown = std::chrono::milliseconds(limits::kRecentSenderCooldownMilliseconds);
    for (const auto& [id, at] : recent.entries)
        if (id == sender && now - at < cooldown) return true;
    recent.entries[recent.next] = {sender, now};
    recent.next = (recent.next + 1) % recent.entries.size();
    return false;
}

void Engine::on_sender(Time now, const PeerAddress& from, const DeviceId& sender) {
    // A member talking to us that we do not know (gossip about it missed us) or hold failed (it
    // does not know): ask for its record, or tell it, so it refutes. Once a second per sender.
    if (sender == self.id || leaving) return;
    const Member* m = members.find(sender);
    if (m != nullptr && m->state != MemberState::dead) return;
    if (recently(introduced, now, sender)) return;
    outgoing.clear();
    outgoing.kind = MessageKind::sync;
    if (m == nullptr) {
        outgoing.wants.push_back(sender);
    } else {
        outgoing.accusations.push_back(accusation_of(*m));
    }
    send(from, sender, outgoing, false);
}

void Engine::append_state_of(const DeviceId& id, std::vector<SignedRecord>& records,
                             std::vector<Accusation>& accusations) const {
    if (id == self.id) {
        records.push_back(self);
        return;
    }
    const Member* m = members.find(id);
    if (m == nullptr) return;
    if (m->state != MemberState::dead) records.push_back(m->record);
    if (m->state == MemberState::suspect || m->state == MemberState::dead)
        accusations.push_back(accusation_of(*m));
}

void Engine::send_sync_entries(const PeerAddress& to, const std::optional<DeviceId>& device,
                               std::uint8_t flags, const std::vector<SignedRecord>& records,
                               const std::vector<Accusation>& accusations,
                               const std::vector<Digest>& digests,
                               const std::vector<DeviceId>& wants) {
    std::size_t r = 0, a = 0, d = 0, w = 0;
    bool first = true;
    while (first || r < records.size() || a < accusations.size() || d < digests.size() ||
           w < wants.size()) {
        outgoing.clear();
        outgoing.kind = MessageKind::sync;
        // Every datagram asks for the digests (any one may be lost); the receiver answers once.
        outgoing.sync_flags = flags;
        std::size_t budget = limits::kPacketPayloadBytes;
        const auto fill = [&budget](const auto& from, std::size_t& next, auto& into,
                                    std::size_t cost, std::size_t most) {
            while (next < from.size() && budget >= cost && into.size() < most) {
                into.push_back(from[next++]);
                budget -= cost;
            }
        };
        fill(records, r, outgoing.records, limits::kSignedRecordWireBytes,
             limits::kMaxRecordsPerMessage);
        fill(accusations, a, outgoing.accusations, limits::kAccusationWireBytes,
             limits::kMaxAccusationsPerMessage);
        fill(wants, w, outgoing.wants, limits::kIdWireBytes, limits::kMaxWantsPerMessage);
        fill(digests, d, outgoing.digests, limits::kDigestWireBytes, limits::kMaxDigestsPerMessage);
        send(to, device, outgoing, false);
        first = false;
    }
}

namespace {

std::uint64_t digest_hash(const Digest& d) {
    const std::uint64_t seed =
        mix64(d.incarnation ^ (std::uint64_t{static_cast<std::uint8_t>(d.state)} << 56));
    return element_hash(d.id, seed);
}

}  // namespace

std::uint64_t Engine::table_summary() const {
    // A sum of per-entry hashes: the same for the same set in any order. Records are signed,
    // so nobody can choose entries to collide; a random collision (2^-64) delays one exchange.
    std::uint64_t sum = digest_hash(Digest{self.id, self.incarnation, self.state});
    for (const Member& m : members) sum += digest_hash(m.digest());
    return sum;
}

void Engine::offer_summary(const PeerAddress& to, const DeviceId& device) {
    outgoing.clear();
    outgoing.kind = MessageKind::sync;
    outgoing.sync_flags = kSyncSummary;
    outgoing.summary = table_summary();
    send(to, device, outgoing, false);
}

void Engine::start_sync(Time, const PeerAddress& to, const std::optional<DeviceId>& device) {
    std::vector<Digest> digests;
    digests.reserve(members.size() + 1);
    digests.push_back(Digest{self.id, self.incarnation, self.state});
    for (const Member& m : members) digests.push_back(m.digest());
    send_sync_entries(to, device, kSyncReply, {}, {}, digests, {});
}

void Engine::on_sync(Time now, const PeerAddress& from, const DeviceId& sender, const Message& m) {
    std::vector<SignedRecord> records;
    std::vector<Accusation> accusations;
    if ((m.sync_flags & kSyncJoin) != 0) {
        // The joiner's record was merged above; answer with everything it cannot know, unless
        // that record did not verify (then the joiner is nobody to us).
        if (members.find(sender) == nullptr) return;
        if (!join_answers.allow(now)) {
            ++counters.replies_limited;
            return;
        }
        records.push_back(self);
        for (const Member& member : members)
            if (member.state != MemberState::dead) append_state_of(member.id(), records, accusations);
        // A joiner we hold dead (a restart that lost its incarnation) must hear it to refute.
        if (const Member* joiner = members.find(sender);
            joiner != nullptr && joiner->state == MemberState::dead)
            accusations.push_back(accusation_of(*joiner));
        send_sync_entries(from, sender, kSyncJoinAnswer, records, accusations, {}, {});
        return;
    }
    if ((m.sync_flags & kSyncSummary) != 0) {
        // Idle anti-entropy costs one small datagram when both tables agree; otherwise our
        // digests go back asking for the sender's, as a full exchange would have started.
        if (m.summary == table_summary()) {
            ++counters.summaries_matched;
            return;
        }
        if (recently(digest_replied, now, sender)) return;
        if (!digest_replies.allow(now)) {
            ++counters.replies_limited;
            return;
        }
        start_sync(now, from, sender);
        return;
    }
    for (const DeviceId& id : m.wants) append_state_of(id, records, accusations);
    std::vector<DeviceId> wants;
    for (const Digest& d : m.digests) {
        if (d.id == self.id) {
            if (is_newer(d.incarnation, d.state, self.incarnation, self.state)) wants.push_back(d.id);
            continue;
        }
        const Member* known = members.find(d.id);
        const bool usable = d.state == MemberState::alive || d.state == MemberState::suspect;
        if (known == nullptr ? usable
                             : is_newer(d.incarnation, d.state, known->incarnation, known->state))
            wants.push_back(d.id);
    }
    // We refuted something this packet said about us: the sender is the first to need it.
    if (self.incarnation != incarnation_before_message &&
        std::find_if(records.begin(), records.end(),
                     [&](const SignedRecord& r) { return r.id == self.id; }) == records.end())
        records.push_back(self);
    std::vector<Digest> digests;
    if ((m.sync_flags & kSyncReply) != 0 && !recently(digest_replied, now, sender)) {
        if (digest_replies.allow(now)) {
            digests.reserve(members.size() + 1);
            digests.push_back(Digest{self.id, self.incarnation, self.state});
            for (const Member& member : members) digests.push_back(member.digest());
        } else {
            ++counters.replies_limited;
        }
    }
    if (records.empty() && accusations.empty() && wants.empty() && digests.empty()) return;
    send_sync_entries(from, sender, 0, records, accusations, digests, wants);
}

void Engine::send_join(Time, const PeerAddress& seed) {
    outgoing.clear();
    outgoing.kind = MessageKind::sync;
    outgoing.sync_flags = kSyncJoin;
    outgoing.records.push_back(self);
    send(seed, std::nullopt, outgoing, false);
}

void Engine::retry_joins(Time now) {
    next_join_at = now + config.timers.join_retry_interval;
    if (live > 0 || leaving) return;
    for (const PeerAddress& seed : seeds) send_join(now, seed);
}

void Engine::reconnect(Time now) {
    const Member* target = pick_dead();
    if (target == nullptr) return;
    reconnect_ping = Reconnect{next_seq++, target->id(), now + config.timers.probe_interval};
    outgoing.clear();
    outgoing.kind = MessageKind::ping;
    outgoing.seq = reconnect_ping->seq;
    outgoing.target = target->id();
    send(target->record.address, target->id(), outgoing, false);
}

}  // namespace starling::membership::detail

// SWIM probing: one target per period in shuffled round-robin order, a direct ping, then k
// ping-reqs and a second ping, then suspicion. Lifeguard: acks and nacks feed local health, which
// stretches this node's own period and timeouts.
#include <algorithm>

#include "node/membership/engine.hpp"

namespace starling::membership::detail {

void Engine::add_to_probe_order(const DeviceId& id) {
    // At a random place, as memberlist does, so a newcomer is probed within one round.
    const std::size_t at = static_cast<std::size_t>(rng.below(probe_order.size() + 1));
    probe_order.insert(probe_order.begin() + static_cast<std::ptrdiff_t>(at), id);
    if (at < probe_cursor) ++probe_cursor;
}

bool Engine::next_probe_target(DeviceId& out) {
    for (int round = 0; round < 2; ++round) {
        while (probe_cursor < probe_order.size()) {
            const DeviceId id = probe_order[probe_cursor++];
            const Member* m = members.find(id);
            if (m != nullptr && m->live()) {
                out = id;
                return true;
            }
        }
        // End of a round: a fresh shuffled order of everyone live.
        probe_order.clear();
        for (const Member& m : members)
            if (m.live()) probe_order.push_back(m.id());
        rng.shuffle(std::span<DeviceId>(probe_order));
        probe_cursor = 0;
        if (probe_order.empty()) return false;
    }
    return false;
}

void Engine::start_probe(Time now) {
    const Timers& t = config.timers;
    next_probe_at = now + health.scale(t.probe_interval);
    DeviceId target{};
    if (!next_probe_target(target)) return;
    const Member& m = *members.find(target);
    probe = Probe{};
    probe.active = true;
    probe.target = target;
    probe.incarnation = m.incarnation;
    probe.address = m.record.address;
    probe.seq = next_seq++;
    probe.ack_deadline = now + health.scale(t.probe_timeout);
    probe.end = next_probe_at;

    outgoing.clear();
    outgoing.kind = MessageKind::ping;
    outgoing.seq = probe.seq;
    outgoing.target = target;
    // Lifeguard's buddy system: tell a suspect it is suspected, so it can refute at once.
    if (m.state == MemberState::suspect) outgoing.accusations.push_back(accusation_of(m));
    send(m.record.address, target, outgoing, true);
}

void Engine::on_probe_timers(Time now) {
    if (probe.active && !probe.indirect_sent && now >= probe.ack_deadline) send_indirect_probes(now);
    if (probe.active && now >= probe.end) finish_probe(now, false);
    if (!probe.active && now >= next_probe_at) start_probe(now);
}

void Engine::send_indirect_probes(Time) {
    probe.indirect_sent = true;
    std::vector<const Member*> helpers;
    pick_live(config.timers.indirect_probes, &probe.target, helpers);
    for (const Member* helper : helpers) {
        outgoing.clear();
        outgoing.kind = MessageKind::ping_req;
        outgoing.seq = probe.seq;
        outgoing.target = probe.target;
        outgoing.target_address = probe.address;
        send(helper->record.address, helper->id(), outgoing, true);
    }
    probe.expected_nacks = static_cast<std::uint32_t>(helpers.size());
    for (const Member* helper : helpers) probe.helpers[probe.helper_count++] = helper->id();
    // A second direct ping (memberlist sends it over TCP): a lost datagram is the likeliest cause.
    outgoing.clear();
    outgoing.kind = MessageKind::ping;
    outgoing.seq = probe.seq;
    outgoing.target = probe.target;
    send(probe.address, probe.target, outgoing, false);
}

void Engine::finish_probe(Time now, bool refused) {
    probe.active = false;
    Member* m = members.find(probe.target);
    if (!refused && m != nullptr && m->state == MemberState::alive &&
        now < m->since + config.timers.newcomer_grace) {
        ++counters.newcomer_probes_spared;
        return;
    }
    if (!refused) {
        // Helpers that did not even nack point at our own network (or our own slowness).
        const std::uint32_t missed = probe.expected_nacks == 0
                                         ? 1
                                         : probe.expected_nacks - std::min(probe.nacks, probe.expected_nacks);
        health.on_probe_failed(missed);
    }
    // Fresh news about the target while the probe ran (a refutation, a new address) wins.
    if (m == nullptr || !m->live() || m->incarnation != probe.incarnation) return;
    on_accusation(now, Accusation{m->id(), m->incarnation, MemberState::suspect, self.id, refused},
                  Via::gossip);
}

void Engine::on_ping(const PeerAddress& from, const DeviceId& sender, const Message& m) {
    if (m.target != self.id) {
        ++counters.not_for_us;  // an address now used by another device, or a confused peer
        return;
    }
    outgoing.clear();
    outgoing.kind = MessageKind::ack;
    outgoing.seq = m.seq;
    send(from, sender, outgoing, true);
}

void Engine::on_ping_req(Time now, const PeerAddress& from, const DeviceId& sender,
                         const Message& m) {
    if (m.target == self.id || m.target == sender) {
        ++counters.not_for_us;
        return;
    }
    if (relays.size() >= limits::kMaxPendingRelays) {
        ++counters.relays_full;
        return;
    }
    Relay relay;
    relay.seq = next_seq++;
    relay.target = m.target;
    relay.requester = from;
    relay.requester_id = sender;
    relay.requester_seq = m.seq;
    relay.deadline = now + health.scale(config.timers.probe_timeout);
    relays.push_back(relay);
    outgoing.clear();
    outgoing.kind = MessageKind::ping;
    outgoing.seq = relay.seq;
    outgoing.target = m.target;
    const Member* target = members.find(m.target);
    if (target != nullptr && target->state == MemberState::suspect)
        outgoing.accusations.push_back(accusation_of(*target));
    send(m.target_address, m.target, outgoing, true);
}

bool Probe::answered_by(const DeviceId& sender) const {
    if (sender == target) return true;
    return std::find(helpers.begin(), helpers.begin() + helper_count, sender) !=
           helpers.begin() + helper_count;
}

void Engine::on_ack(Time now, const DeviceId& sender, const Message& m) {
    if (probe.active && m.seq == probe.seq && probe.answered_by(sender)) {
        probe.active = false;
        health.on_probe_succeeded();
        return;
    }
    for (auto it = relays.begin(); it != relays.end(); ++it) {
        if (it->seq != m.seq || it->target != sender) continue;
        outgoing.clear();
        outgoing.kind = MessageKind::ack;
        outgoing.seq = it->requester_seq;
        send(it->requester, it->requester_id, outgoing, false);
        relays.erase(it);
        return;
    }
    if (reconnect_ping && m.seq == reconnect_ping->seq && reconnect_ping->target == sender) {
        const Member* target = members.find(reconnect_ping->target);
        if (target != nullptr) start_sync(now, target->record.address, target->id());
        reconnect_ping.reset();
        return;
    }
    // A late ack (the probe already ended) is normal; only a sequence never issued is not.
    if (m.seq >= next_seq) ++counters.unexpected;
}

void Engine::on_nack(const DeviceId& sender, const Message& m) {
    if (probe.active && m.seq == probe.seq && sender != probe.target && probe.answered_by(sender)) {
        ++probe.nacks;
        return;
    }
    if (m.seq >= next_seq) ++counters.unexpected;
}

void Engine::on_relay_timers(Time now) {
    for (std::size_t i = 0; i < relays.size();) {
        if (relays[i].deadline > now) {
            ++i;
            continue;
        }
        outgoing.clear();
        outgoing.kind = MessageKind::nack;
        outgoing.seq = relays[i].requester_seq;
        send(relays[i].requester, relays[i].requester_id, outgoing, false);
        relays[i] = relays.back();
        relays.pop_back();
    }
    if (reconnect_ping && reconnect_ping->deadline <= now) reconnect_ping.reset();
}

void Engine::on_unreachable(Time now, const PeerAddress& to) {
    // Only our own probe's target counts: the host said no process listens there any more.
    if (!probe.active || to != probe.address) return;
    finish_probe(now, true);
}

}  // namespace starling::membership::detail

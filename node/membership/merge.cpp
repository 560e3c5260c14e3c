// Applying what peers say: signed self-records (alive, left) override by incarnation; accusations
// open or confirm suspicions, which time out into failures unless the member refutes them by
// raising its incarnation. Statements about this node are refuted here.
#include <algorithm>

#include "node/membership/engine.hpp"

namespace starling::membership::detail {

bool Engine::verify(const SignedRecord& record) {
    if (authenticator.verify(record.id, signed_record_message(record), record.signature)) return true;
    ++counters.unverifiable;
    return false;
}

void Engine::sign_self() { self.signature = authenticator.sign(signed_record_message(self)); }

void Engine::refute(Incarnation at_least) {
    self.incarnation = std::max(self.incarnation + 1, at_least);
    sign_self();
    actions.emplace_back(IncarnationChanged{self.incarnation});
    broadcasts.push(self);
}

Accusation Engine::accusation_of(const Member& m) const {
    return Accusation{m.id(), m.incarnation, m.state, m.accuser, m.refused};
}

void Engine::set_state(Time now, Member& m, MemberState state) {
    if (m.live()) --live;
    if (m.state == MemberState::dead) --dead;
    if (m.state == MemberState::suspect) {
        suspicion_deadlines.erase({m.deadline, m.id()});
        if (const auto it = suspicions.find(m.id()); it != suspicions.end())
            suspicion_queries.erase({it->second.next_query, m.id()});
        suspicions.erase(m.id());
        m.deadline = kNever;
    }
    m.state = state;
    m.since = now;
    if (m.live()) ++live;
    if (m.state == MemberState::dead) ++dead;
}

void Engine::on_record(Time now, const SignedRecord& r, Via via) {
    if (r.id == self.id) {
        // A record signed with our key that this run did not make: a previous run's, whose
        // incarnation was not persisted. Move past it, or peers keep the old one.
        if (!leaving && (r.incarnation > self.incarnation ||
                         (r.incarnation == self.incarnation &&
                          (r.address != self.address || r.state != self.state))) &&
            verify(r))
            refute(r.incarnation + 1);
        return;
    }
    Member* m = members.find(r.id);
    if (m == nullptr) {
        if (r.state == MemberState::left) return;  // never learn a member only to see it go
        if (members.size() >= config.max_members) {
            ++counters.table_full;
            return;
        }
        if (!verify(r)) return;
        Member fresh;
        fresh.record = r;
        fresh.incarnation = r.incarnation;
        fresh.state = MemberState::alive;
        fresh.since = now;
        Member& added = members.add(std::move(fresh));
        ++live;
        add_to_probe_order(r.id);
        emit(PeerEventKind::up, added);
        if (via != Via::join_answer) broadcasts.push(r);
        return;
    }
    if (r.incarnation < m->record.incarnation ||
        (r.incarnation == m->record.incarnation && !is_newer(r.incarnation, r.state,
                                                             m->record.incarnation, m->record.state)))
        return;  // old news; checked before the costly signature
    if (r.state == MemberState::left) {
        if (r.incarnation < m->incarnation || m->state == MemberState::left || !verify(r)) return;
        m->record = r;
        m->incarnation = r.incarnation;
        set_state(now, *m, MemberState::left);
        emit(PeerEventKind::left, *m);
        if (via != Via::join_answer) broadcasts.push(r);
        return;
    }
    // A signed leave is final for its incarnation; a later start raises the incarnation.
    if (m->state == MemberState::left && r.incarnation <= m->incarnation) return;
    if (!verify(r)) return;
    const PeerAddress old_address = m->record.address;
    const MemberState old_state = m->state;
    m->record = r;
    if (r.incarnation > m->incarnation) {
        m->incarnation = r.incarnation;
        set_state(now, *m, MemberState::alive);
        if (old_state != MemberState::alive) emit(PeerEventKind::up, *m);
    }
    // else: an accusation at this incarnation arrived first and still stands; keep the address.
    if (old_address != r.address) {
        emit(PeerEventKind::address_changed, *m);
        if (probe.active && probe.target == r.id) probe.address = r.address;
    }
    if (via != Via::join_answer) broadcasts.push(r);
}

void Engine::on_accusation(Time now, const Accusation& a, Via via) {
    Accusation accusation = a;
    // memberlist's rule: a death heard through anti-entropy only raises a suspicion, so the
    // accused gets a chance to refute (it matters after a partition heals).
    if (via != Via::gossip && accusation.state == MemberState::dead)
        accusation.state = MemberState::suspect;
    if (accusation.id == self.id) {
        if (!leaving && accusation.incarnation >= self.incarnation) {
            health.on_suspected_self();
            refute(accusation.incarnation + 1);
        }
        return;
    }
    Member* m = members.find(accusation.id);
    if (m == nullptr || m->state == MemberState::left || accusation.incarnation < m->incarnation)
        return;
    if (m->state == MemberState::dead) {
        // Died again at a newer incarnation (so it had come back meanwhile): remember the newer
        // one. A suspicion at a newer incarnation must not: the revival record would look old.
        if (accusation.state == MemberState::dead) m->incarnation = accusation.incarnation;
        return;
    }
    if (accusation.state == MemberState::dead) {
        declare_dead(now, *m, accusation);
        if (via != Via::join_answer) broadcasts.push(accusation_of(*m));
        return;
    }
    if (m->state == MemberState::alive || accusation.incarnation > m->incarnation) {
        suspect(now, *m, accusation);
        if (via != Via::join_answer) broadcasts.push(accusation);
        return;
    }
    // Suspect at this incarnation already: an independent confirmation shortens the timeout.
    Suspicion& suspicion = suspicions.at(m->id());
    if (suspicion.on_accused(accusation.accuser, accusation.refused)) {
        m->refused = suspicion.refused();
        schedule_suspicion(now, *m);
        if (via != Via::join_answer) broadcasts.push(accusation);
    }
}

void Engine::suspect(Time now, Member& m, const Accusation& a) {
    set_state(now, m, MemberState::suspect);
    m.incarnation = a.incarnation;
    m.accuser = a.accuser;
    m.refused = a.refused;
    suspicions.insert_or_assign(m.id(), Suspicion(now, a.accuser, a.refused));
    schedule_suspicion(now, m);
    emit(PeerEventKind::suspect, m);
}

void Engine::schedule_suspicion(Time now, Member& m) {
    const Timers& t = config.timers;
    const std::size_t n = live + 1;
    const std::uint32_t expected =
        n > 2 ? std::min<std::uint32_t>(t.confirmations, static_cast<std::uint32_t>(n - 2)) : 0;
    Suspicion& suspicion = suspicions.at(m.id());
    const bool refused = suspicion.refused();
    const Duration timeout = suspicion_timeout(
        refused ? t.refused_suspicion_min : t.suspicion_min,
        refused ? t.refused_suspicion_max : t.suspicion_max, suspicion.confirmations(),
        std::min<std::uint32_t>(expected, limits::kMaxSuspicionAccusers - 1));
    suspicion_deadlines.erase({m.deadline, m.id()});
    m.deadline = suspicion.started() + timeout;
    suspicion_deadlines.insert({m.deadline, m.id()});
    schedule_query(now, m, suspicion);
}

void Engine::schedule_query(Time now, const Member& m, Suspicion& suspicion) {
    suspicion_queries.erase({suspicion.next_query, m.id()});
    suspicion.next_query = kNever;
    if (suspicion.queries_sent >= limits::kMaxSuspicionQueries) return;
    // Two probe periods in (a refutation that missed us should not linger for the whole
    // timeout), then every period until the deadline.
    const Duration period = config.timers.probe_interval;
    const Time next = suspicion.started() + period * (2 + static_cast<int>(suspicion.queries_sent));
    if (next >= m.deadline) return;
    suspicion.next_query = std::max(now, next);
    suspicion_queries.insert({suspicion.next_query, m.id()});
}

void Engine::declare_dead(Time now, Member& m, const Accusation& a) {
    set_state(now, m, MemberState::dead);
    m.incarnation = a.incarnation;
    m.accuser = a.accuser;
    m.refused = a.refused;
    if (reconnect_ping && reconnect_ping->target == m.id()) reconnect_ping.reset();
    emit(PeerEventKind::failed, m);
}

void Engine::on_suspicion_timers(Time now) {
    // Ask the suspect itself, in case its refutation missed us.
    while (!suspicion_queries.empty() && suspicion_queries.begin()->first <= now) {
        const DeviceId id = suspicion_queries.begin()->second;
        suspicion_queries.erase(suspicion_queries.begin());
        Member* m = members.find(id);
        const auto it = suspicions.find(id);
        if (m == nullptr || it == suspicions.end()) continue;
        it->second.next_query = kNever;
        ++it->second.queries_sent;
        outgoing.clear();
        outgoing.kind = MessageKind::sync;
        outgoing.wants.push_back(id);
        send(m->record.address, id, outgoing, false);
        schedule_query(now, *m, it->second);
    }
    while (!suspicion_deadlines.empty() && suspicion_deadlines.begin()->first <= now) {
        Member* m = members.find(suspicion_deadlines.begin()->second);
        if (m == nullptr) {  // cannot happen: removal clears the deadline first
            suspicion_deadlines.erase(suspicion_deadlines.begin());
            continue;
        }
        const bool refused = m->refused;
        declare_dead(now, *m, Accusation{m->id(), m->incarnation, MemberState::dead, self.id, refused});
        broadcasts.push(accusation_of(*m));
    }
}

void Engine::reap(Time now) {
    const Timers& t = config.timers;
    std::vector<DeviceId> gone;
    for (const Member& m : members) {
        if ((m.state == MemberState::dead && now - m.since >= t.dead_retention) ||
            (m.state == MemberState::left && now - m.since >= t.left_retention))
            gone.push_back(m.id());
    }
    for (const DeviceId& id : gone) {
        Member* m = members.find(id);
        set_state(now, *m, MemberState::left);  // keeps the live and dead counts right
        broadcasts.forget(id);
        members.remove(id);
    }
}

}  // namespace starling::membership::detail

// How a node finds its cluster: beacons (multicast while looking, answered by a few members;
// straight to seeds and last known peers), and certificates fetched from the member that
// mentioned a device this node has no certificate for yet.

#include <algorithm>

#include "node/runtime/node_impl.hpp"

namespace starling::runtime {

void Node::Impl::discovery_tick(Time now) {
    const BeaconSchedule::Due due = beacons.on_tick(now, alone(), rng);
    const std::uint8_t flags = alone() ? kBeaconSeeking : 0;
    if (due.multicast && options.beacon_group) beacon_to(*options.beacon_group, flags);
    if (due.direct)
        for (const net::Ipv4Endpoint& target : direct_targets)
            beacon_to(target, flags | kBeaconAnswerMe);
}

void Node::Impl::beacon_to(const net::Ipv4Endpoint& to, std::uint8_t flags) {
    ++stats.beacons_sent;
    if (to != options.beacon_group) flags |= kBeaconDirect;
    seal_and_send(to, std::nullopt, encode_beacon({flags, options.advertise, own_certificate_bytes,
                                                   leaving ? std::vector<std::uint8_t>{}
                                                           : core.self_announcement()}));
}

void Node::Impl::introduce(const net::Ipv4Endpoint& to) {
    const Time now = clock.now();
    std::erase_if(introduced, [now](const auto& e) { return now >= e.second + kIntroductionInterval; });
    if (introduced.size() >= kMaxIntroductions || !introduced.emplace(to, now).second) return;
    beacon_to(to, (alone() ? kBeaconSeeking : 0) | kBeaconIntroduction);
}

void Node::Impl::on_discovery(const net::Ipv4Endpoint& from, const crypto::DeviceId& sender,
                              std::span<const std::uint8_t> plaintext) {
    Result<DiscoveryMessage> m = decode_discovery(plaintext);
    if (!m) {
        ++stats.discovery_malformed;
        return;
    }
    switch (m->kind) {
        case DiscoveryKind::beacon:
            return on_beacon(sender, m->beacon);
        case DiscoveryKind::certificate_request:
            return on_certificate_request(sender, from, m->wants);
        case DiscoveryKind::certificates:
            return on_certificates(m->certificates);
        case DiscoveryKind::revocations:
            return on_revocations(sender, m->revocations);
        case DiscoveryKind::revocation_summary:
            return on_revocation_summary(sender, from, m->summary, m->summary_flags);
    }
}

void Node::Impl::on_beacon(const crypto::DeviceId& sender, const Beacon& beacon) {
    Result<crypto::Certificate> cert = crypto::decode_certificate(beacon.certificate);
    if (!cert || cert->device != sender || peers.learn(*cert) == PeerTable::Learned::refused) {
        ++stats.certificates_refused;
        return;
    }
    const Time now = clock.now();
    release_parked(now);
    if ((beacon.flags & kBeaconIntroduction) != 0) return;  // its message follows
    const bool seeking = (beacon.flags & kBeaconSeeking) != 0;
    if (!seeking) {
        beacons.on_beacon_heard();
        if (alone()) beacons.on_answer_heard(now);  // we join through it
        // Only a beacon sent to us answers ours: its sender took our certificate from it. A
        // member's LAN beacon may come from one that missed ours.
        if (alone() && (beacon.flags & kBeaconDirect) != 0) {
            std::erase_if(answered_by,
                          [now](const auto& e) { return now >= e.second.second + kAnswerMemory; });
            if (answered_by.size() < kMaxIntroductions || answered_by.contains(beacon.address))
                answered_by.insert_or_assign(beacon.address, std::pair{sender, now});
        }
    }
    // A newcomer's LAN beacon is answered by `answerers` members, a direct one always.
    const bool answer = (beacon.flags & kBeaconAnswerMe) != 0 ||
                        (seeking && !alone() && among_answerers(sender));
    if (answer) {
        if (answers.admit(now))
            beacon_to(beacon.address, alone() ? kBeaconSeeking : 0);
        else
            ++stats.answers_limited;
    }
    // Join through a node this one does not know as live, or exchange digests with it: always
    // when alone or told directly (an answer, an introduction); for a LAN beacon from a member,
    // only the few members its rendezvous hash ranks first (not every member at once); never for
    // a newcomer's LAN beacon, which joins through its answers instead.
    const std::optional<membership::MemberView> known = core.member(sender);
    const bool live = known && (known->state == membership::MemberState::alive ||
                                known->state == membership::MemberState::suspect);
    const bool direct = (beacon.flags & kBeaconDirect) != 0;
    const bool through = alone() || (!seeking && (direct || among_answerers(sender)));
    if (live) return;
    if (through) return core.on_seed_discovered(now, to_peer_address(beacon.address));
    // A member hears of a newcomer from its beacon's signed record (verified by the core),
    // rather than from the answerers' gossip later. (A node still alone joins instead: a first
    // member known this way would end its join before it heard of the rest.)
    if (!beacon.record.empty() && !alone())
        core.on_message(now, to_peer_address(beacon.address), sender, beacon.record);
}

std::optional<crypto::DeviceId> Node::Impl::answerer_at(const net::Ipv4Endpoint& address) const {
    const auto it = answered_by.find(address);
    if (it == answered_by.end() || clock.now() >= it->second.second + kAnswerMemory) return std::nullopt;
    return it->second.first;
}

bool Node::Impl::among_answerers(const crypto::DeviceId& newcomer) const {
    const std::uint64_t mine = answerer_key(newcomer, own.device);
    std::uint32_t ahead = 0;
    for (const membership::MemberView& m : core.members()) {
        const bool live = m.state == membership::MemberState::alive ||
                          m.state == membership::MemberState::suspect;
        if (live && m.id != newcomer && answerer_key(newcomer, m.id) < mine &&
            ++ahead >= options.discovery.answerers)
            return false;
    }
    return true;
}

void Node::Impl::on_certificate_request(const crypto::DeviceId& sender,
                                        const net::Ipv4Endpoint& from,
                                        std::span<const crypto::DeviceId> wants) {
    (void)send_certificates(from, sender, wants);
}

void Node::Impl::push_certificates(const net::Ipv4Endpoint& to, const crypto::DeviceId& joiner) {
    std::vector<crypto::DeviceId> ids;
    for (const membership::MemberView& m : core.members())
        if (m.id != joiner && (m.state == membership::MemberState::alive ||
                               m.state == membership::MemberState::suspect))
            ids.push_back(m.id);
    if (send_certificates(to, joiner, ids)) ++stats.certificates_pushed;
}

bool Node::Impl::send_certificates(const net::Ipv4Endpoint& to, const crypto::DeviceId& device,
                                   std::span<const crypto::DeviceId> ids) {
    if (ids.empty()) return false;
    if (!certificate_answers.admit(clock.now())) {
        ++stats.answers_limited;
        return false;
    }
    std::vector<std::vector<std::uint8_t>> certificates;
    for (const crypto::DeviceId& id : ids)
        if (const crypto::Certificate* cert = peers.find(id))
            certificates.push_back(crypto::encode_certificate(*cert));
    for (std::size_t first = 0; first < certificates.size();) {
        std::size_t packed = 0;
        const std::vector<std::uint8_t> answer = encode_certificates(certificates, first, packed);
        if (packed == 0) break;
        seal_and_send(to, device, answer);
        first += packed;
    }
    return true;
}

void Node::Impl::on_certificates(std::span<const std::vector<std::uint8_t>> certificates) {
    for (const std::vector<std::uint8_t>& bytes : certificates)
        if (peers.learn(bytes) == PeerTable::Learned::refused) ++stats.certificates_refused;
    release_parked(clock.now());
}

std::vector<crypto::DeviceId> Node::Impl::missing_signers(std::span<const std::uint8_t> bytes) {
    std::vector<crypto::DeviceId> missing;
    if (codec.decode(bytes, scratch) != membership::detail::DecodeStatus::ok)
        return missing;  // the core counts it
    for (const membership::SignedRecord& r : scratch.records)
        if (peers.find(r.id) == nullptr && !peers.is_revoked(r.id) &&
            std::find(missing.begin(), missing.end(), r.id) == missing.end())
            missing.push_back(r.id);
    return missing;
}

void Node::Impl::park(Parked message) {
    const Time now = clock.now();
    ++stats.parked;
    if (parked.size() >= kMaxParkedMessages) {  // the oldest goes in as it is
        Parked& oldest = parked.front();
        core.on_message(now, oldest.from, oldest.sender, oldest.bytes);
        parked.pop_front();
    }
    if (auto from = to_endpoint(message.from))
        request_certificates(*from, message.sender, message.missing);
    message.retry = now + kCertificateRequestRetry;
    parked.push_back(std::move(message));
}

// Asks `holder` (a member that has them: it mentioned them) for certificates not asked for
// within kCertificateRequestRetry.
void Node::Impl::request_certificates(const net::Ipv4Endpoint& from, const crypto::DeviceId& holder,
                                      std::span<const crypto::DeviceId> ids) {
    const Time now = clock.now();
    std::erase_if(requested, [now](const auto& r) { return now >= r.second + kCertificateRequestRetry; });
    std::vector<crypto::DeviceId> wants;
    for (const crypto::DeviceId& id : ids)
        if (wants.size() < kMaxWantsPerRequest && requested.size() < kMaxKnownCertificates &&
            requested.emplace(id, now).second)
            wants.push_back(id);
    if (wants.empty()) return;
    ++stats.certificate_requests;
    seal_and_send(from, holder, encode_certificate_request(wants));
}

// A datagram from a device whose certificate this node lacks (it heard of us before we heard of
// it): hold it and ask a live member for that certificate. The sender id is unauthenticated, so
// it is only a name to look up; nothing is sent to the datagram's source.
void Node::Impl::on_unknown_sender(const net::Ipv4Endpoint& from,
                                   std::span<const std::uint8_t> datagram) {
    const DatagramResult<DatagramHeader> header = parse_datagram_header(datagram);
    if (!header) return;
    crypto::DeviceId sender{};
    std::copy(header->sender.begin(), header->sender.end(), sender.begin());
    if (peers.is_revoked(sender)) {
        ++stats.revoked_refused;
        return;
    }
    if (alone()) return;
    const Time now = clock.now();
    if (held.size() >= kMaxHeldDatagrams) {  // the oldest gives way
        ++stats.held_expired;
        held.pop_front();
    }
    ++stats.held;
    held.push_back({now + kHeldWait, from, sender, {datagram.begin(), datagram.end()}});
    const std::vector<membership::MemberView> members = core.members();
    std::vector<const membership::MemberView*> live;
    for (const membership::MemberView& m : members)
        if (m.state == membership::MemberState::alive) live.push_back(&m);
    if (live.empty()) return;
    const membership::MemberView& holder = *live[rng.below(live.size())];
    if (auto to = to_endpoint(holder.address)) request_certificates(*to, holder.id, std::span(&sender, 1));
}

// Held datagrams whose sender's certificate has come are opened as if they arrived now (the
// replay window and every check apply then); those past their wait are dropped, counted.
void Node::Impl::open_held(Time now) {
    std::vector<Held> ready;
    for (auto it = held.begin(); it != held.end();) {
        const bool known = peers.find(it->sender) != nullptr;
        if (!known && now < it->deadline) {
            ++it;
            continue;
        }
        if (known) ready.push_back(std::move(*it));
        else ++stats.held_expired;
        it = held.erase(it);
    }
    for (const Held& h : ready) on_datagram(h.from, h.datagram);
}

void Node::Impl::release_parked(Time now) {
    auto ready = [this](const Parked& p) {
        return std::all_of(p.missing.begin(), p.missing.end(), [this](const crypto::DeviceId& id) {
            return peers.find(id) != nullptr || peers.is_revoked(id);
        });
    };
    for (auto it = parked.begin(); it != parked.end();) {
        const bool complete = ready(*it);
        if (!complete && now < it->deadline) {
            if (now >= it->retry) {  // the request or its answer was lost: ask again
                it->retry = now + kCertificateRequestRetry;
                std::erase_if(it->missing, [this](const crypto::DeviceId& id) {
                    return peers.find(id) != nullptr || peers.is_revoked(id);
                });
                if (auto from = to_endpoint(it->from)) request_certificates(*from, it->sender, it->missing);
            }
            ++it;
            continue;
        }
        if (!complete) ++stats.parked_expired;
        Parked p = std::move(*it);
        it = parked.erase(it);
        core.on_message(now, p.from, p.sender, p.bytes);
    }
}

}  // namespace starling::runtime

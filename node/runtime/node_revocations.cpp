// Revocations spread by gossip: the owner signs each, so any member may pass one on. A node that
// learns a new one (from the operator, a peer, or its state directory at start) verifies it,
// refuses the device from then on, marks it revoked in the membership core, keeps the file in
// its state directory and passes it on to a few random members; a hash of the revoked ids, sent
// to one random member per interval, lets a node that missed one catch up.

#include <algorithm>

#include "crypto/cluster.hpp"
#include "node/runtime/node_impl.hpp"
#include "protocol/set_summary.hpp"

namespace starling::runtime {

std::uint64_t Node::Impl::revocation_summary() const {
    std::uint64_t sum = 0;  // a sum: the same for the same set in any order
    for (const auto& entry : revocations) sum += element_hash(entry.first);
    return sum;
}

Result<bool> Node::Impl::accept_revocation(std::span<const std::uint8_t> bytes,
                                           const std::optional<crypto::DeviceId>& from,
                                           bool persist) {
    Result<crypto::Revocation> r = crypto::decode_revocation(bytes);
    if (!r) {
        ++stats.revocations_refused;
        return r.error();
    }
    if (revocations.contains(r->device)) return false;  // before the signature check: cheap
    if (Status s = crypto::verify_revocation(*r, owner, cluster); !s) {
        ++stats.revocations_refused;
        return s.error();
    }
    if (persist) {
        const std::string file = crypto::to_hex(r->device) + ".revoked";
        if (Status s = crypto::save_revocation(*r, state.path() / file, {.overwrite = true}); !s) {
            ++stats.revocations_unsaved;
            log("cannot keep the revocation of " + r->name + ": " + s.error().message);
        }
    }
    if (r->device == own.device) {
        fatal("this device '" + own.name + "' was revoked by the cluster's owner");
        return true;
    }
    if (Status s = peers.revoke(*r); !s) {  // the revocation table is full
        ++stats.revocations_refused;
        return s.error();
    }
    ++stats.revocations_accepted;
    const std::vector<std::uint8_t> canonical = crypto::encode_revocation(*r);
    revocations.emplace(r->device, canonical);
    std::erase_if(held, [&r](const Held& h) { return h.sender == r->device; });
    core.on_member_revoked(clock.now(), r->device);
    log("revocation accepted for " + r->name + " device " + crypto::to_hex(r->device));
    // Passed on once, to a few random live members other than the sender and the revoked.
    std::vector<membership::MemberView> targets;
    for (const membership::MemberView& m : core.members())
        if ((m.state == membership::MemberState::alive || m.state == membership::MemberState::suspect) &&
            m.id != r->device && (!from || m.id != *from))
            targets.push_back(m);
    const std::size_t fanout = std::min(targets.size(), kRevocationFanout);
    std::size_t packed = 0;
    const std::vector<std::uint8_t> message =
        encode_revocations(std::span(&canonical, 1), 0, packed);
    for (std::size_t i = 0; i < fanout; ++i) {
        std::swap(targets[i], targets[i + rng.below(targets.size() - i)]);
        if (auto to = to_endpoint(targets[i].address)) {
            ++stats.revocations_sent;
            seal_and_send(*to, targets[i].id, message);
        }
    }
    next_revocation_sync = std::min(next_revocation_sync, clock.now() + kRevocationFollowUp);
    return true;
}

void Node::Impl::on_revocations(const crypto::DeviceId& sender,
                                std::span<const std::vector<std::uint8_t>> list) {
    for (const std::vector<std::uint8_t>& bytes : list)
        (void)accept_revocation(bytes, sender, true);  // a refusal is counted there
}

void Node::Impl::on_revocation_summary(const crypto::DeviceId& sender, const net::Ipv4Endpoint& from,
                                       std::uint64_t summary, std::uint8_t flags) {
    const std::uint64_t mine = revocation_summary();
    if (summary == mine) return;
    if (!revocation_answers.admit(clock.now())) {
        ++stats.answers_limited;
        return;
    }
    send_revocations(sender, from);
    // The sender may hold some we lack: our summary goes back, as an answer (not answered).
    if ((flags & kSummaryAnswer) == 0)
        seal_and_send(from, sender, encode_revocation_summary(mine, kSummaryAnswer));
}

void Node::Impl::send_revocations(const crypto::DeviceId& device, const net::Ipv4Endpoint& to) {
    if (revocations.empty()) return;
    std::vector<std::vector<std::uint8_t>> list;
    list.reserve(std::min(revocations.size(), kMaxRevocationsPerExchange));
    // A window of the set, going on from where the last answer stopped.
    auto it = revocations.begin();
    std::advance(it, static_cast<std::ptrdiff_t>(revocation_cursor % revocations.size()));
    for (std::size_t n = 0; n < std::min(revocations.size(), kMaxRevocationsPerExchange); ++n) {
        list.push_back(it->second);
        if (++it == revocations.end()) it = revocations.begin();
    }
    revocation_cursor += list.size();
    for (std::size_t first = 0; first < list.size();) {
        std::size_t packed = 0;
        const std::vector<std::uint8_t> message = encode_revocations(list, first, packed);
        if (packed == 0) break;
        ++stats.revocations_sent;
        seal_and_send(to, device, message);
        first += packed;
    }
}

void Node::Impl::revocation_tick(Time now) {
    if (alone()) revocations_offered = false;
    // Once right after joining (a node that was away catches up at once), then each interval,
    // only while this node holds revocations: none in the cluster, no traffic.
    const bool joined = !alone() && !revocations_offered;
    if (!joined && now < next_revocation_sync) return;
    if (!joined) next_revocation_sync = now + kRevocationSyncInterval;
    if (!joined && revocations.empty()) return;
    revocations_offered = true;
    std::vector<membership::MemberView> live;
    for (const membership::MemberView& m : core.members())
        if (m.state == membership::MemberState::alive) live.push_back(m);
    if (live.empty()) return;
    const membership::MemberView& peer = live[rng.below(live.size())];
    if (auto to = to_endpoint(peer.address))
        seal_and_send(*to, peer.id, encode_revocation_summary(revocation_summary(), 0));
}

Result<bool> Node::revoke(std::span<const std::uint8_t> revocation) {
    Impl& n = *impl_;
    if (n.failed) return make_error(ErrorCode::invalid_argument, "the node has stopped");
    Result<bool> added = n.accept_revocation(revocation, std::nullopt, true);
    if (!n.failed && n.started) {
        n.perform_actions();
        n.reschedule();
    }
    return added;
}

}  // namespace starling::runtime

// The node's event handlers: datagrams in (open, route, feed the core), the core's actions out
// (seal, send, log, persist), one timer for everything, and the graceful leave.

#include "node/runtime/node.hpp"

#include <algorithm>
#include <cstdio>
#include <utility>
#include <variant>

#include "crypto/sodium.hpp"
#include "node/runtime/node_impl.hpp"

namespace starling::runtime {
namespace {

template <class... Fs>
struct Overloaded : Fs... {
    using Fs::operator()...;
};
template <class... Fs>
Overloaded(Fs...) -> Overloaded<Fs...>;

// The timer is re-armed at least this often, so nothing depends on a far-away deadline.
constexpr Duration kMaxTimerDelay = 10s;
// Direct beacon targets: seeds first, then last known peers.
constexpr std::size_t kMaxDirectTargets = 32;

membership::Config core_config(const crypto::Certificate& own, const NodeOptions& options,
                               const StateDir& state) {
    membership::Config config;
    config.self = own.device;
    config.address = to_peer_address(options.advertise);
    config.last_incarnation = state.record().incarnation;
    config.timers = options.timers;
    return config;
}

std::uint64_t random_seed() {
    std::uint64_t seed = 0;
    crypto::random_bytes(std::span(reinterpret_cast<std::uint8_t*>(&seed), sizeof seed));
    return seed;
}

void add_target(std::vector<net::Ipv4Endpoint>& targets, const net::Ipv4Endpoint& e,
                const net::Ipv4Endpoint& self) {
    if (e == self || targets.size() >= kMaxDirectTargets ||
        std::find(targets.begin(), targets.end(), e) != targets.end())
        return;
    targets.push_back(e);
}

}  // namespace

membership::PeerAddress to_peer_address(const net::Ipv4Endpoint& e) {
    return membership::PeerAddress::ipv4(e.ip, e.port);
}

std::optional<net::Ipv4Endpoint> to_endpoint(const membership::PeerAddress& a) {
    if (a.kind() != membership::PeerAddress::Kind::ipv4) return std::nullopt;
    net::Ipv4Endpoint e;
    std::copy_n(a.bytes().begin(), e.ip.size(), e.ip.begin());
    e.port = a.port();
    return e;
}

const crypto::SymmetricKey* RingEpochs::network_key(std::uint32_t epoch,
                                                    std::uint64_t now) const noexcept {
    const crypto::NetworkKeyEpoch* e = ring_.accept(epoch, now);
    return e == nullptr ? nullptr : &e->key;
}

Node::Impl::Impl(crypto::EnrollmentBundle bundle, StateDir state_dir, net::Transport& net_transport,
                 const Clock& node_clock, Alarm& node_alarm, NodeOptions node_options,
                 LogSink sink, std::uint32_t boot, std::uint64_t rng_seed)
    : cluster(bundle.cluster),
      owner(bundle.owner_key),
      own(bundle.certificate),
      own_certificate_bytes(crypto::encode_certificate(bundle.certificate)),
      sign{bundle.certificate.sign_key, std::move(bundle.sign_secret)},
      kx{bundle.certificate.kx_key, std::move(bundle.kx_secret)},
      ring(std::move(bundle.network_keys)),
      state(std::move(state_dir)),
      transport(net_transport),
      clock(node_clock),
      alarm(node_alarm),
      options(std::move(node_options)),
      log_sink(std::move(sink)),
      peers(cluster, owner, own, sign, clock),
      sealer(crypto::LocalDevice{cluster, own.device, &kx, &sign}, epochs, peers),
      counter(boot),
      rng(rng_seed),
      core(core_config(own, options, state), peers, model::Rng(rng_seed + 1), clock.now()),
      beacons(options.discovery, clock.now()),
      answers(options.discovery.answers_per_second, 1s),
      certificate_answers(options.discovery.certificate_answers_per_second, 1s) {}

Result<std::unique_ptr<Node>> Node::create(crypto::EnrollmentBundle bundle, StateDir state,
                                           net::Transport& transport, const Clock& clock,
                                           Alarm& alarm, NodeOptions options, LogSink log) {
    crypto::ensure_initialized();
    std::vector<std::string> refused;
    const std::vector<crypto::Revocation> revocations =
        state.load_revocations(bundle.owner_key, bundle.cluster, refused);
    for (const crypto::Revocation& r : revocations)
        if (r.device == bundle.certificate.device)
            return make_error(ErrorCode::invalid_argument,
                              "this device '" + bundle.certificate.name +
                                  "' is revoked: it cannot rejoin without a new enrollment");
    Result<std::vector<KnownPeer>> known = state.load_peers();
    Result<std::uint32_t> boot = state.begin_boot();  // persisted before any datagram is sealed
    if (!boot) return boot.error();
    const std::uint64_t seed = options.rng_seed != 0 ? options.rng_seed : random_seed();
    auto impl = std::make_unique<Impl>(std::move(bundle), std::move(state), transport, clock, alarm,
                                       std::move(options), std::move(log), *boot, seed);
    for (const std::string& why : refused) impl->log("ignoring revocation " + why);
    for (const crypto::Revocation& r : revocations) {
        if (Status s = impl->peers.revoke(r); !s) {
            impl->log("revocation refused: " + s.error().message);
            continue;
        }
        impl->revocations.emplace(r.device, crypto::encode_revocation(r));  // spread too
    }
    for (const net::Ipv4Endpoint& s : impl->options.seeds)
        add_target(impl->direct_targets, s, impl->options.advertise);
    if (!known) impl->log("ignoring the last known peers: " + known.error().message);
    for (const KnownPeer& p : known ? *known : std::vector<KnownPeer>{})
        if (impl->peers.learn(p.certificate) != PeerTable::Learned::refused)
            add_target(impl->direct_targets, p.address, impl->options.advertise);
    return std::make_unique<Node>(std::move(impl));
}

Node::Node(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Node::~Node() {
    impl_->alarm.cancel();
    impl_->transport.close();
}

void Node::start() {
    Impl& n = *impl_;
    n.transport.start({[&n](const net::Ipv4Endpoint& from, std::span<const std::uint8_t> bytes) {
                           n.on_datagram(from, bytes);
                       },
                       [&n](const net::Ipv4Endpoint& to) { n.on_unreachable(to); }});
    n.started = true;
    n.observed.first_incarnation = n.state.record().incarnation + 1;
    n.log("node up " + n.own.name + " device " + crypto::to_hex(n.own.device) + " at " +
          n.options.advertise.to_string() + " incarnation " +
          std::to_string(n.state.record().incarnation + 1));
    const Time now = n.clock.now();
    n.next_revocation_sync = now + Duration(static_cast<Duration::rep>(
                                       n.rng.below(static_cast<std::uint64_t>(kRevocationSyncInterval.count()))));
    n.discovery_tick(now);  // beacons first: a seed must know our certificate before our join
    for (const net::Ipv4Endpoint& target : n.direct_targets)
        n.core.on_seed_discovered(now, to_peer_address(target));
    n.perform_actions();
    n.reschedule();
}

void Node::leave(std::function<void()> done) {
    Impl& n = *impl_;
    if (n.leaving || n.failed) return done();
    n.leaving = true;
    n.left = std::move(done);
    const Time now = n.clock.now();
    n.leave_deadline = now + kMaxLeaveDrain;
    n.log("leaving");
    n.core.on_leave_requested(now);
    n.perform_actions();
    n.reschedule();
}

void Node::on_fatal(std::function<void(const std::string&)> stop) { impl_->stop = std::move(stop); }

std::size_t Node::live_peers() const { return impl_->core.live_count(); }

const crypto::Certificate& Node::certificate() const { return impl_->own; }

void Node::Impl::on_datagram(const net::Ipv4Endpoint& from, std::span<const std::uint8_t> bytes) {
    if (failed) return;
    DatagramResult<crypto::OpenedDatagram> opened = sealer.open(bytes, clock.unix_seconds());
    if (!opened) {
        ++stats.drops[static_cast<std::size_t>(opened.drop())];
        tap_refused(from, opened.drop(), bytes.size());
        if (opened.drop() == DatagramDrop::unknown_sender) {
            on_unknown_sender(from, bytes);
            perform_actions();
            reschedule();
        }
        return;
    }
    ++stats.opened;
    const crypto::DeviceId sender = opened->header.sender;
    tap(Direction::in, from, sender, opened->plaintext, bytes.size());
    switch (channel_of(opened->plaintext)) {
        case Channel::membership:
            on_membership(to_peer_address(from), sender, opened->plaintext);
            break;
        case Channel::discovery:
            on_discovery(from, sender, opened->plaintext);
            open_held(clock.now());  // certificates may have come in
            break;
        case Channel::unknown:
            if (!other_channel || !other_channel(sender, opened->plaintext)) ++stats.unknown_channel;
            break;
    }
    perform_actions();
    reschedule();
}

void Node::Impl::on_membership(const membership::PeerAddress& from, const crypto::DeviceId& sender,
                               std::span<const std::uint8_t> bytes) {
    using membership::detail::MessageKind;
    std::vector<crypto::DeviceId> missing = missing_signers(bytes);  // decodes into `scratch`
    const Time now = clock.now();
    const bool join = scratch.kind == MessageKind::sync &&
                      (scratch.sync_flags & membership::detail::kSyncJoin) != 0;
    // A joiner needs the certificate of every member our answer lists: they go out ahead of
    // the answer, so its records verify on arrival instead of waiting for a request.
    if (join && !core.has_left())
        if (auto to = to_endpoint(from)) push_certificates(*to, sender);
    if (missing.empty()) return core.on_message(now, from, sender, bytes);
    // A join waits whole: the answer needs the joiner's record verified first.
    if (join)
        return park({now + kParkedWait, now, from, sender, {bytes.begin(), bytes.end()},
                     std::move(missing)});
    // Anything else goes in now without the records (and accusations) of devices whose
    // certificates are on their way; only those wait. A ping or an ack held for a certificate
    // came late, and its probe failed: an innocent member suspected, our own health lowered.
    const auto waits = [&missing](const crypto::DeviceId& id) {
        return std::find(missing.begin(), missing.end(), id) != missing.end();
    };
    membership::detail::Message later;
    const bool join_answer = scratch.kind == MessageKind::sync &&
                             (scratch.sync_flags & membership::detail::kSyncJoinAnswer) != 0;
    later.kind = join_answer ? MessageKind::sync : MessageKind::gossip;
    later.sync_flags = join_answer ? membership::detail::kSyncJoinAnswer : 0;  // not passed on
    const auto split = [&waits](auto& all, auto& moved) {
        const auto stay = std::stable_partition(all.begin(), all.end(),
                                                [&waits](const auto& e) { return !waits(e.id); });
        moved.assign(stay, all.end());
        all.erase(stay, all.end());
    };
    split(scratch.records, later.records);
    split(scratch.accusations, later.accusations);
    core.on_message(now, from, sender, codec.encode(scratch));
    park({now + kParkedWait, now, from, sender, codec.encode(later), std::move(missing)});
}

void Node::Impl::on_unreachable(const net::Ipv4Endpoint& to) {
    if (failed) return;
    core.on_unreachable(clock.now(), to_peer_address(to));
    perform_actions();
    reschedule();
}

void Node::Impl::on_timer() {
    if (failed) return;
    const Time now = clock.now();
    if (now >= core.next_wakeup()) core.on_tick(now);
    discovery_tick(now);
    release_parked(now);
    open_held(now);
    revocation_tick(now);
    history_tick(now);
    if (now >= next_peers_save) {
        next_peers_save = now + kPeersSaveInterval;
        if (peers_dirty) save_peers();
    }
    perform_actions();
    if (leaving && left && (!core.broadcasts_pending() || now >= leave_deadline))
        return finish_leave();
    reschedule();
}

void Node::Impl::perform_actions() {
    for (membership::Action& action : core.take_actions()) {
        if (failed) return;
        std::visit(Overloaded{
                       [this](membership::Send& send) {
                           auto to = to_endpoint(send.to);
                           if (!to) return;
                           std::optional<crypto::DeviceId> device = send.device;
                           if (!device) device = answerer_at(*to);
                           if (!device) introduce(*to);  // a seed may not know us yet
                           seal_and_send(*to, device, send.bytes);
                       },
                       [this](membership::PeerEvent& event) { log_event(event); },
                       [this](membership::IncarnationChanged& changed) {
                           if (Status s = state.save_incarnation(changed.incarnation); !s)
                               fatal("cannot persist the incarnation: " + s.error().message);
                       },
                   },
                   action);
    }
}

void Node::Impl::reschedule() {
    if (failed || !started) return;
    const Time now = clock.now();
    Time next = std::min({core.next_wakeup(), beacons.next_wakeup(), next_revocation_sync,
                          now + kMaxTimerDelay});
    for (const Parked& p : parked) next = std::min({next, p.deadline, p.retry});
    if (!held.empty()) next = std::min(next, held.front().deadline);
    if (leaving) next = std::min(next, leave_deadline);
    alarm.set(std::max(next, now), [this] { on_timer(); });
}

void Node::Impl::seal_and_send(const net::Ipv4Endpoint& to,
                               const std::optional<crypto::DeviceId>& device,
                               std::span<const std::uint8_t> plaintext) {
    const std::uint64_t now_unix = clock.unix_seconds();
    const crypto::NetworkKeyEpoch* epoch = ring.current(now_unix);
    std::optional<std::uint64_t> count = counter.next();
    if (!count) {  // 2^32 datagrams in one boot: move to the next boot, persisted first
        Result<std::uint32_t> boot = state.begin_boot();
        if (!boot) return fatal("cannot persist the boot counter: " + boot.error().message);
        counter = DatagramCounter(*boot);
        count = counter.next();
    }
    if (epoch == nullptr || !count) {
        ++stats.seal_failed;  // every network key expired: re-enroll
        return;
    }
    Result<std::vector<std::uint8_t>> sealed =
        device && peers.kx_key(*device)
            ? sealer.seal_to_peer(*device, epoch->epoch, *count, plaintext, now_unix)
            : sealer.seal_to_cluster(epoch->epoch, *count, plaintext, now_unix);
    if (!sealed) {
        ++stats.seal_failed;
        return;
    }
    tap(Direction::out, to, device, plaintext, sealed->size());
    (void)transport.send_to(to, *sealed);  // losses are the protocol's to handle
}

void Node::Impl::log_event(const membership::PeerEvent& event) {
    peers_dirty = true;
    const auto address = to_endpoint(event.address);
    log(std::string(membership::to_string(event.kind)) + ' ' + peers.name_of(event.peer) + ' ' +
        (address ? address->to_string() : event.address.to_string()) + " incarnation " +
        std::to_string(event.incarnation));
}

void Node::Impl::fatal(const std::string& message) {
    if (failed) return;
    failed = true;
    alarm.cancel();
    transport.close();
    log("fatal: " + message);
    if (stop) stop(message);
}

void Node::Impl::save_peers() {
    peers_dirty = false;
    std::vector<KnownPeer> known;
    for (const membership::MemberView& m : core.members()) {
        const crypto::Certificate* cert = peers.find(m.id);
        const auto address = to_endpoint(m.address);
        if (m.state != membership::MemberState::alive || cert == nullptr || !address) continue;
        known.push_back({*address, crypto::encode_certificate(*cert)});
        if (known.size() == kMaxKnownPeers) break;
    }
    if (known.empty()) return;  // keep the last useful list
    if (Status s = state.save_peers(known); !s) log("cannot save the known peers: " + s.error().message);
}

void Node::Impl::finish_leave() {
    save_peers();
    alarm.cancel();
    log("left");
    if (auto done = std::exchange(left, nullptr)) done();
}

bool Node::Impl::alone() const { return core.live_count() == 0; }

}  // namespace starling::runtime

// Announcements in and out, the learner's actions onto the model channel, and the figures the
// control socket shows.

#include "node/runtime/model_exchange.hpp"

#include <flatbuffers/flatbuffers.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>
#include <sstream>
#include <utility>

#include "crypto/datagram.hpp"
#include "crypto/sodium.hpp"
#include "protocol/limits.hpp"
#include "protocol/model_announce_generated.h"

namespace starling::runtime {
namespace {

namespace wire = starling::wire::announce;

constexpr char kAnnounceId[] = "SANN";
constexpr std::size_t kIdentifierOffset = sizeof(flatbuffers::uoffset_t) * 2;  // size, root
constexpr std::uint32_t kAnnounceMaxTables = 1;
constexpr std::uint16_t kPermille = 1000;

std::uint16_t permille(const std::optional<Evaluated>& e) {
    if (!e) return kNoAccuracy;
    return static_cast<std::uint16_t>(std::clamp(e->accuracy, 0.0, 1.0) * kPermille + 0.5);
}

std::string accuracy_json(std::uint16_t p) {
    if (p == kNoAccuracy) return "null";
    std::array<char, 16> text{};
    std::snprintf(text.data(), text.size(), "%.3f", p / 1000.0);
    return text.data();
}

std::string fixed(double v, const char* format = "%.4f") {
    std::array<char, 32> text{};
    std::snprintf(text.data(), text.size(), format, v);
    return text.data();
}

}  // namespace

std::vector<std::uint8_t> encode_announce(const ModelAnnounce& a) {
    flatbuffers::FlatBufferBuilder fbb(96);
    const auto root = wire::CreateModelAnnounce(fbb, a.version, a.samples_seen, a.model_bytes,
                                                a.holdout_permille, a.test_permille, a.catching_up);
    fbb.FinishSizePrefixed(root, kAnnounceId);
    return {fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize()};
}

bool is_announce(std::span<const std::uint8_t> plaintext) noexcept {
    return plaintext.size() >= kIdentifierOffset + 4 &&
           std::memcmp(plaintext.data() + kIdentifierOffset, kAnnounceId, 4) == 0;
}

Result<ModelAnnounce> decode_announce(std::span<const std::uint8_t> plaintext) {
    if (plaintext.size() > crypto::kMaxPeerPlaintextBytes)
        return make_error(ErrorCode::too_large, "model announcement over its datagram");
    flatbuffers::Verifier::Options options;
    options.max_depth = limits::kFlatbuffersMaxDepth;
    options.max_tables = kAnnounceMaxTables;
    flatbuffers::Verifier verifier(plaintext.data(), plaintext.size(), options);
    if (!verifier.VerifySizePrefixedBuffer<wire::ModelAnnounce>(kAnnounceId))
        return make_error(ErrorCode::malformed, "model announcement: not a well-formed 'SANN' FlatBuffer");
    const auto* m = flatbuffers::GetSizePrefixedRoot<wire::ModelAnnounce>(plaintext.data());
    ModelAnnounce a{m->version(), m->samples_seen(), m->model_bytes(), m->holdout_permille(),
                    m->test_permille(), m->catching_up()};
    const auto valid = [](std::uint16_t p) { return p <= kPermille || p == kNoAccuracy; };
    if (!valid(a.holdout_permille) || !valid(a.test_permille))
        return make_error(ErrorCode::malformed, "model announcement: accuracy out of range");
    if (a.model_bytes > limits::kMaxCheckpointBytes)
        return make_error(ErrorCode::malformed, "model announcement: model size out of range");
    return a;
}

ModelExchange::ModelExchange(net::EventLoop& loop, Node& node,
                             std::unique_ptr<net::StreamListener> listener,
                             SessionIdentity identity, const Clock& clock, ChannelLimits limits,
                             LearningLoop& learning)
    : node_(node),
      clock_(clock),
      learning_(learning),
      channel_(loop, std::move(listener), std::move(identity), clock, limits,
               ChannelHandlers{
                   [this] { return learning_.published_model(); },
                   [this](const crypto::Certificate& peer, std::vector<std::uint8_t> bytes) {
                       learning_.on_model_bytes(peer.device, std::move(bytes));
                       return true;  // decoded and merged (or refused and counted) by the learner
                   },
                   [this](std::uint64_t tag, const crypto::DeviceId&, ModelOp op,
                          std::optional<TransferFailure> failure) {
                       if (op == ModelOp::pull) {
                           if (failure) learning_.on_request_failed(tag);
                       } else {
                           learning_.on_send_finished(tag, !failure);
                       }
                   },
                   [this] { return learning_.inbox_full(); }}),
      timer_(loop),
      rng_([] {
          std::uint64_t seed = 0;
          crypto::random_bytes(std::span(reinterpret_cast<std::uint8_t*>(&seed), sizeof seed));
          return seed;
      }()) {}

ModelExchange::~ModelExchange() { close(); }

void ModelExchange::start() {
    channel_.start();
    tick();
}

void ModelExchange::close() {
    timer_.cancel();
    channel_.close();
}

std::optional<net::Ipv4Endpoint> ModelExchange::address_of(const crypto::DeviceId& id) const {
    for (const LiveMember& m : live_)
        if (m.id == id) return m.address;
    return std::nullopt;
}

void ModelExchange::on_action(gossip::Action action) {
    const std::optional<net::Ipv4Endpoint> at = address_of(action.peer);
    const bool pull = action.kind == gossip::ActionKind::request_model;
    const bool started =
        at && channel_.start_transfer(pull ? ModelOp::pull : ModelOp::push, action.peer, *at,
                                      pull ? nullptr : std::move(action.bytes), action.transfer);
    if (started) return;
    if (!at) ++actions_unroutable_;
    if (pull) learning_.on_request_failed(action.transfer);
    else learning_.on_send_finished(action.transfer, false);
}

bool ModelExchange::on_datagram(const crypto::DeviceId& sender,
                                std::span<const std::uint8_t> plaintext) {
    if (!is_announce(plaintext)) return false;
    Result<ModelAnnounce> a = decode_announce(plaintext);
    if (!a) {
        ++announces_malformed_;
        return true;
    }
    ++announces_received_;
    const bool new_peer = heard_.find(sender) == heard_.end();
    heard_[sender] = Heard{*a, clock_.now()};
    if (new_peer) update_peers(live_);  // a newcomer learns whom to pull from at once
    return true;
}

void ModelExchange::tick() {
    live_ = node_.live_members();
    announce_round(live_);
    update_peers(live_);
    timer_.expire_after(kAnnounceInterval, [this] { tick(); });
}

void ModelExchange::announce_round(const std::vector<LiveMember>& live) {
    const LearningStatus s = learning_.status();
    const ModelAnnounce mine{s.version, s.samples_seen, static_cast<std::uint32_t>(s.model_bytes),
                             permille(s.holdout), permille(s.test), s.catching_up};
    const std::vector<std::uint8_t> bytes = encode_announce(mine);
    std::vector<const LiveMember*> chosen;
    std::vector<const LiveMember*> others;
    for (const LiveMember& m : live) {
        if (!told_[m.id] && chosen.size() < kMaxNewAnnounces) chosen.push_back(&m);
        else others.push_back(&m);
    }
    for (std::size_t i = 0; i < kAnnounceFanout && !others.empty(); ++i) {
        const std::size_t k = static_cast<std::size_t>(rng_.below(others.size()));
        chosen.push_back(others[k]);
        others.erase(others.begin() + static_cast<std::ptrdiff_t>(k));
    }
    for (const LiveMember* m : chosen) {
        node_.send_to_member(m->id, m->address, bytes);
        told_[m->id] = true;
        ++announces_sent_;
    }
    // Forget members that left the live view: a returning one is told again.
    for (auto it = told_.begin(); it != told_.end();)
        it = address_of(it->first) ? std::next(it) : told_.erase(it);
}

void ModelExchange::update_peers(const std::vector<LiveMember>& live) {
    std::vector<gossip::PeerInfo> peers;
    for (const LiveMember& m : live) {
        const auto it = heard_.find(m.id);
        if (it == heard_.end() || it->second.announce.catching_up) continue;  // not training
        peers.push_back({m.id, it->second.announce.samples_seen});
    }
    for (auto it = heard_.begin(); it != heard_.end();)  // a dead member's news is stale
        it = address_of(it->first) ? std::next(it) : heard_.erase(it);
    learning_.on_peers(std::move(peers));
}

std::string ModelExchange::history_fields() const {
    const LearningStatus s = learning_.status();
    if (s.learner.models_merged == 0) return {};
    return "\"consensus_distance\": " + fixed(s.learner.consensus_distance);
}

std::string ModelExchange::stats_text() const {
    std::ostringstream out;
    const LearningStatus s = learning_.status();
    const ChannelCounters& c = channel_.counters();
    out << "model_version " << s.version << "\nmodel_samples_seen " << s.samples_seen
        << "\nmodel_local_samples " << s.local_samples << "\nmodel_steps " << s.steps
        << "\nmodel_bytes " << s.model_bytes << "\nmodel_catching_up " << (s.catching_up ? 1 : 0)
        << "\nmodel_resumed " << (s.resumed ? 1 : 0) << "\nsamples_per_second "
        << fixed(s.samples_per_second, "%.0f") << "\nevaluations " << s.evaluations << '\n';
    if (s.holdout)
        out << "holdout_accuracy " << fixed(s.holdout->accuracy) << "\nholdout_loss "
            << fixed(s.holdout->loss) << '\n';
    if (s.test)
        out << "test_accuracy " << fixed(s.test->accuracy) << "\ntest_loss " << fixed(s.test->loss)
            << '\n';
    out << "checkpoints " << s.checkpoints << "\ncheckpoint_failures " << s.checkpoint_failures
        << "\nlearner_rounds " << s.learner.rounds << "\nlearner_sends_started "
        << s.learner.sends_started << "\nlearner_sends_completed " << s.learner.sends_completed
        << "\nlearner_sends_failed " << s.learner.sends_failed << "\nlearner_sends_skipped_budget "
        << s.learner.sends_skipped_budget << "\nlearner_rounds_waited " << s.learner.rounds_waited
        << "\nlearner_sends_skipped_not_finite "
        << s.learner.sends_skipped_not_finite << "\nlearner_messages_compressed "
        << s.learner.messages_compressed << "\nlearner_compression_failures "
        << s.learner.compression_failures << "\nlearner_models_received_compressed "
        << s.learner.models_received_compressed << "\nlearner_models_received "
        << s.learner.models_received << "\nlearner_models_merged " << s.learner.models_merged
        << "\nlearner_models_adopted " << s.learner.models_adopted << "\nlearner_models_clipped "
        << s.learner.models_clipped << "\nlearner_lattice_blocks " << s.learner.lattice_blocks
        << "\nlearner_lattice_blocks_unresolved " << s.learner.lattice_blocks_unresolved
        << "\nlearner_lost_pulls " << s.learner.lost_pulls
        << "\nlearner_pulls_sent " << s.learner.pulls_sent
        << "\nlearner_pulls_failed " << s.learner.pulls_failed << "\nconsensus_distance "
        << fixed(s.learner.consensus_distance) << "\ngossip_thread_busy_seconds "
        << fixed(s.gossip_busy_seconds, "%.3f") << '\n';
    for (std::size_t i = 0; i < gossip::kRefusalReasons; ++i)
        out << "model_refused_" << gossip::to_string(static_cast<gossip::Refusal>(i)) << ' '
            << s.learner.refused[i] << '\n';
    out << "models_dropped_queue_full " << s.models_dropped << "\nevents_dropped_queue_full "
        << s.events_dropped << "\ntransfers_started " << c.started_out
        << "\ntransfers_completed_out " << c.completed_out << "\ntransfers_completed_in "
        << c.completed_in << "\nmodels_sent " << c.models_sent << "\nmodels_received "
        << c.models_received << "\nmodel_bytes_sent " << c.model_bytes_sent
        << "\nmodel_bytes_received " << c.model_bytes_received << "\nstream_bytes_sent "
        << c.wire_bytes_sent << "\nstream_bytes_received " << c.wire_bytes_received
        << "\nlinks_open_out " << channel_.links_out() << "\nlinks_open_in "
        << channel_.links_in() << "\nlinks_opened_out " << c.links_opened_out
        << "\nlinks_opened_in " << c.links_opened_in << "\ntransfers_on_open_links "
        << c.transfers_on_open_links << "\ntransfers_retried " << c.transfers_retried
        << "\nlinks_closed_idle " << c.links_closed_idle << "\nlinks_closed_by_peer "
        << c.links_closed_by_peer << "\nlinks_closed_untrusted " << c.links_closed_untrusted
        << "\nlinks_evicted " << c.links_evicted << '\n';
    for (std::size_t i = 0; i < kTransferFailureKinds; ++i) {
        const char* why = to_string(static_cast<TransferFailure>(i));
        out << "transfer_out_failed_" << why << ' ' << c.failed_out[i] << "\ntransfer_in_failed_"
            << why << ' ' << c.failed_in[i] << '\n';
    }
    const net::ListenerCounters& l = channel_.listener_counters();
    out << "stream_accepted " << l.accepted << "\nstream_refused_full " << l.refused_full
        << "\nstream_accept_errors " << l.accept_errors << "\nannounces_sent " << announces_sent_
        << "\nannounces_received " << announces_received_ << "\nannounces_malformed "
        << announces_malformed_ << "\nlearner_actions_unroutable " << actions_unroutable_
        << "\nmodel_peers " << heard_.size() << '\n';
    return out.str();
}

std::string ModelExchange::annotate_members_json(const std::string& members) const {
    const LearningStatus s = learning_.status();
    const std::string self = crypto::to_hex(node_.certificate().device);
    const membership::Time now = clock_.now();
    std::map<std::string, const Heard*, std::less<>> by_hex;  // the lines name devices in hex
    for (const auto& [id, h] : heard_) by_hex.emplace(crypto::to_hex(id), &h);
    std::map<std::string, LinkView, std::less<>> link_of;  // the busiest link to each peer
    for (const LinkView& v : channel_.links()) {
        if (!v.established) continue;
        auto [it, fresh] = link_of.emplace(crypto::to_hex(v.peer), v);
        if (!fresh && v.transfers > it->second.transfers) it->second = v;
    }
    std::istringstream in(members);
    std::ostringstream out;
    std::string line;
    constexpr std::string_view kDevice = "\"device\": \"";
    while (std::getline(in, line)) {
        const std::size_t at = line.find(kDevice);
        const std::size_t close = line.rfind('}');
        if (at != std::string::npos && close != std::string::npos) {
            const std::size_t start = at + kDevice.size();
            const std::string hex = line.substr(start, line.find('"', start) - start);
            std::string fields;
            if (hex == self) {
                const std::optional<Evaluated>& acc = s.test ? s.test : s.holdout;
                fields = ", \"model_version\": " + std::to_string(s.version) +
                         ", \"model_age\": 0, \"samples\": " + std::to_string(s.samples_seen);
                if (acc) fields += ", \"accuracy\": " + fixed(acc->accuracy);
                if (s.holdout) fields += ", \"loss\": " + fixed(s.holdout->loss);
            } else if (const auto it = by_hex.find(hex); it != by_hex.end()) {
                const Heard& h = *it->second;
                const std::uint16_t p = h.announce.test_permille != kNoAccuracy
                                            ? h.announce.test_permille
                                            : h.announce.holdout_permille;
                fields = ", \"model_version\": " + std::to_string(h.announce.version) +
                         ", \"model_age\": " +
                         fixed(static_cast<double>((now - h.at).count()) / 1e6, "%.1f") +
                         ", \"samples\": " + std::to_string(h.announce.samples_seen);
                if (p != kNoAccuracy) fields += ", \"accuracy\": " + accuracy_json(p);
            }
            if (const auto l = link_of.find(hex); l != link_of.end())
                fields += std::string(", \"link\": \"") + (l->second.dialed ? "out" : "in") +
                          "\", \"link_transfers\": " + std::to_string(l->second.transfers) +
                          ", \"link_idle\": " +
                          fixed(static_cast<double>(l->second.idle_ms) / 1e3, "%.1f");
            line.insert(close, fields);
        }
        out << line << '\n';
    }
    return out.str();
}

std::string ModelExchange::models_json() const {
    const LearningStatus s = learning_.status();
    std::ostringstream out;
    out << "[\n  {\"device\": \"" << crypto::to_hex(node_.certificate().device)
        << "\", \"self\": true, \"version\": " << s.version << ", \"samples_seen\": "
        << s.samples_seen << ", \"model_bytes\": " << s.model_bytes
        << ", \"holdout_accuracy\": " << accuracy_json(permille(s.holdout))
        << ", \"test_accuracy\": " << accuracy_json(permille(s.test))
        << ", \"loss\": " << (s.holdout ? fixed(s.holdout->loss) : std::string("null"))
        << ", \"catching_up\": " << (s.catching_up ? "true" : "false") << "}";
    for (const auto& [id, h] : heard_)
        out << ",\n  {\"device\": \"" << crypto::to_hex(id) << "\", \"self\": false, \"version\": "
            << h.announce.version << ", \"samples_seen\": " << h.announce.samples_seen
            << ", \"model_bytes\": " << h.announce.model_bytes << ", \"holdout_accuracy\": "
            << accuracy_json(h.announce.holdout_permille) << ", \"test_accuracy\": "
            << accuracy_json(h.announce.test_permille) << ", \"catching_up\": "
            << (h.announce.catching_up ? "true" : "false") << "}";
    out << "\n]\n";
    return out.str();
}

}  // namespace starling::runtime

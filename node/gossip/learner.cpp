#include "node/gossip/learner.hpp"

#include <algorithm>
#include <cassert>
#include <cmath>

namespace starling::gossip {

std::uint64_t LearnerStats::refused_total() const noexcept {
    std::uint64_t total = 0;
    for (const std::uint64_t n : refused) total += n;
    return total;
}

GossipLearner::GossipLearner(DeviceId self, model::Mlp& model, LearnerConfig config,
                             std::uint64_t seed)
    : self_(self),
      model_(model),
      config_(config),
      rng_(seed),
      merger_(config.merge),
      encoder_(config.encoding, config.error_feedback, config.lattice_margin, config.compression) {
    config_.fanout = std::clamp<std::uint32_t>(config_.fanout, 1, kMaxFanout);
    config_.max_concurrent_sends = std::max<std::uint32_t>(config_.max_concurrent_sends, 1);
    config_.samples_per_round = std::max<std::uint64_t>(config_.samples_per_round, 1);
}

ModelMessage GossipLearner::header() const {
    ModelMessage h;
    h.origin = self_;
    h.version = version_;
    h.samples_seen = samples_seen_;
    h.mass = mass_;
    h.widths.assign(model_.widths().begin(), model_.widths().end());
    return h;
}

void GossipLearner::on_start(Time now, bool catch_up) {
    catching_up_ = catch_up;
    pulls_unanswered_ = 0;
    pull_refusals_ = 0;
    pulled_from_.clear();
    pull_transfer_.reset();
    pull_deadline_ = Time::max();
    if (catching_up_) send_pull(now);
}

void GossipLearner::on_peers_changed(std::span<const PeerInfo> peers, Time now) {
    peers_.clear();
    for (const PeerInfo& p : peers)
        if (p.id != self_) peers_.push_back(p);
    // A catch-up that found nobody at start tries as soon as someone appears.
    if (catching_up_ && !pull_transfer_ && !peers_.empty()) send_pull(now);
}

void GossipLearner::send_pull(Time now) {
    // The freshest peer not yet tried (announced samples), ties broken at random; once all were
    // tried, round again.
    const auto untried = [this](const PeerInfo& p) {
        return std::find(pulled_from_.begin(), pulled_from_.end(), p.id) == pulled_from_.end();
    };
    if (std::none_of(peers_.begin(), peers_.end(), untried)) pulled_from_.clear();
    const PeerInfo* best = nullptr;
    std::uint64_t ties = 0;
    for (const PeerInfo& p : peers_) {
        if (!untried(p)) continue;
        if (best == nullptr || p.samples_seen > best->samples_seen) {
            best = &p;
            ties = 1;
        } else if (p.samples_seen == best->samples_seen && rng_.below(++ties) == 0) {
            best = &p;
        }
    }
    if (best == nullptr) {
        // Nobody to ask: wait one timeout for peers, then train alone.
        pull_deadline_ = now + config_.pull_timeout;
        return;
    }
    pull_peer_ = best->id;
    pulled_from_.push_back(best->id);
    pull_transfer_ = next_transfer_++;
    pull_deadline_ = now + config_.pull_timeout;
    ++stats_.pulls_sent;
    actions_.push_back(Action{ActionKind::request_model, best->id, *pull_transfer_, nullptr});
}

void GossipLearner::on_tick(Time now) {
    if (!catching_up_ || now < pull_deadline_) return;
    if (pull_transfer_) {  // no answer in time
        ++stats_.pulls_failed;
        ++pulls_unanswered_;
    }
    pull_transfer_.reset();
    pull_deadline_ = Time::max();
    if (pulls_unanswered_ >= config_.pull_attempts || pull_refusals_ >= kMaxPullRefusals ||
        peers_.empty()) {
        catching_up_ = false;  // train from the local model; pushes will bring the rest
        return;
    }
    send_pull(now);
}

void GossipLearner::on_request_failed(std::uint64_t transfer, Time now) {
    if (!pull_transfer_ || *pull_transfer_ != transfer) return;
    ++stats_.pulls_failed;
    pull_transfer_.reset();
    // The next peer after a wait that doubles with each refusal in a row (the deadline passes
    // through on_tick, which also gives up once too many were refused).
    const std::uint32_t doublings = std::min<std::uint32_t>(pull_refusals_, 16);
    ++pull_refusals_;
    pull_deadline_ = now + std::min<Time>(kPullRetryWait * (std::int64_t{1} << doublings),
                                          config_.pull_timeout);
    if (pull_refusals_ >= kMaxPullRefusals) pull_deadline_ = now;
    on_tick(now);
}

void GossipLearner::on_local_samples(std::uint64_t samples, Time now) {
    samples_seen_ += samples;
    samples_since_round_ += samples;
    if (samples_since_round_ >= config_.samples_per_round) {
        samples_since_round_ = 0;
        if (config_.wait_for_link && !sends_in_flight_.empty()) {
            round_waiting_ = true;  // training holds; the last send to end starts the round
            ++stats_.rounds_waited;
            return;
        }
        start_round(now);
    }
}

void GossipLearner::on_round_due(Time now) { start_round(now); }

bool GossipLearner::model_finite() const noexcept {
    return all_finite(model_.parameters());
}

std::shared_ptr<const std::vector<std::uint8_t>> GossipLearner::encode_current() {
    ++version_;
    return encode_with(encoder_);
}

std::shared_ptr<const std::vector<std::uint8_t>> GossipLearner::encode_answer() {
    if (config_.encoding != Encoding::lattice) return encode_current();
    // The asker is catching up: it has no model near ours to resolve a lattice against.
    ++version_;
    ModelEncoder whole(Encoding::fp32, false, kDefaultLatticeMargin, config_.compression);
    return encode_with(whole);
}

std::shared_ptr<const std::vector<std::uint8_t>> GossipLearner::encode_with(ModelEncoder& encoder) {
    const std::uint64_t compressed = encoder.messages_compressed();
    const std::uint64_t failures = encoder.compression_failures();
    auto bytes = std::make_shared<const std::vector<std::uint8_t>>(
        encoder.encode(header(), model_.parameters()));
    stats_.messages_compressed += encoder.messages_compressed() - compressed;
    stats_.compression_failures += encoder.compression_failures() - failures;
    return bytes;
}

void GossipLearner::start_round(Time) {
    ++stats_.rounds;
    if (peers_.empty()) return;
    // Distinct random peers (a partial Fisher-Yates over indices).
    const std::size_t want = std::min<std::size_t>(config_.fanout, peers_.size());
    std::vector<std::size_t> order(peers_.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    for (std::size_t i = 0; i < want; ++i)
        std::swap(order[i], order[i + rng_.below(order.size() - i)]);

    const std::size_t budget = config_.max_concurrent_sends - std::min<std::size_t>(
                                   config_.max_concurrent_sends, sends_in_flight_.size());
    const std::size_t sends = std::min(want, budget);
    stats_.sends_skipped_budget += want - sends;
    if (sends == 0) return;
    // A model that diverged helps nobody, and peers would refuse it: keep it home, counted.
    if (!model_finite()) {
        stats_.sends_skipped_not_finite += sends;
        return;
    }
    // Push-sum: the mass is split between this node and each receiver.
    if (config_.merge.weighting == Weighting::push_sum) mass_ /= static_cast<double>(sends + 1);
    const auto bytes = encode_current();
    for (std::size_t i = 0; i < sends; ++i) start_send(peers_[order[i]].id, bytes);
}

void GossipLearner::start_send(const DeviceId& peer,
                               std::shared_ptr<const std::vector<std::uint8_t>> bytes) {
    const std::uint64_t transfer = next_transfer_++;
    sends_in_flight_.emplace(transfer, InFlight{peer, mass_});
    ++stats_.sends_started;
    stats_.bytes_sent += bytes->size();
    actions_.push_back(Action{ActionKind::send_model, peer, transfer, std::move(bytes)});
}

void GossipLearner::on_send_finished(std::uint64_t transfer, bool delivered, Time now) {
    const auto it = sends_in_flight_.find(transfer);
    if (it == sends_in_flight_.end()) return;
    const double share = it->second.mass;
    sends_in_flight_.erase(it);
    if (delivered) {
        ++stats_.sends_completed;
    } else {
        ++stats_.sends_failed;
        // Push-sum: the share that never arrived comes back.
        if (config_.merge.weighting == Weighting::push_sum) mass_ += share;
    }
    if (round_waiting_ && sends_in_flight_.empty()) {
        round_waiting_ = false;
        start_round(now);
    }
    pump_answers();
}

void GossipLearner::on_model_requested(const DeviceId& from, Time) {
    if (queued_answers_.size() >= kMaxQueuedAnswers) {
        ++stats_.answers_dropped;
        return;
    }
    if (std::find(queued_answers_.begin(), queued_answers_.end(), from) == queued_answers_.end()) {
        queued_answers_.push_back(from);
        ++stats_.answers_queued;
    }
    pump_answers();
}

void GossipLearner::pump_answers() {
    if (queued_answers_.empty()) return;
    const bool finite = model_finite();  // one scan for every answer it lets out
    while (!queued_answers_.empty() && sends_in_flight_.size() < config_.max_concurrent_sends) {
        const DeviceId peer = queued_answers_.front();
        queued_answers_.erase(queued_answers_.begin());
        if (!finite) {  // the asker's pull times out and tries another peer
            ++stats_.sends_skipped_not_finite;
            continue;
        }
        if (config_.merge.weighting == Weighting::push_sum) mass_ /= 2.0;
        start_send(peer, encode_answer());
    }
}

bool GossipLearner::is_duplicate(const ModelMessage& message) const {
    const auto it = merged_versions_.find(message.origin);
    return it != merged_versions_.end() && message.version <= it->second;
}

void GossipLearner::remember(const ModelMessage& message) {
    auto it = merged_versions_.find(message.origin);
    if (it != merged_versions_.end()) {
        it->second = std::max(it->second, message.version);
        return;
    }
    if (merged_versions_.size() >= kMaxTrackedOrigins) merged_versions_.erase(merged_versions_.begin());
    merged_versions_.emplace(message.origin, message.version);
}

Received GossipLearner::on_model_bytes(const DeviceId& from, std::span<const std::uint8_t> bytes,
                                       Time now) {
    const std::optional<ModelRefusal> refusal =
        decode_model_into(bytes, model_.widths(), model_.parameters(), received_);
    if (refusal) {
        ++stats_.models_received;
        ++stats_.refused[static_cast<std::size_t>(refusal->reason)];
        if (refusal->reason == Refusal::unresolved &&
            ++unresolved_in_a_row_ >= kUnresolvedBeforePull && !catching_up_) {
            // Nobody's model is near enough to read: take one whole, as a new device would.
            unresolved_in_a_row_ = 0;
            ++stats_.lost_pulls;
            on_start(now, true);
            return Received::refused;
        }
        // A refused answer to our pull counts as a failed pull (a lattice push is no answer).
        if (refusal->reason != Refusal::unresolved && catching_up_ && pull_peer_ &&
            *pull_peer_ == from && pull_transfer_)
            on_request_failed(*pull_transfer_, now);
        return Received::refused;
    }
    if (received_.compressed) ++stats_.models_received_compressed;
    return on_model(from, received_, now);
}

bool GossipLearner::block_stuck(const ModelMessage& message) {
    if (message.lattice_blocks == 0) return false;
    if (unresolved_streak_.size() != message.lattice_blocks) {
        unresolved_streak_.assign(message.lattice_blocks, 0);
        lattice_origins_.clear();
    }
    lattice_origins_.push_back(message.origin);
    while (lattice_origins_.size() > kStuckBlockMessages) lattice_origins_.pop_front();
    // unresolved_blocks is in block order: one pass sets each streak or clears it.
    bool stuck = false;
    auto next = message.unresolved_blocks.begin();
    for (std::uint32_t b = 0; b < message.lattice_blocks; ++b) {
        std::uint8_t& streak = unresolved_streak_[b];
        if (next != message.unresolved_blocks.end() && *next == b) {
            ++next;
            streak = static_cast<std::uint8_t>(std::min<std::uint32_t>(streak + 1u, 255u));
            stuck = stuck || streak >= kStuckBlockMessages;
        } else {
            streak = 0;
        }
    }
    const bool several_origins =
        std::any_of(lattice_origins_.begin(), lattice_origins_.end(),
                    [&](const DeviceId& o) { return o != lattice_origins_.front(); });
    if (!stuck || !several_origins) return false;
    std::fill(unresolved_streak_.begin(), unresolved_streak_.end(), std::uint8_t{0});
    lattice_origins_.clear();
    return true;
}

Received GossipLearner::on_model(const DeviceId& from, const ModelMessage& message, Time now) {
    ++stats_.models_received;
    // Answers are never lattice-encoded: a lattice message is that peer's push.
    const bool pull_answer =
        catching_up_ && pull_peer_ && *pull_peer_ == from && message.lattice_blocks == 0;
    if (message.parameters.size() != model_.parameters().size() ||
        !std::equal(message.widths.begin(), message.widths.end(), model_.widths().begin(),
                    model_.widths().end())) {
        ++stats_.refused[static_cast<std::size_t>(Refusal::wrong_widths)];
        if (pull_answer && pull_transfer_) on_request_failed(*pull_transfer_, now);
        return Received::refused;
    }
    if (!pull_answer && is_duplicate(message)) {
        ++stats_.refused[static_cast<std::size_t>(Refusal::duplicate)];
        return Received::refused;
    }
    remember(message);
    if (message.lattice_blocks > 0) unresolved_in_a_row_ = 0;
    stats_.lattice_blocks += message.lattice_blocks;
    stats_.lattice_blocks_unresolved += message.unresolved_blocks.size();
    if (!pull_answer && block_stuck(message) && !catching_up_) {
        // Its own values there are off: take a model whole, as a new device would. This one's
        // resolved blocks still merge meanwhile.
        ++stats_.lost_pulls;
        on_start(now, true);
    }

    if (pull_answer) {
        // Catch-up: a device that has not trained since it started takes the peer's model
        // whole; one that has trained merges it.
        catching_up_ = false;
        pull_transfer_.reset();
        pull_deadline_ = Time::max();
        std::copy(message.parameters.begin(), message.parameters.end(),
                  model_.parameters().begin());
        samples_seen_ = std::max(samples_seen_, message.samples_seen);
        if (config_.merge.weighting == Weighting::push_sum) {
            mass_ = message.mass;
        }
        encoder_.reset();
        std::fill(unresolved_streak_.begin(), unresolved_streak_.end(), std::uint8_t{0});
        lattice_origins_.clear();
        ++stats_.models_adopted;
        return Received::adopted;
    }

    encoder_.observe_peer(model_.parameters(), message);
    // In a batch the local model weighs what it saw before the batch plus what merged into it.
    const bool in_batch = in_batch_ && batch_weight_ > 0.0;
    const MergeOutcome outcome = merger_.merge(
        LocalModel{model_.parameters(), in_batch ? batch_own_samples_ : samples_seen_, mass_,
                   in_batch ? batch_weight_ : 0.0},
        message);
    if (!outcome.accepted) {
        ++stats_.refused[static_cast<std::size_t>(Refusal::outlier)];
        return Received::refused;
    }
    if (!in_batch) batch_own_samples_ = samples_seen_;
    batch_weight_ += outcome.batch_weight;
    samples_seen_ = std::max(samples_seen_, outcome.samples_seen);
    mass_ = outcome.mass;
    ++stats_.models_merged;
    stats_.consensus_distance = merger_.median_distance();
    if (outcome.clipped) ++stats_.models_clipped;
    return Received::merged;
}

void GossipLearner::on_model_restored(std::uint64_t samples_seen, std::uint64_t version) {
    samples_seen_ = samples_seen;
    version_ = std::max(version_, version);
    encoder_.reset();
}

std::vector<Action> GossipLearner::take_actions() {
    std::vector<Action> out;
    out.swap(actions_);
    return out;
}

Time GossipLearner::next_wakeup() const noexcept {
    return catching_up_ ? pull_deadline_ : Time::max();
}

}  // namespace starling::gossip

// The training thread trains, hands the gossip thread copies of the model and adds back what
// merges moved; the gossip thread runs the learner on its mirror of the model (rounds, decoding,
// merging, catch-up) and publishes the snapshot pulls are answered with.

#include "node/runtime/learning_loop.hpp"

#include <algorithm>
#include <array>
#include <cassert>
#include <cstdio>
#include <numeric>
#include <utility>

#include "node/model/checkpoint.hpp"
#include "node/model/optimizer.hpp"
#include "protocol/limits.hpp"

namespace starling::runtime {
namespace {

using namespace std::chrono_literals;

// An idle thread wakes this often: the gossip thread for the learner's timers and the publish
// interval, the training thread (while catching up, nothing to train yet) to look again.
constexpr std::chrono::milliseconds kIdleWait{50};

Evaluated evaluated(const model::Mlp& m, const data::Dataset& ds) {
    const model::Evaluation e = model::evaluate(m, ds);
    return {e.loss, e.accuracy, e.examples};
}

data::Dataset first_rows(const data::Dataset& ds, std::size_t n) {
    std::vector<std::uint32_t> rows(std::min(n, ds.size()));
    std::iota(rows.begin(), rows.end(), 0u);
    return ds.subset(rows);
}

std::string percent(const std::optional<Evaluated>& e) {
    if (!e) return "-";
    std::array<char, 32> text{};
    std::snprintf(text.data(), text.size(), "%.2f%%", 100.0 * e->accuracy);
    return text.data();
}

}  // namespace

LearningLoop::LearningLoop(const crypto::DeviceId& self, data::Dataset train,
                           std::optional<data::Dataset> test, LearningOptions options,
                           const Clock& clock, std::function<void(std::string)> log,
                           LearnerActionSink actions)
    : test_(std::move(test)),
      options_(std::move(options)),
      clock_(clock),
      log_(std::move(log)),
      actions_(std::move(actions)),
      model_(options_.widths),
      served_(options_.widths),
      trainer_(model_, options_.train),
      order_rng_(options_.train.seed ^ 0x5DEECE66Dull),
      mirror_(options_.widths),
      learner_(self, mirror_, options_.learner, options_.train.seed),
      snapshot_encoder_(gossip::Encoding::fp32, false, gossip::kDefaultLatticeMargin,
                        options_.learner.compression) {
    // The held-out slice: the shard's last rows (the split already shuffled it), at most a
    // tenth of it, so small shards keep most of their examples for training.
    const std::size_t holdout = std::min(options_.holdout_rows, train.size() / 10);
    std::vector<std::uint32_t> train_rows(train.size() - holdout);
    std::iota(train_rows.begin(), train_rows.end(), 0u);
    std::vector<std::uint32_t> holdout_rows(holdout);
    std::iota(holdout_rows.begin(), holdout_rows.end(), static_cast<std::uint32_t>(train_rows.size()));
    holdout_ = train.subset(holdout_rows);
    train_ = holdout == 0 ? std::move(train) : train.subset(train_rows);
    if (test_ && options_.eval_test_rows > 0 && test_->size() > options_.eval_test_rows)
        test_ = first_rows(*test_, options_.eval_test_rows);
    order_.resize(train_.size());
    std::iota(order_.begin(), order_.end(), 0u);
    order_at_ = order_.size();  // shuffled before the first step
}

Result<std::unique_ptr<LearningLoop>> LearningLoop::create(
    const crypto::DeviceId& self, data::Dataset train, std::optional<data::Dataset> test,
    LearningOptions options, const Clock& clock, std::function<void(std::string)> log,
    LearnerActionSink actions) {
    if (Status s = model::validate_widths(options.widths); !s) return s.error();
    if (train.size() < 2)
        return make_error(ErrorCode::invalid_argument, "the local dataset has fewer than 2 examples");
    if (train.features != options.widths.front() || train.classes > options.widths.back())
        return make_error(ErrorCode::invalid_argument,
                          "the local dataset (" + std::to_string(train.features) + " features, " +
                              std::to_string(train.classes) + " classes) does not fit the model");
    if (test && test->features != train.features)
        return make_error(ErrorCode::invalid_argument, "the test set's features differ from the data's");
    if (options.momentum_follows_merges &&
        !model::velocity_follows_moves(options.train.optimizer))
        return make_error(ErrorCode::invalid_argument,
                          "momentum that follows merges needs plain SGD momentum (Adam keeps no "
                          "velocity; Nesterov's step is not the velocity alone)");
    std::optional<model::Checkpoint> resume;
    if (!options.checkpoint.empty()) {
        std::error_code ec;
        if (std::filesystem::exists(options.checkpoint, ec)) {
            Result<model::Checkpoint> loaded = model::load_checkpoint(options.checkpoint);
            if (loaded && loaded->widths == options.widths) resume = std::move(*loaded);
            else if (log) log("ignoring checkpoint " + options.checkpoint.string() + ": " +
                              (loaded ? std::string("another architecture") : loaded.error().message));
        }
    }
    std::unique_ptr<LearningLoop> loop(new LearningLoop(self, std::move(train), std::move(test),
                                                        std::move(options), clock, std::move(log),
                                                        std::move(actions)));
    loop->model_.init_he(loop->options_.init_seed);
    if (resume) {
        if (Status s = loop->trainer_.restore(*resume); s) {
            loop->learner_.on_model_restored(resume->samples_seen, resume->samples_seen);
            loop->resumed_ = true;
        } else if (loop->log_) {
            loop->log_("ignoring checkpoint: " + s.error().message);
            loop->model_.init_he(loop->options_.init_seed);
        }
    }
    std::ranges::copy(loop->model_.parameters(), loop->mirror_.parameters().begin());
    loop->update_served(true);
    if (loop->resumed_ && resume->served.size() == loop->served_.parameters().size())
        std::copy(resume->served.begin(), resume->served.end(), loop->served_.parameters().begin());
    return loop;
}

LearningLoop::~LearningLoop() { stop(); }

void LearningLoop::start() {
    if (training_thread_.joinable()) return;
    gossip_thread_ = std::thread([this] { run_gossip(); });
    training_thread_ = std::thread([this] { run_training(); });
}

void LearningLoop::stop() {
    {
        std::lock_guard lock(mutex_);
        stop_ = true;
    }
    gossip_wake_.notify_all();
    training_wake_.notify_all();
    const bool trained = training_thread_.joinable();
    if (trained) training_thread_.join();
    if (gossip_thread_.joinable()) gossip_thread_.join();
    if (!trained) return;
    // Both threads are gone: what the last merges moved goes into the model, and the final
    // checkpoint, even where a round's copy still held it back or the move came after the
    // trainer's last step.
    {
        std::unique_lock lock(mutex_);
        snapshot_ready_ = false;
        take_moves(lock);
    }
    save_checkpoint();
}

void LearningLoop::push_event(Event event) {
    {
        std::lock_guard lock(mutex_);
        const bool model = event.kind == Event::Kind::model;
        if (model && queued_models_ >= kMaxQueuedModels) {
            ++status_.models_dropped;
            return;
        }
        if (!model && inbox_.size() >= kMaxQueuedEvents) {
            ++status_.events_dropped;
            return;
        }
        if (model) ++queued_models_;
        inbox_.push_back(std::move(event));
    }
    gossip_wake_.notify_one();
}

bool LearningLoop::inbox_full() const {
    std::lock_guard lock(mutex_);
    return queued_models_ >= kMaxQueuedModels;
}

void LearningLoop::on_model_bytes(const crypto::DeviceId& from, std::vector<std::uint8_t> bytes) {
    push_event({Event::Kind::model, from, std::move(bytes), 0, false});
}

void LearningLoop::on_send_finished(std::uint64_t transfer, bool delivered) {
    push_event({Event::Kind::sent, {}, {}, transfer, delivered});
}

void LearningLoop::on_request_failed(std::uint64_t transfer) {
    push_event({Event::Kind::request_failed, {}, {}, transfer, false});
}

void LearningLoop::on_peers(std::vector<gossip::PeerInfo> peers) {
    {
        std::lock_guard lock(mutex_);
        peers_ = std::move(peers);
    }
    gossip_wake_.notify_one();
}

ModelBytes LearningLoop::published_model() const {
    std::lock_guard lock(mutex_);
    return published_;
}

LearningStatus LearningLoop::status() const {
    std::lock_guard lock(mutex_);
    return status_;
}

// ---- Training thread. ----

void LearningLoop::run_training() {
    if (options_.on_thread_start) options_.on_thread_start();
    const gossip::Time start = now();
    next_eval_ = start + options_.eval_interval;
    next_checkpoint_ = start + options_.checkpoint_interval;
    rate_since_ = start;
    {
        std::lock_guard lock(mutex_);
        status_.resumed = resumed_;
    }
    for (;;) {
        {
            std::unique_lock lock(mutex_);
            if (stop_) break;
            take_moves(lock);
            if (!learner_ready_) {  // catching up, or a round waits for the link
                training_wake_.wait_for(lock, kIdleWait, [this] {
                    return stop_ || learner_ready_ || adopted_;
                });
                continue;
            }
        }
        if (options_.before_step) options_.before_step();
        train_one_step(now());
    }
}

void LearningLoop::take_moves(std::unique_lock<std::mutex>& lock) {
    // A copy handed over and not yet taken holds none of the moves waiting: the learner adds them
    // to it when it takes it, so they stay until then.
    if (snapshot_ready_ || (!moves_ready_ && !adopted_)) return;
    move_.swap(moves_);
    const bool adopted = std::exchange(adopted_, false);
    moves_ready_ = false;
    lock.unlock();
    const std::span<float> w = model_.parameters();
    if (adopted) {
        std::ranges::copy(move_, w.begin());
        update_served(true);  // nothing of the old model is worth serving
    } else {
        if (options_.momentum_follows_merges) before_merge_.assign(w.begin(), w.end());
        model::add_move(w, move_);
        if (options_.momentum_follows_merges)
            (void)trainer_.follow_move(before_merge_);  // SGD, checked at create()
    }
    lock.lock();
}

void LearningLoop::train_one_step(gossip::Time t) {
    const std::size_t batch = static_cast<std::size_t>(options_.train.batch);
    if (order_at_ >= order_.size()) {
        order_rng_.shuffle(std::span<std::uint32_t>(order_));
        order_at_ = 0;
    }
    const std::size_t n = std::min(batch, order_.size() - order_at_);
    (void)trainer_.step(train_, std::span<const std::uint32_t>(order_).subspan(order_at_, n));
    update_served(false);
    order_at_ += n;
    rate_samples_ += n;
    unreported_samples_ += n;
    // A copy costs a pass over the model: one per round is enough (the learner starts a round
    // every samples_per_round), and at most one per report interval.
    if (t >= next_report_ && unreported_samples_ >= options_.learner.samples_per_round) {
        hand_over(std::exchange(unreported_samples_, 0));
        next_report_ = t + options_.report_interval;
    }
    if (t >= next_eval_) evaluate_now(t);
    if (t >= next_checkpoint_) {
        next_checkpoint_ = t + options_.checkpoint_interval;
        save_checkpoint();
    }
    std::lock_guard lock(mutex_);
    ++status_.steps;
    status_.local_samples += n;
}

void LearningLoop::hand_over(std::uint64_t samples) {
    const std::span<const float> w = model_.parameters();
    copy_.assign(w.begin(), w.end());  // a pass over the model: outside the lock
    {
        std::lock_guard lock(mutex_);
        snapshot_.swap(copy_);
        snapshot_samples_ += samples;
        snapshot_ready_ = true;
    }
    gossip_wake_.notify_one();
}

void LearningLoop::evaluate_now(gossip::Time t) {
    next_eval_ = t + options_.eval_interval;
    std::optional<Evaluated> holdout;
    std::optional<Evaluated> test;
    if (holdout_.size() > 0) holdout = evaluated(serving(), holdout_);
    if (test_ && test_->size() > 0) test = evaluated(serving(), *test_);
    const double seconds = static_cast<double>((t - rate_since_).count()) / 1e6;
    const double rate = seconds > 0 ? static_cast<double>(rate_samples_) / seconds : 0.0;
    rate_since_ = t;
    rate_samples_ = 0;
    std::uint64_t evaluations = 0;
    LearningStatus now_status;
    {
        std::lock_guard lock(mutex_);
        status_.holdout = holdout;
        status_.test = test;
        status_.samples_per_second = rate;
        evaluations = ++status_.evaluations;
        now_status = status_;
    }
    if (log_) {
        const gossip::LearnerStats& s = now_status.learner;
        std::array<char, 256> line{};
        std::snprintf(line.data(), line.size(),
                      "eval %llu holdout %s test %s samples_seen %llu version %llu merged %llu "
                      "sent %llu refused %llu %.0f samples/s",
                      static_cast<unsigned long long>(evaluations), percent(holdout).c_str(),
                      percent(test).c_str(),
                      static_cast<unsigned long long>(now_status.samples_seen),
                      static_cast<unsigned long long>(now_status.version),
                      static_cast<unsigned long long>(s.models_merged + s.models_adopted),
                      static_cast<unsigned long long>(s.sends_completed),
                      static_cast<unsigned long long>(s.refused_total()), rate);
        log_(line.data());
    }
}

void LearningLoop::update_served(bool reset) {
    if (options_.served_average <= 0) return;
    const std::span<const float> trained = model_.parameters();
    const std::span<float> served = served_.parameters();
    if (reset) {
        std::copy(trained.begin(), trained.end(), served.begin());
        return;
    }
    model::follow_average(served, trained, std::min(options_.served_average, 1.0f));
}

void LearningLoop::save_checkpoint() {
    if (options_.checkpoint.empty()) return;
    model::Checkpoint c = trainer_.checkpoint();
    {
        std::lock_guard lock(mutex_);
        c.samples_seen = status_.samples_seen;
    }
    if (options_.served_average > 0)
        c.served.assign(served_.parameters().begin(), served_.parameters().end());
    const Status s = model::save_checkpoint(options_.checkpoint, c);
    {
        std::lock_guard lock(mutex_);
        ++(s ? status_.checkpoints : status_.checkpoint_failures);
    }
    if (!s && log_) log_("checkpoint failed: " + s.error().message);
}

// ---- Gossip thread. ----

void LearningLoop::run_gossip() {
    const gossip::Time start = now();
    learner_.on_start(start, !resumed_);
    if (log_)
        log_(std::string(resumed_ ? "training resumed from the checkpoint at "
                                  : "training starts: ") +
             std::to_string(learner_.samples_seen()) + " samples seen; " +
             std::to_string(train_.size()) + " local examples, " + std::to_string(holdout_.size()) +
             " held out" + (resumed_ ? "" : "; pulling the freshest peer model first"));
    publish(start);
    forward_actions();
    publish_status(start);
    std::deque<Event> events;
    for (;;) {
        std::optional<std::vector<gossip::PeerInfo>> peers;
        std::uint64_t samples = 0;
        gossip::Time t{};
        {
            std::unique_lock lock(mutex_);
            gossip_wake_.wait_for(lock, kIdleWait, [this] {
                return stop_ || !inbox_.empty() || peers_ || snapshot_ready_;
            });
            if (stop_) break;
            events.swap(inbox_);
            queued_models_ = 0;
            peers.swap(peers_);
            t = now();
            if (snapshot_ready_) {
                samples = std::exchange(snapshot_samples_, 0);
                take_snapshot(lock);
            }
        }
        // What came in first, then the round the trainer's copy is due for: the round carries
        // every model merged before it, and a thread that falls behind merges before it sends.
        // The models that waited are averaged as one batch, each with an equal share.
        if (peers) learner_.on_peers_changed(*peers, t);
        learner_.begin_batch();
        const bool models = std::ranges::any_of(
            events, [](const Event& e) { return e.kind == Event::Kind::model; });
        if (models) before_.assign(mirror_.parameters().begin(), mirror_.parameters().end());
        gossip::Received batch = gossip::Received::refused;  // the batch's strongest outcome
        for (Event& e : events) handle(e, t, batch);
        learner_.end_batch();
        if (batch != gossip::Received::refused) hand_merges_to_trainer(batch);
        events.clear();
        if (samples > 0) learner_.on_local_samples(samples, t);
        learner_.on_tick(t);
        forward_actions();
        if (t >= next_publish_) publish(t);
        publish_status(t);
    }
}

void LearningLoop::take_snapshot(const std::unique_lock<std::mutex>& lock) {
    assert(lock.owns_lock());  // the moves waiting are read as the trainer's copy is taken
    (void)lock;
    handed_.swap(snapshot_);
    snapshot_ready_ = false;
    if (adopted_) return;  // the trainer is about to take the adopted model: the mirror holds it
    const std::span<float> m = mirror_.parameters();
    std::ranges::copy(handed_, m.begin());
    if (moves_ready_) model::add_move(m, moves_);  // merged since the copy, not yet taken
}

void LearningLoop::handle(Event& e, gossip::Time t, gossip::Received& batch) {
    switch (e.kind) {
    case Event::Kind::model: {
        const gossip::Received outcome = learner_.on_model_bytes(e.from, e.bytes, t);
        if (outcome == gossip::Received::adopted) {
            batch = outcome;
            if (log_)
                log_("caught up: adopted a peer's model with " +
                     std::to_string(learner_.samples_seen()) + " samples seen");
        } else if (outcome == gossip::Received::merged && batch == gossip::Received::refused) {
            batch = outcome;
        }
        return;
    }
    case Event::Kind::sent: learner_.on_send_finished(e.transfer, e.delivered, t); return;
    case Event::Kind::request_failed: learner_.on_request_failed(e.transfer, t); return;
    }
}

// One move for the whole batch (the mirror now against the mirror before it), not one per
// model: a busy thread takes several models a wake, and each move costs a copy and a pass.
void LearningLoop::hand_merges_to_trainer(gossip::Received batch) {
    const std::span<const float> m = mirror_.parameters();
    {
        std::lock_guard lock(mutex_);
        if (batch == gossip::Received::adopted || adopted_) {  // the whole model, again
            moves_.assign(m.begin(), m.end());
            adopted_ = true;
            moves_ready_ = false;
        } else {
            moves_.resize(m.size());
            model::record_move(moves_, m, before_, /*accumulate=*/moves_ready_);
            moves_ready_ = true;
        }
    }
    training_wake_.notify_one();
}

void LearningLoop::forward_actions() {
    for (gossip::Action& a : learner_.take_actions())
        if (actions_) actions_(std::move(a));
}

void LearningLoop::publish(gossip::Time t) {
    next_publish_ = t + options_.publish_interval;
    auto bytes = std::make_shared<const std::vector<std::uint8_t>>(
        snapshot_encoder_.encode(learner_.header(), mirror_.parameters()));
    std::lock_guard lock(mutex_);
    status_.model_bytes = bytes->size();
    published_ = std::move(bytes);
}

void LearningLoop::publish_status(gossip::Time busy_since) {
    const bool ready = learner_.ready_to_train();
    const gossip::Time busy = now() - busy_since;
    bool woke = false;
    {
        std::lock_guard lock(mutex_);
        status_.gossip_busy_seconds += static_cast<double>(busy.count()) / 1e6;
        status_.samples_seen = learner_.samples_seen();
        status_.version = learner_.version();
        status_.catching_up = !ready;
        status_.learner = learner_.stats();
        woke = ready && !learner_ready_;
        learner_ready_ = ready;
    }
    if (woke) training_wake_.notify_one();
}

}  // namespace starling::runtime

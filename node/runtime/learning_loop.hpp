#pragma once
// The node's learning: a training thread trains on the local shard at the pace the device allows,
// evaluates and checkpoints crash-safely; a gossip thread runs the learner (node/gossip), whose
// encoding, decoding and merging would otherwise take the trainer's core. So the network never
// blocks a step, and neither do the models it brings.
//
// The learner works on a mirror of the trained model: the training thread hands it a copy now
// and then (the learner's rounds encode it), and takes back what each merge moved, adding it to
// the model between two steps.
//
// Threading: the network thread calls the on_*() inputs, published_model() and status(); they
// only touch bounded, mutex-protected queues and snapshots. The model, the trainer and the
// served average belong to the training thread; the learner and the mirror to the gossip thread.
// Outputs (the learner's actions, log lines) leave through the callbacks given at creation,
// called on either thread.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "node/data/dataset.hpp"
#include "node/gossip/learner.hpp"
#include "node/model/trainer.hpp"
#include "node/runtime/clock.hpp"
#include "node/runtime/model_link.hpp"
#include "protocol/result.hpp"

namespace starling::runtime {

// Models from peers waiting for the training thread (each up to a model's size); more are
// dropped and counted: the learner's next round brings fresher ones anyway.
inline constexpr std::size_t kMaxQueuedModels = 8;
// Completions and other small events waiting for the training thread.
inline constexpr std::size_t kMaxQueuedEvents = 256;
// The held-out slice of the local shard each evaluation uses, and the test rows it uses.
inline constexpr std::size_t kDefaultHoldoutRows = 1000;
inline constexpr std::size_t kDefaultEvalTestRows = 2000;
// Local progress (with a copy of the model) reaches the learner at most this often by default,
// so a fast device on a small model does not start rounds faster than its link carries them:
// ~5 rounds a second.
inline constexpr std::chrono::milliseconds kDefaultReportInterval{200};
inline constexpr float kDefaultServedAverage = 0.01f;
// Where the node keeps its model in its state directory.
inline constexpr const char* kModelCheckpointName = "model.ckpt";

struct LearningOptions {
    std::vector<std::uint32_t> widths{784, 256, 128, 10};
    model::TrainOptions train;  // batch, seed, optimizer; the schedule is constant
    // The same on every device of a cluster (derived from the cluster id): models start
    // aligned, so the first merges average like with like.
    std::uint64_t init_seed = 1;
    gossip::LearnerConfig learner;
    std::filesystem::path checkpoint;  // empty: no checkpoints
    std::chrono::seconds checkpoint_interval{30};
    std::chrono::seconds eval_interval{10};
    std::chrono::milliseconds publish_interval{1000};  // the snapshot pulls are answered with
    // The model the device serves (evaluates, checkpoints for use) is a running average of the
    // trained one: each step moves it this share of the way, so it averages over the last few
    // hundred steps and the merges among them instead of ending wherever the last local steps
    // left the model. 0: serve the trained model itself.
    float served_average = kDefaultServedAverage;
    // Quasi-global momentum: a merge's move joins the SGD velocity (model::Trainer::follow_move),
    // so momentum carries where the cluster goes, not only the device's own gradients. Pays when
    // devices hold different classes (the merges keep pulling each model back); costs a little
    // when data is alike. SGD only.
    bool momentum_follows_merges = false;
    // How often the trainer hands the learner its progress and a copy of the model: the most
    // rounds a second can start (a round also waits for learner.samples_per_round samples).
    std::chrono::milliseconds report_interval = kDefaultReportInterval;
    std::size_t holdout_rows = kDefaultHoldoutRows;
    std::size_t eval_test_rows = kDefaultEvalTestRows;  // 0: the whole test set
    std::function<void()> on_thread_start;  // e.g. build the governor's pacer (lowers priority)
    std::function<void()> before_step;      // the pacer's wait; may sleep
};

struct Evaluated {
    double loss = 0.0;
    double accuracy = 0.0;
    std::size_t examples = 0;
};

// A copy of the loop's figures, for the control socket and announcements.
struct LearningStatus {
    bool catching_up = false;
    bool resumed = false;  // started from a checkpoint
    std::uint64_t steps = 0;
    std::uint64_t local_samples = 0;  // examples trained here since start
    std::uint64_t samples_seen = 0;   // examples behind the model (merges included)
    std::uint64_t version = 0;
    double samples_per_second = 0.0;
    std::optional<Evaluated> holdout;
    std::optional<Evaluated> test;
    std::uint64_t evaluations = 0;
    std::uint64_t checkpoints = 0;
    std::uint64_t checkpoint_failures = 0;
    std::uint64_t models_dropped = 0;  // inbox full
    std::uint64_t events_dropped = 0;
    std::size_t model_bytes = 0;  // of the published snapshot
    // Time the gossip thread spent at work (decoding, merging, encoding rounds): its rate is the
    // share of a core it takes; near 1, models wait and the inbox overflows.
    double gossip_busy_seconds = 0.0;
    gossip::LearnerStats learner;
};

using LearnerActionSink = std::function<void(gossip::Action action)>;

class LearningLoop {
public:
    // Loads the checkpoint when there is a valid one (resume; no catch-up), else starts from
    // the cluster's initial weights and pulls the freshest peer model first. invalid_argument
    // when the data does not fit the architecture.
    [[nodiscard]] static Result<std::unique_ptr<LearningLoop>> create(
        const crypto::DeviceId& self, data::Dataset train, std::optional<data::Dataset> test,
        LearningOptions options, const Clock& clock, std::function<void(std::string)> log,
        LearnerActionSink actions);
    ~LearningLoop();  // stops and joins
    LearningLoop(const LearningLoop&) = delete;
    LearningLoop& operator=(const LearningLoop&) = delete;

    void start();
    // Asks both threads to stop, joins them, adds the moves merges left and writes a last
    // checkpoint.
    void stop();

    // ---- Inputs from the network thread (bounded; never block on training). ----
    void on_model_bytes(const crypto::DeviceId& from, std::vector<std::uint8_t> bytes);
    void on_send_finished(std::uint64_t transfer, bool delivered);
    void on_request_failed(std::uint64_t transfer);
    void on_peers(std::vector<gossip::PeerInfo> peers);

    // The latest encoded snapshot of the model (fp32 model message): what a pull is answered
    // with. Null before the first one.
    [[nodiscard]] ModelBytes published_model() const;
    // kMaxQueuedModels wait for the gossip thread: another would be dropped on arrival.
    [[nodiscard]] bool inbox_full() const;
    [[nodiscard]] LearningStatus status() const;

private:
    struct Event {
        enum class Kind { model, sent, request_failed } kind;
        crypto::DeviceId from{};
        std::vector<std::uint8_t> bytes;
        std::uint64_t transfer = 0;
        bool delivered = false;
    };

    LearningLoop(const crypto::DeviceId& self, data::Dataset train, std::optional<data::Dataset> test,
                 LearningOptions options, const Clock& clock, std::function<void(std::string)> log,
                 LearnerActionSink actions);
    [[nodiscard]] gossip::Time now() const { return clock_.now(); }
    void push_event(Event event);

    // ---- Training thread. ----
    void run_training();
    // Adds what merges moved to the model (or takes the model the learner adopted), if any.
    void take_moves(std::unique_lock<std::mutex>& lock);
    void train_one_step(gossip::Time now);
    // Progress and a copy of the model, to the learner.
    void hand_over(std::uint64_t samples);
    void evaluate_now(gossip::Time now);
    void save_checkpoint();
    // The served model after a step (averaging) or after the trained one was replaced (reset).
    void update_served(bool reset);
    const model::Mlp& serving() const { return options_.served_average > 0 ? served_ : model_; }

    // ---- Gossip thread. ----
    void run_gossip();
    // The trainer's copy, plus the moves it does not hold yet, becomes the mirror.
    void take_snapshot(const std::unique_lock<std::mutex>& lock);
    // Outcomes of a wake's models fold into `batch`: adopted over merged over refused.
    void handle(Event& event, gossip::Time now, gossip::Received& batch);
    void hand_merges_to_trainer(gossip::Received batch);
    void forward_actions();
    void publish(gossip::Time now);
    void publish_status(gossip::Time busy_since);

    data::Dataset train_;
    data::Dataset holdout_;
    std::optional<data::Dataset> test_;
    LearningOptions options_;
    const Clock& clock_;
    std::function<void(std::string)> log_;
    LearnerActionSink actions_;

    // Training thread.
    model::Mlp model_;
    model::Mlp served_;  // options_.served_average > 0: the running average of model_
    std::vector<float> before_merge_;  // momentum_follows_merges: the model before a move
    std::vector<float> move_;          // taken from the gossip thread
    std::vector<float> copy_;          // the model, for the gossip thread (swapped under the lock)
    model::Trainer trainer_;
    model::Rng order_rng_;
    std::vector<std::uint32_t> order_;
    std::size_t order_at_ = 0;
    bool resumed_ = false;
    gossip::Time next_eval_{};
    gossip::Time next_checkpoint_{};
    gossip::Time rate_since_{};
    gossip::Time next_report_{};
    std::uint64_t unreported_samples_ = 0;
    std::uint64_t rate_samples_ = 0;

    // Gossip thread.
    model::Mlp mirror_;              // the trainer's last copy, plus the merges' moves since
    std::vector<float> before_;      // the mirror before a wake's merges
    std::vector<float> handed_;      // the trainer's copy, taken from the shared slot
    gossip::GossipLearner learner_;  // on mirror_
    gossip::ModelEncoder snapshot_encoder_;  // fp32, compressed as the learner's messages are
    gossip::Time next_publish_{};

    mutable std::mutex mutex_;  // guards everything below
    std::condition_variable gossip_wake_;
    std::condition_variable training_wake_;
    std::deque<Event> inbox_;
    std::size_t queued_models_ = 0;
    std::optional<std::vector<gossip::PeerInfo>> peers_;
    // Trainer -> learner: samples trained since the last hand-over, and the model after them.
    std::vector<float> snapshot_;
    std::uint64_t snapshot_samples_ = 0;
    bool snapshot_ready_ = false;
    // Learner -> trainer: the sum of the merges' moves not yet taken, or (adopted_) the model
    // the learner adopted, to replace the trained one.
    std::vector<float> moves_;
    bool moves_ready_ = false;
    bool adopted_ = false;
    bool learner_ready_ = false;  // the learner's ready_to_train()
    ModelBytes published_;
    LearningStatus status_;
    bool stop_ = false;

    std::thread gossip_thread_;
    std::thread training_thread_;
};

}  // namespace starling::runtime

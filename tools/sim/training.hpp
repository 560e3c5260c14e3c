#pragma once
// The simulator's training mode: N devices in one process, each a real model trained on its own
// shard and a real GossipLearner, on virtual time. Compute speed per device, link bandwidth and
// latency, loss, crashes, restarts and partitions are modelled; everything random derives from
// the seed, so a run replays exactly. Scenario format: tools/sim/README.md.

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "node/data/dataset.hpp"
#include "node/data/split.hpp"
#include "node/gossip/learner.hpp"
#include "node/model/optimizer.hpp"
#include "node/model/trainer.hpp"
#include "protocol/result.hpp"

namespace starling::sim {

// What a device does to its optimizer's momentum when a merge changes its model: nothing, zero
// it, or let it follow the merge's move (quasi-global momentum, model::Optimizer::follow_move).
enum class MomentumPolicy : std::uint8_t { keep, reset, follow };

struct TrainingEvent {
    enum Kind : std::uint8_t { crash, restart, partition, heal };
    double at = 0.0;                           // virtual seconds
    Kind kind = crash;
    std::vector<std::uint32_t> nodes;          // crash, restart
    std::vector<std::vector<std::uint32_t>> groups;  // partition (unlisted: one more group)
};

struct TrainingScenario {
    std::uint32_t nodes = 8;
    std::uint32_t images_per_node = 600;  // the train set is cut to nodes * this, then split
    data::SplitScheme split;
    std::vector<std::uint32_t> widths{784, 256, 128, 10};
    bool common_init = true;              // every device starts from the same weights

    // Training: each device trains `epochs` passes over its shard, or until `run_seconds`.
    double epochs = 20;
    double run_seconds = 0;               // 0: until every device finished its epochs
    int batch = 32;
    float learning_rate = 0.05f;
    float momentum = 0.9f;
    bool nesterov = false;                // SGD steps along g + momentum*v (Nesterov)
    float weight_decay = 0.0f;            // L2, added to the gradient
    // The learning rate over the device's horizon (its epochs, or run_seconds); cooldown falls
    // over the last `cooldown_share` of it.
    model::Schedule schedule = model::Schedule::cosine;
    double cooldown_share = 0.5;
    MomentumPolicy momentum_policy = MomentumPolicy::keep;
    // The model a device serves and is evaluated on: a running average of the trained one, each
    // step moving it this share of the way (`starling node` serves 0.01); 0: the trained model.
    // When a device finishes, it keeps the average as its model for the consensus rounds.
    float served_average = 0.0f;

    // Devices and links.
    double base_samples_per_second = 50000;  // an i7 (speed 1.0)
    std::vector<double> speeds;              // per node, relative (default 1.0)
    // Share of the time a device trains (the resource governor's CPU budget, firmware/): a
    // cluster whose devices hold different classes gives its links time to keep them together.
    double duty = 1.0;
    // Adam keeps its moments on the device; merges average the parameters only.
    model::OptimizerConfig::Kind optimizer = model::OptimizerConfig::Kind::sgd;
    double bandwidth_bytes_per_second = 125e6;  // 1 Gb/s
    double latency_seconds = 200e-6;
    double loss = 0.0;                       // probability a transfer fails
    // CPU a device spends on gossip, in seconds at speed 1.0: encoding (and sealing) one
    // round's model, and opening, decoding and merging one received. 0: free, as links and
    // training are the only costs otherwise. Without a gossip thread it is taken from training
    // (one core trains and merges).
    double cpu_per_send = 0.0;
    double cpu_per_receive = 0.0;
    // A gossip thread on a core of its own does that work: a round's transfers start when it has
    // encoded the model, a received model is merged when it gets to it (at most
    // runtime::kMaxQueuedModels wait; more are dropped), and training pays only the hand-offs:
    // copying the model for a round, adding a merge's move to the model.
    bool gossip_thread = false;
    double handoff_per_send = 0.0;
    double handoff_per_receive = 0.0;
    // Each side's half of the handshake that opens a model link, in seconds at speed 1.0 (on
    // top of the costs above). The link between two devices carries either one's transfers and
    // stays open while used within `link_idle` seconds (as `starling node` keeps its links,
    // runtime::kDefaultLinkIdleTimeout); 0: every transfer opens one.
    double cpu_per_handshake = 0.0;
    double link_idle = 0.0;
    // The models the gossip thread takes in at one wake are averaged as one batch
    // (GossipLearner::begin_batch), as `starling node` does; off: merged one by one.
    bool batch_average = false;

    gossip::LearnerConfig learner;

    // Averaging-only rounds after a device finished training, `consensus_interval` apart.
    std::uint32_t consensus_rounds = 0;
    double consensus_interval = 0.01;

    // Evaluation: every `eval_every` virtual seconds on the first `eval_subset` test images;
    // at the end on the whole test set.
    double eval_every = 1.0;
    std::uint32_t eval_subset = 2000;
    double target_accuracy = 0;  // report when the mean first reaches it (0: not reported)

    std::vector<TrainingEvent> events;
    std::uint64_t seed = 1;
};

// Relative speeds of the modelled device classes (celeron 0.3, i3 0.6, i5 0.8, i7 1.0).
bool device_class_speed(std::string_view name, double& speed) noexcept;

// True when the file's first command is `training` (a training scenario, not a membership one).
bool is_training_scenario(const std::filesystem::path& path);
Result<TrainingScenario> load_training_scenario(const std::filesystem::path& path);
Result<TrainingScenario> parse_training_scenario(std::string_view text, std::string_view name);

struct CurvePoint {
    double time = 0;          // virtual seconds
    double mean_epochs = 0;   // local epochs trained, mean over live devices
    double mean = 0, min = 0, max = 0;  // test accuracy over live devices
    std::uint32_t live = 0;
    double bytes_per_node = 0;  // sent so far, mean over all devices
    // Mean accuracy of the live devices of each speed, slowest first (one entry: one speed).
    std::vector<std::pair<double, double>> by_speed;
};

struct TrainingReport {
    // Every eval_every, and the end of the run when the curve is on the whole test set.
    std::vector<CurvePoint> curve;
    CurvePoint final_full;             // on the whole test set, after the run
    // The mean of the live devices' parameters on the whole test set and on the eval subset:
    // what a perfect consensus would hand every device (NaN: no live device).
    double average_model_full = 0;
    double average_model_subset = 0;
    std::size_t eval_images = 0;  // the first eval_subset test images, or all there are
    std::size_t test_images = 0;
    std::vector<double> final_accuracy;  // per device (crashed ones: NaN)
    double target_reached_at = -1;    // virtual seconds, -1: never
    double target_reached_epochs = 0;
    std::uint64_t exchanges = 0;      // sends completed
    std::uint64_t bytes_sent = 0;
    double bytes_per_exchange = 0;
    double fp32_message_bytes = 0;
    std::uint64_t merges = 0;
    std::uint64_t adopted = 0;
    std::uint64_t clipped = 0;
    std::uint64_t lattice_blocks = 0;             // lattice blocks received
    std::uint64_t lattice_blocks_unresolved = 0;  // of those, too far from the receiver's model
    std::uint64_t lost_pulls = 0;  // devices that could not resolve anyone's model pulled one
    std::uint64_t rounds = 0;
    std::uint64_t rounds_waited = 0;  // wait_for_link: rounds that held training for the link
    // gossip_thread: models dropped because the gossip thread had kMaxQueuedModels waiting, and
    // its busy time over the run, mean over devices (share of the virtual time).
    std::uint64_t models_dropped = 0;
    double gossip_thread_busy = 0;
    std::uint64_t links_opened = 0;  // transfers that paid for a handshake
    std::uint64_t transfers = 0;
    std::uint64_t refused[gossip::kRefusalReasons] = {};
    std::uint64_t garbage_sent = 0;
    double virtual_seconds = 0;
    std::uint64_t samples_trained = 0;
};

// Extra hook for tests: a device that sends garbage (random values far off the model) instead
// of its model. Empty: none.
struct Adversary {
    std::vector<std::uint32_t> nodes;
    float scale = 100.0f;
};

// Fails (invalid_argument) when the data cannot be split as asked or does not fit the model.
Result<TrainingReport> simulate_training(const TrainingScenario& scenario,
                                         const data::Dataset& train, const data::Dataset& test,
                                         std::FILE* progress, const Adversary& adversary = {});

void print_training_report(const TrainingScenario& scenario, const TrainingReport& report,
                           std::FILE* out);
// The curve as CSV: time,mean_epochs,mean,min,max,live,bytes_per_node.
void write_curve_csv(const TrainingReport& report, std::FILE* out);

// `starling-sim` for a training scenario: [--seed S] [--data DIR] [--csv FILE] [--set K=V]...
int training_main(const std::filesystem::path& scenario_path, int argc, char** argv);

}  // namespace starling::sim

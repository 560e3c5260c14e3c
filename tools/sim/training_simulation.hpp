#pragma once
// The training simulator's insides, shared by its sources: the events on the virtual clock, a
// simulated device, and the Simulation that runs them (training.cpp: the event loop, devices,
// training and transfers; training_gossip_thread.cpp: the node's gossip thread as modelled;
// training_evaluation.cpp: evaluation and the report). Not a public header.

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <string>
#include <vector>

#include "node/gossip/learner.hpp"
#include "node/model/mlp.hpp"
#include "node/model/optimizer.hpp"
#include "node/model/rng.hpp"
#include "node/model/trainer.hpp"
#include "tools/sim/training.hpp"

namespace starling::sim::detail {

using gossip::Time;

// Virtual seconds before a transfer to an unreachable (partitioned) peer is given up; to a
// dead host it fails after a round trip (the host refuses the connection).
inline constexpr double kUnreachableTimeoutSeconds = 1.0;

inline Time to_time(double seconds) {
    return Time(static_cast<std::int64_t>(std::llround(seconds * 1e6)));
}
inline double to_seconds(Time t) { return static_cast<double>(t.count()) * 1e-6; }

inline gossip::DeviceId device_id(std::uint32_t index) {
    gossip::DeviceId id{};
    for (int b = 0; b < 4; ++b)
        id[static_cast<std::size_t>(b)] = static_cast<std::uint8_t>(index >> (8 * b));
    id[4] = 0x5a;  // never all-zero
    return id;
}
inline std::uint32_t device_index(const gossip::DeviceId& id) {
    std::uint32_t index = 0;
    for (int b = 0; b < 4; ++b) index |= std::uint32_t{id[static_cast<std::size_t>(b)]} << (8 * b);
    return index;
}

enum class EventKind : std::uint8_t { step, tick, deliver, gossip_done, request, request_failed,
                                      send_failed, consensus, scenario, eval };

// Received models a device's gossip thread holds before it drops more: the node's inbox
// (runtime::kMaxQueuedModels).
inline constexpr std::uint32_t kGossipInbox = 8;

struct Event {
    double at = 0;
    std::uint64_t seq = 0;
    EventKind kind = EventKind::step;
    std::uint32_t node = 0;       // the device it happens to
    std::uint32_t generation = 0; // of `node` when scheduled
    std::uint32_t from = 0;       // deliver / request: the sender
    std::uint32_t from_generation = 0;
    std::uint64_t transfer = 0;
    std::shared_ptr<const std::vector<std::uint8_t>> bytes = nullptr;
    std::size_t scenario_index = 0;
    bool opened_link = false;  // deliver: the transfer paid for a handshake
};

// A transfer waiting for its round's model to be encoded on the gossip thread.
struct PendingSend {
    const void* round = nullptr;  // the learner's message: one encoding for a round's peers
    std::uint32_t peer = 0;
    std::uint64_t transfer = 0;
    std::shared_ptr<const std::vector<std::uint8_t>> bytes;
    bool opened_link = false;
};

// A model link between this device and a peer of higher index: the peer's generation then, and
// when either last used it.
struct OpenLink {
    std::uint32_t peer_generation = 0;
    double used = 0;
};

struct Device {
    std::uint32_t index = 0;
    double speed = 1.0;
    data::Dataset shard;
    std::unique_ptr<model::Mlp> model;
    std::unique_ptr<model::Mlp> served;  // scenario.served_average > 0: the running average
    std::vector<float> before_merge;     // momentum_policy follow: the model a merge started from
    std::unique_ptr<model::Optimizer> optimizer;
    std::unique_ptr<model::Workspace> workspace;
    std::unique_ptr<gossip::GossipLearner> learner;
    model::Rng order_rng{1};
    std::vector<std::uint32_t> order;
    std::size_t cursor = 0;
    std::vector<std::uint8_t> labels;
    std::uint64_t trained = 0;  // examples trained (kept across restarts, as a checkpoint would)
    std::uint64_t horizon = 0;  // examples in its schedule
    bool alive = false;
    bool finished = false;
    bool step_scheduled = false;
    Time tick_at = Time::max();
    std::uint32_t consensus_done = 0;
    std::uint32_t generation = 0;  // bumps on crash and restart: stale events are dropped
    int group = 0;
    double up_free = 0, down_free = 0;  // when its uplink / downlink is next idle
    double cpu_debt = 0;                // gossip CPU seconds the next step waits for
    bool move_waiting = false;          // merged since the last step: the trainer adds the move
    std::map<std::uint32_t, OpenLink> links;  // by peer index, peers of higher index only
    // scenario.gossip_thread, as `starling node` runs it: the trainer hands the thread a copy of
    // its model every round (`snapshot`, a later one replacing one not yet taken); the thread
    // wakes, takes every model waiting in its inbox and the copy, merges the models one by one,
    // then encodes the round from the copy plus what merges moved since it was made (`moves`).
    // Pull answers wait in gossip_sends. Its job at hand, and its busy seconds over the run.
    std::deque<Event> gossip_inbox;
    std::vector<PendingSend> gossip_sends;
    std::deque<Event> batch_models;  // taken at the thread's last wake, not yet merged
    bool batch_round = false;        // that wake took the trainer's copy: the round follows
    std::uint64_t unreported = 0;    // samples trained since the last copy
    std::vector<float> snapshot;
    std::uint64_t snapshot_samples = 0;
    bool snapshot_ready = false;     // handed over, not yet taken
    bool snapshot_live = false;      // handed over, its round not yet encoded: merges add moves
    std::vector<float> moves;
    std::vector<PendingSend> job_sends;
    std::optional<Event> job_model;
    bool gossip_working = false;
    double gossip_busy = 0;
    gossip::LearnerStats retired;       // stats of learners lost to crashes
};

struct Later {
    bool operator()(const Event& a, const Event& b) const {
        return a.at != b.at ? a.at > b.at : a.seq > b.seq;
    }
};

// Adds one learner's counters to a total.
void add_stats(gossip::LearnerStats& into, const gossip::LearnerStats& s);

// N devices training and gossiping on one virtual clock. Single-threaded; same seed, same run.
class Simulation {
public:
    Simulation(const TrainingScenario& scenario, const data::Dataset& train,
               const data::Dataset& test, std::FILE* progress, const Adversary& adversary);
    TrainingReport run();

    std::string error_;  // set by the constructor when the data cannot be dealt as asked

private:
    // training.cpp: the event loop, devices, training, transfers and faults.
    static std::vector<std::uint32_t> first_rows(std::size_t n);
    void deal(const data::Dataset& train);
    void push(Event e);
    void start_device(Device& d, bool catch_up);
    bool reachable(const Device& a, const Device& b) const;
    void update_views();
    double step_seconds(const Device& d, std::size_t n) const;
    void service(Device& d);
    void route(Device& d, std::vector<gossip::Action> actions, std::vector<PendingSend>& sends);
    void schedule(Device& d);
    void transfer(Device& from, Device& to, std::uint64_t id,
                  std::shared_ptr<const std::vector<std::uint8_t>> bytes, bool opened_link);
    // Whether a transfer from `from` to `to` now opens a link (none open between the two, or
    // idle too long).
    bool opens_link(Device& from, Device& to);
    // Marks which of `sends` open a link; their handshakes' CPU, in seconds at speed 1.0.
    double open_links(Device& d, std::vector<PendingSend>& sends);
    bool is_adversary(std::uint32_t index) const;
    std::shared_ptr<const std::vector<std::uint8_t>> garbage(Device& d);
    float learning_rate(const Device& d) const;
    void reset_momentum(Device& d);
    void train_step(Device& d);
    void receive(Device& d, const Event& e);
    void merge(Device& d, const Event& e);
    void dispatch(const Event& e);
    void apply(const TrainingEvent& ev);
    bool stale_tick(const Event& e) const;
    bool all_done() const;

    // training_gossip_thread.cpp: scenario.gossip_thread.
    void start_gossip_job(Device& d);
    void encode_round(Device& d);
    void hand_over(Device& d);
    void gossip_done(Device& d);

    // training_evaluation.cpp.
    double mean_epochs() const;
    std::uint64_t bytes_sent_total() const;
    CurvePoint evaluate_on(const data::Dataset& ds, std::vector<double>* per_device);
    void evaluate_all();
    // A point joins the curve; the first at or above the target marks when it was reached.
    void add_to_curve(const CurvePoint& p);
    void evaluate_average_model();
    // The mean of the live devices' parameters (none live: nullopt).
    std::optional<model::Mlp> average_model() const;
    void finish();

    const TrainingScenario& sc_;
    const data::Dataset& test_;
    data::Dataset eval_set_;
    std::FILE* progress_;
    const Adversary& adversary_;
    std::vector<Device> devices_;
    std::priority_queue<Event, std::vector<Event>, Later> queue_;
    std::uint64_t seq_ = 0;
    double now_ = 0;
    model::Rng net_rng_;
    model::Rng garbage_rng_;
    TrainingReport report_;
};

}  // namespace starling::sim::detail

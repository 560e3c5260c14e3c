#pragma once
// The gossip learner: decides, without rounds or barriers, when this device sends its model and
// to whom, merges what peers send, and pulls a fresh model before a new device trains. Sans-I/O:
// time, the peer list, training progress and received bytes come in as events; transfers to
// start come out as actions. Not thread-safe: call it from the thread that owns the model
// (merges write the model's parameters), between training steps.

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "node/gossip/merge.hpp"
#include "node/gossip/model_wire.hpp"
#include "node/model/mlp.hpp"
#include "node/model/rng.hpp"

namespace starling::gossip {

using Time = std::chrono::microseconds;

// Origins whose last merged version is remembered for duplicate detection: every device of a
// large cluster, with room for re-enrolled ones; beyond it the oldest-keyed entries are dropped.
inline constexpr std::size_t kMaxTrackedOrigins = 4096;
// Pull answers waiting for a free transfer slot; more pending requests are refused and counted.
inline constexpr std::size_t kMaxQueuedAnswers = 16;
// Peers one round sends to.
inline constexpr std::uint32_t kMaxFanout = 16;
// Lattice messages in a row this device could not resolve, after which it concludes that its own
// model is the one far from everyone's (diverged, or left behind) and pulls a peer's whole.
inline constexpr std::uint32_t kUnresolvedBeforePull = 3;
// Lattice messages in a row, from more than one origin, in which the same block could not be
// resolved, after which this device concludes that its own values there are off and pulls a
// peer's model whole. A block that once resolved to the wrong lattice point sits a whole period
// from everyone's: every later message leaves it unresolved, a merge keeps it as it is, and the
// rest resolving keeps the message from being refused, so nothing else would bring it back.
inline constexpr std::uint32_t kStuckBlockMessages = 32;
// A catch-up pull the peer refused or could not serve (busy, rate-limited, catching up itself)
// is retried after this wait, doubling with each refusal in a row up to the pull timeout; after
// kMaxPullRefusals of them the device trains from its local model. Busy peers refuse in bursts:
// asking the next one at once used to end a catch-up within a second without a model.
inline constexpr Time kPullRetryWait = std::chrono::milliseconds(100);
inline constexpr std::uint32_t kMaxPullRefusals = 8;

struct LearnerConfig {
    std::uint32_t fanout = 2;               // peers each round's model goes to (1..kMaxFanout)
    std::uint64_t samples_per_round = 600;  // local examples trained between two rounds
    // A round that comes due while earlier sends are still in flight holds training until they
    // end, instead of being skipped: devices then agree every samples_per_round at the link's
    // pace. Pays when devices hold different data (each one's own drift between exchanges is
    // what keeps the cluster apart); costs training time where the link is the bottleneck.
    bool wait_for_link = false;
    std::uint32_t max_concurrent_sends = 4; // link budget: transfers in flight at once
    Encoding encoding = Encoding::fp32;
    Compression compression = Compression::none;  // of every model this learner sends
    bool error_feedback = true;             // fp16, int8, int4, lattice
    float lattice_margin = kDefaultLatticeMargin;  // lattice: step in eighths of peers' distance
    MergeConfig merge;
    Time pull_timeout = std::chrono::seconds(5);  // an unanswered catch-up pull: try another peer
    std::uint32_t pull_attempts = 3;  // unanswered pulls, then train from the local model
};

// A peer that trains, as the membership view shows it.
struct PeerInfo {
    DeviceId id{};
    std::uint64_t samples_seen = 0;  // as announced (0: unknown); the freshest is pulled first
};

enum class ActionKind : std::uint8_t {
    send_model,     // open a stream to `peer` and send `bytes`; report with on_send_finished
    request_model,  // ask `peer` for its model; its answer arrives through on_model_bytes,
                    // a failure is reported with on_request_failed
};

struct Action {
    ActionKind kind;
    DeviceId peer{};
    std::uint64_t transfer = 0;  // names this transfer in the completion events
    // send_model: the encoded message, shared by every peer of one round.
    std::shared_ptr<const std::vector<std::uint8_t>> bytes;
};

// What became of one received model.
enum class Received : std::uint8_t {
    merged,   // folded into the local model
    adopted,  // replaced the local model (catch-up): the caller resets optimizer state
    refused,  // see the learner's refusal counters
};

struct LearnerStats {
    std::uint64_t rounds = 0;
    std::uint64_t sends_started = 0;
    std::uint64_t sends_completed = 0;
    std::uint64_t sends_failed = 0;
    std::uint64_t sends_skipped_budget = 0;  // a round's peer left out: link budget full
    std::uint64_t rounds_waited = 0;  // wait_for_link: rounds that held training for the link
    std::uint64_t sends_skipped_not_finite = 0;  // a round or answer withheld: NaN/Inf in the model
    std::uint64_t bytes_sent = 0;            // of sends started
    // Compression::zstd: messages encoded compressed (a round's, once for all its peers), and
    // those zstd failed on (sent uncompressed); received models that came compressed.
    std::uint64_t messages_compressed = 0;
    std::uint64_t compression_failures = 0;
    std::uint64_t models_received_compressed = 0;
    std::uint64_t models_received = 0;
    std::uint64_t models_merged = 0;
    std::uint64_t models_adopted = 0;
    std::uint64_t models_clipped = 0;
    std::uint64_t pulls_sent = 0;
    std::uint64_t pulls_failed = 0;
    std::uint64_t answers_queued = 0;
    std::uint64_t answers_dropped = 0;  // pull requests over kMaxQueuedAnswers
    std::uint64_t lattice_blocks = 0;             // lattice blocks received
    std::uint64_t lattice_blocks_unresolved = 0;  // of those, kept local: too far to resolve
    // Pulls started because this device's model is off: kUnresolvedBeforePull refusals in a row,
    // or a block stuck unresolved (kStuckBlockMessages).
    std::uint64_t lost_pulls = 0;
    std::array<std::uint64_t, kRefusalReasons> refused{};
    // Median L2 distance of the recently merged models to this one before merging: how far the
    // devices are from consensus (0 until a model was merged).
    double consensus_distance = 0.0;
    std::uint64_t refused_total() const noexcept;
};

class GossipLearner {
public:
    // `model` is the local model, trained by the caller between events. `seed` drives peer
    // choice only.
    GossipLearner(DeviceId self, model::Mlp& model, LearnerConfig config, std::uint64_t seed);

    // ---- Inputs (events). ----

    // The node starts; `catch_up`: a new or restarted device pulls the freshest peer's model
    // before training (ready_to_train() stays false until then).
    void on_start(Time now, bool catch_up);
    // The trainers the membership view holds alive now (self excluded or ignored).
    void on_peers_changed(std::span<const PeerInfo> peers, Time now);
    // The caller trained `samples` more examples on the local model; a round starts every
    // config.samples_per_round of them.
    void on_local_samples(std::uint64_t samples, Time now);
    // A round is due without training (an idle device averaging with peers, e.g. a consensus
    // phase before evaluation): sends the current model to `fanout` peers.
    void on_round_due(Time now);
    // Models merged between these two calls are one batch: averaged with the local model, each
    // taking an equal share (by the weighting), as Epidemic Learning's receivers do; outside a
    // batch each one is merged pairwise into what the ones before left.
    void begin_batch() noexcept {
        in_batch_ = true;
        batch_weight_ = 0.0;
    }
    void end_batch() noexcept { in_batch_ = false; }
    // A model message arrived from `from` (a push, or the answer to our pull).
    Received on_model_bytes(const DeviceId& from, std::span<const std::uint8_t> bytes, Time now);
    // The same, already decoded and shape-checked (the simulator and tests).
    Received on_model(const DeviceId& from, const ModelMessage& message, Time now);
    // `from` asks for our model: an answer is queued as a send_model action.
    void on_model_requested(const DeviceId& from, Time now);
    void on_send_finished(std::uint64_t transfer, bool delivered, Time now);
    void on_request_failed(std::uint64_t transfer, Time now);
    // Time passed: pull timeouts.
    void on_tick(Time now);
    // The local model was replaced from outside (checkpoint restore): its samples and version.
    void on_model_restored(std::uint64_t samples_seen, std::uint64_t version);

    // ---- Outputs. ----

    std::vector<Action> take_actions();
    // False while catching up, or (wait_for_link) while a due round waits for the link.
    bool ready_to_train() const noexcept { return !catching_up_ && !round_waiting_; }
    Time next_wakeup() const noexcept;  // Time::max() when nothing is timed

    // ---- State. ----

    const LearnerStats& stats() const noexcept { return stats_; }
    std::uint64_t samples_seen() const noexcept { return samples_seen_; }
    std::uint64_t version() const noexcept { return version_; }
    double mass() const noexcept { return mass_; }
    const LearnerConfig& config() const noexcept { return config_; }
    const Merger& merger() const noexcept { return merger_; }
    // The message header the next send would carry (origin, version, samples, mass, widths).
    ModelMessage header() const;

private:
    void start_round(Time now);
    void start_send(const DeviceId& peer, std::shared_ptr<const std::vector<std::uint8_t>> bytes);
    std::shared_ptr<const std::vector<std::uint8_t>> encode_current();
    std::shared_ptr<const std::vector<std::uint8_t>> encode_answer();  // for a catch-up pull
    // The model, now, by `encoder`; its compression counted in the stats.
    std::shared_ptr<const std::vector<std::uint8_t>> encode_with(ModelEncoder& encoder);
    bool model_finite() const noexcept;
    void send_pull(Time now);
    void pump_answers();
    bool is_duplicate(const ModelMessage& message) const;
    void remember(const ModelMessage& message);
    // Counts the blocks `message` left unresolved; true when one is stuck (kStuckBlockMessages).
    bool block_stuck(const ModelMessage& message);

    DeviceId self_;
    model::Mlp& model_;
    LearnerConfig config_;
    model::Rng rng_;
    Merger merger_;
    ModelEncoder encoder_;
    ModelMessage received_;  // on_model_bytes decodes into it, reusing its buffers

    std::vector<PeerInfo> peers_;
    std::vector<Action> actions_;
    struct InFlight {
        DeviceId peer{};
        double mass = 0.0;  // push-sum share it carries, returned if it fails
    };
    std::map<std::uint64_t, InFlight> sends_in_flight_;
    std::vector<DeviceId> queued_answers_;
    std::map<DeviceId, std::uint64_t> merged_versions_;

    std::uint64_t samples_seen_ = 0;
    std::uint64_t samples_since_round_ = 0;
    std::uint64_t version_ = 0;
    double mass_ = 1.0;
    bool in_batch_ = false;
    double batch_weight_ = 0.0;  // LocalModel::batch_weight of this batch
    std::uint64_t batch_own_samples_ = 0;  // samples_seen_ as the batch's first merge found it
    std::uint64_t next_transfer_ = 1;

    bool catching_up_ = false;
    bool round_waiting_ = false;  // wait_for_link: a round is due, earlier sends in flight
    std::uint32_t unresolved_in_a_row_ = 0;
    // Per lattice block: the messages in a row that left it unresolved; and the origins of the
    // last kStuckBlockMessages lattice messages.
    std::vector<std::uint8_t> unresolved_streak_;
    std::deque<DeviceId> lattice_origins_;
    std::uint32_t pulls_unanswered_ = 0;  // this catch-up's pulls that timed out
    std::uint32_t pull_refusals_ = 0;     // this catch-up's pulls refused
    std::optional<std::uint64_t> pull_transfer_;
    std::optional<DeviceId> pull_peer_;
    std::vector<DeviceId> pulled_from_;
    Time pull_deadline_ = Time::max();

    LearnerStats stats_;
};

}  // namespace starling::gossip

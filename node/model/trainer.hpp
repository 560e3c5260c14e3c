#pragma once
// Local training on one device: shuffled mini-batches, a learning-rate schedule, evaluation, and
// conversion to and from checkpoints so training resumes where it stopped.

#include <xtensor/xtensor.hpp>

#include <cstdint>
#include <functional>
#include <span>
#include <string_view>
#include <vector>

#include "node/data/dataset.hpp"
#include "node/model/checkpoint.hpp"
#include "node/model/mlp.hpp"
#include "node/model/optimizer.hpp"
#include "node/model/rng.hpp"

namespace starling::model {

// constant; cosine: down to 0 over `epochs`; settle: cosine down to a tenth over `epochs`, then
// constant there, so a device that trains for ever ends up close to its peers instead of
// wandering at its starting rate; cooldown: held, then down to 0 in a straight line over the
// last part of `epochs` (half unless told), so a cluster with a deadline keeps its full rate
// while its devices spread what they learn, and comes to agree while it falls.
enum class Schedule { constant, cosine, settle, cooldown };
Result<Schedule> parse_schedule(std::string_view name);

// The share of the starting rate `schedule` gives `progress` (0..1) of the way through its
// epochs; `cooldown_share` (0..1] is how much of them cooldown falls over.
double schedule_factor(Schedule schedule, double progress, double cooldown_share = 0.5) noexcept;

struct TrainOptions {
    int batch = 64;
    std::uint32_t epochs = 20;
    std::uint64_t seed = 1;
    OptimizerConfig optimizer;
    Schedule schedule = Schedule::constant;
    // Examples in one epoch, for schedules when training goes through step() (0: the dataset
    // train_epoch is given).
    std::size_t epoch_examples = 0;
    // Called before every step of train_epoch: the resource governor's duty cycle waits there
    // (firmware/governor.hpp). Empty: steps run back to back.
    std::function<void()> before_step;
};

struct Evaluation {
    std::size_t examples = 0;
    double loss = 0.0;      // mean cross-entropy
    double accuracy = 0.0;  // fraction correct
    xt::xtensor<std::uint64_t, 2> confusion;  // [true class, predicted class]
};

// Evaluates in batches of `batch` rows; labels outside the model's outputs count as wrong.
Evaluation evaluate(const Mlp& model, const data::Dataset& ds, int batch = 256);

struct Progress {
    std::uint32_t epoch;          // 1-based, the epoch in progress
    std::size_t examples_done;    // in this epoch
    std::size_t examples_total;   // in this epoch
    double loss;                  // running mean over this epoch
    double accuracy;              // running training accuracy over this epoch
    double samples_per_second;    // over this epoch so far
};
using ProgressFn = std::function<void(const Progress&)>;

class Trainer {
public:
    Trainer(Mlp& model, TrainOptions options);

    // Resumes from a checkpoint whose widths match the model (the caller built the model from it).
    Status restore(const Checkpoint& checkpoint);
    Checkpoint checkpoint() const;

    // One SGD/Adam step on the given rows of ds.
    BatchStats step(const data::Dataset& ds, std::span<const std::uint32_t> rows);

    // A merge moved the model from `before` to where it is now: SGD's velocity takes the move in
    // (Optimizer::follow_move, at the schedule's current rate). Adam keeps no velocity to steer:
    // false, nothing changed.
    bool follow_move(std::span<const float> before);

    // One pass over ds in a fresh shuffled order; calls progress every ~1% and at the end.
    Progress train_epoch(const data::Dataset& ds, const ProgressFn& progress);

    std::uint32_t epochs_done() const noexcept { return epoch_; }
    std::uint64_t samples_seen() const noexcept { return samples_seen_; }
    float current_learning_rate() const noexcept;
    const TrainOptions& options() const noexcept { return options_; }

private:
    Mlp& model_;
    TrainOptions options_;
    Optimizer optimizer_;
    Workspace workspace_;
    std::uint32_t epoch_ = 0;
    std::uint64_t samples_seen_ = 0;
    std::size_t epoch_examples_ = 0;  // size of the dataset being trained on, for the schedule
    std::vector<std::uint32_t> order_;
    std::vector<std::uint8_t> labels_;
};

}  // namespace starling::model

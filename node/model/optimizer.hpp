#pragma once
// SGD with momentum and Adam over a model's flat parameter buffer, each a single fused pass.

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "node/kernels/kernels.hpp"
#include "protocol/result.hpp"

namespace starling::model {

struct OptimizerConfig {
    enum class Kind { sgd, adam };
    Kind kind = Kind::sgd;
    float learning_rate = 0.05f;  // Adam's usual value is 1e-3
    float momentum = 0.9f;        // SGD only
    bool nesterov = false;        // SGD only: each step looks ahead along the momentum
    float weight_decay = 0.0f;    // L2, added to the gradient
    float beta1 = 0.9f, beta2 = 0.999f, epsilon = 1e-8f;  // Adam only
};

// Whether a merge's move can join the velocity (Optimizer::follow_move): only heavy-ball SGD's
// step is lr x v; Adam keeps no velocity, and Nesterov's step adds the gradient to it.
constexpr bool velocity_follows_moves(const OptimizerConfig& config) noexcept {
    return config.kind == OptimizerConfig::Kind::sgd && !config.nesterov;
}

Result<OptimizerConfig::Kind> parse_optimizer_kind(std::string_view name);
std::string_view to_string(OptimizerConfig::Kind kind) noexcept;

class Optimizer {
public:
    Optimizer(OptimizerConfig config, std::size_t parameters);

    // One update with the given learning rate (the schedule's value for this step).
    void step(std::span<float> params, std::span<const float> grads, float learning_rate);

    // The same update in pieces, for steps fused into the backward pass: begin_step once, then
    // every parameter exactly once, either through apply() on a slice or through fused() handed
    // to a weight-gradient GEMM.
    void begin_step(float learning_rate);
    void apply(std::span<float> params, std::span<const float> grads, std::size_t offset);
    kernels::FusedUpdate fused(std::span<float> params, std::size_t offset);

    const OptimizerConfig& config() const noexcept { return config_; }
    std::uint64_t steps() const noexcept { return steps_; }
    // SGD: {velocity}; Adam: {first moment, second moment}. Each the size of the parameters.
    const std::vector<std::vector<float>>& state() const noexcept { return state_; }

    // Quasi-global momentum (SGD only): something other than this optimizer (a merge) moved the
    // parameters from `before` to `after`; the velocity takes that move in as if it had been a
    // step of `learning_rate`, weighted by 1 - momentum, so momentum follows where the cluster
    // goes and not only the device's own gradients.
    void follow_move(std::span<const float> before, std::span<const float> after,
                     float learning_rate);

    // Restores state saved from state() (sizes checked by the caller's decoder).
    Status restore(std::uint64_t steps, std::vector<std::vector<float>> state);

private:
    OptimizerConfig config_;
    std::uint64_t steps_ = 0;
    kernels::SgdStep sgd_step_{};
    kernels::AdamStep adam_step_{};
    std::vector<std::vector<float>> state_;
};

// A running average of parameters, what a gossiping device serves: `average` moves `share` (0..1]
// of the way to `current`, so it smooths over the last ~1/share steps and the merges among them.
void follow_average(std::span<float> average, std::span<const float> current,
                    float share) noexcept;

// Moves between two copies of a model (a merge on the gossip thread, added to the trained model
// on the training thread); here, built for speed, since each is a pass over the whole model.
// `move` becomes after - before, or (accumulate) has it added.
void record_move(std::span<float> move, std::span<const float> after,
                 std::span<const float> before, bool accumulate) noexcept;
// `parameters` += `move`.
void add_move(std::span<float> parameters, std::span<const float> move) noexcept;

}  // namespace starling::model

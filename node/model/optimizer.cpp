#include "node/model/optimizer.hpp"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <string>

#include "node/kernels/kernels.hpp"

namespace starling::model {

Result<OptimizerConfig::Kind> parse_optimizer_kind(std::string_view name) {
    if (name == "sgd") return OptimizerConfig::Kind::sgd;
    if (name == "adam") return OptimizerConfig::Kind::adam;
    return make_error(ErrorCode::invalid_argument,
                      "optimizer '" + std::string(name) + "': expected sgd or adam");
}

std::string_view to_string(OptimizerConfig::Kind kind) noexcept {
    return kind == OptimizerConfig::Kind::sgd ? "sgd" : "adam";
}

Optimizer::Optimizer(OptimizerConfig config, std::size_t parameters) : config_(config) {
    const std::size_t buffers = config.kind == OptimizerConfig::Kind::sgd ? 1 : 2;
    state_.assign(buffers, std::vector<float>(parameters, 0.0f));
}

void Optimizer::step(std::span<float> params, std::span<const float> grads, float learning_rate) {
    assert(params.size() == grads.size() && params.size() == state_[0].size());
    begin_step(learning_rate);
    apply(params, grads, 0);
}

void Optimizer::begin_step(float learning_rate) {
    ++steps_;
    if (config_.kind == OptimizerConfig::Kind::sgd) {
        sgd_step_ = {learning_rate, config_.momentum, config_.weight_decay, config_.nesterov};
        return;
    }
    const double t = static_cast<double>(steps_);
    adam_step_ = {learning_rate,
                  config_.beta1,
                  config_.beta2,
                  config_.epsilon,
                  config_.weight_decay,
                  static_cast<float>(1.0 - std::pow(config_.beta1, t)),
                  static_cast<float>(1.0 - std::pow(config_.beta2, t))};
}

void Optimizer::apply(std::span<float> params, std::span<const float> grads, std::size_t offset) {
    assert(offset + grads.size() <= state_[0].size());
    const auto& k = kernels::active();
    float* w = params.data() + offset;
    if (config_.kind == OptimizerConfig::Kind::sgd)
        k.sgd(w, state_[0].data() + offset, grads.data(), grads.size(), sgd_step_);
    else
        k.adam(w, state_[0].data() + offset, state_[1].data() + offset, grads.data(),
               grads.size(), adam_step_);
}

kernels::FusedUpdate Optimizer::fused(std::span<float> params, std::size_t offset) {
    kernels::FusedUpdate u;
    u.kind = config_.kind == OptimizerConfig::Kind::sgd ? kernels::FusedUpdate::Kind::sgd
                                                        : kernels::FusedUpdate::Kind::adam;
    u.w = params.data() + offset;
    u.s1 = state_[0].data() + offset;
    u.s2 = state_.size() > 1 ? state_[1].data() + offset : nullptr;
    u.sgd = sgd_step_;
    u.adam = adam_step_;
    return u;
}

void Optimizer::follow_move(std::span<const float> before, std::span<const float> after,
                            float learning_rate) {
    assert(velocity_follows_moves(config_));
    assert(before.size() == state_[0].size() && after.size() == state_[0].size());
    if (learning_rate <= 0.0f) return;
    // The update is w -= lr * v: a move of (after - before) is a velocity of -(after - before)/lr.
    const float share = (1.0f - config_.momentum) / learning_rate;
    std::vector<float>& velocity = state_[0];
    for (std::size_t i = 0; i < velocity.size(); ++i) velocity[i] -= share * (after[i] - before[i]);
}

Status Optimizer::restore(std::uint64_t steps, std::vector<std::vector<float>> state) {
    if (state.size() != state_.size())
        return make_error(ErrorCode::malformed,
                          "optimizer state has " + std::to_string(state.size()) +
                              " buffers, " + std::string(to_string(config_.kind)) + " needs " +
                              std::to_string(state_.size()));
    for (const auto& buffer : state)
        if (buffer.size() != state_[0].size())
            return make_error(ErrorCode::malformed, "optimizer state size does not match the model");
    steps_ = steps;
    state_ = std::move(state);
    return Ok{};
}

void follow_average(std::span<float> average, std::span<const float> current,
                    float share) noexcept {
    const std::size_t n = std::min(average.size(), current.size());
    for (std::size_t i = 0; i < n; ++i) average[i] += share * (current[i] - average[i]);
}

void record_move(std::span<float> move, std::span<const float> after,
                 std::span<const float> before, bool accumulate) noexcept {
    const std::size_t n = std::min({move.size(), after.size(), before.size()});
    if (accumulate)
        for (std::size_t i = 0; i < n; ++i) move[i] += after[i] - before[i];
    else
        for (std::size_t i = 0; i < n; ++i) move[i] = after[i] - before[i];
}

void add_move(std::span<float> parameters, std::span<const float> move) noexcept {
    const std::size_t n = std::min(parameters.size(), move.size());
    for (std::size_t i = 0; i < n; ++i) parameters[i] += move[i];
}

}  // namespace starling::model

#include "node/model/optimizer.hpp"

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
    const auto& k = kernels::active();
    ++steps_;
    if (config_.kind == OptimizerConfig::Kind::sgd) {
        k.sgd(params.data(), state_[0].data(), grads.data(), params.size(),
              {learning_rate, config_.momentum, config_.weight_decay});
        return;
    }
    const double t = static_cast<double>(steps_);
    const kernels::AdamStep st{learning_rate,
                               config_.beta1,
                               config_.beta2,
                               config_.epsilon,
                               config_.weight_decay,
                               static_cast<float>(1.0 - std::pow(config_.beta1, t)),
                               static_cast<float>(1.0 - std::pow(config_.beta2, t))};
    k.adam(params.data(), state_[0].data(), state_[1].data(), grads.data(), params.size(), st);
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

}  // namespace starling::model

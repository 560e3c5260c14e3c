#pragma once
// The model: a multilayer perceptron (dense layers, ReLU between them, softmax cross-entropy on
// the output), with forward and backward written by hand over the SIMD kernels. All parameters
// live in one contiguous buffer so optimizers, averaging and serialisation are single passes.

#include <xtensor/xtensor.hpp>

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "protocol/result.hpp"

namespace starling::model {

// Layer widths, input first. "softmax" = {784, 10} (softmax regression), "mlp" = {784, 256, 128,
// 10}, or explicit widths such as "784-512-10".
Result<std::vector<std::uint32_t>> parse_architecture(std::string_view preset_or_widths);

// Checks widths: 2..65 entries, each 1..1<<20, and the parameter count within limits.
Status validate_widths(std::span<const std::uint32_t> widths);

std::size_t parameter_count(std::span<const std::uint32_t> widths);

class Mlp {
public:
    // Widths must pass validate_widths (checked by the caller; a bad value here is a bug).
    explicit Mlp(std::vector<std::uint32_t> widths);

    // He (Kaiming normal) weights, zero biases, from a seed.
    void init_he(std::uint64_t seed);

    std::span<const std::uint32_t> widths() const noexcept { return widths_; }
    std::size_t layer_count() const noexcept { return widths_.size() - 1; }
    std::uint32_t inputs() const noexcept { return widths_.front(); }
    std::uint32_t outputs() const noexcept { return widths_.back(); }

    std::span<float> parameters() noexcept { return {params_.data(), params_.size()}; }
    std::span<const float> parameters() const noexcept { return {params_.data(), params_.size()}; }

    // Offsets of layer l's weight matrix (inputs×outputs, row-major) and bias in parameters().
    std::size_t weight_offset(std::size_t layer) const noexcept { return offsets_[layer]; }
    std::size_t bias_offset(std::size_t layer) const noexcept {
        return offsets_[layer] + std::size_t{widths_[layer]} * widths_[layer + 1];
    }

private:
    std::vector<std::uint32_t> widths_;
    std::vector<std::size_t> offsets_;
    xt::xtensor<float, 1> params_;
};

// Activations and gradients for batches of up to max_batch rows; reused every step so the hot
// loop never allocates.
class Workspace {
public:
    Workspace(const Mlp& model, int max_batch);

    int max_batch() const noexcept { return max_batch_; }
    // Activation after layer l (l = 0 is the input batch itself), batch×width(l).
    float* activation(std::size_t l) noexcept { return acts_[l].data(); }
    // Gradient of the loss with respect to activation(l).
    float* delta(std::size_t l) noexcept { return deltas_[l].data(); }
    std::span<float> gradients() noexcept { return {grads_.data(), grads_.size()}; }

private:
    int max_batch_;
    std::vector<xt::xtensor<float, 2>> acts_;
    std::vector<xt::xtensor<float, 2>> deltas_;
    xt::xtensor<float, 1> grads_;
};

struct BatchStats {
    double loss_sum = 0.0;      // summed cross-entropy over the batch
    std::uint32_t correct = 0;  // argmax(logits) == label
};

// Forward pass over ws.activation(0) (batch×inputs, filled by the caller); logits end in
// ws.activation(layer_count()). Returns loss and accuracy counts when labels are given.
BatchStats forward(const Mlp& model, Workspace& ws, int batch, const std::uint8_t* labels);

// Forward, then backward: leaves d(mean loss)/d(parameters) in ws.gradients().
BatchStats forward_backward(const Mlp& model, Workspace& ws, int batch,
                            const std::uint8_t* labels);

class Optimizer;

// Forward, backward and one optimizer step, fused: each layer's weight gradient is applied to
// the weights as it leaves the GEMM, never stored (ws.gradients() then holds only biases).
// Same result as forward_backward followed by optimizer.step, within rounding.
BatchStats train_step(Mlp& model, Workspace& ws, int batch, const std::uint8_t* labels,
                      Optimizer& optimizer, float learning_rate);

}  // namespace starling::model

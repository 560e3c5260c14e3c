#include "node/model/mlp.hpp"

#include <cassert>
#include <charconv>
#include <cmath>
#include <limits>
#include <string>

#include "node/kernels/kernels.hpp"
#include "node/model/optimizer.hpp"
#include "node/model/rng.hpp"

namespace starling::model {
namespace {

constexpr std::size_t kMaxLayerCount = 64;
constexpr std::uint32_t kMaxWidth = 1u << 20;
constexpr std::size_t kMaxParameterCount = std::size_t{1} << 26;  // 256 MiB of fp32

using kernels::Epilogue;
using kernels::GemmCall;
using kernels::Trans;

// Softmax cross-entropy of one row of logits; writes (softmax - onehot) * scale into grad when
// grad is not null. Returns the row's loss.
double softmax_xent_row(const float* logits, int classes, int label, float* grad, float scale,
                        bool& correct) {
    float top = logits[0];
    int arg = 0;
    for (int j = 1; j < classes; ++j)
        if (logits[j] > top) top = logits[j], arg = j;
    correct = arg == label;
    double sum = 0.0;
    for (int j = 0; j < classes; ++j) sum += std::exp(static_cast<double>(logits[j] - top));
    const double log_sum = std::log(sum);
    if (grad != nullptr) {
        for (int j = 0; j < classes; ++j) {
            const double p = std::exp(static_cast<double>(logits[j] - top) - log_sum);
            grad[j] = static_cast<float>(p - (j == label ? 1.0 : 0.0)) * scale;
        }
    }
    return log_sum - static_cast<double>(logits[label] - top);
}

}  // namespace

Result<std::vector<std::uint32_t>> parse_architecture(std::string_view text) {
    if (text == "softmax") return std::vector<std::uint32_t>{784, 10};
    if (text == "mlp") return std::vector<std::uint32_t>{784, 256, 128, 10};
    std::vector<std::uint32_t> widths;
    std::size_t pos = 0;
    while (pos <= text.size()) {
        const std::size_t dash = std::min(text.find('-', pos), text.size());
        const std::string_view part = text.substr(pos, dash - pos);
        std::uint32_t value = 0;
        const auto [end, ec] = std::from_chars(part.data(), part.data() + part.size(), value);
        if (part.empty() || ec != std::errc{} || end != part.data() + part.size())
            return make_error(ErrorCode::invalid_argument,
                              "model '" + std::string(text) +
                                  "': expected a preset (softmax, mlp) or widths like 784-256-10");
        widths.push_back(value);
        pos = dash + 1;
    }
    if (Status s = validate_widths(widths); !s) return s.error();
    return widths;
}

Status validate_widths(std::span<const std::uint32_t> widths) {
    if (widths.size() < 2 || widths.size() > kMaxLayerCount + 1)
        return make_error(ErrorCode::invalid_argument,
                          "a model needs between 2 and " + std::to_string(kMaxLayerCount + 1) +
                              " layer widths, got " + std::to_string(widths.size()));
    for (std::uint32_t w : widths)
        if (w == 0 || w > kMaxWidth)
            return make_error(ErrorCode::invalid_argument,
                              "layer width " + std::to_string(w) + " is outside 1.." +
                                  std::to_string(kMaxWidth));
    if (parameter_count(widths) > kMaxParameterCount)
        return make_error(ErrorCode::too_large, "model has more than " +
                                                    std::to_string(kMaxParameterCount) +
                                                    " parameters");
    return Ok{};
}

std::size_t parameter_count(std::span<const std::uint32_t> widths) {
    std::size_t n = 0;
    for (std::size_t l = 0; l + 1 < widths.size(); ++l)
        n += std::size_t{widths[l]} * widths[l + 1] + widths[l + 1];
    return n;
}

Mlp::Mlp(std::vector<std::uint32_t> widths) : widths_(std::move(widths)) {
    assert(validate_widths(widths_).ok());
    std::size_t offset = 0;
    for (std::size_t l = 0; l + 1 < widths_.size(); ++l) {
        offsets_.push_back(offset);
        offset += std::size_t{widths_[l]} * widths_[l + 1] + widths_[l + 1];
    }
    params_ = xt::zeros<float>({offset});
}

void Mlp::init_he(std::uint64_t seed) {
    Rng rng(seed);
    for (std::size_t l = 0; l < layer_count(); ++l) {
        const double stddev = std::sqrt(2.0 / widths_[l]);
        float* w = params_.data() + weight_offset(l);
        const std::size_t n = std::size_t{widths_[l]} * widths_[l + 1];
        for (std::size_t i = 0; i < n; ++i) w[i] = static_cast<float>(rng.normal() * stddev);
        float* b = params_.data() + bias_offset(l);
        for (std::uint32_t j = 0; j < widths_[l + 1]; ++j) b[j] = 0.0f;
    }
}

Workspace::Workspace(const Mlp& model, int max_batch) : max_batch_(max_batch) {
    const auto widths = model.widths();
    const std::size_t rows = static_cast<std::size_t>(max_batch);
    for (std::uint32_t w : widths) {
        acts_.push_back(xt::zeros<float>({rows, std::size_t{w}}));
        deltas_.push_back(xt::zeros<float>({rows, std::size_t{w}}));
    }
    grads_ = xt::zeros<float>({model.parameters().size()});
}

BatchStats forward(const Mlp& model, Workspace& ws, int batch, const std::uint8_t* labels) {
    assert(batch > 0 && batch <= ws.max_batch());
    const auto& k = kernels::active();
    const auto widths = model.widths();
    const float* params = model.parameters().data();
    const std::size_t last = model.layer_count() - 1;
    for (std::size_t l = 0; l <= last; ++l) {
        const int in = static_cast<int>(widths[l]);
        const int out = static_cast<int>(widths[l + 1]);
        GemmCall g;
        g.m = batch, g.n = out, g.k = in;
        g.a = ws.activation(l), g.lda = in;
        g.b = params + model.weight_offset(l), g.ldb = out;
        g.c = ws.activation(l + 1), g.ldc = out;
        g.epilogue = l == last ? Epilogue::bias : Epilogue::bias_relu;
        g.bias = params + model.bias_offset(l);
        k.gemm(g);
    }
    BatchStats stats;
    if (labels == nullptr) return stats;
    const int classes = static_cast<int>(model.outputs());
    const float* logits = ws.activation(last + 1);
    for (int i = 0; i < batch; ++i) {
        bool correct = false;
        stats.loss_sum += softmax_xent_row(logits + i * classes, classes, labels[i], nullptr, 0.0f,
                                           correct);
        stats.correct += correct ? 1u : 0u;
    }
    return stats;
}

namespace {

// d(mean loss)/d(logits) = (softmax - onehot) / batch, into ws.delta(last).
BatchStats loss_gradient(const Mlp& model, Workspace& ws, int batch, const std::uint8_t* labels) {
    BatchStats stats;
    const std::size_t layers = model.layer_count();
    const int classes = static_cast<int>(model.outputs());
    const float* logits = ws.activation(layers);
    float* dlogits = ws.delta(layers);
    const float scale = 1.0f / static_cast<float>(batch);
    for (int i = 0; i < batch; ++i) {
        bool correct = false;
        stats.loss_sum += softmax_xent_row(logits + i * classes, classes, labels[i],
                                           dlogits + i * classes, scale, correct);
        stats.correct += correct ? 1u : 0u;
    }
    return stats;
}

// Backpropagates ws.delta(last) through every layer. Without an optimizer, leaves all
// gradients in ws.gradients(); with one, applies each gradient as it is produced. The input
// gradient of a layer is computed before its weights change.
void backward(const Mlp& model, Workspace& ws, int batch, Optimizer* optimizer,
              std::span<float> params) {
    const auto& k = kernels::active();
    const auto widths = model.widths();
    float* grads = ws.gradients().data();
    for (std::size_t l = model.layer_count(); l-- > 0;) {
        const int in = static_cast<int>(widths[l]);
        const int out = static_cast<int>(widths[l + 1]);
        const std::size_t bias_at = model.bias_offset(l);
        k.column_sums(ws.delta(l + 1), batch, out, out, grads + bias_at);
        if (optimizer != nullptr)
            optimizer->apply(params, {grads + bias_at, static_cast<std::size_t>(out)}, bias_at);
        if (l > 0) {
            // delta(l) = delta(l+1) · Wᵀ, masked by ReLU's derivative (activation(l) > 0).
            GemmCall dx;
            dx.trans_b = Trans::yes;
            dx.m = batch, dx.n = in, dx.k = out;
            dx.a = ws.delta(l + 1), dx.lda = out;
            dx.b = model.parameters().data() + model.weight_offset(l), dx.ldb = out;
            dx.c = ws.delta(l), dx.ldc = in;
            dx.epilogue = Epilogue::relu_mask;
            dx.mask = ws.activation(l), dx.ldmask = in;
            k.gemm(dx);
        }
        // dW = activation(l)ᵀ · delta(l+1): (in×batch)·(batch×out).
        GemmCall dw;
        dw.trans_a = Trans::yes;
        dw.m = in, dw.n = out, dw.k = batch;
        dw.a = ws.activation(l), dw.lda = in;
        dw.b = ws.delta(l + 1), dw.ldb = out;
        dw.c = grads + model.weight_offset(l), dw.ldc = out;
        kernels::FusedUpdate update;
        if (optimizer != nullptr) {
            update = optimizer->fused(params, model.weight_offset(l));
            dw.update = &update;
        }
        k.gemm(dw);
    }
}

}  // namespace

BatchStats forward_backward(const Mlp& model, Workspace& ws, int batch,
                            const std::uint8_t* labels) {
    assert(labels != nullptr);
    forward(model, ws, batch, nullptr);
    const BatchStats stats = loss_gradient(model, ws, batch, labels);
    backward(model, ws, batch, nullptr, {});
    return stats;
}

BatchStats train_step(Mlp& model, Workspace& ws, int batch, const std::uint8_t* labels,
                      Optimizer& optimizer, float learning_rate) {
    assert(labels != nullptr);
    forward(model, ws, batch, nullptr);
    const BatchStats stats = loss_gradient(model, ws, batch, labels);
    optimizer.begin_step(learning_rate);
    backward(model, ws, batch, &optimizer, model.parameters());
    return stats;
}

}  // namespace starling::model

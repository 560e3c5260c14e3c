#include "node/model/trainer.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <numeric>
#include <string>

#include "node/time.hpp"

namespace starling::model {
namespace {

int argmax_row(const float* row, int n) {
    int best = 0;
    for (int j = 1; j < n; ++j)
        if (row[j] > row[best]) best = j;
    return best;
}

}  // namespace

Result<Schedule> parse_schedule(std::string_view name) {
    if (name == "constant") return Schedule::constant;
    if (name == "cosine") return Schedule::cosine;
    if (name == "settle") return Schedule::settle;
    if (name == "cooldown") return Schedule::cooldown;
    return make_error(ErrorCode::invalid_argument,
                      "schedule '" + std::string(name) +
                          "': expected constant, cosine, settle or cooldown");
}

// Where the settle schedule ends, as a fraction of the starting rate.
constexpr double kSettleFloor = 0.1;

double schedule_factor(Schedule schedule, double progress, double cooldown_share) noexcept {
    progress = std::clamp(progress, 0.0, 1.0);
    switch (schedule) {
    case Schedule::constant: return 1.0;
    case Schedule::cooldown:
        return std::min(1.0, (1.0 - progress) / std::clamp(cooldown_share, 1e-9, 1.0));
    case Schedule::cosine:
    case Schedule::settle: break;
    }
    const double floor = schedule == Schedule::settle ? kSettleFloor : 0.0;
    const double cosine = 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
    return floor + (1.0 - floor) * cosine;
}

Evaluation evaluate(const Mlp& model, const data::Dataset& ds, int batch) {
    Evaluation ev;
    const std::size_t classes = model.outputs();
    ev.confusion = xt::zeros<std::uint64_t>({classes, classes});
    if (ds.size() == 0) return ev;
    Workspace ws(model, batch);
    std::vector<std::uint32_t> rows(static_cast<std::size_t>(batch));
    double loss_sum = 0.0;
    std::size_t correct = 0;
    for (std::size_t start = 0; start < ds.size(); start += static_cast<std::size_t>(batch)) {
        const int n = static_cast<int>(std::min<std::size_t>(batch, ds.size() - start));
        std::iota(rows.begin(), rows.begin() + n, static_cast<std::uint32_t>(start));
        ds.gather({rows.data(), static_cast<std::size_t>(n)}, ws.activation(0));
        forward(model, ws, n, nullptr);
        const float* logits = ws.activation(model.layer_count());
        for (int i = 0; i < n; ++i) {
            const float* row = logits + static_cast<std::size_t>(i) * classes;
            const std::uint8_t label = ds.labels[start + static_cast<std::size_t>(i)];
            const int predicted = argmax_row(row, static_cast<int>(classes));
            if (label >= classes) continue;  // a class the model cannot output: counted wrong
            ++ev.confusion(label, static_cast<std::size_t>(predicted));
            correct += predicted == label ? 1u : 0u;
            // Stable log-softmax: log(sum exp(z - max)) - (z_label - max).
            const float top = row[predicted];
            double sum = 0.0;
            for (std::size_t j = 0; j < classes; ++j) sum += std::exp(double(row[j] - top));
            loss_sum += std::log(sum) - double(row[label] - top);
        }
    }
    ev.examples = ds.size();
    ev.accuracy = static_cast<double>(correct) / static_cast<double>(ds.size());
    ev.loss = loss_sum / static_cast<double>(ds.size());
    return ev;
}

Trainer::Trainer(Mlp& model, TrainOptions options)
    : model_(model),
      options_(options),
      optimizer_(options.optimizer, model.parameters().size()),
      workspace_(model, options.batch),
      epoch_examples_(options.epoch_examples) {}

Status Trainer::restore(const Checkpoint& cp) {
    if (!std::equal(cp.widths.begin(), cp.widths.end(), model_.widths().begin(),
                    model_.widths().end()))
        return make_error(ErrorCode::invalid_argument,
                          "checkpoint architecture does not match the model");
    if (cp.optimizer != to_string(options_.optimizer.kind))
        return make_error(ErrorCode::invalid_argument,
                          "checkpoint was trained with " + cp.optimizer + ", not " +
                              std::string(to_string(options_.optimizer.kind)));
    if (Status s = optimizer_.restore(cp.step, cp.optimizer_state); !s) return s;
    std::copy(cp.parameters.begin(), cp.parameters.end(), model_.parameters().begin());
    epoch_ = cp.epoch;
    samples_seen_ = cp.samples_seen;
    return Ok{};
}

Checkpoint Trainer::checkpoint() const {
    Checkpoint cp;
    cp.widths.assign(model_.widths().begin(), model_.widths().end());
    cp.parameters.assign(model_.parameters().begin(), model_.parameters().end());
    cp.optimizer = std::string(to_string(options_.optimizer.kind));
    cp.optimizer_state = optimizer_.state();
    cp.step = optimizer_.steps();
    cp.samples_seen = samples_seen_;
    cp.epoch = epoch_;
    cp.seed = options_.seed;
    return cp;
}

float Trainer::current_learning_rate() const noexcept {
    const float base = options_.optimizer.learning_rate;
    if (options_.schedule == Schedule::constant || epoch_examples_ == 0) return base;
    const double total = static_cast<double>(options_.epochs) * static_cast<double>(epoch_examples_);
    const double progress = static_cast<double>(samples_seen_) / total;
    return static_cast<float>(base * schedule_factor(options_.schedule, progress));
}

BatchStats Trainer::step(const data::Dataset& ds, std::span<const std::uint32_t> rows) {
    const int n = static_cast<int>(rows.size());
    ds.gather(rows, workspace_.activation(0));
    labels_.resize(rows.size());
    for (std::size_t i = 0; i < rows.size(); ++i) labels_[i] = ds.labels[rows[i]];
    const BatchStats stats = train_step(model_, workspace_, n, labels_.data(), optimizer_,
                                        current_learning_rate());
    samples_seen_ += rows.size();
    return stats;
}

bool Trainer::follow_move(std::span<const float> before) {
    if (!velocity_follows_moves(options_.optimizer)) return false;
    optimizer_.follow_move(before, model_.parameters(), current_learning_rate());
    return true;
}

Progress Trainer::train_epoch(const data::Dataset& ds, const ProgressFn& progress) {
    epoch_examples_ = ds.size();
    order_.resize(ds.size());
    std::iota(order_.begin(), order_.end(), 0u);
    // Each epoch's order depends only on (seed, epoch), so a run resumed from a checkpoint
    // replays exactly what the uninterrupted run would have done.
    Rng rng(options_.seed ^ (0x9E3779B97F4A7C15ull * (epoch_ + 1)));
    rng.shuffle(std::span<std::uint32_t>(order_));

    Progress p{epoch_ + 1, 0, ds.size(), 0.0, 0.0, 0.0};
    const double start = monotonic_seconds();
    const std::size_t batch = static_cast<std::size_t>(options_.batch);
    const std::size_t report_every = std::max<std::size_t>(batch, ds.size() / 100);
    std::size_t next_report = report_every;
    double loss_sum = 0.0;
    std::size_t correct = 0;
    for (std::size_t at = 0; at < ds.size(); at += batch) {
        const std::size_t n = std::min(batch, ds.size() - at);
        if (options_.before_step) options_.before_step();
        const BatchStats s = step(ds, {order_.data() + at, n});
        loss_sum += s.loss_sum;
        correct += s.correct;
        p.examples_done = at + n;
        if (p.examples_done >= next_report || p.examples_done == ds.size()) {
            next_report += report_every;
            const double seconds = monotonic_seconds() - start;
            p.loss = loss_sum / static_cast<double>(p.examples_done);
            p.accuracy = static_cast<double>(correct) / static_cast<double>(p.examples_done);
            p.samples_per_second = seconds > 0 ? static_cast<double>(p.examples_done) / seconds : 0;
            if (progress) progress(p);
        }
    }
    ++epoch_;
    return p;
}

}  // namespace starling::model

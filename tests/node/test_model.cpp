// The model's gradients against finite differences, and the optimizers against their definition.
#include <doctest/doctest.h>

#include <cmath>
#include <utility>
#include <vector>

#include "node/kernels/kernels.hpp"
#include "node/model/mlp.hpp"
#include "node/model/optimizer.hpp"
#include "node/model/rng.hpp"
#include "node/model/trainer.hpp"

using namespace starling;
using namespace starling::model;

namespace {

// Mean cross-entropy of the model on a fixed batch, and which hidden units were active (a
// finite difference across a ReLU kink measures the kink, not the gradient).
double batch_loss(const Mlp& m, Workspace& ws, const std::vector<float>& x,
                  const std::vector<std::uint8_t>& labels, int batch,
                  std::vector<bool>* active = nullptr) {
    std::copy(x.begin(), x.end(), ws.activation(0));
    const double loss = forward(m, ws, batch, labels.data()).loss_sum / batch;
    if (active != nullptr) {
        active->clear();
        for (std::size_t l = 1; l < m.layer_count(); ++l)
            for (std::size_t i = 0; i < std::size_t(batch) * m.widths()[l]; ++i)
                active->push_back(ws.activation(l)[i] > 0.0f);
    }
    return loss;
}

void check_gradients(std::vector<std::uint32_t> widths, kernels::Level level) {
    REQUIRE(kernels::select(level));
    Mlp m(widths);
    m.init_he(42);
    Rng rng(5);
    // Non-zero biases so ReLU kinks are not all at the same place.
    for (std::size_t l = 0; l < m.layer_count(); ++l)
        for (std::uint32_t j = 0; j < widths[l + 1]; ++j)
            m.parameters()[m.bias_offset(l) + j] = static_cast<float>(rng.normal() * 0.1);
    const int batch = 7;
    std::vector<float> x(static_cast<std::size_t>(batch) * widths[0]);
    for (auto& v : x) v = static_cast<float>(rng.normal());
    std::vector<std::uint8_t> labels(batch);
    for (auto& l : labels) l = static_cast<std::uint8_t>(rng.below(widths.back()));

    Workspace ws(m, batch);
    std::copy(x.begin(), x.end(), ws.activation(0));
    forward_backward(m, ws, batch, labels.data());
    const std::vector<float> analytic(ws.gradients().begin(), ws.gradients().end());
    std::vector<bool> pattern, pattern_up, pattern_down;
    batch_loss(m, ws, x, labels, batch, &pattern);

    // Central differences on every parameter (the models here are small).
    const float h = 1e-2f;
    std::size_t checked = 0, kinks = 0;
    for (std::size_t i = 0; i < m.parameters().size(); ++i) {
        float& p = m.parameters()[i];
        const float saved = p;
        p = saved + h;
        const double up = batch_loss(m, ws, x, labels, batch, &pattern_up);
        p = saved - h;
        const double down = batch_loss(m, ws, x, labels, batch, &pattern_down);
        p = saved;
        if (pattern_up != pattern || pattern_down != pattern) {
            ++kinks;
            continue;
        }
        const double numeric = (up - down) / (2.0 * h);
        INFO("level " << kernels::to_string(level) << " parameter " << i);
        CHECK(analytic[i] == doctest::Approx(numeric).epsilon(2e-2).scale(1e-2));
        ++checked;
    }
    CHECK(checked + kinks == parameter_count(widths));
    CHECK(kinks * 10 < checked);  // the check must cover nearly every parameter
}

}  // namespace

TEST_CASE("every layer's gradient matches finite differences at every kernel level") {
    for (int l = 0; l < kernels::kLevelCount; ++l) {
        const auto level = static_cast<kernels::Level>(l);
        if (kernels::kernels_for(level) == nullptr) continue;
        check_gradients({6, 5, 4, 3}, level);     // two hidden ReLU layers
        check_gradients({9, 3}, level);           // softmax regression
        check_gradients({17, 20, 11}, level);     // ragged widths that exercise kernel edges
    }
    REQUIRE(kernels::select(kernels::detected_level()));
}

TEST_CASE("architectures parse from presets and widths, and bad ones are refused") {
    CHECK(parse_architecture("mlp").value() == std::vector<std::uint32_t>{784, 256, 128, 10});
    CHECK(parse_architecture("softmax").value() == std::vector<std::uint32_t>{784, 10});
    CHECK(parse_architecture("784-512-10").value() == std::vector<std::uint32_t>{784, 512, 10});
    CHECK(parameter_count(std::vector<std::uint32_t>{784, 256, 128, 10}) == 235146);
    for (const char* bad : {"", "784", "784--10", "784-0-10", "cnn", "784-x", "-784-10",
                            "784-10-", "784-99999999999-10"}) {
        CAPTURE(bad);
        CHECK_FALSE(parse_architecture(bad).ok());
    }
}

TEST_CASE("He initialisation is deterministic and scaled by fan-in") {
    Mlp a({784, 256, 10}), b({784, 256, 10}), c({784, 256, 10});
    a.init_he(3);
    b.init_he(3);
    c.init_he(4);
    CHECK(std::equal(a.parameters().begin(), a.parameters().end(), b.parameters().begin()));
    CHECK_FALSE(std::equal(a.parameters().begin(), a.parameters().end(), c.parameters().begin()));
    double sum_sq = 0.0;
    const std::size_t n = 784 * 256;
    for (std::size_t i = 0; i < n; ++i) sum_sq += double(a.parameters()[i]) * a.parameters()[i];
    CHECK(std::sqrt(sum_sq / n) == doctest::Approx(std::sqrt(2.0 / 784)).epsilon(0.02));
    for (std::size_t j = 0; j < 256; ++j) CHECK(a.parameters()[a.bias_offset(0) + j] == 0.0f);
}

TEST_CASE("optimizers step, refuse mismatched state, and training lowers the loss") {
    CHECK(parse_optimizer_kind("adam").value() == OptimizerConfig::Kind::adam);
    CHECK_FALSE(parse_optimizer_kind("rmsprop").ok());

    for (auto kind : {OptimizerConfig::Kind::sgd, OptimizerConfig::Kind::adam}) {
        OptimizerConfig cfg;
        cfg.kind = kind;
        cfg.learning_rate = kind == OptimizerConfig::Kind::sgd ? 0.1f : 0.01f;
        Mlp m({4, 8, 3});
        m.init_he(1);
        Optimizer opt(cfg, m.parameters().size());
        CHECK_FALSE(opt.restore(1, {}).ok());
        // A separable toy problem: the label is the index of the largest of the first 3 inputs.
        Rng rng(2);
        const int batch = 32;
        std::vector<float> x(batch * 4);
        std::vector<std::uint8_t> y(batch);
        for (int i = 0; i < batch; ++i) {
            for (int j = 0; j < 4; ++j) x[i * 4 + j] = static_cast<float>(rng.normal());
            int best = 0;
            for (int j = 1; j < 3; ++j)
                if (x[i * 4 + j] > x[i * 4 + best]) best = j;
            y[i] = static_cast<std::uint8_t>(best);
        }
        Workspace ws(m, batch);
        double first = 0, last = 0;
        for (int it = 0; it < 200; ++it) {
            std::copy(x.begin(), x.end(), ws.activation(0));
            const double loss = forward_backward(m, ws, batch, y.data()).loss_sum / batch;
            if (it == 0) first = loss;
            last = loss;
            opt.step(m.parameters(), ws.gradients(), cfg.learning_rate);
        }
        CAPTURE(to_string(kind));
        CHECK(last < first * 0.3);
        CHECK(opt.steps() == 200);
    }
}

TEST_CASE("a merge's move joins the velocity: the next steps replay it, decaying with momentum") {
    OptimizerConfig cfg;
    cfg.momentum = 0.9f;
    Optimizer opt(cfg, 3);
    std::vector<float> w{1.0f, 2.0f, 3.0f};
    const std::vector<float> before = w;
    const std::vector<float> after{1.5f, 2.0f, 2.0f};  // a merge moved two parameters
    opt.follow_move(before, after, 0.1f);
    // w -= lr * v: the velocity holds -(1 - momentum) * move / lr.
    CHECK(opt.state()[0][0] == doctest::Approx(-0.5f));
    CHECK(opt.state()[0][1] == 0.0f);
    CHECK(opt.state()[0][2] == doctest::Approx(1.0f));
    // With zero gradients from here on, the steps replay the move once more, times the momentum
    // (each step first decays the velocity): a geometric series.
    w = after;
    const std::vector<float> zero(3, 0.0f);
    for (int i = 0; i < 400; ++i) opt.step(w, zero, 0.1f);
    CHECK(w[0] == doctest::Approx(1.5f + 0.9f * 0.5f).epsilon(1e-4));
    CHECK(w[1] == 2.0f);
    CHECK(w[2] == doctest::Approx(2.0f - 0.9f * 1.0f).epsilon(1e-4));
    opt.follow_move(before, after, 0.0f);  // a zero learning rate (end of a schedule): no change
    CHECK(opt.state()[0][0] == doctest::Approx(-0.5f * std::pow(0.9f, 400.0f)).epsilon(1e-3));

    // Through a trainer: at the schedule's current rate for SGD; Adam has no velocity to steer,
    // and Nesterov's step is not the velocity alone, so its velocity is not steered either.
    using Kind = OptimizerConfig::Kind;
    for (const auto& [kind, nesterov] :
         {std::pair{Kind::sgd, false}, std::pair{Kind::adam, false}, std::pair{Kind::sgd, true}}) {
        const bool steered = kind == Kind::sgd && !nesterov;
        Mlp mlp({4, 2});
        mlp.init_he(5);
        TrainOptions opts;
        opts.optimizer.kind = kind;
        opts.optimizer.nesterov = nesterov;
        opts.optimizer.learning_rate = 0.5f;
        Trainer trainer(mlp, opts);
        const std::vector<float> start(mlp.parameters().begin(), mlp.parameters().end());
        mlp.parameters()[0] += 1.0f;
        CHECK(trainer.follow_move(start) == steered);
        const Checkpoint c = trainer.checkpoint();
        REQUIRE_FALSE(c.optimizer_state.empty());
        CHECK(c.optimizer_state[0][0] == doctest::Approx(steered ? -(1.0f - 0.9f) / 0.5f : 0.0f));
        CHECK(c.optimizer_state[0][1] == 0.0f);
    }
}

TEST_CASE("a running average follows its share of the way") {
    std::vector<float> average{0.0f, 10.0f};
    const std::vector<float> current{1.0f, 0.0f};
    follow_average(average, current, 0.25f);
    CHECK(average[0] == doctest::Approx(0.25f));
    CHECK(average[1] == doctest::Approx(7.5f));
    for (int i = 0; i < 200; ++i) follow_average(average, current, 0.25f);
    CHECK(average[0] == doctest::Approx(1.0f));
    CHECK(average[1] == doctest::Approx(0.0f));
    follow_average(average, std::vector<float>{5.0f, 5.0f}, 1.0f);  // share 1: a copy
    CHECK(average == std::vector<float>{5.0f, 5.0f});
}

TEST_CASE("the fused training step equals backward followed by an optimizer step") {
    for (auto kind : {OptimizerConfig::Kind::sgd, OptimizerConfig::Kind::adam}) {
        OptimizerConfig cfg;
        cfg.kind = kind;
        cfg.learning_rate = 0.01f;
        cfg.weight_decay = 1e-3f;
        Mlp fused({30, 20, 12, 5}), plain({30, 20, 12, 5});
        fused.init_he(8);
        plain.init_he(8);
        Optimizer opt_fused(cfg, fused.parameters().size());
        Optimizer opt_plain(cfg, plain.parameters().size());
        Rng rng(9);
        const int batch = 13;
        std::vector<float> x(static_cast<std::size_t>(batch) * 30);
        std::vector<std::uint8_t> y(batch);
        Workspace ws_fused(fused, batch), ws_plain(plain, batch);
        for (int it = 0; it < 5; ++it) {
            for (auto& v : x) v = static_cast<float>(rng.normal());
            for (auto& l : y) l = static_cast<std::uint8_t>(rng.below(5));
            std::copy(x.begin(), x.end(), ws_fused.activation(0));
            std::copy(x.begin(), x.end(), ws_plain.activation(0));
            const auto a = train_step(fused, ws_fused, batch, y.data(), opt_fused, 0.01f);
            const auto b = forward_backward(plain, ws_plain, batch, y.data());
            opt_plain.step(plain.parameters(), ws_plain.gradients(), 0.01f);
            CHECK(a.loss_sum == doctest::Approx(b.loss_sum).epsilon(1e-4));
        }
        CAPTURE(to_string(kind));
        for (std::size_t i = 0; i < fused.parameters().size(); ++i)
            REQUIRE(fused.parameters()[i] ==
                    doctest::Approx(plain.parameters()[i]).epsilon(1e-4).scale(1e-2));
        CHECK(opt_fused.steps() == 5);
    }
}

TEST_CASE("a run resumed from a checkpoint continues exactly as the uninterrupted run") {
    // A small synthetic dataset stored as bytes, like IDX images.
    data::Dataset ds;
    ds.features = 12;
    Rng rng(17);
    for (int i = 0; i < 300; ++i) {
        std::uint8_t best = 0, top = 0;
        for (std::uint32_t j = 0; j < ds.features; ++j) {
            const auto v = static_cast<std::uint8_t>(rng.below(256));
            ds.bytes.push_back(v);
            if (j < 4 && v > top) top = v, best = static_cast<std::uint8_t>(j);
        }
        ds.labels.push_back(best);
    }
    ds.classes = 4;

    for (auto kind : {OptimizerConfig::Kind::sgd, OptimizerConfig::Kind::adam}) {
        TrainOptions opts;
        opts.batch = 16;
        opts.epochs = 3;
        opts.seed = 5;
        opts.schedule = Schedule::cosine;
        opts.optimizer.kind = kind;
        opts.optimizer.learning_rate = kind == OptimizerConfig::Kind::sgd ? 0.05f : 1e-3f;

        Mlp straight({12, 16, 4});
        straight.init_he(opts.seed);
        Trainer a(straight, opts);
        for (int e = 0; e < 3; ++e) a.train_epoch(ds, {});

        Mlp first({12, 16, 4});
        first.init_he(opts.seed);
        Trainer b(first, opts);
        b.train_epoch(ds, {});
        const Checkpoint cp = b.checkpoint();

        Mlp resumed({12, 16, 4});
        resumed.init_he(999);  // overwritten by the checkpoint
        Trainer c(resumed, opts);
        REQUIRE(c.restore(cp).ok());
        CHECK(c.epochs_done() == 1);
        c.train_epoch(ds, {});
        c.train_epoch(ds, {});

        CAPTURE(to_string(kind));
        CHECK(c.samples_seen() == a.samples_seen());
        CHECK(std::equal(straight.parameters().begin(), straight.parameters().end(),
                         resumed.parameters().begin()));
    }
}

TEST_CASE("a checkpoint from another architecture or optimizer is refused") {
    Mlp m({6, 3});
    m.init_he(1);
    TrainOptions opts;
    Trainer t(m, opts);
    Checkpoint cp = t.checkpoint();
    cp.widths = {6, 4};
    CHECK_FALSE(t.restore(cp).ok());
    cp = t.checkpoint();
    cp.optimizer = "adam";
    CHECK_FALSE(t.restore(cp).ok());
}

namespace {

// The learning rate a trainer takes `steps` steps of 10 examples at, the first before any step,
// under `schedule` over 2 epochs of 40 examples (8 steps), starting at 0.2.
std::vector<float> rates_over(Schedule schedule, int steps) {
    data::Dataset ds;
    ds.features = 4;
    ds.classes = 2;
    for (int i = 0; i < 40; ++i) {
        for (int j = 0; j < 4; ++j) ds.bytes.push_back(static_cast<std::uint8_t>(i * 7 + j));
        ds.labels.push_back(static_cast<std::uint8_t>(i % 2));
    }
    std::vector<std::uint32_t> rows(10);
    for (std::uint32_t i = 0; i < rows.size(); ++i) rows[i] = i;

    Mlp m({4, 2});
    m.init_he(3);
    TrainOptions opts;
    opts.batch = 10;
    opts.epochs = 2;               // 80 examples: 8 steps of 10
    opts.epoch_examples = 40;      // training by step(), as the node does
    opts.schedule = schedule;
    opts.optimizer.learning_rate = 0.2f;
    Trainer t(m, opts);
    std::vector<float> rates{t.current_learning_rate()};
    for (int s = 0; s < steps; ++s) {
        (void)t.step(ds, rows);
        rates.push_back(t.current_learning_rate());
    }
    return rates;
}

}  // namespace

TEST_CASE("the settle schedule falls along a cosine to a tenth of the rate, then holds it") {
    std::vector<float> rates = rates_over(Schedule::settle, 12);
    CHECK(rates.front() == doctest::Approx(0.2));
    rates.erase(rates.begin());  // from here, the rate after each step
    // Halfway (40 of 80 examples): the middle of the cosine between 0.2 and 0.02.
    CHECK(rates[3] == doctest::Approx(0.11));
    for (std::size_t s = 1; s < 8; ++s) CHECK(rates[s] < rates[s - 1]);
    for (std::size_t s = 7; s < rates.size(); ++s) CHECK(rates[s] == doctest::Approx(0.02));
    CHECK(parse_schedule("settle").value() == Schedule::settle);
    CHECK_FALSE(parse_schedule("sawtooth").ok());
}

TEST_CASE("the cooldown schedule holds the rate, then falls to 0 in a straight line") {
    const std::vector<float> rates = rates_over(Schedule::cooldown, 10);  // the last 4 steps fall
    for (std::size_t s = 0; s <= 4; ++s) CHECK(rates[s] == doctest::Approx(0.2));
    CHECK(rates[5] == doctest::Approx(0.15));
    CHECK(rates[6] == doctest::Approx(0.1));
    CHECK(rates[7] == doctest::Approx(0.05));
    for (std::size_t s = 8; s < rates.size(); ++s) CHECK(rates[s] == 0.0f);
    CHECK(parse_schedule("cooldown").value() == Schedule::cooldown);

    // The share it falls over is the caller's; out-of-range progress is clamped.
    CHECK(schedule_factor(Schedule::cooldown, 0.7, 0.25) == 1.0);
    CHECK(schedule_factor(Schedule::cooldown, 0.875, 0.25) == doctest::Approx(0.5));
    CHECK(schedule_factor(Schedule::cooldown, 0.5, 1.0) == doctest::Approx(0.5));
    CHECK(schedule_factor(Schedule::cooldown, 1.5, 0.5) == 0.0);
    CHECK(schedule_factor(Schedule::cosine, 0.5) == doctest::Approx(0.5));
    CHECK(schedule_factor(Schedule::settle, 1.0) == doctest::Approx(0.1));
    CHECK(schedule_factor(Schedule::constant, 0.9) == 1.0);
    CHECK(schedule_factor(Schedule::cosine, -1.0) == 1.0);
}

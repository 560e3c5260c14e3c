#include "node/cli/commands.hpp"

#include <cinttypes>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "firmware/config.hpp"
#include "firmware/hardware.hpp"
#include "firmware/pacer.hpp"
#include "node/cli/cli.hpp"
#include "node/data/dataset.hpp"
#include "node/kernels/kernels.hpp"
#include "node/model/checkpoint.hpp"
#include "node/model/trainer.hpp"
#include "node/time.hpp"

namespace starling::cli {
namespace {

namespace fs = std::filesystem;

// Forces a kernel level when asked; an unknown or unsupported level is a usage error.
Status apply_simd(const std::string& name) {
    if (name.empty()) return Ok{};
    const auto level = kernels::parse_level(name);
    if (!level)
        return make_error(ErrorCode::invalid_argument,
                          "--simd '" + name + "': expected sse2, sse4.2, avx2 or avx512");
    if (!kernels::select(*level))
        return make_error(ErrorCode::invalid_argument,
                          "--simd " + name + ": this CPU cannot run that level");
    return Ok{};
}

// The test split: --test DIR when given, else the data directory's own test files if present.
Result<std::optional<data::Dataset>> load_test_set(const TrainArgs& a) {
    if (!a.test.empty()) {
        auto test = data::load_dir(a.test, data::Split::test);
        if (!test) return test.error();
        return std::optional<data::Dataset>(std::move(test).value());
    }
    auto test = data::load_dir(a.data, data::Split::test);
    if (!test) {
        if (test.error().code == ErrorCode::not_found) return std::optional<data::Dataset>{};
        return test.error();
    }
    return std::optional<data::Dataset>(std::move(test).value());
}

// --cpu-budget: the governor's limits from the configuration (file, then the flag's budget).
Result<std::unique_ptr<firmware::Pacer>> make_pacer(const TrainArgs& a) {
    if (a.cpu_budget.empty()) return std::unique_ptr<firmware::Pacer>{};
    const firmware::HardwareProfile hw = firmware::detect_hardware();
    firmware::LoadedConfig loaded = firmware::default_config(hw);
    std::error_code ec;
    const std::string file = !a.config.empty() ? a.config
                             : fs::exists(firmware::kDefaultConfigPath, ec)
                                 ? std::string(firmware::kDefaultConfigPath)
                                 : std::string();
    if (!file.empty()) {
        auto from_file = firmware::load_config_file(file, std::move(loaded));
        if (!from_file) return from_file.error();
        loaded = std::move(*from_file);
    }
    if (a.cpu_budget != "auto") {
        const firmware::FlagValues budget[] = {{"training.cpu_budget", {a.cpu_budget}}};
        auto flagged = firmware::apply_flags(std::move(loaded), budget);
        if (!flagged) return flagged.error();
        loaded = std::move(*flagged);
    }
    return std::make_unique<firmware::Pacer>(
        firmware::governor_limits(loaded.config, hw.logical_cores),
        [] { return firmware::Micros{monotonic_microseconds()}; });
}

void print_progress(const model::Progress& p, std::uint32_t epochs, bool tty) {
    if (!tty) return;  // plain output gets one line per epoch, printed by the caller
    const int width = 30;
    const int filled = static_cast<int>(width * p.examples_done / std::max<std::size_t>(1, p.examples_total));
    std::string bar(static_cast<std::size_t>(filled), '#');
    bar.resize(width, '.');
    std::printf("\r\033[Kepoch %u/%u [%s] %5.1f%%  loss %.4f  acc %.2f%%  %.0f samples/s",
                p.epoch, epochs, bar.c_str(), 100.0 * p.examples_done / std::max<std::size_t>(1, p.examples_total),
                p.loss, 100.0 * p.accuracy, p.samples_per_second);
    std::fflush(stdout);
}

}  // namespace

int run_train(const TrainArgs& a) {
    if (Status s = apply_simd(a.simd); !s) return report(s.error());
    auto widths = model::parse_architecture(a.model);
    if (!widths) return report(widths.error());
    auto kind = model::parse_optimizer_kind(a.optimizer);
    if (!kind) return report(kind.error());
    if (a.nesterov && *kind != model::OptimizerConfig::Kind::sgd)
        return report(make_error(ErrorCode::invalid_argument,
                                 "--nesterov is SGD's momentum; --optimizer is " + a.optimizer));
    auto schedule = model::parse_schedule(a.schedule);
    if (!schedule) return report(schedule.error());

    auto train = data::load_dir(a.data, data::Split::train);
    if (!train) return report(train.error());
    auto test = load_test_set(a);
    if (!test) return report(test.error());
    if (train->size() == 0)
        return report(make_error(ErrorCode::invalid_argument, a.data + ": no training examples"));
    if (train->features != widths->front())
        return report(make_error(ErrorCode::invalid_argument,
                                 "the data has " + std::to_string(train->features) +
                                     " features per example, the model expects " +
                                     std::to_string(widths->front())));
    if (train->classes > widths->back())
        return report(make_error(ErrorCode::invalid_argument,
                                 "the data has labels up to " + std::to_string(train->classes - 1) +
                                     ", the model has " + std::to_string(widths->back()) +
                                     " outputs"));

    model::TrainOptions opts;
    opts.batch = a.batch;
    opts.epochs = a.epochs;
    opts.seed = a.seed;
    opts.schedule = *schedule;
    opts.optimizer.kind = *kind;
    opts.optimizer.learning_rate =
        a.learning_rate.value_or(*kind == model::OptimizerConfig::Kind::sgd ? 0.05f : 1e-3f);
    opts.optimizer.momentum = a.momentum;
    opts.optimizer.nesterov = a.nesterov;
    opts.optimizer.weight_decay = a.weight_decay;
    auto pacer = make_pacer(a);
    if (!pacer) return report(pacer.error());
    if (*pacer) {
        opts.before_step = [p = pacer->get()] { p->before_step(); };
        std::printf("governed: %s\n", (*pacer)->description().c_str());
    }

    model::Mlp net(*widths);
    net.init_he(a.seed);
    model::Trainer trainer(net, opts);
    if (!a.resume.empty()) {
        auto cp = model::load_checkpoint(a.resume);
        if (!cp) return report(cp.error());
        if (Status s = trainer.restore(*cp); !s) return report(s.error());
        std::printf("resumed from %s at epoch %u\n", a.resume.c_str(), trainer.epochs_done());
    }

    const bool tty = stdout_is_terminal();
    std::printf("training %s (%zu parameters) on %zu examples, %s, batch %d, kernels %s\n",
                a.model.c_str(), net.parameters().size(), train->size(), a.optimizer.c_str(),
                a.batch, std::string(kernels::to_string(kernels::active().level)).c_str());
    std::fflush(stdout);
    double best_test = -1.0;
    while (trainer.epochs_done() < a.epochs) {
        const model::Progress p = trainer.train_epoch(
            *train, [&](const model::Progress& pr) { print_progress(pr, a.epochs, tty); });
        if (tty) std::printf("\r\033[K");
        std::string test_text;
        if (test->has_value()) {
            const model::Evaluation ev = model::evaluate(net, **test);
            best_test = std::max(best_test, ev.accuracy);
            char buf[96];
            std::snprintf(buf, sizeof buf, "  test-loss %.4f  test-acc %.2f%%", ev.loss,
                          100.0 * ev.accuracy);
            test_text = buf;
        }
        std::printf("epoch %u/%u  loss %.4f  train-acc %.2f%%%s  %.0f samples/s\n", p.epoch,
                    a.epochs, p.loss, 100.0 * p.accuracy, test_text.c_str(), p.samples_per_second);
        std::fflush(stdout);
        if (Status s = model::save_checkpoint(a.out, trainer.checkpoint()); !s)
            return report(s.error());
    }
    if (*pacer) std::printf("governor: %s\n", (*pacer)->summary().c_str());
    std::printf("checkpoint: %s\n", a.out.c_str());
    if (best_test >= 0) {
        const model::Evaluation ev = model::evaluate(net, **test);
        std::printf("final test accuracy: %.2f%% (%zu examples)\n", 100.0 * ev.accuracy,
                    ev.examples);
    }
    return kExitOk;
}

int run_eval(const EvalArgs& a) {
    auto cp = model::load_checkpoint(a.model);
    if (!cp) return report(cp.error());
    if (a.split != "auto" && a.split != "train" && a.split != "test")
        return report(make_error(ErrorCode::invalid_argument,
                                 "--split '" + a.split + "': expected auto, train or test"));
    Result<data::Dataset> ds = data::load_dir(a.data, a.split == "train" ? data::Split::train
                                                                           : data::Split::test);
    if (!ds && a.split == "auto" && ds.error().code == ErrorCode::not_found)
        ds = data::load_dir(a.data, data::Split::train);
    if (!ds) return report(ds.error());
    if (ds->features != cp->widths.front())
        return report(make_error(ErrorCode::invalid_argument,
                                 "the data has " + std::to_string(ds->features) +
                                     " features per example, the model expects " +
                                     std::to_string(cp->widths.front())));
    model::Mlp net(cp->widths);
    const std::vector<float>& weights = a.trained ? cp->parameters : cp->serving();
    std::copy(weights.begin(), weights.end(), net.parameters().begin());
    const model::Evaluation ev = model::evaluate(net, *ds);
    std::printf("examples %zu  loss %.4f  accuracy %.2f%%\n", ev.examples, ev.loss,
                100.0 * ev.accuracy);
    if (a.confusion) {
        const std::size_t classes = ev.confusion.shape()[0];
        std::printf("confusion (rows: true class, columns: predicted)\n     ");
        for (std::size_t j = 0; j < classes; ++j) std::printf("%6zu", j);
        std::printf("\n");
        for (std::size_t i = 0; i < classes; ++i) {
            std::printf("%4zu ", i);
            for (std::size_t j = 0; j < classes; ++j)
                std::printf("%6" PRIu64, ev.confusion(i, j));
            std::printf("\n");
        }
    }
    return kExitOk;
}

int run_info() {
    const firmware::HardwareProfile hw = firmware::detect_hardware();
    const auto& f = hw.features;
    std::printf("starling %s\n", STARLING_VERSION);
    std::printf("cpu          %s\n", hw.cpu_model.empty() ? "(unknown)" : hw.cpu_model.c_str());
    std::printf("class        %s\n", std::string(firmware::to_string(hw.device_class)).c_str());
    std::printf("cores        %u\n", hw.logical_cores);
    std::printf("memory       %.1f GiB\n", static_cast<double>(hw.memory_bytes) / (1u << 30));
    std::printf("features     %s%s%s%s%s%s\n", f.sse2 ? "sse2 " : "", f.sse4_2 ? "sse4.2 " : "",
                f.avx ? "avx " : "", f.avx2 ? "avx2 " : "", f.fma ? "fma " : "",
                f.avx512f ? "avx512f" : "");
    std::printf("kernels      %s (best available: %s)\n",
                std::string(kernels::to_string(kernels::active().level)).c_str(),
                std::string(kernels::to_string(kernels::detected_level())).c_str());
    for (const auto& zone : hw.thermal_zones)
        std::printf("thermal      %s %s %.1f C\n", zone.name.c_str(), zone.type.c_str(), zone.celsius);
    const firmware::ProfileDefaults d = firmware::profile_defaults(hw);
    std::printf("defaults     cpu budget %u%%, threads %u, batch %u, kernel %s\n",
                d.cpu_budget_percent, d.threads, d.batch, std::string(d.kernel).c_str());
    std::printf("budget why   %s\n", std::string(d.why).c_str());
    return kExitOk;
}

}  // namespace starling::cli

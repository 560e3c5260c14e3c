// Training throughput of the MLP (fwd+bwd+update, data in memory as uint8, one thread) at each
// kernel level: the figure compared with PyTorch by tools/bench/run.sh.
//
//   bench_train [--data DIR] [--batch 64] [--seconds 2] [--repeats 3] [--model mlp] [--json]
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <string>
#include <vector>

#include "node/data/dataset.hpp"
#include "node/kernels/kernels.hpp"
#include "node/model/trainer.hpp"
#include "node/time.hpp"

using namespace starling;

namespace {

struct Args {
    std::string data = "/usr/share/datasets/fashion-mnist";
    std::string model = "mlp";
    std::vector<int> batches = {64, 32};
    double seconds = 2.0;
    int repeats = 3;
    bool json = false;
};

// Samples per second over about `seconds` of steps, after a warm-up.
double measure(const data::Dataset& ds, const std::vector<std::uint32_t>& widths, int batch,
               double seconds) {
    model::Mlp net(widths);
    net.init_he(1);
    model::TrainOptions opts;
    opts.batch = batch;
    model::Trainer trainer(net, opts);
    std::vector<std::uint32_t> order(ds.size());
    std::iota(order.begin(), order.end(), 0u);
    model::Rng rng(7);
    rng.shuffle(std::span<std::uint32_t>(order));
    const std::size_t b = static_cast<std::size_t>(batch);
    std::size_t at = 0;
    auto next_rows = [&] {
        if (at + b > order.size()) at = 0;
        std::span<const std::uint32_t> rows(order.data() + at, b);
        at += b;
        return rows;
    };
    for (int i = 0; i < 50; ++i) (void)trainer.step(ds, next_rows());
    std::size_t samples = 0;
    const double start = monotonic_seconds();
    double now = start;
    while (now - start < seconds) {
        for (int i = 0; i < 20; ++i) (void)trainer.step(ds, next_rows());
        samples += 20 * b;
        now = monotonic_seconds();
    }
    return static_cast<double>(samples) / (now - start);
}

}  // namespace

int main(int argc, char** argv) {
    Args a;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "bench_train: %s needs a value\n", arg.c_str());
                std::exit(2);
            }
            return argv[++i];
        };
        if (arg == "--data") a.data = value();
        else if (arg == "--model") a.model = value();
        else if (arg == "--batch") a.batches = {std::stoi(value())};
        else if (arg == "--seconds") a.seconds = std::stod(value());
        else if (arg == "--repeats") a.repeats = std::stoi(value());
        else if (arg == "--json") a.json = true;
        else {
            std::fprintf(stderr, "usage: bench_train [--data DIR] [--model mlp] [--batch N] "
                                 "[--seconds S] [--repeats R] [--json]\n");
            return 2;
        }
    }
    auto ds = data::load_dir(a.data, data::Split::train);
    if (!ds) {
        std::fprintf(stderr, "bench_train: %s\n", ds.error().message.c_str());
        return 1;
    }
    auto widths = model::parse_architecture(a.model);
    if (!widths) {
        std::fprintf(stderr, "bench_train: %s\n", widths.error().message.c_str());
        return 2;
    }
    if (a.json) std::printf("[");
    bool first = true;
    for (int batch : a.batches) {
        for (int l = kernels::kLevelCount - 1; l >= 0; --l) {
            const auto level = static_cast<kernels::Level>(l);
            if (!kernels::select(level)) continue;
            std::vector<double> runs;
            for (int r = 0; r < a.repeats; ++r) runs.push_back(measure(*ds, *widths, batch, a.seconds));
            std::sort(runs.begin(), runs.end());
            const double median = runs[runs.size() / 2];
            const std::string name(kernels::to_string(level));
            if (a.json) {
                std::printf("%s{\"model\":\"%s\",\"batch\":%d,\"level\":\"%s\",\"samples_per_s\":%.0f}",
                            first ? "" : ",", a.model.c_str(), batch, name.c_str(), median);
            } else {
                std::printf("starling %-8s batch %3d  %9.0f samples/s  (median of %d)\n",
                            name.c_str(), batch, median, a.repeats);
            }
            first = false;
            std::fflush(stdout);
        }
    }
    if (a.json) std::printf("]\n");
    return 0;
}

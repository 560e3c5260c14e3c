// bench_gemm: GFLOP/s of every runnable SIMD level's GEMM on the MLP 784-256-128-10 training
// shapes (forward, weight gradients, input gradients) at the batch sizes the trainer uses.
//
//   bench_gemm [--level all|sse2|sse4.2|avx2|avx512] [--batch 64,32] [--seconds 0.3] [--json]
//
// Each measurement (one shape at one level) warms up, then spends about --seconds in 5 timed runs
// and reports the median run's GFLOP/s. Results go to stdout as an aligned table or as JSON; the
// figures belong in notes and reports, never in test assertions. Compare with
// tools/bench/openblas_sgemm.py, which times the same shapes (tools/bench/run.sh runs both).
//
// This is a measuring tool, so it reads std::chrono::steady_clock directly; node code takes its
// clock by injection instead.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "node/kernels/kernels.hpp"

namespace {

namespace k = starling::kernels;
using Clock = std::chrono::steady_clock;

constexpr int kRunsPerMeasurement = 5;
constexpr double kWarmupFraction = 0.2;  // of --seconds, spent before the timed runs
constexpr double kMaxSecondsAllowed = 60.0;
constexpr int kMaxBatch = 65536;

// One GEMM of a training step. Weights are stored input-major (W is in×out), so the forward pass
// is X·W, the weight gradient Xᵀ·dY and the input gradient dY·Wᵀ.
struct Shape {
    std::string name;
    k::Trans trans_a, trans_b;
    int m, n, k;
    // Stored extents (rows × cols) of A and B, row-major.
    int a_rows, a_cols, b_rows, b_cols;

    double flops() const { return 2.0 * m * n * k; }
};

Shape forward(int batch, int in, int out) {
    return {"fwd X*W " + std::to_string(in) + "x" + std::to_string(out),
            k::Trans::no, k::Trans::no, batch, out, in, batch, in, in, out};
}

Shape weight_grad(int batch, int in, int out) {
    return {"dW Xt*dY " + std::to_string(in) + "x" + std::to_string(out),
            k::Trans::yes, k::Trans::no, in, out, batch, batch, in, batch, out};
}

Shape input_grad(int batch, int in, int out) {
    return {"dX dY*Wt " + std::to_string(out) + "->" + std::to_string(in),
            k::Trans::no, k::Trans::yes, batch, in, out, batch, out, in, out};
}

std::vector<Shape> mlp_shapes(int batch) {
    static constexpr int kLayers[] = {784, 256, 128, 10};
    std::vector<Shape> shapes;
    for (int l = 0; l < 3; ++l) shapes.push_back(forward(batch, kLayers[l], kLayers[l + 1]));
    for (int l = 0; l < 3; ++l) shapes.push_back(weight_grad(batch, kLayers[l], kLayers[l + 1]));
    // The first layer's input gradient is never needed: its input is the data.
    for (int l = 1; l < 3; ++l) shapes.push_back(input_grad(batch, kLayers[l], kLayers[l + 1]));
    return shapes;
}

struct Operands {
    std::vector<float> a, b, c, c_ref;
    k::GemmCall call;
};

// Deterministic values in [-1, 1) (a small LCG; no global random state).
void fill(std::vector<float>& v, unsigned seed) {
    unsigned s = seed * 2654435761u + 1u;
    for (float& x : v) {
        s = s * 1664525u + 1013904223u;
        x = static_cast<float>(s >> 8) / static_cast<float>(1u << 23) - 1.0f;
    }
}

Operands make_operands(const Shape& sh) {
    Operands o;
    o.a.resize(static_cast<std::size_t>(sh.a_rows) * sh.a_cols);
    o.b.resize(static_cast<std::size_t>(sh.b_rows) * sh.b_cols);
    o.c.assign(static_cast<std::size_t>(sh.m) * sh.n, 0.0f);
    o.c_ref = o.c;
    fill(o.a, 1);
    fill(o.b, 2);
    o.call.trans_a = sh.trans_a;
    o.call.trans_b = sh.trans_b;
    o.call.m = sh.m;
    o.call.n = sh.n;
    o.call.k = sh.k;
    o.call.a = o.a.data();
    o.call.lda = sh.a_cols;
    o.call.b = o.b.data();
    o.call.ldb = sh.b_cols;
    o.call.c = o.c.data();
    o.call.ldc = sh.n;
    return o;
}

// Largest |c - reference| relative to the largest |reference|; guards against timing a kernel
// that computes the wrong thing.
double relative_error(const k::KernelSet& set, Operands& o) {
    k::GemmCall ref = o.call;
    ref.c = o.c_ref.data();
    k::reference::gemm(ref);
    set.gemm(o.call);
    double worst = 0.0, scale = 0.0;
    for (std::size_t i = 0; i < o.c.size(); ++i) {
        worst = std::max(worst, static_cast<double>(std::fabs(o.c[i] - o.c_ref[i])));
        scale = std::max(scale, static_cast<double>(std::fabs(o.c_ref[i])));
    }
    return scale > 0.0 ? worst / scale : worst;
}

double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

struct Result {
    std::vector<double> gflops;  // one per timed run
    double median = 0.0;
    double seconds_per_call = 0.0;  // at the median run
};

Result measure(const k::KernelSet& set, const k::GemmCall& call, double flops, double budget) {
    // Warm-up: caches, packing buffers, clocks; also estimates one call's time.
    const double warmup = budget * kWarmupFraction;
    long warm_calls = 0;
    const auto w0 = Clock::now();
    do {
        set.gemm(call);
        ++warm_calls;
    } while (warm_calls < 3 || seconds_since(w0) < warmup);
    const double per_call = seconds_since(w0) / static_cast<double>(warm_calls);

    const double per_run = budget * (1.0 - kWarmupFraction) / kRunsPerMeasurement;
    const long calls = std::max(1L, static_cast<long>(per_run / per_call));
    Result r;
    std::vector<double> secs;
    for (int run = 0; run < kRunsPerMeasurement; ++run) {
        const auto t0 = Clock::now();
        for (long i = 0; i < calls; ++i) set.gemm(call);
        const double s = seconds_since(t0) / static_cast<double>(calls);
        secs.push_back(s);
        r.gflops.push_back(flops / s * 1e-9);
    }
    std::vector<double> sorted = secs;
    std::sort(sorted.begin(), sorted.end());
    r.seconds_per_call = sorted[sorted.size() / 2];
    r.median = flops / r.seconds_per_call * 1e-9;
    return r;
}

struct Options {
    std::vector<k::Level> levels;
    std::vector<int> batches{64, 32};
    double seconds = 0.3;
    bool json = false;
};

[[noreturn]] void usage(const char* why) {
    if (why != nullptr) std::fprintf(stderr, "bench_gemm: %s\n", why);
    std::fprintf(stderr,
                 "usage: bench_gemm [--level all|sse2|sse4.2|avx2|avx512] [--batch 64,32]\n"
                 "                  [--seconds S] [--json]\n"
                 "  --level    one level, or all runnable levels (default)\n"
                 "  --batch    comma-separated batch sizes (default 64,32)\n"
                 "  --seconds  time budget per shape and level, warm-up included (default 0.3)\n"
                 "  --json     JSON instead of a table\n");
    std::exit(why != nullptr ? 2 : 0);
}

std::vector<int> parse_batches(std::string_view text) {
    std::vector<int> out;
    while (!text.empty()) {
        const std::size_t comma = text.find(',');
        const std::string item(text.substr(0, comma));
        char* end = nullptr;
        const long v = std::strtol(item.c_str(), &end, 10);
        if (item.empty() || *end != 0 || v < 1 || v > kMaxBatch) usage("bad --batch");
        out.push_back(static_cast<int>(v));
        if (comma == std::string_view::npos) break;
        text.remove_prefix(comma + 1);
    }
    if (out.empty()) usage("bad --batch");
    return out;
}

Options parse(int argc, char** argv) {
    Options o;
    std::string level = "all";
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        auto value = [&]() -> std::string_view {
            if (i + 1 >= argc) usage("missing value");
            return argv[++i];
        };
        if (arg == "--help" || arg == "-h") {
            usage(nullptr);
        } else if (arg == "--json") {
            o.json = true;
        } else if (arg == "--level") {
            level = value();
        } else if (arg == "--batch") {
            o.batches = parse_batches(value());
        } else if (arg == "--seconds") {
            const std::string s(value());
            char* end = nullptr;
            o.seconds = std::strtod(s.c_str(), &end);
            if (s.empty() || *end != 0 || !(o.seconds > 0.0) || o.seconds > kMaxSecondsAllowed)
                usage("bad --seconds");
        } else {
            usage("unknown argument");
        }
    }
    if (level == "all") {
        for (int l = 0; l < k::kLevelCount; ++l)
            if (k::kernels_for(static_cast<k::Level>(l)) != nullptr)
                o.levels.push_back(static_cast<k::Level>(l));
    } else {
        const auto parsed = k::parse_level(level);
        if (!parsed) usage("unknown --level");
        if (k::kernels_for(*parsed) == nullptr) {
            std::fprintf(stderr, "bench_gemm: this CPU cannot run %s\n", level.c_str());
            std::exit(1);
        }
        o.levels.push_back(*parsed);
    }
    return o;
}

struct Row {
    int batch;
    Shape shape;
    std::vector<Result> by_level;  // parallel to Options::levels
};

void print_table(const Options& opt, const std::vector<Row>& rows) {
    std::printf("bench_gemm: GFLOP/s, median of %d runs, %.2f s per shape and level, 1 thread; "
                "detected level %s\n",
                kRunsPerMeasurement, opt.seconds,
                std::string(k::to_string(k::detected_level())).c_str());
    for (int batch : opt.batches) {
        std::printf("\nbatch %d\n%-22s %5s %5s %5s %9s", batch, "shape", "m", "n", "k", "MFLOP");
        for (k::Level l : opt.levels) std::printf(" %9s", std::string(k::to_string(l)).c_str());
        std::printf("\n");
        double step_flops = 0.0;
        std::vector<double> step_seconds(opt.levels.size(), 0.0);
        for (const Row& r : rows) {
            if (r.batch != batch) continue;
            std::printf("%-22s %5d %5d %5d %9.3f", r.shape.name.c_str(), r.shape.m, r.shape.n,
                        r.shape.k, r.shape.flops() * 1e-6);
            for (std::size_t i = 0; i < r.by_level.size(); ++i) {
                std::printf(" %9.1f", r.by_level[i].median);
                step_seconds[i] += r.by_level[i].seconds_per_call;
            }
            step_flops += r.shape.flops();
            std::printf("\n");
        }
        // The whole step's GEMMs: total FLOP over the sum of the median times.
        std::printf("%-22s %5s %5s %5s %9.3f", "all GEMMs of a step", "", "", "", step_flops * 1e-6);
        for (double s : step_seconds) std::printf(" %9.1f", step_flops / s * 1e-9);
        std::printf("\n%-22s %5s %5s %5s %9s", "  GEMM-only samples/s", "", "", "", "");
        for (double s : step_seconds) std::printf(" %9.0f", batch / s);
        std::printf("\n");
    }
}

void print_json(const Options& opt, const std::vector<Row>& rows) {
    std::printf("{\n  \"tool\": \"bench_gemm\",\n  \"detected_level\": \"%s\",\n"
                "  \"runs_per_measurement\": %d,\n  \"seconds_per_measurement\": %g,\n"
                "  \"results\": [",
                std::string(k::to_string(k::detected_level())).c_str(), kRunsPerMeasurement,
                opt.seconds);
    bool first = true;
    for (const Row& r : rows) {
        for (std::size_t i = 0; i < r.by_level.size(); ++i) {
            const Result& res = r.by_level[i];
            std::printf("%s\n    {\"batch\": %d, \"shape\": \"%s\", \"m\": %d, \"n\": %d, "
                        "\"k\": %d, \"trans_a\": %s, \"trans_b\": %s, \"level\": \"%s\", "
                        "\"gflops\": %.3f, \"seconds_per_call\": %.9f, \"runs_gflops\": [",
                        first ? "" : ",", r.batch, r.shape.name.c_str(), r.shape.m, r.shape.n,
                        r.shape.k, r.shape.trans_a == k::Trans::yes ? "true" : "false",
                        r.shape.trans_b == k::Trans::yes ? "true" : "false",
                        std::string(k::to_string(opt.levels[i])).c_str(), res.median,
                        res.seconds_per_call);
            for (std::size_t j = 0; j < res.gflops.size(); ++j)
                std::printf("%s%.3f", j == 0 ? "" : ", ", res.gflops[j]);
            std::printf("]}");
            first = false;
        }
    }
    std::printf("\n  ]\n}\n");
}

}  // namespace

int main(int argc, char** argv) {
    const Options opt = parse(argc, argv);
    constexpr double kTolerance = 1e-4;  // relative; K ≤ 784 float sums stay far below this

    std::vector<Row> rows;
    for (int batch : opt.batches) {
        for (const Shape& sh : mlp_shapes(batch)) {
            Row row{batch, sh, {}};
            Operands ops = make_operands(sh);
            for (k::Level level : opt.levels) {
                const k::KernelSet& set = *k::kernels_for(level);
                if (const double err = relative_error(set, ops); !(err <= kTolerance)) {
                    std::fprintf(stderr, "bench_gemm: %s at %s, batch %d: relative error %g\n",
                                 sh.name.c_str(), std::string(k::to_string(level)).c_str(), batch,
                                 err);
                    return 1;
                }
                row.by_level.push_back(measure(set, ops.call, sh.flops(), opt.seconds));
            }
            rows.push_back(std::move(row));
        }
    }
    if (opt.json)
        print_json(opt, rows);
    else
        print_table(opt, rows);
    return 0;
}

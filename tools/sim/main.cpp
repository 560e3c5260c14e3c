// starling-sim SCENARIO [--seed S] [--set TIMER=VALUE]... [--trace]
// starling-sim TRAINING_SCENARIO [--seed S] [--data DIR] [--csv FILE] [--set KEY=VALUE]...
// Runs a membership scenario on virtual time and prints its figures; exit status 1 when an
// expectation failed (the seed to replay it is printed), 2 for a bad command line or scenario.
// A measuring tool, so it reads std::chrono::steady_clock directly (for the wall-clock figure).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "tools/sim/simulation.hpp"
#include "tools/sim/training.hpp"

namespace {

int usage() {
    std::fprintf(stderr,
                 "usage: starling-sim SCENARIO [--seed S] [--set TIMER=VALUE]... [--trace]\n"
                 "  --seed S     replaces the scenario's seed (default: its 'seed' line, or 1)\n"
                 "  --set T=V    overrides one protocol timer, as a 'timer T V' line would\n"
                 "  --trace      prints every peer event as it happens\n"
                 "See tools/sim/README.md for the scenario format.\n");
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    using namespace starling;
    // A training scenario (first command `training`) runs devices that learn, not membership.
    if (argc >= 2 && !std::string_view(argv[1]).starts_with("--") &&
        sim::is_training_scenario(argv[1]))
        return sim::training_main(argv[1], argc, argv);
    std::string path;
    std::optional<std::uint64_t> seed;
    std::vector<std::string> sets;
    bool trace = false;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "--seed" && i + 1 < argc) {
            char* end = nullptr;
            seed = std::strtoull(argv[++i], &end, 10);
            if (end == nullptr || *end != '\0') return usage();
        } else if (arg == "--set" && i + 1 < argc) {
            sets.emplace_back(argv[++i]);
        } else if (arg == "--trace") {
            trace = true;
        } else if (!arg.starts_with("--") && path.empty()) {
            path = arg;
        } else {
            return usage();
        }
    }
    if (path.empty()) return usage();
    auto scenario = sim::load_scenario(path);
    if (!scenario) {
        std::fprintf(stderr, "starling-sim: %s\n", scenario.error().message.c_str());
        return 2;
    }
    for (const std::string& set : sets) {
        const std::size_t eq = set.find('=');
        if (eq == std::string::npos) return usage();
        const Status status = sim::set_timer(scenario->timers, std::string_view(set).substr(0, eq),
                                             std::string_view(set).substr(eq + 1));
        if (!status) {
            std::fprintf(stderr, "starling-sim: --set %s: %s\n", set.c_str(),
                         status.error().message.c_str());
            return 2;
        }
    }
    const std::uint64_t run_seed = seed.value_or(scenario->seed);
    const auto started = std::chrono::steady_clock::now();
    const sim::Report report = sim::simulate(*scenario, run_seed, trace ? stdout : nullptr);
    const double wall =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    sim::print_report(report, wall, stdout);
    if (!report.passed()) {
        std::printf("FAILED with seed %llu; replay: starling-sim %s --seed %llu\n",
                    static_cast<unsigned long long>(run_seed), path.c_str(),
                    static_cast<unsigned long long>(run_seed));
        return 1;
    }
    return 0;
}

#pragma once
// The timing loop the benchmarks share: medians, so one preempted run does not move a figure;
// and the run count they take from the command line.
// A measuring tool, so it reads std::chrono::steady_clock directly.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <optional>
#include <string_view>
#include <vector>

namespace starling::bench {

// Median over `runs` of the seconds one call of `body` takes, each run timing `calls` calls,
// after one warm-up call (caches, lazy initialisation, first allocations).
inline double median_seconds(int runs, int calls, const std::function<void()>& body) {
    using Clock = std::chrono::steady_clock;
    body();
    std::vector<double> per_call;
    for (int run = 0; run < runs; ++run) {
        const auto start = Clock::now();
        for (int i = 0; i < calls; ++i) body();
        per_call.push_back(std::chrono::duration<double>(Clock::now() - start).count() / calls);
    }
    std::sort(per_call.begin(), per_call.end());
    return per_call[per_call.size() / 2];
}

// `--runs N` (at least 1; `fallback` without it); nullopt, with the usage printed, otherwise.
inline std::optional<int> runs_argument(int argc, char** argv, const char* program, int fallback) {
    int runs = fallback;
    for (int i = 1; i < argc; ++i) {
        if (std::string_view(argv[i]) == "--runs" && i + 1 < argc) {
            runs = std::max(1, std::atoi(argv[++i]));
        } else {
            std::fprintf(stderr, "usage: %s [--runs N]\n", program);
            return std::nullopt;
        }
    }
    return runs;
}

}  // namespace starling::bench

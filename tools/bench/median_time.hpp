#pragma once
// The timing loop the benchmarks share: medians, so one preempted run does not move a figure.
// A measuring tool, so it reads std::chrono::steady_clock directly.

#include <algorithm>
#include <chrono>
#include <functional>
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

}  // namespace starling::bench

#include "firmware/pacer.hpp"

#include <time.h>

#include <algorithm>
#include <cstdio>
#include <utility>

namespace starling::firmware {
namespace {

static_assert(static_cast<std::size_t>(PauseReason::busy) < PacerStats{}.paused.size());

void sleep_micros(Micros d) {
    timespec ts{static_cast<time_t>(d.count() / 1'000'000),
                static_cast<long>(d.count() % 1'000'000) * 1000};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

std::string priority_text() {
    std::string text;
    Result<CpuPriority> cpu = lower_cpu_priority();
    text += cpu ? std::string(to_string(*cpu)) : "normal priority (" + cpu.error().message + ")";
    Status io = lower_io_priority();
    text += io ? ", idle I/O class" : ", normal I/O class (" + io.error().message + ")";
    return text;
}

}  // namespace

Pacer::Pacer(const GovernorLimits& limits, std::function<Micros()> monotonic)
    : limits_(limits),
      duty_(limits, HostSampler(monotonic)),
      monotonic_(std::move(monotonic)) {
    description_ = "cpu budget " + std::to_string(limits.cpu_budget_percent) + "% of " +
                   std::to_string(limits.logical_cores) + " cores, " + priority_text();
}

void Pacer::before_step() {
    while (!stop_.load(std::memory_order_relaxed)) {
        const Micros wait = duty_.between_steps();
        if (wait <= Micros{0}) break;
        const Micros slice = std::min(wait, kMaxSleepSlice);
        const auto reason = static_cast<std::size_t>(duty_.last_decision().reason);
        stats_.paused[std::min(reason, stats_.paused.size() - 1)] += slice;
        sleep_micros(slice);
    }
    ++stats_.steps;
}

PacerStats Pacer::stats() const {
    PacerStats s = stats_;
    s.cpu_share = duty_.governor().cpu_share();
    s.others_share = duty_.governor().others_share();
    return s;
}

std::string Pacer::summary() const {
    const PacerStats s = stats();
    char head[96];
    std::snprintf(head, sizeof head, "cpu share %.1f%% of the machine (budget %u%%)",
                  100.0 * s.cpu_share, limits_.cpu_budget_percent);
    std::string text = head;
    Micros total{0};
    std::string parts;
    for (std::size_t i = 0; i < s.paused.size(); ++i) {
        if (s.paused[i] <= Micros{0}) continue;
        total += s.paused[i];
        char part[64];
        std::snprintf(part, sizeof part, "%s%s %.1f s", parts.empty() ? "" : ", ",
                      std::string(to_string(static_cast<PauseReason>(i))).c_str(),
                      static_cast<double>(s.paused[i].count()) / 1e6);
        parts += part;
    }
    if (total > Micros{0}) {
        char paused[48];
        std::snprintf(paused, sizeof paused, "; paused %.1f s: ",
                      static_cast<double>(total.count()) / 1e6);
        text += paused + parts;
    }
    return text;
}

}  // namespace starling::firmware

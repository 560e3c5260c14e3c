#include "firmware/governor.hpp"

#include <algorithm>
#include <utility>

namespace starling::firmware {
namespace {

constexpr double kMiB = 1024.0 * 1024.0;
constexpr double kMemoryResumeFactor = 1.25;
constexpr double kPressureResumeFactor = 0.5;

double micros(Micros m) { return static_cast<double>(m.count()); }

}  // namespace

std::string_view to_string(PauseReason r) noexcept {
    switch (r) {
        case PauseReason::none: return "running";
        case PauseReason::over_budget: return "cpu budget";
        case PauseReason::cpu_pressure: return "cpu pressure";
        case PauseReason::memory_pressure: return "memory pressure";
        case PauseReason::io_pressure: return "io pressure";
        case PauseReason::thermal: return "thermal limit";
        case PauseReason::low_memory: return "low memory";
        case PauseReason::busy: return "device busy";
    }
    return "running";
}

Governor::Governor(const GovernorLimits& limits) noexcept
    : limits_(limits),
      cores_budget_(std::max(1u, limits.logical_cores) *
                    (std::clamp(limits.cpu_budget_percent, 1u, 100u) / 100.0)) {}

// The first reason found to stop training for the machine's sake, by severity.
PauseReason Governor::machine_reason(const Readings& r) const noexcept {
    if (r.hottest_celsius > limits_.thermal_limit_c) return PauseReason::thermal;
    if (r.mem_available_bytes != 0 &&
        static_cast<double>(r.mem_available_bytes) < limits_.memory_floor_mib * kMiB)
        return PauseReason::low_memory;
    if (r.pressure.memory > limits_.psi_memory_percent) return PauseReason::memory_pressure;
    if (r.pressure.cpu > limits_.psi_cpu_percent) return PauseReason::cpu_pressure;
    if (r.pressure.io > limits_.psi_io_percent) return PauseReason::io_pressure;
    if (others_share_ * 100.0 > limits_.busy_cpu_percent) return PauseReason::busy;
    return PauseReason::none;
}

// Below every resume level: the other side of the hysteresis band.
bool Governor::machine_calm(const Readings& r) const noexcept {
    const double f = kPressureResumeFactor;
    return r.hottest_celsius <= limits_.thermal_limit_c - kThermalResumeMarginC &&
           (r.mem_available_bytes == 0 || static_cast<double>(r.mem_available_bytes) >=
                                              limits_.memory_floor_mib * kMiB * kMemoryResumeFactor) &&
           r.pressure.memory <= limits_.psi_memory_percent * f &&
           r.pressure.cpu <= limits_.psi_cpu_percent * f &&
           r.pressure.io <= limits_.psi_io_percent * f &&
           others_share_ * 100.0 <= limits_.busy_cpu_percent * f;
}

// Other processes' share: the host's busy time less the node's own, over at least kLoadWindow.
void Governor::measure_others(const Readings& r) noexcept {
    const HostLoad& now = r.load;
    if (now.busy <= Micros{0}) {
        others_share_ = 0.0;
        window_start_ = {};
        return;
    }
    if (window_start_.busy <= Micros{0}) window_start_ = now;
    const double wall = micros(now.at - window_start_.at);
    if (wall < micros(kLoadWindow)) return;
    const double busy = micros(now.busy - window_start_.busy);
    const double own = micros(now.own - window_start_.own);
    others_share_ =
        std::clamp((busy - own) / (wall * std::max(1u, limits_.logical_cores)), 0.0, 1.0);
    window_start_ = now;
}

// A CPU-time bucket: the budget fills it with wall time, the node's CPU time drains it.
void Governor::account_cpu(const Readings& r) noexcept {
    const double wall = micros(r.now - last_.now);
    const double used = micros(r.own_cpu_time - last_.own_cpu_time);
    credit_us_ += wall * cores_budget_ - used;
    credit_us_ = std::min(credit_us_, micros(kMaxBankedWall) * cores_budget_);
}

Decision Governor::on_sample(const Readings& r) noexcept {
    if (!started_) {
        started_ = true;
        first_ = r;
        last_ = r;
    }
    account_cpu(r);
    measure_others(r);
    last_ = r;

    if (const PauseReason reason = machine_reason(r); reason != PauseReason::none) {
        held_ = reason;
        calm_since_ = Micros{-1};
        return {false, reason, kPausedRecheck};
    }
    if (held_ != PauseReason::none) {
        if (!machine_calm(r)) {
            calm_since_ = Micros{-1};
            return {false, held_, kPausedRecheck};
        }
        if (calm_since_ < Micros{0}) calm_since_ = r.now;
        if (r.now - calm_since_ < kResumeHold) return {false, held_, kPausedRecheck};
        held_ = PauseReason::none;
    }
    if (credit_us_ < 0.0) {
        // Sleep until the budget has paid back what the node overspent.
        const auto wait = static_cast<Micros::rep>(-credit_us_ / cores_budget_) + 1;
        return {false, PauseReason::over_budget, Micros{wait}};
    }
    return {};
}

double Governor::cpu_share() const noexcept {
    const double wall = micros(last_.now - first_.now);
    if (wall <= 0.0) return 0.0;
    return micros(last_.own_cpu_time - first_.own_cpu_time) /
           (wall * std::max(1u, limits_.logical_cores));
}

DutyCycle::DutyCycle(const GovernorLimits& limits, std::function<Readings()> sampler)
    : governor_(limits), sampler_(std::move(sampler)) {}

Micros DutyCycle::between_steps() {
    last_ = governor_.on_sample(sampler_());
    return last_.run ? Micros{0} : last_.wait;
}

}  // namespace starling::firmware

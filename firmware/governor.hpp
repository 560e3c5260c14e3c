#pragma once
// The resource governor: decides, from readings the caller gathers, whether the trainer may run
// its next step, so that it stays within its CPU budget and yields to the device's own work when
// the machine is busy, hot or short of memory. Sans-I/O: no clock, no files, no sleeps.
//
// How a trainer uses it (`starling train --cpu-budget`, the node's training thread), all in
// firmware/pacer.hpp, on the training thread:
//   Pacer pacer(governor_limits(config, cores), monotonic);  // limits: firmware/config.hpp
//   while (training) { pacer.before_step(); step(); }         // request_stop() from elsewhere
// Networking and membership never call it: they keep running while training is paused.

#include <chrono>
#include <cstdint>
#include <functional>
#include <string_view>

namespace starling::firmware {

using Micros = std::chrono::microseconds;

// Linux PSI "some avg10": the percentage of the last 10 s some task waited for the resource.
struct Pressure {
    double cpu = 0.0;
    double memory = 0.0;
    double io = 0.0;
};

// All cores' busy CPU time (every process), and the node's own CPU time read at the same moment
// `at`: the two together give other processes' load. Zero busy time: unknown.
struct HostLoad {
    Micros at{0};
    Micros busy{0};
    Micros own{0};
};

// One sample of the machine, taken by the caller between training steps.
struct Readings {
    Micros now{0};           // monotonic
    Micros own_cpu_time{0};  // the node's CPU time consumed so far (all threads)
    Pressure pressure;
    double hottest_celsius = 0.0;            // 0: no thermal zone
    std::uint64_t mem_available_bytes = 0;   // 0: unknown, never a reason to pause
    HostLoad load;  // may be older than `now`: files are read less often than steps run
};

struct GovernorLimits {
    unsigned cpu_budget_percent = 25;  // of the whole machine: all its cores
    unsigned logical_cores = 1;
    unsigned thermal_limit_c = 80;
    unsigned memory_floor_mib = 256;
    unsigned psi_cpu_percent = 40;
    unsigned psi_memory_percent = 10;
    unsigned psi_io_percent = 30;
    // Other processes' share of the whole machine above which training pauses: the device's own
    // work, seen even where the kernel offers no PSI (Debian boots with PSI off).
    unsigned busy_cpu_percent = 75;
};

// Hysteresis: a pause for pressure, heat or memory ends only once every reading has stayed below
// its resume level (half the pressure threshold, 5 °C under the limit, 25% above the memory
// floor) for kResumeHold.
inline constexpr Micros kResumeHold = std::chrono::seconds(10);
inline constexpr double kThermalResumeMarginC = 5.0;
// While paused for the machine's sake, the caller samples again after kPausedRecheck.
inline constexpr Micros kPausedRecheck = std::chrono::seconds(1);
// Other processes' CPU share is measured over windows of at least this much wall time.
inline constexpr Micros kLoadWindow = std::chrono::seconds(1);
// Unused budget is banked for at most this much wall time, so a long idle spell does not buy a
// long burst at full speed.
inline constexpr Micros kMaxBankedWall = std::chrono::seconds(2);

enum class PauseReason { none, over_budget, cpu_pressure, memory_pressure, io_pressure, thermal,
                         low_memory, busy };
[[nodiscard]] std::string_view to_string(PauseReason r) noexcept;

struct Decision {
    bool run = true;
    PauseReason reason = PauseReason::none;
    Micros wait{0};  // when !run: sleep this long, then sample again
};

class Governor {
  public:
    explicit Governor(const GovernorLimits& limits) noexcept;

    // Called between training steps with a fresh sample; readings must not go back in time.
    [[nodiscard]] Decision on_sample(const Readings& r) noexcept;

    // The fraction of the machine's CPU time the node has used since the first sample.
    [[nodiscard]] double cpu_share() const noexcept;
    // Other processes' fraction of the machine over the last finished kLoadWindow; 0 unknown.
    [[nodiscard]] double others_share() const noexcept { return others_share_; }

  private:
    [[nodiscard]] PauseReason machine_reason(const Readings& r) const noexcept;
    [[nodiscard]] bool machine_calm(const Readings& r) const noexcept;
    void account_cpu(const Readings& r) noexcept;
    void measure_others(const Readings& r) noexcept;

    GovernorLimits limits_;
    double cores_budget_;  // CPU-seconds per wall second the budget allows
    bool started_ = false;
    Readings first_{};
    Readings last_{};
    double credit_us_ = 0.0;  // CPU time the node may still use; negative: over budget
    PauseReason held_ = PauseReason::none;  // a pause for the machine's sake, in force
    Micros calm_since_{-1};
    HostLoad window_start_{};  // where the current load window began
    double others_share_ = 0.0;
};

// The trainer loop's side: between steps it calls between_steps() and sleeps what it returns.
// The sampler gathers Readings (real files and clocks in the node; fakes in tests).
class DutyCycle {
  public:
    DutyCycle(const GovernorLimits& limits, std::function<Readings()> sampler);

    // Zero: run the next step now. Otherwise: sleep this long, then call again.
    [[nodiscard]] Micros between_steps();
    [[nodiscard]] const Decision& last_decision() const noexcept { return last_; }
    [[nodiscard]] const Governor& governor() const noexcept { return governor_; }

  private:
    Governor governor_;
    std::function<Readings()> sampler_;
    Decision last_{};
};

}  // namespace starling::firmware

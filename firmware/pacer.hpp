#pragma once
// The trainer's side of the resource governor: lowers the calling thread's priority and, before
// each training step, sleeps as long as the duty cycle says. Used by `starling train
// --cpu-budget` and by the node's training thread; networking never goes through it.

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "firmware/governor.hpp"
#include "firmware/priority.hpp"
#include "firmware/sensors.hpp"

namespace starling::firmware {

// A pause is slept in slices of at most this, so request_stop() is seen promptly.
inline constexpr Micros kMaxSleepSlice = std::chrono::milliseconds(100);

struct PacerStats {
    std::uint64_t steps = 0;
    std::array<Micros, 8> paused{};  // time slept, by PauseReason
    double cpu_share = 0.0;          // the node's share of the machine so far
    double others_share = 0.0;       // other processes' share, last window
};

class Pacer {
  public:
    // `monotonic` is the caller's clock (node/time.hpp in the binary). Call from the thread
    // that trains: it moves that thread to SCHED_IDLE (or nice 19) and the idle I/O class.
    Pacer(const GovernorLimits& limits, std::function<Micros()> monotonic);

    // Returns when the next step may run, or at once after request_stop().
    void before_step();
    // Thread-safe: wakes a pacer sleeping in before_step() within kMaxSleepSlice.
    void request_stop() noexcept { stop_.store(true, std::memory_order_relaxed); }

    [[nodiscard]] PacerStats stats() const;
    // "cpu budget 25% of 4 cores, SCHED_IDLE, idle I/O class"
    [[nodiscard]] const std::string& description() const noexcept { return description_; }
    // "cpu share 24.9% (budget 25%); paused 12.0 s: cpu budget 11.5 s, device busy 0.5 s"
    [[nodiscard]] std::string summary() const;

  private:
    GovernorLimits limits_;
    DutyCycle duty_;
    std::function<Micros()> monotonic_;
    std::atomic<bool> stop_{false};
    PacerStats stats_;
    std::string description_;
};

}  // namespace starling::firmware

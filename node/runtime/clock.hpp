#pragma once
// The node's clocks and its one alarm as inputs: the real ones in production (node/time.hpp, the
// event loop's timer), hand-moved fakes in tests, so nothing in node/runtime reads a clock itself.

#include <cstdint>
#include <functional>

#include "node/membership/types.hpp"
#include "node/net/event_loop.hpp"

namespace starling::runtime {

class Clock {
public:
    virtual ~Clock() = default;
    // Monotonic: timers and membership.
    [[nodiscard]] virtual membership::Time now() const = 0;
    // Wall clock, unix seconds: certificate and network-key windows.
    [[nodiscard]] virtual std::uint64_t unix_seconds() const = 0;
};

// The host's clocks.
class SystemClock final : public Clock {
public:
    membership::Time now() const override;
    std::uint64_t unix_seconds() const override;
};

// Wakes the node at a time of its Clock. Implementations call `on_time` on the node's thread,
// never from inside set(); setting again replaces the pending wake-up.
class Alarm {
public:
    virtual ~Alarm() = default;
    virtual void set(membership::Time at, std::function<void()> on_time) = 0;
    virtual void cancel() = 0;
};

// An Alarm on an event loop's timer, at `clock`'s times.
class LoopAlarm final : public Alarm {
public:
    LoopAlarm(net::EventLoop& loop, const Clock& clock) : timer_(loop), clock_(clock) {}
    // Setting the deadline already armed only swaps the callback: a busy node reschedules after
    // every datagram, mostly to the same time, and each re-arm is a system call.
    void set(membership::Time at, std::function<void()> on_time) override;
    void cancel() override;

private:
    net::Timer timer_;
    const Clock& clock_;
    std::function<void()> on_time_;
    bool armed_ = false;
    membership::Time armed_at_{};
};

}  // namespace starling::runtime

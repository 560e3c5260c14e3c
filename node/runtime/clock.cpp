#include "node/runtime/clock.hpp"

#include <algorithm>
#include <utility>

#include "node/time.hpp"

namespace starling::runtime {

membership::Time SystemClock::now() const { return membership::Time(monotonic_microseconds()); }

std::uint64_t SystemClock::unix_seconds() const { return starling::unix_seconds(); }

void LoopAlarm::set(membership::Time at, std::function<void()> on_time) {
    on_time_ = std::move(on_time);
    if (armed_ && at == armed_at_) return;
    armed_ = true;
    armed_at_ = at;
    timer_.expire_after(std::max(membership::Duration::zero(), at - clock_.now()), [this] {
        armed_ = false;
        const std::function<void()> call = on_time_;  // it may set() a new one
        call();
    });
}

void LoopAlarm::cancel() {
    armed_ = false;
    timer_.cancel();
}

}  // namespace starling::runtime

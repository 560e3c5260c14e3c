#include "node/runtime/clock.hpp"

#include <algorithm>
#include <utility>

#include "node/time.hpp"

namespace starling::runtime {

membership::Time SystemClock::now() const { return membership::Time(monotonic_microseconds()); }

std::uint64_t SystemClock::unix_seconds() const { return starling::unix_seconds(); }

void LoopAlarm::set(membership::Time at, std::function<void()> on_time) {
    timer_.expire_after(std::max(membership::Duration::zero(), at - clock_.now()),
                        std::move(on_time));
}

}  // namespace starling::runtime

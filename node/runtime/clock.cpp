#include "node/runtime/clock.hpp"

#include "node/time.hpp"

namespace starling::runtime {

membership::Time SystemClock::now() const { return membership::Time(monotonic_microseconds()); }

std::uint64_t SystemClock::unix_seconds() const { return starling::unix_seconds(); }

}  // namespace starling::runtime

#pragma once
// The one place that reads the real clock; protocol state machines take time as input instead.

namespace starling {

// Seconds on the monotonic clock since an arbitrary start.
double monotonic_seconds() noexcept;

}  // namespace starling

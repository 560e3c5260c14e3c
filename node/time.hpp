#pragma once
// The one place that reads the real clock; protocol state machines take time as input instead.

#include <cstdint>

namespace starling {

// Seconds on the monotonic clock since an arbitrary start.
double monotonic_seconds() noexcept;

// Microseconds on the same monotonic clock (CLOCK_MONOTONIC, shared by every process of a host,
// so logs of several nodes line up).
std::int64_t monotonic_microseconds() noexcept;

// The wall clock in unix seconds: certificate and key-epoch windows only.
std::uint64_t unix_seconds() noexcept;

}  // namespace starling

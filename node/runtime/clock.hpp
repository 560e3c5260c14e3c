#pragma once
// The node's clocks as an input: the real ones in production (node/time.hpp), a hand-moved fake
// in tests, so nothing in node/runtime reads a clock by itself.

#include <cstdint>

#include "node/membership/types.hpp"

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

}  // namespace starling::runtime

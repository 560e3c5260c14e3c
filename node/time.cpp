#include "node/time.hpp"

#include <chrono>

namespace starling {

double monotonic_seconds() noexcept {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

}  // namespace starling

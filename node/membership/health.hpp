#pragma once
// Lifeguard's local health multiplier: a node that misses its own acks and nacks, or hears itself
// suspected, trusts its own judgement less and probes more slowly, so a starved node does not
// accuse healthy ones.

#include <algorithm>
#include <cstdint>

#include "node/membership/limits.hpp"
#include "node/membership/types.hpp"

namespace starling::membership::detail {

class LocalHealth {
public:
    // 1 when healthy, up to limits::kMaxHealthMultiplier.
    std::uint32_t multiplier() const noexcept { return score_ + 1; }
    Duration scale(Duration base) const noexcept { return base * multiplier(); }

    void on_probe_succeeded() noexcept { apply(-1); }
    // `missed_nacks`: ping-reqs sent whose helper never answered, or 1 when none could be sent.
    void on_probe_failed(std::uint32_t missed_nacks) noexcept {
        apply(static_cast<int>(std::min<std::uint32_t>(missed_nacks, limits::kMaxHealthMultiplier)));
    }
    void on_suspected_self() noexcept { apply(1); }

private:
    void apply(int delta) noexcept {
        const int max_score = static_cast<int>(limits::kMaxHealthMultiplier) - 1;
        score_ = static_cast<std::uint32_t>(std::clamp(static_cast<int>(score_) + delta, 0, max_score));
    }
    std::uint32_t score_ = 0;
};

}  // namespace starling::membership::detail

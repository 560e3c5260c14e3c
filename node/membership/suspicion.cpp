// The suspicion timeout formula and the confirmation set.
#include "node/membership/suspicion.hpp"

#include <algorithm>
#include <cmath>

namespace starling::membership::detail {

Duration suspicion_timeout(Duration min, Duration max, std::uint32_t confirmations,
                           std::uint32_t expected) noexcept {
    if (max <= min || expected == 0) return min;
    const double fraction = std::log(static_cast<double>(confirmations) + 1.0) /
                            std::log(static_cast<double>(expected) + 1.0);
    const double span = static_cast<double>((max - min).count());
    const auto shrunk = max - Duration(static_cast<Duration::rep>(std::floor(span * fraction)));
    return std::max(min, shrunk);
}

Suspicion::Suspicion(Time started, const DeviceId& first_accuser, bool refused)
    : started_(started), refused_(refused) {
    accusers_[0] = first_accuser;
    count_ = 1;
}

bool Suspicion::on_accused(const DeviceId& accuser, bool refused) {
    bool news = false;
    if (refused && !refused_) {
        refused_ = true;
        news = true;
    }
    const auto end = accusers_.begin() + count_;
    if (std::find(accusers_.begin(), end, accuser) == end && count_ < accusers_.size()) {
        accusers_[count_++] = accuser;
        news = true;
    }
    return news;
}

}  // namespace starling::membership::detail

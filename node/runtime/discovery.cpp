#include "node/runtime/discovery.hpp"

#include <algorithm>
#include <cstring>

namespace starling::runtime {

BeaconSchedule::BeaconSchedule(const DiscoveryTimers& timers, Time now)
    : timers_(timers), alone_interval_(timers.alone_interval), next_alone_(now) {}

void BeaconSchedule::begin_interval(Time now, model::Rng& rng) {
    const auto half = timers_.joined_interval / 2;
    interval_end_ = now + timers_.joined_interval;
    fire_at_ = now + half + Duration(static_cast<Duration::rep>(
                                rng.below(static_cast<std::uint64_t>(half.count()) + 1)));
    fired_ = false;
    heard_ = 0;
}

BeaconSchedule::Due BeaconSchedule::on_tick(Time now, bool alone, model::Rng& rng) {
    Due due;
    if (alone) {
        if (joined_) {  // every member was lost: look again, from the shortest interval
            joined_ = false;
            alone_interval_ = timers_.alone_interval;
            next_alone_ = now;
        }
        if (now >= next_alone_) {
            due.multicast = due.direct = true;
            announced_ = true;
            next_alone_ = now + alone_interval_;
            alone_interval_ = std::min(alone_interval_ * 2, timers_.alone_max_interval);
        }
        return due;
    }
    if (!joined_) {  // just joined: announce it, unless the LAN heard us seeking already
        joined_ = true;
        begin_interval(now, rng);
        due.multicast = !announced_;
        announced_ = false;
    }
    if (now >= interval_end_) begin_interval(now, rng);
    if (!fired_ && now >= fire_at_) {
        fired_ = true;
        due.multicast = due.multicast || heard_ == 0;
    }
    return due;
}

void BeaconSchedule::on_beacon_heard() { ++heard_; }

void BeaconSchedule::on_answer_heard(Time now) {
    if (!joined_) next_alone_ = std::max(next_alone_, now + timers_.joining_wait);
}

Time BeaconSchedule::next_wakeup() const noexcept {
    if (!joined_) return next_alone_;
    return fired_ ? interval_end_ : std::min(fire_at_, interval_end_);
}

std::uint64_t answerer_key(const crypto::DeviceId& newcomer,
                           const crypto::DeviceId& member) noexcept {
    std::uint64_t a = 0, b = 0;
    std::memcpy(&a, newcomer.data(), sizeof a);
    std::memcpy(&b, member.data(), sizeof b);
    std::uint64_t x = a ^ (b * 0x9E3779B97F4A7C15ull);  // splitmix64's finaliser
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

bool WindowLimit::admit(Time now) {
    if (now >= start_ + window_) {
        start_ = now;
        used_ = 0;
    }
    if (used_ >= limit_) return false;
    ++used_;
    return true;
}

}  // namespace starling::runtime

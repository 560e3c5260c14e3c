#pragma once
// When a node beacons and whom it answers, as a sans-I/O schedule: time in, decisions out.
// While it knows no live member a node beacons at once and then with backoff (multicast, and
// straight to its seeds and last known peers). On joining it announces itself once on the LAN, so
// a few members that have not heard of it yet exchange digests with it (groups that formed apart
// during a mass power-up merge at once). Then the cluster beacons on the LAN about once per
// interval in all (Trickle-style suppression: a node stays quiet in an interval in which it heard
// another member's beacon), so two groups that formed apart still find each other later.

#include <cstdint>

#include "crypto/keys.hpp"
#include "node/membership/types.hpp"
#include "node/model/rng.hpp"

namespace starling::runtime {

using namespace std::chrono_literals;
using membership::Duration;
using membership::Time;

struct DiscoveryTimers {
    // First retry while alone, doubling up to the max: a newcomer whose answers were all lost
    // tries again within a LAN round trip or two, an empty LAN costs a beacon per 8 s.
    Duration alone_interval = 250ms;
    Duration alone_max_interval = 8s;
    Duration joining_wait = 1s;         // seeking beacons pause once a member answered
    Duration joined_interval = 30s;     // one LAN beacon per interval from the whole cluster
    // A newcomer's beacon is answered by this many members (answerer_rank): enough that one
    // answer arrives even at 10% loss, few enough that 100 members do not all answer.
    std::uint32_t answerers = 3;
    std::uint32_t answers_per_second = 20;  // beacons sent back (each ~0.5 KB)
    // Certificate requests answered per second (each at most kMaxWantsPerRequest certificates):
    // a newcomer asks for everyone it hears of, and a LAN powering up asks all at once.
    std::uint32_t certificate_answers_per_second = 100;
};

class BeaconSchedule {
public:
    BeaconSchedule(const DiscoveryTimers& timers, Time now);

    struct Due {
        bool multicast = false;  // a beacon to the LAN group
        bool direct = false;     // beacons to seeds and last known peers
    };
    // `alone`: no live member is known. Returns what is due at `now`.
    [[nodiscard]] Due on_tick(Time now, bool alone, model::Rng& rng);
    // A beacon of another member of this cluster was heard: this interval's may be skipped.
    void on_beacon_heard();
    // While alone, a member answered: a join through it is under way, so the next seeking
    // beacon waits `joining_wait` (a loaded LAN answers late; repeating costs every member a
    // signature check).
    void on_answer_heard(Time now);
    [[nodiscard]] Time next_wakeup() const noexcept;

private:
    void begin_interval(Time now, model::Rng& rng);

    DiscoveryTimers timers_;
    bool joined_ = false;
    bool announced_ = false;  // a seeking beacon went to the LAN: no announcement on joining
    Duration alone_interval_;
    Time next_alone_;
    Time interval_end_{};
    Time fire_at_{};
    bool fired_ = false;
    std::uint32_t heard_ = 0;
};

// Which members answer a newcomer's LAN beacon: those with the `answerers` lowest keys for it
// among the live members, a rendezvous hash every member computes alike from the ids alone, so
// about that many answer whatever the cluster's size (not a secret: ids are random already).
[[nodiscard]] std::uint64_t answerer_key(const crypto::DeviceId& newcomer,
                                         const crypto::DeviceId& member) noexcept;

// At most `per_window` admissions in each window of `window`: answers to beacons and requests.
class WindowLimit {
public:
    WindowLimit(std::uint32_t per_window, Duration window) : limit_(per_window), window_(window) {}
    [[nodiscard]] bool admit(Time now);

private:
    std::uint32_t limit_;
    Duration window_;
    Time start_{};
    std::uint32_t used_ = 0;
};

}  // namespace starling::runtime

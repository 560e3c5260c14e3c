// The packet simulator.
#include "tools/sim/network.hpp"

#include <algorithm>

namespace starling::sim {

PacketSimulator::PacketSimulator(const LinkSettings& link, std::uint32_t nodes, std::uint64_t seed)
    : link_(link), rng_(seed), group_(nodes, 0) {}

Duration PacketSimulator::latency() {
    const auto span = static_cast<std::uint64_t>((link_.latency_max - link_.latency_min).count());
    return link_.latency_min + Duration(static_cast<Duration::rep>(rng_.below(span + 1)));
}

void PacketSimulator::route(std::uint32_t from, std::uint32_t to, std::vector<Duration>& arrivals) {
    arrivals.clear();
    if (!connected(from, to)) return;
    // Draw every decision even when an earlier one settles it, so the random stream (and so
    // the replay) does not depend on the settings of other links.
    const bool lost = rng_.uniform() < link_.loss;
    const bool twice = rng_.uniform() < link_.duplicate;
    const bool held = rng_.uniform() < link_.reorder;
    const auto extra_span = static_cast<std::uint64_t>(link_.reorder_max.count());
    const Duration extra = Duration(static_cast<Duration::rep>(rng_.below(extra_span + 1)));
    const Duration first = latency();
    const Duration second = latency();
    if (lost) return;
    arrivals.push_back(first + (held ? extra : Duration{0}));
    if (twice) arrivals.push_back(second);
}

void PacketSimulator::partition(const std::vector<std::vector<std::uint32_t>>& groups) {
    // Nodes named in no group form one more group of their own.
    const auto rest = static_cast<std::uint32_t>(groups.size() + 1);
    std::fill(group_.begin(), group_.end(), rest);
    for (std::size_t g = 0; g < groups.size(); ++g)
        for (const std::uint32_t node : groups[g]) group_[node] = static_cast<std::uint32_t>(g + 1);
}

void PacketSimulator::heal() { std::fill(group_.begin(), group_.end(), 0); }

}  // namespace starling::sim

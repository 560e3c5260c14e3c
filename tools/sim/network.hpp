#pragma once
// The seeded packet simulator: decides for every datagram whether it is lost, duplicated or
// delayed, and which nodes a partition keeps apart. One Rng, so one seed replays a run exactly
// (the shape of tigerbeetle's packet_simulator).

#include <cstdint>
#include <vector>

#include "node/model/rng.hpp"
#include "tools/sim/scenario.hpp"

namespace starling::sim {

class PacketSimulator {
public:
    PacketSimulator(const LinkSettings& link, std::uint32_t nodes, std::uint64_t seed);

    // The delays after which copies of one datagram from `from` to `to` arrive: none (lost or
    // partitioned), one, or two (duplicated). Reordering comes from the random delays.
    void route(std::uint32_t from, std::uint32_t to, std::vector<Duration>& arrivals);
    // One-way delay of anything else on the wire (an ICMP reply).
    Duration latency();

    void partition(const std::vector<std::vector<std::uint32_t>>& groups);
    void heal();
    bool connected(std::uint32_t a, std::uint32_t b) const { return group_[a] == group_[b]; }
    void set_loss(double loss) { link_.loss = loss; }

private:
    LinkSettings link_;
    model::Rng rng_;
    std::vector<std::uint32_t> group_;  // partition group of each node; all 0 when healed
};

}  // namespace starling::sim

// Whole nodes (node/runtime: sealed datagrams, discovery, membership) over the simulator's packet
// network in virtual time: the same code as on a LAN, under loss, duplication, reordering and
// partitions drawn from one seed. Outcomes are asserted, never timings of the real clock.

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "tests/node/node_harness.hpp"

using namespace starling;
using namespace starling::runtime::testing;

namespace {

sim::LinkSettings rough_link(double loss) {
    sim::LinkSettings link;
    link.latency_min = 200us;
    link.latency_max = 2ms;
    link.loss = loss;
    link.duplicate = 0.05;
    link.reorder = 0.2;
    link.reorder_max = 20ms;
    return link;
}

void start_all(NodeCluster& c, std::size_t n) {
    c.start(0);
    for (std::size_t i = 1; i < n; ++i) c.start(i, {0});
}

std::vector<net::Ipv4Endpoint> addresses(NodeCluster& c, std::initializer_list<std::size_t> nodes) {
    std::vector<net::Ipv4Endpoint> out;
    for (std::size_t i : nodes) out.push_back(c.slot(i).address);
    return out;
}

}  // namespace

TEST_CASE("at 30% loss with duplicates and reordering nodes join, a kill is found, nobody else fails") {
    constexpr std::size_t kNodes = 6;
    NodeCluster c(kNodes, false, 0, rough_link(0.30), 11);
    start_all(c, kNodes);
    c.run_for(30s);
    CHECK(c.all_see_all_alive());
    c.crash(kNodes - 1);
    c.run_for(40s);
    for (std::size_t i = 0; i + 1 < kNodes; ++i) {
        CHECK(c.logged(i, "peer failed n006") == 1);
        CHECK(c.logged(i, "peer failed") == 1);  // n006 only: no false failure under loss
    }
    CHECK(c.simulated->in_flight() < 1000);
}

TEST_CASE("LAN beacons find each other across a lossy simulated segment") {
    constexpr std::size_t kNodes = 5;
    NodeCluster c(kNodes, true, 0, rough_link(0.10), 5);
    for (std::size_t i = 0; i < kNodes; ++i) c.start(i);  // no seeds: the beacon group only
    c.run_for(20s);
    CHECK(c.all_see_all_alive());
}

TEST_CASE("a partition fails each side for the other; after the heal everyone is back") {
    constexpr std::size_t kNodes = 6;
    NodeCluster c(kNodes, false, 0, rough_link(0.02), 3);
    start_all(c, kNodes);
    c.run_for(15s);
    REQUIRE(c.all_see_all_alive());
    c.simulated->partition({addresses(c, {0, 1, 2}), addresses(c, {3, 4, 5})});
    c.run_for(60s);
    for (std::size_t i : {0, 1, 2}) CHECK(c.logged(i, "peer failed n005") == 1);
    for (std::size_t i : {3, 4, 5}) CHECK(c.logged(i, "peer failed n001") == 1);
    CHECK_FALSE(c.all_see_all_alive());
    c.simulated->heal();
    c.run_for(90s);
    CHECK(c.all_see_all_alive());
}

TEST_CASE("one seed replays the same run; another seed runs differently") {
    const NodeCluster identities(4, false);
    auto run = [&identities](std::uint64_t seed) {
        NodeCluster c(4, false, 0, rough_link(0.20), seed);
        c.adopt_identities(identities);
        start_all(c, 4);
        c.run_for(10s);
        c.crash(3);
        c.run_for(20s);
        std::vector<std::string> logs;
        for (std::size_t i = 0; i < 3; ++i)
            logs.insert(logs.end(), c.slot(i).log.begin(), c.slot(i).log.end());
        return logs;
    };
    const auto first = run(21);
    CHECK(first == run(21));
    CHECK(first != run(22));
}

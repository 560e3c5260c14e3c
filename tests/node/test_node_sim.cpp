// Whole nodes (node/runtime: sealed datagrams, discovery, membership) over the simulator's packet
// network in virtual time: the same code as on a LAN, under loss, duplication, reordering and
// partitions drawn from one seed. Outcomes are asserted, never timings of the real clock.

#include <doctest/doctest.h>

#include <filesystem>
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

std::vector<net::Ipv4Endpoint> addresses(NodeCluster& c, std::initializer_list<std::size_t> nodes) {
    std::vector<net::Ipv4Endpoint> out;
    for (std::size_t i : nodes) out.push_back(c.slot(i).address);
    return out;
}

}  // namespace

TEST_CASE("at 30% loss with duplicates and reordering nodes join, a kill is found, nobody else fails") {
    constexpr std::size_t kNodes = 6;
    NodeCluster c(kNodes, false, 0, rough_link(0.30), 11);
    c.start_all(kNodes);
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
    c.start_all(kNodes);
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

TEST_CASE("a revocation given to one node reaches every node, which drop and refuse the device") {
    constexpr std::size_t kNodes = 7;  // n001..n006 run first, n007 joins after the revocation
    NodeCluster c(kNodes, false, 0, rough_link(0.05), 9);
    for (std::size_t i = 0; i < 6; ++i) c.start(i, i == 0 ? std::vector<std::size_t>{} : std::vector<std::size_t>{0});
    c.run_for(15s);
    REQUIRE(c.all_see_all_alive());
    Result<crypto::Revocation> revocation = c.secrets().revoke("n006", kUnixStart);
    REQUIRE(revocation.ok());
    const std::vector<std::uint8_t> bytes = crypto::encode_revocation(*revocation);
    Result<bool> added = c.slot(0).node->revoke(bytes);
    REQUIRE(added.ok());
    CHECK(*added);
    CHECK(*c.slot(0).node->revoke(bytes) == false);  // once
    std::vector<std::uint8_t> forged = bytes;
    forged[forged.size() - 3] ^= 1;  // inside the owner's signature
    CHECK_FALSE(c.slot(1).node->revoke(forged).ok());
    c.run_for(5s);
    c.start(6, {1});
    c.run_for(90s);
    const std::string file = crypto::to_hex(revocation->device) + ".revoked";
    for (std::size_t i : {0, 1, 2, 3, 4, 6}) {
        CAPTURE(i);
        CHECK(c.logged(i, "revocation accepted for n006") == 1);
        CHECK(c.logged(i, "peer up n006") == (i == 6 ? 0 : 1));  // never back
        CHECK(c.stats(i).find("revocations 1\n") != std::string::npos);
        CHECK(c.slot(i).node->is_revoked(revocation->device));
        CHECK(std::filesystem::exists(c.state_dir(i) / file));  // kept for the next start
        const std::string view = c.members(i);
        const std::size_t row = view.find("\"name\": \"n006\"");
        if (row != std::string::npos) CHECK(view.find("\"state\": \"dead\"", row) == view.find("\"state\": ", row));
    }
    for (std::size_t i : {0, 1, 2, 3, 4}) CHECK(c.logged(i, "peer revoked n006") == 1);
    CHECK(c.stats(1).find("revocations_refused 1\n") != std::string::npos);  // the forged one
    // n006 still runs and talks: every datagram of its is refused and counted.
    std::size_t refused = 0;
    for (std::size_t i : {0, 1, 2, 3, 4}) {
        const std::string s = c.stats(i);
        const std::size_t at = s.find("revoked_refused ");
        REQUIRE(at != std::string::npos);
        refused += std::stoull(s.substr(at + 16));
    }
    CHECK(refused > 0);
}

TEST_CASE("one seed replays the same run; another seed runs differently") {
    const NodeCluster identities(4, false);
    auto run = [&identities](std::uint64_t seed) {
        NodeCluster c(4, false, 0, rough_link(0.20), seed);
        c.adopt_identities(identities);
        c.start_all(4);
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

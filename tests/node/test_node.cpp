// Whole nodes (node/runtime) over the fake network and a hand-moved clock: joining through
// seeds and LAN beacons, certificates fetched on demand, kill -9, leave, restart and revocation.
// Outcomes are asserted, never timings of the real clock.

#include <doctest/doctest.h>

#include "crypto/cluster.hpp"
#include "tests/node/node_harness.hpp"

using namespace starling;
using namespace starling::runtime::testing;

namespace {

// A counter from the node's stats text ("name value" lines); 0 when absent.
std::size_t count_stat(const std::string& stats, const std::string& name) {
    const std::string key = "\n" + name + " ";
    const std::size_t at = ("\n" + stats).find(key);
    if (at == std::string::npos) return 0;
    return std::stoul(stats.substr(at + key.size() - 1));
}

}  // namespace

TEST_CASE("nodes join through a seed and log each peer coming up once") {
    NodeCluster c(3, false);
    c.start_all(3);
    c.run_for(5s);
    CHECK(c.all_see_all_alive());
    for (std::size_t i = 0; i < 3; ++i)
        for (const char* name : {"n001", "n002", "n003"})
            if (c.slot(i).name != name) CHECK(c.logged(i, std::string("peer up ") + name) == 1);
}

TEST_CASE("a member heard of only through gossip is verified once its certificate arrives") {
    NodeCluster c(4, false);
    c.start(0);
    c.start(1, {0});
    c.run_for(3s);
    c.start(2, {1});  // knows nobody's certificate but n002's
    c.start(3, {2});
    c.run_for(5s);
    CHECK(c.all_see_all_alive());
    CHECK(c.stats(3).find("known_certificates 3\n") != std::string::npos);
}

TEST_CASE("a killed node is logged failed by every survivor, a leaving one as left") {
    NodeCluster c(4, false);
    c.start_all(4);
    c.run_for(5s);
    REQUIRE(c.all_see_all_alive());
    c.crash(1);
    c.run_for(15s);
    for (std::size_t i : {0, 2, 3}) CHECK(c.logged(i, "peer failed n002") == 1);
    c.leave(3);
    c.run_for(5s);
    CHECK(c.slot(3).node == nullptr);  // its leave spread and it exited
    for (std::size_t i : {0, 2}) {
        CHECK(c.logged(i, "peer left n004") == 1);
        CHECK(c.logged(i, "peer failed n004") == 0);
    }
}

TEST_CASE("a restarted node comes back under a higher incarnation") {
    NodeCluster c(3, false);
    c.start_all(3);
    c.run_for(5s);
    c.crash(2);
    c.run_for(15s);
    REQUIRE(c.logged(0, "peer failed n003") == 1);
    c.start(2);  // no seed: the last known peers in its state directory suffice
    c.run_for(5s);
    CHECK(c.all_see_all_alive());
    CHECK(c.logged(0, "peer up n003") == 2);
    CHECK(c.members(0).find("\"name\": \"n003\"") != std::string::npos);
    CHECK(c.logged(2, "node up n003") == 2);
    CHECK(c.slot(2).log.back().find("incarnation") != std::string::npos);
    CHECK(c.members(0).find("\"incarnation\": 2") != std::string::npos);
}

TEST_CASE("LAN beacons bring a cluster together without seeds; a neighbour cluster stays out") {
    NodeCluster c(4, true, 1);
    for (std::size_t i = 0; i < 5; ++i) c.start(i);
    c.run_for(5s);
    CHECK(c.all_see_all_alive());
    for (std::size_t i = 0; i < 4; ++i) CHECK(c.logged(i, "peer up x005") == 0);
    CHECK(c.logged(4, "peer up") == 0);
    CHECK(c.stats(0).find("drop_foreign_cluster 0\n") == std::string::npos);
}

TEST_CASE("a LAN newcomer is known from its first beacon and gets every certificate unasked") {
    NodeCluster c(6, true);
    for (std::size_t i = 0; i < 5; ++i) c.start(i);
    c.run_for(5s);
    REQUIRE(c.all_see_all_alive());
    std::size_t pushed_before = 0;
    for (std::size_t i = 0; i < 5; ++i)
        pushed_before += count_stat(c.stats(i), "certificates_pushed");
    c.start(5);
    c.run_for(1s);
    CHECK(c.all_see_all_alive());
    // The members heard of it from its beacon's record, the joiner had its answerer's
    // certificates pushed ahead of the join answer: it never had to ask for one.
    CHECK(count_stat(c.stats(5), "certificate_requests") == 0);
    std::size_t pushed = 0;
    for (std::size_t i = 0; i < 5; ++i) pushed += count_stat(c.stats(i), "certificates_pushed");
    CHECK(pushed > pushed_before);
    for (std::size_t i = 0; i < 5; ++i) CHECK(c.logged(i, "peer up n006") == 1);
}

TEST_CASE("a revocation dropped in the state directory keeps that device out") {
    NodeCluster c(3, false);
    Result<crypto::Revocation> revoked = c.secrets().revoke("n003", kUnixStart);
    REQUIRE(revoked.ok());
    for (std::size_t i : {0, 1}) {
        std::filesystem::create_directories(c.state_dir(i));
        REQUIRE(crypto::save_revocation(*revoked, c.state_dir(i) / "n003.revoked").ok());
    }
    c.start(0);
    c.start(1, {0});
    c.start(2, {0, 1});
    c.run_for(5s);
    CHECK(c.logged(0, "peer up n002") == 1);
    for (std::size_t i : {0, 1}) CHECK(c.logged(i, "peer up n003") == 0);
    CHECK(c.logged(2, "peer up") == 0);
}

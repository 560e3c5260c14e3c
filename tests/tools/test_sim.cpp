// Simulated scenarios on the real membership core: outcomes (converged, detected, no false
// failures), never wall-clock timings. Small clusters and short virtual runs, so they stay fast
// under the sanitizers; each seed replays exactly.
#include <doctest/doctest.h>

#include <string>

#include "node/membership/membership.hpp"
#include "tools/sim/simulation.hpp"

using namespace starling;
using namespace std::chrono_literals;

namespace {

sim::Report run(const std::string& text, std::uint64_t seed = 1) {
    auto scenario = sim::parse_scenario(text, "test");
    REQUIRE_MESSAGE(scenario.ok(), scenario.error().message);
    sim::Report report = sim::simulate(*scenario, seed);
    for (const auto& e : report.expectations)
        CHECK_MESSAGE(e.passed, "seed " << seed << ", line " << e.line << ": expect " << e.text
                                        << ": " << e.detail);
    return report;
}

const std::string kCluster20 =
    "nodes 20\n"
    "at 0s start 0\n"
    "at 0.2s start 1-19 over 1s\n";

}  // namespace

TEST_CASE("a partition fails each side for the other, and the heal brings everyone back") {
    const sim::Report r = run(kCluster20 +
                              "at 10s partition 0-9 | 10-19\n"
                              "at 70s heal\n"
                              "run 110s\n"
                              "expect converged by 10s\n"
                              "expect false-failures 0\n");
    REQUIRE(r.convergences.size() >= 2);
    CHECK(r.convergences.back().cause == "heal");
    // Each side failed every node of the other (Lifeguard slows the probing of nodes whose
    // probes keep failing, so this takes tens of seconds, not a few).
    CHECK(r.peer_events[static_cast<int>(membership::PeerEventKind::failed)] >= 2 * 10 * 10);
}

TEST_CASE("stalling, slow nodes under loss are never failed") {
    run(kCluster20 +
        "loss 0.05\n"
        "at 5s slow 3,7 300ms\n"
        "at 8s pause 3 for 4s\n"
        "at 15s pause 7 for 5s\n"
        "at 22s pause 3 for 3s\n"
        "at 30s pause 3 for 5s\n"
        "at 31s pause 7 for 4s\n"
        "at 40s slow 3,7 0ms\n"
        "run 60s\n"
        "expect converged by 5s\n"
        "expect false-failures 0\n");
}

TEST_CASE("an 8 s pause at 10% loss is survived, a kill is found") {
    run(kCluster20 +
        "loss 0.10\n"
        "at 10s pause 4 for 8s\n"
        "at 30s kill 9\n"
        "run 60s\n"
        "expect detected 9 by 8s\n"
        "expect false-failures 0\n");
}

TEST_CASE("a node restarted under the same id comes back, before or after it was failed") {
    const sim::Report r = run(kCluster20 +
                              "at 10s kill 5\n"
                              "at 20s restart 5\n"
                              "at 30s kill 6\n"
                              "at 30.5s restart 6\n"
                              "run 50s\n"
                              "expect converged by 2s\n"
                              "expect detected 5 by 6s\n"
                              "expect false-failures 0\n");
    CHECK(r.convergences.back().cause == "restart");
}

TEST_CASE("a new address, live or after a restart, wins everywhere") {
    const sim::Report r = run(kCluster20 +
                              "at 10s move 4\n"
                              "at 20s restart 5 moved\n"
                              "run 40s\n"
                              "expect converged by 2s\n"
                              "expect false-failures 0\n");
    CHECK(r.peer_events[static_cast<int>(membership::PeerEventKind::address_changed)] >= 2 * 19);
}

TEST_CASE("at 30% loss the cluster converges, finds a killed node, and fails nobody else") {
    run("nodes 30\n"
        "loss 0.30\n"
        "at 0s start 0\n"
        "at 0.2s start 1-29 over 1s\n"
        "at 60s kill 3\n"
        "run 120s\n"
        "expect converged by 30s\n"
        "expect detected 3 by 15s\n"
        "expect false-failures 0\n");
}

TEST_CASE("a seed replays exactly; another seed runs differently") {
    const std::string text = kCluster20 + "loss 0.1\nat 10s crash 2\nrun 30s\n";
    const sim::Report a = run(text, 7);
    const sim::Report b = run(text, 7);
    const sim::Report c = run(text, 8);
    CHECK(a.events == b.events);
    CHECK(a.traffic.bytes == b.traffic.bytes);
    REQUIRE(a.detections.size() == 1);
    CHECK(a.detections[0].all == b.detections[0].all);
    CHECK(a.traffic.bytes != c.traffic.bytes);
}

TEST_CASE("scenario errors name the line") {
    const auto bad = [](const std::string& text) {
        const auto s = sim::parse_scenario(text, "s.txt");
        REQUIRE_FALSE(s.ok());
        return s.error().message;
    };
    CHECK(bad("nodes 10\nrun 5s\nat 1s crsh 3\n").starts_with("s.txt:3: unknown event 'crsh'"));
    CHECK(bad("nodes 10\nat 1s crash 10\nrun 5s\n").starts_with("s.txt:2:"));
    CHECK(bad("nodes 10\nloss 1.5\nrun 5s\n").starts_with("s.txt:2:"));
    CHECK(bad("at 1s start 0\n").starts_with("s.txt:1:"));  // nodes first
    CHECK(bad("nodes 10\nrun 5s\nat 9s heal\n").starts_with("s.txt:3: event after the end"));
    CHECK(bad("nodes 10\nrun 5s\ntimer probe_interval fast\n").starts_with("s.txt:3:"));
    CHECK(bad("nodes 10\n").find("no 'run D' line") != std::string::npos);
}

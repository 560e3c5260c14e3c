#pragma once
// A whole cluster in one process: N Membership instances on virtual time, a seeded packet
// simulator between them, and the scenario's faults applied on schedule. Everything random comes
// from one seed, so a run (and a failure) replays exactly. Reads no clock: the caller times it.

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "tools/sim/scenario.hpp"

namespace starling::sim {

// One crash or kill, and how long until every survivor held the node failed.
struct Detection {
    std::uint32_t node = 0;
    Time at{};
    bool refused = false;                 // kill: its host answered "unreachable"
    std::optional<Duration> first;        // until the first survivor reported it failed
    std::optional<Duration> all;          // until every running survivor held it failed
    bool restarted_before_all = false;    // it came back before everyone had noticed
};

// One disturbance (start, restart, move, heal, leave) and how long until every running node
// saw every other running node alive at its current address.
struct Convergence {
    std::string cause;
    Time at{};
    std::optional<Duration> after;
};

struct FalseFailure {
    Time at{};
    std::uint32_t observer = 0;
    std::uint32_t subject = 0;
};

struct Traffic {
    std::uint64_t datagrams = 0;
    std::uint64_t bytes = 0;     // sealed sizes: message + header + MAC (+ signature to_cluster)
    double node_seconds = 0.0;   // running time summed over nodes
    double bytes_per_node_second() const { return node_seconds > 0 ? bytes / node_seconds : 0.0; }
    double datagrams_per_node_second() const {
        return node_seconds > 0 ? datagrams / node_seconds : 0.0;
    }
};

struct ExpectationResult {
    int line = 0;
    std::string text;
    bool passed = false;
    std::string detail;
};

struct Report {
    std::string scenario;
    std::uint64_t seed = 0;
    std::uint32_t nodes = 0;
    Duration virtual_time{};
    std::uint64_t events = 0;
    std::vector<Convergence> convergences;
    std::vector<Detection> detections;
    std::uint64_t false_failure_count = 0;
    std::vector<FalseFailure> false_failures;  // the first few, for the log
    std::uint64_t peer_events[6] = {};         // by PeerEventKind
    Traffic traffic;
    Traffic window;  // the scenario's window, when it has one
    bool has_window = false;
    std::uint64_t dropped_inputs = 0;  // malformed, unverifiable, ... (all counters summed)
    std::vector<ExpectationResult> expectations;

    bool passed() const;
};

// Prints the figures and each expectation's verdict.
void print_report(const Report& report, double wall_seconds, std::FILE* out);

// `trace`: when set, every peer event is printed there as it happens.
[[nodiscard]] Report simulate(const Scenario& scenario, std::uint64_t seed,
                              std::FILE* trace = nullptr);

}  // namespace starling::sim

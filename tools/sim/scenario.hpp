#pragma once
// A simulation scenario: the cluster, the network's behaviour, the faults at given virtual times
// and the outcomes expected, parsed from the line-based text format of tools/sim/README.md.
// Errors name the file and line.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "node/membership/config.hpp"
#include "protocol/result.hpp"

namespace starling::sim {

using membership::Duration;
using membership::Time;

// How datagrams travel between two connected nodes.
struct LinkSettings {
    Duration latency_min = std::chrono::microseconds(100);  // one way, uniform in [min, max]
    Duration latency_max = std::chrono::microseconds(500);
    double loss = 0.0;       // probability a datagram is lost
    double duplicate = 0.0;  // probability it arrives twice
    double reorder = 0.0;    // probability it is held back by up to reorder_max more
    Duration reorder_max = std::chrono::milliseconds(5);
};

enum class StepKind {
    start,      // nodes begin, joining via the seeds; spread evenly over `span`
    crash,      // silent: a power cut, datagrams to it vanish
    kill,       // the process dies, its host answers "unreachable" (kill -9 on a LAN)
    restart,    // same id, persisted incarnation + 1; `moved`: at a new address
    move,       // the running node's address changes
    pause,      // stops processing for `span` (SIGSTOP): datagrams queue, timers wait
    slow,       // every datagram it receives waits up to `span` more (0 ends it)
    leave,      // graceful leave, then the process exits a second later
    partition,  // `groups` cannot reach each other; nodes in no group form one more
    heal,       // one network again
    loss,       // the loss probability becomes `value`
};

struct Step {
    Time at{};
    StepKind kind = StepKind::start;
    std::vector<std::uint32_t> nodes;
    std::vector<std::vector<std::uint32_t>> groups;  // partition
    Duration span{};                                // start: over; pause: for; slow: delay
    double value = 0.0;                             // loss
    bool moved = false;                             // restart
    int line = 0;
};

enum class ExpectKind {
    converged,       // every convergence (after start, restart, move, heal) took <= within
    detected,        // every crash/kill of `node` (or of any node) was seen by all <= within
    false_failures,  // at most `count` failures reported about running, reachable nodes
};

struct Expectation {
    ExpectKind kind = ExpectKind::converged;
    bool any_node = false;  // detected *
    std::uint32_t node = 0;
    Duration within{};
    std::uint64_t count = 0;
    int line = 0;
    std::string text;  // the line as written, for the report
};

struct Scenario {
    std::string name;
    std::uint32_t nodes = 0;
    std::vector<std::uint32_t> seeds{0};
    std::uint64_t seed = 1;
    LinkSettings link;
    membership::Timers timers;
    Duration run{};
    bool has_window = false;
    Time window_begin{};
    Time window_end{};
    std::vector<Step> steps;  // sorted by time, stable
    std::vector<Expectation> expectations;
};

[[nodiscard]] Result<Scenario> parse_scenario(std::string_view text, std::string_view name);
[[nodiscard]] Result<Scenario> load_scenario(const std::string& path);

// "timer NAME VALUE" and --set NAME=VALUE: one protocol timer or count.
[[nodiscard]] Status set_timer(membership::Timers& timers, std::string_view name,
                               std::string_view value);

// "1.5s", "500ms", "250us", "2min".
[[nodiscard]] bool parse_duration(std::string_view text, Duration& out);

}  // namespace starling::sim

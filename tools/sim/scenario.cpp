// The scenario parser: one command per line, '#' starts a comment.
#include "tools/sim/scenario.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <sstream>

#include "node/membership/limits.hpp"

namespace starling::sim {

namespace {

// Nodes one scenario may have: what one Membership may track.
constexpr std::uint32_t kMaxSimNodes = static_cast<std::uint32_t>(membership::limits::kMaxMembers);
// Bytes of a scenario file: they are hand-written.
constexpr std::size_t kMaxScenarioBytes = std::size_t{1} << 20;

std::vector<std::string_view> split_words(std::string_view line) {
    std::vector<std::string_view> words;
    std::size_t i = 0;
    while (i < line.size()) {
        while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) ++i;
        std::size_t j = i;
        while (j < line.size() && line[j] != ' ' && line[j] != '\t' && line[j] != '\r') ++j;
        if (j > i) words.push_back(line.substr(i, j - i));
        i = j;
    }
    return words;
}

bool parse_number(std::string_view text, double& out) {
    if (text.empty()) return false;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc{} && end == text.data() + text.size() && std::isfinite(out);
}

bool parse_unsigned(std::string_view text, std::uint64_t& out) {
    if (text.empty()) return false;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc{} && end == text.data() + text.size();
}

bool parse_probability(std::string_view text, double& out) {
    return parse_number(text, out) && out >= 0.0 && out <= 1.0;
}

// The parser's state: the scenario so far, and the line being read.
struct Parser {
    Scenario scenario;
    std::string_view file;
    int line = 0;

    Error fail(const std::string& what) const {
        return make_error(ErrorCode::malformed,
                          std::string(file) + ":" + std::to_string(line) + ": " + what);
    }

    // "0-49", "17", "0-9,20-29".
    bool nodes(std::string_view text, std::vector<std::uint32_t>& out, std::string& why) const {
        if (scenario.nodes == 0) {
            why = "'nodes N' must come before any node number";
            return false;
        }
        while (!text.empty()) {
            const std::size_t comma = text.find(',');
            const std::string_view part = text.substr(0, comma);
            text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
            const std::size_t dash = part.find('-');
            std::uint64_t first = 0, last = 0;
            if (!parse_unsigned(part.substr(0, dash), first) ||
                !parse_unsigned(dash == std::string_view::npos ? part.substr(0, dash)
                                                               : part.substr(dash + 1),
                                last) ||
                last < first) {
                why = "bad node list '" + std::string(part) + "' (use 7, 0-49 or 0-9,20-29)";
                return false;
            }
            if (last >= scenario.nodes) {
                why = "node " + std::to_string(last) + " does not exist (nodes 0-" +
                      std::to_string(scenario.nodes - 1) + ")";
                return false;
            }
            for (std::uint64_t n = first; n <= last; ++n) out.push_back(static_cast<std::uint32_t>(n));
        }
        return !out.empty();
    }

    Status global(const std::vector<std::string_view>& w);
    Status at(const std::vector<std::string_view>& w);
    Status expect(const std::vector<std::string_view>& w);
};

Status Parser::global(const std::vector<std::string_view>& w) {
    const std::string_view cmd = w[0];
    auto want = [&](std::size_t n) { return w.size() == n; };
    std::uint64_t u = 0;
    if (cmd == "nodes") {
        if (!want(2) || !parse_unsigned(w[1], u) || u < 1 || u > kMaxSimNodes)
            return fail("'nodes N' needs 1 <= N <= " + std::to_string(kMaxSimNodes));
        scenario.nodes = static_cast<std::uint32_t>(u);
    } else if (cmd == "seeds") {
        std::string why;
        scenario.seeds.clear();
        if (!want(2) || !nodes(w[1], scenario.seeds, why)) return fail("'seeds LIST': " + why);
    } else if (cmd == "seed") {
        if (!want(2) || !parse_unsigned(w[1], scenario.seed)) return fail("'seed S' needs a number");
    } else if (cmd == "latency") {
        LinkSettings& l = scenario.link;
        if ((w.size() != 2 && w.size() != 3) || !parse_duration(w[1], l.latency_min) ||
            !parse_duration(w.back(), l.latency_max) || l.latency_max < l.latency_min)
            return fail("'latency MIN [MAX]' needs durations, MIN <= MAX");
    } else if (cmd == "loss") {
        if (!want(2) || !parse_probability(w[1], scenario.link.loss))
            return fail("'loss P' needs 0 <= P <= 1");
    } else if (cmd == "duplicate") {
        if (!want(2) || !parse_probability(w[1], scenario.link.duplicate))
            return fail("'duplicate P' needs 0 <= P <= 1");
    } else if (cmd == "reorder") {
        if (!want(3) || !parse_probability(w[1], scenario.link.reorder) ||
            !parse_duration(w[2], scenario.link.reorder_max))
            return fail("'reorder P MAX' needs a probability and a duration");
    } else if (cmd == "timer") {
        if (!want(3)) return fail("'timer NAME VALUE'");
        if (auto set = set_timer(scenario.timers, w[1], w[2]); !set) return fail(set.error().message);
    } else if (cmd == "window") {
        if (!want(3) || !parse_duration(w[1], scenario.window_begin) ||
            !parse_duration(w[2], scenario.window_end) || scenario.window_end <= scenario.window_begin)
            return fail("'window FROM TO' needs durations, FROM < TO");
        scenario.has_window = true;
    } else if (cmd == "run") {
        if (!want(2) || !parse_duration(w[1], scenario.run) || scenario.run <= Duration{0})
            return fail("'run D' needs a positive duration");
    } else {
        return fail("unknown command '" + std::string(cmd) + "'");
    }
    return Ok{};
}

Status Parser::at(const std::vector<std::string_view>& w) {
    Step step;
    step.line = line;
    if (w.size() < 3 || !parse_duration(w[1], step.at)) return fail("'at TIME EVENT ...'");
    const std::string_view op = w[2];
    std::string why;
    const auto node_list = [&](std::size_t index) {
        return w.size() > index && nodes(w[index], step.nodes, why);
    };
    if (op == "start") {
        step.kind = StepKind::start;
        if (!node_list(3) || !(w.size() == 4 || (w.size() == 6 && w[4] == "over" &&
                                                 parse_duration(w[5], step.span))))
            return fail("'at T start LIST [over D]' " + why);
    } else if (op == "crash" || op == "kill" || op == "move" || op == "leave") {
        step.kind = op == "crash" ? StepKind::crash
                     : op == "kill" ? StepKind::kill
                     : op == "move" ? StepKind::move
                                    : StepKind::leave;
        if (!node_list(3) || w.size() != 4) return fail("'at T " + std::string(op) + " LIST' " + why);
    } else if (op == "restart") {
        step.kind = StepKind::restart;
        step.moved = w.size() == 5 && w[4] == "moved";
        if (!node_list(3) || (w.size() != 4 && !step.moved))
            return fail("'at T restart LIST [moved]' " + why);
    } else if (op == "pause") {
        step.kind = StepKind::pause;
        if (!node_list(3) || w.size() != 6 || w[4] != "for" || !parse_duration(w[5], step.span))
            return fail("'at T pause LIST for D' " + why);
    } else if (op == "slow") {
        step.kind = StepKind::slow;
        if (!node_list(3) || w.size() != 5 || !parse_duration(w[4], step.span))
            return fail("'at T slow LIST DELAY' " + why);
    } else if (op == "partition") {
        step.kind = StepKind::partition;
        step.groups.emplace_back();
        for (std::size_t i = 3; i < w.size(); ++i) {
            if (w[i] == "|") {
                step.groups.emplace_back();
            } else if (!nodes(w[i], step.groups.back(), why)) {
                return fail("'at T partition LIST | LIST ...' " + why);
            }
        }
        if (step.groups.size() < 2 ||
            std::any_of(step.groups.begin(), step.groups.end(), [](auto& g) { return g.empty(); }))
            return fail("'at T partition LIST | LIST ...' needs two or more non-empty groups");
    } else if (op == "heal") {
        step.kind = StepKind::heal;
        if (w.size() != 3) return fail("'at T heal' takes nothing more");
    } else if (op == "loss") {
        step.kind = StepKind::loss;
        if (w.size() != 4 || !parse_probability(w[3], step.value)) return fail("'at T loss P'");
    } else {
        return fail("unknown event '" + std::string(op) + "'");
    }
    scenario.steps.push_back(std::move(step));
    return Ok{};
}

Status Parser::expect(const std::vector<std::string_view>& w) {
    Expectation e;
    e.line = line;
    for (std::size_t i = 1; i < w.size(); ++i) e.text += (i > 1 ? " " : "") + std::string(w[i]);
    if (w.size() == 4 && w[1] == "converged" && w[2] == "by" && parse_duration(w[3], e.within)) {
        e.kind = ExpectKind::converged;
    } else if (w.size() == 5 && w[1] == "detected" && w[3] == "by" && parse_duration(w[4], e.within)) {
        e.kind = ExpectKind::detected;
        std::vector<std::uint32_t> one;
        std::string why;
        if (w[2] == "*") {
            e.any_node = true;
        } else if (nodes(w[2], one, why) && one.size() == 1) {
            e.node = one.front();
        } else {
            return fail("'expect detected NODE|* by D' " + why);
        }
    } else if (w.size() == 3 && w[1] == "false-failures" && parse_unsigned(w[2], e.count)) {
        e.kind = ExpectKind::false_failures;
    } else {
        return fail("'expect converged by D', 'expect detected NODE|* by D' or "
                    "'expect false-failures N'");
    }
    scenario.expectations.push_back(std::move(e));
    return Ok{};
}

}  // namespace

bool parse_duration(std::string_view text, Duration& out) {
    struct Unit {
        std::string_view suffix;
        double microseconds;
    };
    static constexpr Unit kUnits[] = {{"min", 60e6}, {"ms", 1e3}, {"us", 1.0}, {"s", 1e6}};
    for (const Unit& unit : kUnits) {
        if (text.size() <= unit.suffix.size() || !text.ends_with(unit.suffix)) continue;
        double value = 0;
        if (!parse_number(text.substr(0, text.size() - unit.suffix.size()), value) || value < 0 ||
            value * unit.microseconds > 1e15)
            return false;
        out = Duration(static_cast<Duration::rep>(std::llround(value * unit.microseconds)));
        return true;
    }
    return false;
}

Status set_timer(membership::Timers& t, std::string_view name, std::string_view value) {
    struct DurationTimer {
        std::string_view name;
        Duration membership::Timers::*field;
    };
    static constexpr DurationTimer kDurations[] = {
        {"probe_interval", &membership::Timers::probe_interval},
        {"probe_timeout", &membership::Timers::probe_timeout},
        {"gossip_interval", &membership::Timers::gossip_interval},
        {"suspicion_min", &membership::Timers::suspicion_min},
        {"suspicion_max", &membership::Timers::suspicion_max},
        {"refused_suspicion_min", &membership::Timers::refused_suspicion_min},
        {"refused_suspicion_max", &membership::Timers::refused_suspicion_max},
        {"newcomer_grace", &membership::Timers::newcomer_grace},
        {"sync_interval", &membership::Timers::sync_interval},
        {"reconnect_interval", &membership::Timers::reconnect_interval},
        {"join_retry_interval", &membership::Timers::join_retry_interval},
    };
    struct CountTimer {
        std::string_view name;
        std::uint32_t membership::Timers::*field;
    };
    static constexpr CountTimer kCounts[] = {
        {"indirect_probes", &membership::Timers::indirect_probes},
        {"gossip_fanout", &membership::Timers::gossip_fanout},
        {"retransmit_mult", &membership::Timers::retransmit_mult},
        {"confirmations", &membership::Timers::confirmations},
    };
    for (const DurationTimer& d : kDurations) {
        if (d.name != name) continue;
        Duration parsed{};
        if (!parse_duration(value, parsed) || parsed <= Duration{0})
            return make_error(ErrorCode::invalid_argument,
                              "timer " + std::string(name) + " needs a positive duration");
        t.*(d.field) = parsed;
        return Ok{};
    }
    for (const CountTimer& c : kCounts) {
        if (c.name != name) continue;
        std::uint64_t parsed = 0;
        if (!parse_unsigned(value, parsed) || parsed < 1 || parsed > 64)
            return make_error(ErrorCode::invalid_argument,
                              "timer " + std::string(name) + " needs a count from 1 to 64");
        t.*(c.field) = static_cast<std::uint32_t>(parsed);
        return Ok{};
    }
    return make_error(ErrorCode::invalid_argument, "unknown timer '" + std::string(name) + "'");
}

Result<Scenario> parse_scenario(std::string_view text, std::string_view name) {
    Parser p;
    p.file = name;
    p.scenario.name = std::string(name);
    while (!text.empty()) {
        ++p.line;
        const std::size_t end = text.find('\n');
        std::string_view line = text.substr(0, end);
        text = end == std::string_view::npos ? std::string_view{} : text.substr(end + 1);
        line = line.substr(0, line.find('#'));
        const auto words = split_words(line);
        if (words.empty()) continue;
        const Status status = words[0] == "at"       ? p.at(words)
                              : words[0] == "expect" ? p.expect(words)
                                                     : p.global(words);
        if (!status) return status.error();
    }
    p.line = 0;
    Scenario& s = p.scenario;
    if (s.nodes == 0) return p.fail("no 'nodes N' line");
    if (s.run <= Duration{0}) return p.fail("no 'run D' line");
    for (const std::uint32_t seed : s.seeds)
        if (seed >= s.nodes) return p.fail("seed node " + std::to_string(seed) + " does not exist");
    for (const Step& step : s.steps) {
        if (step.at >= s.run) {
            p.line = step.line;
            return p.fail("event after the end of the run");
        }
    }
    std::stable_sort(s.steps.begin(), s.steps.end(),
                     [](const Step& a, const Step& b) { return a.at < b.at; });
    return std::move(p.scenario);
}

Result<Scenario> load_scenario(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return make_error(ErrorCode::not_found, path + ": cannot open");
    std::ostringstream text;
    text << in.rdbuf();
    if (text.str().size() > kMaxScenarioBytes)
        return make_error(ErrorCode::too_large, path + ": larger than 1 MiB");
    return parse_scenario(text.str(), path);
}

}  // namespace starling::sim

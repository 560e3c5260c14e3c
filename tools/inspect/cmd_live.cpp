// members, watch and trace: a running node's view, asked over its control socket.

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <deque>
#include <iostream>
#include <map>
#include <thread>

#include "node/net/control.hpp"
#include "node/runtime/observe.hpp"
#include "node/runtime/state_dir.hpp"
#include "tools/inspect/commands.hpp"
#include "tools/inspect/json.hpp"
#include "tools/inspect/members_view.hpp"

namespace starling::inspect {
namespace {

using Clock = std::chrono::steady_clock;

int report_error(const Error& error) {
    std::fprintf(stderr, "starling-inspect: error: %s\n", error.message.c_str());
    switch (error.code) {
        case ErrorCode::invalid_argument:
        case ErrorCode::malformed:
        case ErrorCode::truncated:
        case ErrorCode::unsupported_version:
            return kExitUsage;
        default:
            return kExitFailure;
    }
}

std::filesystem::path socket_of(const Source& s) {
    return s.control.empty() ? runtime::control_socket_path(s.state) : std::filesystem::path(s.control);
}

Result<std::string> ask(const Source& s, const std::string& request) {
    Result<std::string> reply = net::query_control(socket_of(s), request);
    if (!reply && reply.error().code == ErrorCode::not_found)
        return make_error(ErrorCode::io, "no node answers at '" + socket_of(s).string() +
                                             "' (is it running? --state or --control)");
    if (!reply) return reply.error();
    if (reply->starts_with("error:"))
        return make_error(ErrorCode::io, "the node refused '" + request + "': " + *reply);
    return reply;
}

// "since N" answers: a header object with the next cursor, then entries.
struct Batch {
    std::uint64_t cursor = 0;
    std::uint64_t missed = 0;
    std::vector<Json> entries;
};

Result<Batch> ask_since(const Source& s, const std::string& what, std::uint64_t cursor) {
    Result<std::string> reply = ask(s, what + " since " + std::to_string(cursor));
    if (!reply) return reply.error();
    Result<std::vector<Json>> lines = parse_json_lines(*reply);
    if (!lines) return lines.error();
    if (lines->empty() || !(*lines)[0].number_at("cursor"))
        return make_error(ErrorCode::malformed, "the node's " + what + " answer has no cursor");
    Batch b;
    b.cursor = static_cast<std::uint64_t>(*(*lines)[0].number_at("cursor"));
    b.missed = static_cast<std::uint64_t>((*lines)[0].number_at("missed").value_or(0));
    b.entries.assign(std::make_move_iterator(lines->begin() + 1), std::make_move_iterator(lines->end()));
    return b;
}

std::map<std::string, double> parse_stats(const std::string& text) {
    std::map<std::string, double> stats;
    std::size_t start = 0;
    while (start < text.size()) {
        std::size_t end = text.find('\n', start);
        if (end == std::string::npos) end = text.size();
        const std::string line = text.substr(start, end - start);
        start = end + 1;
        const std::size_t space = line.find(' ');
        if (space == std::string::npos) continue;
        char* stop = nullptr;
        const std::string value = line.substr(space + 1);
        const double v = std::strtod(value.c_str(), &stop);
        if (stop != value.c_str()) stats[line.substr(0, space)] = v;
    }
    return stats;
}

std::string stamp() {
    const auto now = std::chrono::system_clock::now();
    const std::time_t t = std::chrono::system_clock::to_time_t(now);
    std::tm tm{};
    gmtime_r(&t, &tm);
    std::array<char, 32> text{};
    std::strftime(text.data(), text.size(), "%H:%M:%S", &tm);
    return text.data();
}

bool done(Clock::time_point start, double duration_s) {
    return duration_s > 0 &&
           std::chrono::duration<double>(Clock::now() - start).count() >= duration_s;
}

}  // namespace

int run_members(const MembersArgs& a) {
    Result<std::string> reply = ask(a.source, "members json");
    if (!reply) return report_error(reply.error());
    Result<std::vector<MemberRow>> rows = parse_members(*reply);
    if (!rows) return report_error(rows.error());
    std::cout << (a.json ? members_json(*rows) : members_table(*rows));
    return kExitOk;
}

int run_log_level(const LogLevelArgs& a) {
    if (!a.level.empty() && !runtime::parse_log_level(a.level))
        return report_error(make_error(ErrorCode::invalid_argument,
                                       "log level must be debug, info, warn or error"));
    Result<std::string> reply = ask(a.source, a.level.empty() ? "log level" : "log level " + a.level);
    if (!reply) return report_error(reply.error());
    std::cout << *reply;
    return kExitOk;
}

int run_watch(const WatchArgs& a) {
    const bool screen = !a.plain && !a.json && isatty(STDOUT_FILENO) == 1;
    const auto start = Clock::now();
    std::map<std::string, std::string> states;  // name → last state shown
    std::deque<std::string> events;
    std::deque<double> accuracy_history;
    std::uint64_t cursor = 0;
    bool first_events = true;
    bool was_down = false;
    std::map<std::string, double> last_stats;
    Clock::time_point last_stats_at{};
    double in_rate = 0, out_rate = 0;
    for (;;) {
        Result<std::string> reply = ask(a.source, "members json");
        Result<std::vector<MemberRow>> rows =
            reply ? parse_members(*reply) : Result<std::vector<MemberRow>>(reply.error());
        if (!rows) {
            if (!was_down) {
                if (screen) std::cout << "\x1b[H\x1b[2J";
                std::cout << stamp() << " node not answering: " << rows.error().message << std::endl;
            }
            was_down = true;
        } else {
            if (was_down) std::cout << stamp() << " node answering again" << std::endl;
            was_down = false;
            Result<Batch> batch = ask_since(a.source, "events", cursor);
            std::vector<std::string> new_events;
            if (batch) {
                if (batch->cursor < cursor) cursor = 0;  // the node restarted
                else cursor = batch->cursor;
                for (const Json& e : batch->entries)
                    new_events.push_back(e.string_at("level").value_or("?") + " " +
                                         e.string_at("text").value_or(""));
                if (batch->missed > 0 && !first_events)
                    new_events.push_back("(" + std::to_string(batch->missed) + " events missed)");
            }
            if (Result<std::string> stats = ask(a.source, "stats")) {
                const auto now = Clock::now();
                auto s = parse_stats(*stats);
                const double dt = std::chrono::duration<double>(now - last_stats_at).count();
                if (!last_stats.empty() && dt > 0) {
                    in_rate = (s["bytes_received"] - last_stats["bytes_received"]) / dt;
                    out_rate = (s["bytes_sent"] - last_stats["bytes_sent"]) / dt;
                }
                last_stats = std::move(s);
                last_stats_at = now;
            }
            const AccuracySummary acc = summarize_accuracy(*rows);
            if (acc.reporting > 0) {
                accuracy_history.push_back(acc.mean);
                if (accuracy_history.size() > kSparklineSamples) accuracy_history.pop_front();
            }
            std::array<char, 160> summary{};
            if (acc.reporting > 0)
                std::snprintf(summary.data(), summary.size(),
                              "accuracy mean %.2f%% min %.2f%% max %.2f%% (%zu reporting) %s",
                              acc.mean * 100, acc.min * 100, acc.max * 100, acc.reporting,
                              sparkline({accuracy_history.begin(), accuracy_history.end()}).c_str());
            else
                std::snprintf(summary.data(), summary.size(), "accuracy: no member reports one yet");
            std::array<char, 128> rates{};
            if (const auto d = last_stats.find("consensus_distance"); d != last_stats.end())
                std::snprintf(rates.data(), rates.size(),
                              "bytes/s in %.0f out %.0f  consensus distance %.4f", in_rate,
                              out_rate, d->second);
            else
                std::snprintf(rates.data(), rates.size(), "bytes/s in %.0f out %.0f", in_rate,
                              out_rate);
            if (screen) {
                for (const std::string& e : new_events) {
                    events.push_back(stamp() + " " + e);
                    if (events.size() > kWatchEvents) events.pop_front();
                }
                std::string body = "starling-inspect watch  " + stamp() + "  " +
                                   std::to_string(rows->size()) + " members  (Ctrl-C to quit)\n\n";
                body += members_table(*rows) + "\n" + summary.data() + "\n" + rates.data() +
                        "\n\nrecent events\n";
                for (const std::string& e : events) body += "  " + e + "\n";
                // Redrawn over the last frame line by line (home, erase to end of each line,
                // erase below), never cleared first: no flicker.
                std::string frame = "\x1b[H";
                for (const char c : body) {
                    if (c == '\n') frame += "\x1b[K";
                    frame += c;
                }
                std::cout << frame << "\x1b[J" << std::flush;
            } else {
                for (const MemberRow& r : *rows) {
                    auto& shown = states[r.name];
                    if (shown == r.state) continue;
                    if (a.json)
                        std::cout << "{\"time\": \"" << stamp() << "\", \"member\": "
                                  << runtime::json_quote(r.name) << ", \"state\": \"" << r.state
                                  << "\", \"was\": \"" << (shown.empty() ? "-" : shown) << "\"}\n";
                    else
                        std::cout << stamp() << " member " << r.name << ' ' << r.state
                                  << (shown.empty() ? "" : " (was " + shown + ")") << " at "
                                  << r.address << '\n';
                    shown = r.state;
                }
                for (const std::string& e : new_events)
                    std::cout << (a.json ? "{\"time\": \"" + stamp() + "\", \"event\": " +
                                               runtime::json_quote(e) + "}"
                                         : stamp() + " event " + e)
                              << '\n';
                if (acc.reporting > 0 && !a.json)
                    std::cout << stamp() << ' ' << summary.data() << '\n';
                std::cout << std::flush;
            }
            first_events = false;
        }
        if (done(start, a.duration_s)) return kExitOk;
        std::this_thread::sleep_for(std::chrono::milliseconds(a.interval_ms));
    }
}

int run_trace(const TraceArgs& a) {
    const auto start = Clock::now();
    // Start from now: the ring's past is not "as it happens".
    Result<Batch> first = ask_since(a.source, "trace", ~std::uint64_t{0} >> 1);
    if (!first) return report_error(first.error());
    std::uint64_t cursor = first->cursor;
    for (;;) {
        std::this_thread::sleep_for(std::chrono::milliseconds(a.interval_ms));
        Result<Batch> batch = ask_since(a.source, "trace", cursor);
        if (!batch) return report_error(batch.error());
        if (batch->cursor < cursor) cursor = 0;
        else cursor = batch->cursor;
        if (batch->missed > 0)
            std::cout << (a.json ? "{\"missed\": " + std::to_string(batch->missed) + "}"
                                 : "(" + std::to_string(batch->missed) + " messages missed)")
                      << '\n';
        for (const Json& e : batch->entries) {
            const std::string peer = e.string_at("peer").value_or("?");
            const std::string address = e.string_at("address").value_or("?");
            const std::string kind = e.string_at("kind").value_or("?");
            if (!a.peer.empty() && a.peer != peer && a.peer != address) continue;
            if (!a.kind.empty() && kind != a.kind && !kind.starts_with(a.kind + ":")) continue;
            const std::string dir = e.string_at("dir").value_or("?");
            if (a.json) {
                std::cout << "{\"t\": " << e.number_at("t").value_or(0) << ", \"from\": "
                          << runtime::json_quote(dir == "in" ? peer : "self") << ", \"to\": "
                          << runtime::json_quote(dir == "in" ? "self" : peer)
                          << ", \"address\": " << runtime::json_quote(address)
                          << ", \"kind\": " << runtime::json_quote(kind)
                          << ", \"bytes\": " << e.number_at("bytes").value_or(0);
                if (auto v = e.number_at("model_version")) std::cout << ", \"model_version\": " << *v;
                std::cout << "}\n";
            } else {
                std::array<char, 256> line{};
                const auto v = e.number_at("model_version");
                std::snprintf(line.data(), line.size(), "%14.6f %-12s -> %-12s %-20s %5.0f B%s",
                              e.number_at("t").value_or(0),
                              (dir == "in" ? peer : std::string("self")).c_str(),
                              (dir == "in" ? std::string("self") : peer).c_str(), kind.c_str(),
                              e.number_at("bytes").value_or(0),
                              v ? (" model v" + std::to_string(static_cast<std::uint64_t>(*v))).c_str() : "");
                std::cout << line.data() << "  " << address << '\n';
            }
        }
        std::cout << std::flush;
        if (done(start, a.duration_s)) return kExitOk;
    }
}

}  // namespace starling::inspect

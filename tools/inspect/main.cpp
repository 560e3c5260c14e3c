// starling-inspect: one place to see a Starling cluster (members, live view, gossip trace,
// capture decoding, HTML report). A separate binary from `starling`, so it costs the devices'
// flash nothing; this file alone knows the command-line parser.
#include <CLI/CLI.hpp>

#include <memory>

#include "tools/inspect/commands.hpp"

namespace {

using namespace starling::inspect;

int g_exit_code = kExitOk;

void add_source(CLI::App* app, Source& source) {
    app->add_option("--state", source.state, "The node's state directory (its control socket)")
        ->capture_default_str();
    app->add_option("--control", source.control, "The node's control socket (overrides --state)");
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"starling-inspect: see what a Starling cluster is doing"};
    app.set_version_flag("--version", STARLING_VERSION);
    app.require_subcommand(1);
    app.footer("Exit codes: 0 success, 1 failure (the node did not answer, I/O), 2 bad arguments "
               "or unreadable input (not a pcap file, a bad bundle).");

    auto m = std::make_shared<MembersArgs>();
    CLI::App* members = app.add_subcommand("members", "Devices a node knows: state, model, accuracy");
    add_source(members, m->source);
    members->add_flag("--json", m->json, "A JSON array");
    members->callback([m] { g_exit_code = run_members(*m); });

    auto w = std::make_shared<WatchArgs>();
    CLI::App* watch = app.add_subcommand(
        "watch", "Live view: members, accuracy, bytes/s, events (plain lines when not a terminal)");
    add_source(watch, w->source);
    watch->add_flag("--plain", w->plain, "One line per change even on a terminal");
    watch->add_flag("--json", w->json, "One JSON object per change");
    watch->add_option("--interval-ms", w->interval_ms, "Refresh period")
        ->check(CLI::Range(kMinPollMs, kMaxPollMs))
        ->capture_default_str();
    watch->add_option("--duration", w->duration_s, "Stop after this many seconds (0: never)")
        ->check(CLI::NonNegativeNumber);
    watch->callback([w] { g_exit_code = run_watch(*w); });

    auto t = std::make_shared<TraceArgs>();
    CLI::App* trace = app.add_subcommand(
        "trace", "Every gossip message the node sends and receives, as it happens");
    add_source(trace, t->source);
    trace->add_option("--peer", t->peer, "Only messages to/from this peer (name or ADDR:PORT)");
    trace->add_option("--kind", t->kind, "Only this kind (ping, ack, gossip, sync, beacon, refused…)");
    trace->add_flag("--json", t->json, "One JSON object per message");
    trace->add_option("--interval-ms", t->interval_ms, "Poll period")
        ->check(CLI::Range(kMinPollMs, kMaxPollMs))
        ->capture_default_str();
    trace->add_option("--duration", t->duration_s, "Stop after this many seconds (0: never)")
        ->check(CLI::NonNegativeNumber);
    trace->callback([t] { g_exit_code = run_trace(*t); });

    auto l = std::make_shared<LogLevelArgs>();
    CLI::App* level = app.add_subcommand(
        "log-level", "Show or set the node's log level while it runs (debug shows refused datagrams)");
    add_source(level, l->source);
    level->add_option("level", l->level, "debug, info, warn or error (none: show it)");
    level->callback([l] { g_exit_code = run_log_level(*l); });

    auto d = std::make_shared<DecodeArgs>();
    CLI::App* decode = app.add_subcommand(
        "decode", "Open and decode the Starling datagrams of a pcap capture with a bundle's keys");
    decode->add_option("capture", d->capture, "Classic pcap file (tshark -F pcap, tcpdump -w)")->required();
    decode->add_option("--bundle", d->bundle, "An enrollment bundle of the cluster")->required();
    decode->add_option("--port", d->port, "Only UDP datagrams from or to this port");
    decode->add_flag("--json", d->json, "One JSON object per datagram");
    decode->callback([d] { g_exit_code = run_decode(*d); });

    auto r = std::make_shared<ReportArgs>();
    CLI::App* report = app.add_subcommand(
        "report", "A self-contained HTML page of the node's metrics history (index.html in --out)");
    report->add_option("--state", r->state, "The node's state directory")->capture_default_str();
    report->add_option("--history", r->history, "A history directory (overrides --state)");
    report->add_option("--out", r->out, "Directory to write index.html into")->required();
    report->add_flag("--json", r->json, "Print a JSON summary");
    report->callback([r] { g_exit_code = run_report(*r); });

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        const int code = app.exit(e);
        return code == 0 ? kExitOk : kExitUsage;
    }
    return g_exit_code;
}

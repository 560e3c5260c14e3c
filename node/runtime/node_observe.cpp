// What the node shows its inspector: the trace tap and event ring (observe.hpp), the
// Prometheus metrics, the on-disk metrics history, and the log level, as control-socket answers.

#include <algorithm>
#include <cstdio>

#include "node/runtime/metrics.hpp"
#include "node/runtime/node_impl.hpp"

namespace starling::runtime {
namespace {

const char* kind_name(DiscoveryKind kind) {
    switch (kind) {
        case DiscoveryKind::beacon: return "beacon";
        case DiscoveryKind::certificate_request: return "certificate_request";
        case DiscoveryKind::certificates: return "certificates";
        case DiscoveryKind::revocations: return "revocations";
        case DiscoveryKind::revocation_summary: return "revocation_summary";
    }
    return "discovery?";
}

std::string event_kind(const std::string& text) {
    const std::size_t space = text.find(' ');
    const std::string first = text.substr(0, space);
    return first == "peer" || first == "node" || first == "leaving" || first == "left" ? "membership"
                                                                                     : "log";
}

}  // namespace

std::string Node::Impl::message_kind(std::span<const std::uint8_t> plaintext) const {
    switch (channel_of(plaintext)) {
        case Channel::membership:
            if (observed.codec.decode(plaintext, observed.message) !=
                membership::detail::DecodeStatus::ok)
                return "membership:malformed";
            return membership::detail::to_string(observed.message.kind);
        case Channel::discovery: {
            Result<DiscoveryMessage> m = decode_discovery(plaintext);
            return m ? kind_name(m->kind) : "discovery:malformed";
        }
        case Channel::unknown:
            break;
    }
    return "unknown";
}

void Node::Impl::tap(Direction direction, const net::Ipv4Endpoint& peer,
                     const std::optional<crypto::DeviceId>& device,
                     std::span<const std::uint8_t> plaintext, std::size_t wire_bytes) {
    TraceEntry e;
    e.time = clock.now();
    e.direction = direction;
    e.peer = peer;
    e.peer_name = device ? peers.name_of(*device) : "*";
    e.kind = message_kind(plaintext);
    e.bytes = static_cast<std::uint32_t>(wire_bytes);
    auto& counts = direction == Direction::in ? observed.received_kinds : observed.sent_kinds;
    ++counts[e.kind];
    observed.trace.push(std::move(e));
}

void Node::Impl::tap_refused(const net::Ipv4Endpoint& from, DatagramDrop drop,
                             std::size_t wire_bytes) {
    TraceEntry e;
    e.time = clock.now();
    e.direction = Direction::in;
    e.peer = from;
    e.peer_name = "?";
    e.kind = std::string("refused:") + to_string(drop);
    e.bytes = static_cast<std::uint32_t>(wire_bytes);
    const Time now = e.time;
    observed.trace.push(std::move(e));
    if (observed.refusal_events.admit(now))
        note(LogLevel::debug, "refused",
             "refused " + std::to_string(wire_bytes) + " bytes from " + from.to_string() + ": " +
                 to_string(drop));
}

void Node::Impl::note(LogLevel level, const std::string& kind, const std::string& text) const {
    observed.events.push({0, clock.now(), level, kind, text});
    if (level < observed.level || !log_sink) return;
    std::array<char, 32> stamp{};
    std::snprintf(stamp.data(), stamp.size(), "%.6f ",
                  static_cast<double>(clock.now().count()) / 1e6);
    log_sink(stamp.data() + text);
}

void Node::Impl::log(const std::string& text) const {
    const bool bad = text.starts_with("fatal") || text.starts_with("cannot");
    note(bad ? LogLevel::error : LogLevel::info, event_kind(text), text);
}

std::string Node::Impl::metrics_text() const {
    PrometheusText p;
    std::size_t alive = 1, suspect = 0, dead = 0, gone = 0;  // this node counts as alive
    for (const membership::MemberView& m : core.members()) {
        switch (m.state) {
            case membership::MemberState::alive: ++alive; break;
            case membership::MemberState::suspect: ++suspect; break;
            case membership::MemberState::dead: ++dead; break;
            case membership::MemberState::left: ++gone; break;
        }
    }
    const std::string& self = own.name;
    p.gauge("starling_members", "Members this node knows, by state (itself included as alive)",
            static_cast<double>(alive), {{"state", "alive"}});
    p.gauge("starling_members", "", static_cast<double>(suspect), {{"state", "suspect"}});
    p.gauge("starling_members", "", static_cast<double>(dead), {{"state", "failed"}});
    p.gauge("starling_members", "", static_cast<double>(gone), {{"state", "left"}});
    p.gauge("starling_health_multiplier",
            "Lifeguard local health: 1 healthy .. 8 (probe interval and timeouts scaled by it)",
            core.health_multiplier());
    p.gauge("starling_incarnation", "This node's incarnation",
            static_cast<double>(core.incarnation()), {{"node", self}});
    p.counter("starling_incarnation_raises_total",
              "Incarnation raises since start: refutations of suspicion and address changes",
              static_cast<double>(core.incarnation() - std::min(core.incarnation(),
                                                                observed.first_incarnation)));
    const auto sent_of = [this](const char* kind) {
        const auto it = observed.sent_kinds.find(kind);
        return it == observed.sent_kinds.end() ? 0.0 : static_cast<double>(it->second);
    };
    p.counter("starling_probes_total", "Direct probes (pings) sent", sent_of("ping"));
    p.counter("starling_indirect_probes_total", "Indirect probe requests sent", sent_of("ping_req"));
    bool first = true;
    for (const auto* kinds : {&observed.sent_kinds, &observed.received_kinds}) {
        const char* direction = kinds == &observed.sent_kinds ? "out" : "in";
        for (const auto& [kind, count] : *kinds) {
            p.counter("starling_messages_total", first ? "Opened or sealed messages by kind" : "",
                      static_cast<double>(count), {{"direction", direction}, {"kind", kind}});
            first = false;
        }
    }
    if (first)
        p.counter("starling_messages_total", "Opened or sealed messages by kind", 0,
                  {{"direction", "out"}, {"kind", "none"}});
    const net::TransportCounters& t = transport.counters();
    p.counter("starling_datagrams_total", "UDP datagrams", static_cast<double>(t.sent),
              {{"direction", "out"}});
    p.counter("starling_datagrams_total", "", static_cast<double>(t.received), {{"direction", "in"}});
    p.counter("starling_bytes_total", "UDP payload bytes", static_cast<double>(t.sent_bytes),
              {{"direction", "out"}});
    p.counter("starling_bytes_total", "", static_cast<double>(t.received_bytes), {{"direction", "in"}});
    p.counter("starling_transport_drops_total", "Datagrams the transport dropped, by reason",
              static_cast<double>(t.send_dropped), {{"reason", "send_queue"}});
    p.counter("starling_transport_drops_total", "", static_cast<double>(t.oversized),
              {{"reason", "oversized"}});
    p.counter("starling_transport_drops_total", "", static_cast<double>(t.fault_dropped),
              {{"reason", "test_fault"}});
    p.counter("starling_unreachable_total", "ICMP refusals reported by the host",
              static_cast<double>(t.unreachable));
    p.gauge("starling_send_queue_limit", "Datagrams the send queue holds at most",
            static_cast<double>(net::kMaxQueuedSends));
    for (std::size_t i = 0; i < stats.drops.size(); ++i)
        p.counter("starling_datagram_drops_total",
                  "Datagrams refused before use, by reason (replayed: the crypto replay window)",
                  static_cast<double>(stats.drops[i]),
                  {{"reason", to_string(static_cast<DatagramDrop>(i))}});
    p.counter("starling_seal_failures_total", "Datagrams that could not be sealed",
              static_cast<double>(stats.seal_failed));
    const membership::Counters& c = core.counters();
    const std::pair<const char*, std::uint64_t> core_drops[] = {
        {"oversized", c.oversized},       {"malformed", c.malformed},
        {"unverifiable", c.unverifiable}, {"not_for_us", c.not_for_us},
        {"unexpected", c.unexpected},     {"table_full", c.table_full},
        {"relays_full", c.relays_full},   {"replies_limited", c.replies_limited},
        {"sends_dropped", c.sends_dropped}};
    for (const auto& [reason, count] : core_drops)
        p.counter("starling_membership_drops_total", "Membership messages refused, by reason",
                  static_cast<double>(count), {{"reason", reason}});
    p.counter("starling_discovery_malformed_total", "Discovery messages that failed to decode",
              static_cast<double>(stats.discovery_malformed));
    p.counter("starling_certificates_refused_total", "Certificates refused",
              static_cast<double>(stats.certificates_refused));
    p.gauge("starling_known_certificates", "Certificates held", static_cast<double>(peers.size()));
    p.counter("starling_beacons_total", "LAN beacons sent", static_cast<double>(stats.beacons_sent));
    p.gauge("starling_parked_messages", "Messages waiting for certificates",
            static_cast<double>(parked.size()));
    p.gauge("starling_revocations", "Devices revoked by the owner, as this node holds them",
            static_cast<double>(revocations.size()));
    const std::pair<const char*, std::uint64_t> revocation_counts[] = {
        {"accepted", stats.revocations_accepted},
        {"refused", stats.revocations_refused},
        {"unsaved", stats.revocations_unsaved}};
    for (const auto& [outcome, count] : revocation_counts)
        p.counter("starling_revocations_received_total",
                  "Revocations heard (operator, peers, state directory), by outcome",
                  static_cast<double>(count), {{"outcome", outcome}});
    p.counter("starling_revocation_datagrams_sent_total", "Datagrams carrying revocations",
              static_cast<double>(stats.revocations_sent));
    p.counter("starling_revoked_refused_total", "Datagrams from a revoked device, refused",
              static_cast<double>(stats.revoked_refused));
    p.counter("starling_held_datagrams_total",
              "Datagrams from a sender without a known certificate, held while it is fetched",
              static_cast<double>(stats.held));
    p.counter("starling_held_datagrams_expired_total",
              "Held datagrams dropped: no certificate in time or no room",
              static_cast<double>(stats.held_expired));
    if (Result<ProcessUsage> usage = read_process_usage()) {
        p.gauge("process_resident_memory_bytes", "Resident memory size in bytes",
                static_cast<double>(usage->resident_bytes));
        p.counter("process_cpu_seconds_total", "User and system CPU time in seconds",
                  usage->cpu_seconds);
    }
    return p.text();
}

std::string Node::Impl::history_line() const {
    const net::TransportCounters& t = transport.counters();
    std::uint64_t refused = 0;
    for (const std::uint64_t d : stats.drops) refused += d;
    std::string members = observed.history_members ? observed.history_members() : members_json();
    while (!members.empty() && (members.back() == '\n' || members.back() == ' ')) members.pop_back();
    for (char& c : members)
        if (c == '\n') c = ' ';
    std::string line = "{\"unix\": " + std::to_string(clock.unix_seconds()) +
                       ", \"t\": " + std::to_string(clock.now().count() / 1000) +
                       "e-3, \"node\": " + json_quote(own.name) +
                       ", \"live\": " + std::to_string(core.live_count() + 1) +
                       ", \"bytes_in\": " + std::to_string(t.received_bytes) +
                       ", \"bytes_out\": " + std::to_string(t.sent_bytes) +
                       ", \"datagrams_in\": " + std::to_string(t.received) +
                       ", \"datagrams_out\": " + std::to_string(t.sent) +
                       ", \"refused\": " + std::to_string(refused);
    if (Result<ProcessUsage> usage = read_process_usage())
        line += ", \"rss\": " + std::to_string(usage->resident_bytes) +
                ", \"cpu\": " + metric_value(usage->cpu_seconds);
    if (observed.history_fields)
        if (const std::string more = observed.history_fields(); !more.empty()) line += ", " + more;
    return line + ", \"members\": " + members + "}";
}

void Node::Impl::history_tick(Time now) {
    if (now < observed.next_history || observed.history_failed) return;
    observed.next_history = now + options.history_interval;
    if (!observed.history) {
        Result<MetricsHistory> h = MetricsHistory::open(history_dir(state.path()));
        if (!h) {
            observed.history_failed = true;
            return log("cannot keep the metrics history: " + h.error().message);
        }
        observed.history.emplace(std::move(*h));
    }
    if (Status s = observed.history->append(history_line()); !s) {
        observed.history_failed = true;  // one report, not one per interval
        log("cannot append to the metrics history: " + s.error().message);
    }
}

std::optional<std::string> Node::Impl::observe_answer(std::string_view request) {
    if (request == "metrics") return metrics_text();
    if (request.starts_with("trace ")) {
        if (auto cursor = parse_since(request.substr(6))) return trace_json(observed.trace, *cursor);
        return "error: trace since N\n";
    }
    if (request.starts_with("events ")) {
        if (auto cursor = parse_since(request.substr(7)))
            return events_json(observed.events, *cursor);
        return "error: events since N\n";
    }
    if (request == "log level") return std::string(to_string(observed.level)) + "\n";
    if (request.starts_with("log level ")) {
        const auto level = parse_log_level(request.substr(10));
        if (!level) return "error: log level debug|info|warn|error\n";
        observed.level = *level;
        note(LogLevel::warn, "log", std::string("log level set to ") + to_string(*level));
        return std::string("ok ") + to_string(*level) + "\n";
    }
    return std::nullopt;
}

}  // namespace starling::runtime

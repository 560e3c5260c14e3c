// What the control socket answers: the member table (for people and for scripts) and counters.

#include <iomanip>
#include <sstream>

#include "node/runtime/node_impl.hpp"

namespace starling::runtime {
namespace {

struct Row {
    std::string name;
    std::string device;
    std::string state;
    std::uint64_t incarnation = 0;
    std::string address;
    std::string role;  // from the certificate; "" when the certificate is not held
};

std::string address_text(const membership::PeerAddress& a) {
    const auto e = to_endpoint(a);
    return e ? e->to_string() : a.to_string();
}

}  // namespace

std::string Node::answer(std::string_view request) const {
    if (request == "members") return impl_->members_table();
    if (request == "members json") return impl_->members_json();
    if (request == "stats") return impl_->stats_text();
    if (auto answer = impl_->observe_answer(request)) return *answer;
    return "error: unknown request (members, members json, stats, metrics, trace since N, "
           "events since N, log level [LEVEL])\n";
}

std::string Node::metrics() const { return impl_->metrics_text(); }

void Node::set_history_members(std::function<std::string()> members_json) {
    impl_->observed.history_members = std::move(members_json);
}

void Node::set_history_fields(std::function<std::string()> fields) {
    impl_->observed.history_fields = std::move(fields);
}

static std::vector<Row> rows_of(const Node::Impl& n) {
    std::vector<Row> rows;
    rows.push_back({n.own.name, crypto::to_hex(n.own.device), n.leaving ? "left" : "self",
                    n.core.incarnation(), n.options.advertise.to_string(),
                    crypto::to_string(n.own.role)});
    for (const membership::MemberView& m : n.core.members()) {
        const crypto::Certificate* cert = n.peers.find(m.id);
        rows.push_back({n.peers.name_of(m.id), crypto::to_hex(m.id), membership::to_string(m.state),
                        m.incarnation, address_text(m.address),
                        cert != nullptr ? crypto::to_string(cert->role) : ""});
    }
    return rows;
}

std::string Node::Impl::members_table() const {
    const std::vector<Row> rows = rows_of(*this);
    std::size_t name_width = 4;
    for (const Row& r : rows) name_width = std::max(name_width, r.name.size());
    std::ostringstream out;
    out << std::left << std::setw(static_cast<int>(name_width) + 2) << "NAME" << std::setw(34)
        << "DEVICE" << std::setw(9) << "STATE" << std::setw(13) << "INCARNATION" << "ADDRESS\n";
    for (const Row& r : rows)
        out << std::setw(static_cast<int>(name_width) + 2) << r.name << std::setw(34) << r.device
            << std::setw(9) << r.state << std::setw(13) << r.incarnation << r.address << '\n';
    return out.str();
}

std::string Node::Impl::members_json() const {
    std::ostringstream out;
    out << "[";
    bool first = true;
    for (const Row& r : rows_of(*this)) {  // names and ids need no escaping: [a-z0-9._-], hex
        out << (first ? "\n" : ",\n") << "  {\"name\": \"" << r.name << "\", \"device\": \""
            << r.device << "\", \"state\": \"" << r.state
            << "\", \"incarnation\": " << r.incarnation << ", \"address\": \"" << r.address
            << "\"";
        if (!r.role.empty()) out << ", \"role\": \"" << r.role << "\"";
        out << "}";
        first = false;
    }
    out << "\n]\n";
    return out.str();
}

std::string Node::Impl::stats_text() const {
    std::ostringstream out;
    const net::TransportCounters& t = transport.counters();
    out << "datagrams_sent " << t.sent << "\nbytes_sent " << t.sent_bytes << "\ndatagrams_received "
        << t.received << "\nbytes_received " << t.received_bytes << "\nsend_dropped "
        << t.send_dropped << "\nfault_dropped " << t.fault_dropped << "\nunreachable "
        << t.unreachable << "\nopened " << stats.opened << '\n';
    for (std::size_t i = 0; i < stats.drops.size(); ++i)
        out << "drop_" << to_string(static_cast<DatagramDrop>(i)) << ' ' << stats.drops[i] << '\n';
    out << "unknown_channel " << stats.unknown_channel << "\ndiscovery_malformed "
        << stats.discovery_malformed << "\ncertificates_refused " << stats.certificates_refused
        << "\nparked " << stats.parked << "\nparked_expired " << stats.parked_expired
        << "\nseal_failed " << stats.seal_failed << "\nbeacons_sent " << stats.beacons_sent
        << "\nanswers_limited " << stats.answers_limited << "\ncertificate_requests "
        << stats.certificate_requests << "\ncertificates_pushed " << stats.certificates_pushed
        << "\nheld " << stats.held << "\nheld_expired "
        << stats.held_expired << "\nrevocations " << revocations.size()
        << "\nrevocations_accepted " << stats.revocations_accepted << "\nrevocations_refused "
        << stats.revocations_refused << "\nrevocations_unsaved " << stats.revocations_unsaved
        << "\nrevocations_sent " << stats.revocations_sent << "\nrevoked_refused "
        << stats.revoked_refused << "\nknown_certificates " << peers.size()
        << "\nlive_members " << core.live_count() << "\nhealth_multiplier "
        << core.health_multiplier() << '\n';
    const membership::Counters& c = core.counters();
    out << "core_malformed " << c.malformed << "\ncore_unverifiable " << c.unverifiable
        << "\ncore_not_for_us " << c.not_for_us << "\ncore_unexpected " << c.unexpected
        << "\ncore_sends_dropped " << c.sends_dropped << '\n';
    return out.str();
}

}  // namespace starling::runtime

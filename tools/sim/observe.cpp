// What the simulator measures: convergence after each disturbance, detection of each crash,
// failures reported about nodes that were running and reachable, traffic; then the verdicts.
#include <algorithm>
#include <cinttypes>

#include "tools/sim/cluster.hpp"

namespace starling::sim {

namespace {

// Virtual time between two looks at "has everyone converged / noticed": the figures' resolution.
constexpr Duration kCheckInterval = std::chrono::milliseconds(10);
// Failures remembered individually for the report (all are counted).
constexpr std::size_t kMaxListedFalseFailures = 20;

double seconds(Duration d) { return std::chrono::duration<double>(d).count(); }

}  // namespace

void Cluster::on_peer_event(std::uint32_t observer, const membership::PeerEvent& event) {
    ++report_.peer_events[static_cast<int>(event.kind)];
    const auto it = by_id_.find(event.peer);
    const std::uint32_t subject = it == by_id_.end() ? ~0u : it->second;
    if (trace_ != nullptr)
        std::fprintf(trace_, "%10.3f s  node %u: %s %u (incarnation %" PRIu64 ", %s)\n",
                     seconds(now_), observer, membership::to_string(event.kind), subject,
                     event.incarnation, event.address.to_string().c_str());
    if (event.kind != membership::PeerEventKind::failed || subject == ~0u) return;
    const SimNode& s = nodes_[subject];
    // Failed while running (paused counts), in this life, and reachable from the observer.
    if (s.running() && event.incarnation >= s.life_incarnation &&
        network_.connected(observer, subject)) {
        ++report_.false_failure_count;
        if (report_.false_failures.size() < kMaxListedFalseFailures)
            report_.false_failures.push_back(FalseFailure{now_, observer, subject});
        return;
    }
    for (auto d = report_.detections.rbegin(); d != report_.detections.rend(); ++d) {
        if (d->node != subject) continue;
        if (!d->first) d->first = now_ - d->at;
        break;
    }
}

void Cluster::arm_convergence(const std::string& cause) {
    if (!pending_convergence_) {
        report_.convergences.push_back(Convergence{cause, now_, std::nullopt});
        pending_convergence_ = report_.convergences.size() - 1;
    } else {
        // Still converging from an earlier disturbance: measure from the latest one.
        Convergence& c = report_.convergences[*pending_convergence_];
        c.cause = cause;
        c.at = now_;
    }
    ensure_check();
}

void Cluster::watch_detection(std::uint32_t node, bool refused) {
    Detection d;
    d.node = node;
    d.at = now_;
    d.refused = refused;
    report_.detections.push_back(d);
    ensure_check();
}

void Cluster::ensure_check() {
    if (check_scheduled_) return;
    Event e;
    e.kind = EventKind::check;
    e.at = now_ + kCheckInterval;
    schedule(e);
    check_scheduled_ = true;
}

bool Cluster::converged() const {
    std::size_t running = 0;
    for (const SimNode& n : nodes_) running += n.running() ? 1 : 0;
    // Counting first (cheap); only then every pair.
    for (const SimNode& n : nodes_)
        if (n.running() && !n.paused && n.membership->alive_count() != running - 1) return false;
    for (std::uint32_t i = 0; i < nodes_.size(); ++i) {
        const SimNode& observer = nodes_[i];
        if (!observer.running() || observer.paused) continue;
        for (std::uint32_t j = 0; j < nodes_.size(); ++j) {
            if (i == j || !nodes_[j].running()) continue;
            const auto view = observer.membership->member(nodes_[j].id);
            if (!view || view->state != membership::MemberState::alive ||
                view->address != nodes_[j].address(j))
                return false;
        }
    }
    return true;
}

bool Cluster::all_hold_failed(std::uint32_t subject) const {
    for (std::uint32_t i = 0; i < nodes_.size(); ++i) {
        const SimNode& observer = nodes_[i];
        if (i == subject || !observer.running() || observer.paused) continue;
        const auto view = observer.membership->member(nodes_[subject].id);
        if (view && (view->state == membership::MemberState::alive ||
                     view->state == membership::MemberState::suspect))
            return false;
    }
    return true;
}

void Cluster::on_check() {
    check_scheduled_ = false;
    bool waiting = false;
    if (pending_convergence_) {
        if (converged()) {
            Convergence& c = report_.convergences[*pending_convergence_];
            c.after = now_ - c.at;
            pending_convergence_.reset();
        } else {
            waiting = true;
        }
    }
    for (Detection& d : report_.detections) {
        if (d.all || d.restarted_before_all) continue;
        if (all_hold_failed(d.node)) {
            d.all = now_ - d.at;
        } else {
            waiting = true;
        }
    }
    if (waiting) ensure_check();
}

void Cluster::count_traffic(std::size_t bytes) {
    ++report_.traffic.datagrams;
    report_.traffic.bytes += bytes;
    if (scenario_.has_window && now_ >= scenario_.window_begin && now_ < scenario_.window_end) {
        ++report_.window.datagrams;
        report_.window.bytes += bytes;
    }
}

void Cluster::judge() {
    for (const Expectation& e : scenario_.expectations) {
        ExpectationResult r{e.line, e.text, true, ""};
        char text[160];
        switch (e.kind) {
            case ExpectKind::converged:
                for (const Convergence& c : report_.convergences) {
                    if (c.after && *c.after <= e.within) continue;
                    r.passed = false;
                    std::snprintf(text, sizeof text, "after the %s at %.3f s: %s", c.cause.c_str(),
                                  seconds(c.at),
                                  c.after ? (std::to_string(seconds(*c.after)) + " s").c_str()
                                          : "never");
                    r.detail = text;
                    break;
                }
                if (report_.convergences.empty()) {
                    r.passed = false;
                    r.detail = "nothing to converge from (no start)";
                }
                break;
            case ExpectKind::detected: {
                bool any = false;
                for (const Detection& d : report_.detections) {
                    if (!e.any_node && d.node != e.node) continue;
                    any = true;
                    if (d.all && *d.all <= e.within) continue;
                    r.passed = false;
                    std::snprintf(text, sizeof text, "node %u at %.3f s: %s", d.node, seconds(d.at),
                                  d.all ? (std::to_string(seconds(*d.all)) + " s").c_str()
                                  : d.restarted_before_all ? "restarted before everyone noticed"
                                                           : "never");
                    r.detail = text;
                    break;
                }
                if (!any) {
                    r.passed = false;
                    r.detail = "no such crash in the scenario";
                }
                break;
            }
            case ExpectKind::false_failures:
                r.passed = report_.false_failure_count <= e.count;
                r.detail = std::to_string(report_.false_failure_count);
                break;
        }
        report_.expectations.push_back(std::move(r));
    }
}

bool Report::passed() const {
    return std::all_of(expectations.begin(), expectations.end(),
                       [](const ExpectationResult& r) { return r.passed; });
}

void print_report(const Report& r, double wall_seconds, std::FILE* out) {
    std::fprintf(out, "%s: %u nodes, seed %" PRIu64 ", %.1f s virtual in %.2f s wall (%.0fx), %" PRIu64
                      " events\n",
                 r.scenario.c_str(), r.nodes, r.seed, seconds(r.virtual_time), wall_seconds,
                 wall_seconds > 0 ? seconds(r.virtual_time) / wall_seconds : 0.0, r.events);
    for (const Convergence& c : r.convergences) {
        if (c.after)
            std::fprintf(out, "  converged %.3f s after the %s at %.3f s\n", seconds(*c.after),
                         c.cause.c_str(), seconds(c.at));
        else
            std::fprintf(out, "  NOT converged after the %s at %.3f s\n", c.cause.c_str(), seconds(c.at));
    }
    for (const Detection& d : r.detections) {
        std::fprintf(out, "  %s of node %u at %.3f s: ", d.refused ? "kill" : "crash", d.node,
                     seconds(d.at));
        if (d.all)
            std::fprintf(out, "all survivors held it failed after %.3f s (first %.3f s)\n",
                         seconds(*d.all), d.first ? seconds(*d.first) : 0.0);
        else
            std::fprintf(out, "%s\n", d.restarted_before_all ? "restarted before everyone noticed"
                                                             : "NOT noticed by everyone");
    }
    std::fprintf(out, "  false failures: %" PRIu64 "\n", r.false_failure_count);
    for (const FalseFailure& f : r.false_failures)
        std::fprintf(out, "    at %.3f s node %u reported node %u failed\n", seconds(f.at), f.observer,
                     f.subject);
    std::fprintf(out,
                 "  peer events: %" PRIu64 " up, %" PRIu64 " suspect, %" PRIu64 " failed, %" PRIu64
                 " left, %" PRIu64 " address changed; inputs dropped: %" PRIu64 "\n",
                 r.peer_events[0], r.peer_events[1], r.peer_events[2], r.peer_events[3],
                 r.peer_events[4], r.dropped_inputs);
    std::fprintf(out, "  traffic per node: %.1f datagrams/s, %.0f B/s (sealed sizes)\n",
                 r.traffic.datagrams_per_node_second(), r.traffic.bytes_per_node_second());
    if (r.has_window)
        std::fprintf(out, "  traffic per node in the window: %.1f datagrams/s, %.0f B/s\n",
                     r.window.datagrams_per_node_second(), r.window.bytes_per_node_second());
    for (const ExpectationResult& e : r.expectations)
        std::fprintf(out, "  line %d: expect %s: %s%s%s\n", e.line, e.text.c_str(),
                     e.passed ? "ok" : "FAILED", e.detail.empty() ? "" : " — ", e.detail.c_str());
}

}  // namespace starling::sim

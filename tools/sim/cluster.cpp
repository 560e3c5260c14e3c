// The simulator's event loop: steps of the scenario, datagrams through the packet simulator,
// timer wakeups, pauses and restarts.
#include <algorithm>
#include <cassert>
#include <variant>

#include "node/membership/limits.hpp"
#include "tools/sim/cluster.hpp"

namespace starling::sim {

namespace {

// Datagrams a paused node's socket holds (~a 212 KiB receive buffer of 1.4 KB datagrams);
// more are lost, as the kernel would lose them.
constexpr std::size_t kInboxDatagrams = 150;
// A leaving node keeps running this long so its "left" record spreads, then exits.
constexpr Duration kLeaveGrace = std::chrono::seconds(1);
constexpr std::uint32_t kAllNodes = ~std::uint32_t{0};

std::uint64_t splitmix(std::uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

// Independent streams from one seed: the network, the cluster, each node's lives.
std::uint64_t derive(std::uint64_t seed, std::uint64_t a, std::uint64_t b = 0) {
    return splitmix(splitmix(splitmix(seed) ^ a) ^ b);
}

}  // namespace

Cluster::Cluster(const Scenario& scenario, std::uint64_t seed, std::FILE* trace)
    : scenario_(scenario),
      seed_(seed),
      trace_(trace),
      nodes_(scenario.nodes),
      network_(scenario.link, scenario.nodes, derive(seed, 0x6E6574)),
      rng_(derive(seed, 0x636C75)) {
    for (std::uint32_t i = 0; i < scenario.nodes; ++i) {
        for (std::size_t b = 0; b < nodes_[i].id.size(); b += 8) {
            const std::uint64_t word = derive(seed, 0x6964, i * 2 + b / 8);
            for (std::size_t k = 0; k < 8; ++k)
                nodes_[i].id[b + k] = static_cast<std::uint8_t>(word >> (8 * k));
        }
        by_id_.emplace(nodes_[i].id, i);
    }
    for (std::uint32_t s = 0; s < scenario.steps.size(); ++s) {
        const Step& step = scenario.steps[s];
        Event e;
        e.kind = EventKind::step;
        e.slot = s;
        e.node = kAllNodes;
        if (step.kind != StepKind::start || step.span == Duration{0}) {
            e.at = step.at;
            schedule(e);
            continue;
        }
        // A start spread over a window: one node at a time, evenly.
        const auto count = static_cast<Duration::rep>(step.nodes.size());
        for (Duration::rep k = 0; k < count; ++k) {
            e.at = step.at + step.span * k / std::max<Duration::rep>(count - 1, 1);
            e.node = step.nodes[static_cast<std::size_t>(k)];
            schedule(e);
        }
    }
    report_.scenario = scenario.name;
    report_.seed = seed;
    report_.nodes = scenario.nodes;
    report_.has_window = scenario.has_window;
}

void Cluster::schedule(Event event) {
    event.order = order_++;
    queue_.push(event);
}

std::uint32_t Cluster::store(std::vector<std::uint8_t> bytes) {
    if (free_slots_.empty()) {
        payloads_.push_back(std::move(bytes));
        return static_cast<std::uint32_t>(payloads_.size() - 1);
    }
    const std::uint32_t slot = free_slots_.back();
    free_slots_.pop_back();
    payloads_[slot] = std::move(bytes);
    return slot;
}

void Cluster::release(std::uint32_t slot) {
    payloads_[slot] = {};
    free_slots_.push_back(slot);
}

Report Cluster::run() {
    const Time end = scenario_.run;
    while (!queue_.empty() && queue_.top().at < end) {
        const Event e = queue_.top();
        queue_.pop();
        now_ = e.at;
        ++report_.events;
        switch (e.kind) {
            case EventKind::step: {
                const Step& step = scenario_.steps[e.slot];
                if (e.node == kAllNodes) {
                    apply_step(step);
                } else {
                    Step one = step;
                    one.nodes = {e.node};
                    apply_step(one);
                }
                break;
            }
            case EventKind::deliver: deliver(e); break;
            case EventKind::wakeup: {
                SimNode& n = nodes_[e.node];
                if (!n.running() || n.paused || e.at != n.wakeup) break;  // stale
                n.wakeup = membership::kNever;
                n.membership->on_tick(now_);
                after_input(e.node);
                break;
            }
            case EventKind::unreachable: {
                SimNode& sender = nodes_[e.from];
                if (!sender.running() || sender.paused) break;
                sender.membership->on_unreachable(now_, PeerAddress::sim(e.node, e.generation));
                after_input(e.from);
                break;
            }
            case EventKind::resume: resume(e.node); break;
            case EventKind::exit: stop_node(e.node, NodeStatus::left, false); break;
            case EventKind::check: on_check(); break;
        }
    }
    now_ = end;
    set_running_count(0);
    for (const SimNode& n : nodes_) {
        if (!n.membership) continue;
        const membership::Counters& c = n.membership->counters();
        report_.dropped_inputs += c.oversized + c.malformed + c.unverifiable + c.not_for_us +
                                  c.unexpected + c.table_full + c.relays_full + c.sends_dropped;
    }
    report_.virtual_time = end;
    judge();
    return std::move(report_);
}

void Cluster::apply_step(const Step& step) {
    switch (step.kind) {
        case StepKind::start:
            for (const std::uint32_t n : step.nodes) start_node(n, false);
            arm_convergence("start");
            break;
        case StepKind::crash:
        case StepKind::kill:
            for (const std::uint32_t n : step.nodes) {
                if (!nodes_[n].running()) continue;
                stop_node(n, NodeStatus::crashed, step.kind == StepKind::kill);
                watch_detection(n, step.kind == StepKind::kill);
            }
            break;
        case StepKind::restart:
            for (const std::uint32_t n : step.nodes) {
                if (nodes_[n].running()) stop_node(n, NodeStatus::crashed, true);
                start_node(n, step.moved);
            }
            arm_convergence(step.moved ? "restart at a new address" : "restart");
            break;
        case StepKind::move:
            for (const std::uint32_t n : step.nodes) {
                if (!nodes_[n].running()) continue;
                ++nodes_[n].generation;
                nodes_[n].membership->on_address_changed(now_, nodes_[n].address(n));
                after_input(n);
            }
            arm_convergence("move");
            break;
        case StepKind::pause:
            for (const std::uint32_t n : step.nodes) {
                if (!nodes_[n].running() || nodes_[n].paused) continue;
                nodes_[n].paused = true;
                Event e;
                e.kind = EventKind::resume;
                e.node = n;
                e.at = now_ + step.span;
                schedule(e);
            }
            break;
        case StepKind::slow:
            for (const std::uint32_t n : step.nodes) nodes_[n].slow = step.span;
            break;
        case StepKind::leave:
            for (const std::uint32_t n : step.nodes) {
                if (!nodes_[n].running()) continue;
                nodes_[n].membership->on_leave_requested(now_);
                after_input(n);
                Event e;
                e.kind = EventKind::exit;
                e.node = n;
                e.at = now_ + kLeaveGrace;
                schedule(e);
            }
            break;
        case StepKind::partition: network_.partition(step.groups); break;
        case StepKind::heal:
            network_.heal();
            arm_convergence("heal");
            break;
        case StepKind::loss: network_.set_loss(step.value); break;
    }
}

void Cluster::start_node(std::uint32_t index, bool moved) {
    SimNode& n = nodes_[index];
    if (n.running()) return;
    ++n.life;
    if (moved) ++n.generation;
    for (Detection& d : report_.detections)
        if (d.node == index && !d.all) d.restarted_before_all = true;
    n.auth = std::make_unique<FakeAuthenticator>(n.id);
    membership::Config config;
    config.self = n.id;
    config.address = n.address(index);
    config.last_incarnation = n.persisted;
    config.timers = scenario_.timers;
    n.life_incarnation = n.persisted + 1;
    n.membership = std::make_unique<Membership>(config, *n.auth,
                                                model::Rng(derive(seed_, index, n.life)), now_);
    n.status = NodeStatus::running;
    set_running_count(+1);
    // Up to two seeds other than itself, as a node configured with --seed twice.
    std::vector<std::uint32_t> seeds;
    for (const std::uint32_t s : scenario_.seeds)
        if (s != index) seeds.push_back(s);
    rng_.shuffle(std::span<std::uint32_t>(seeds));
    if (seeds.size() > 2) seeds.resize(2);
    for (const std::uint32_t s : seeds) n.membership->on_seed_discovered(now_, nodes_[s].address(s));
    after_input(index);
}

void Cluster::stop_node(std::uint32_t index, NodeStatus status, bool refuses) {
    SimNode& n = nodes_[index];
    if (!n.running()) return;
    set_running_count(-1);
    n.status = status;
    n.refuses = refuses;
    n.paused = false;
    n.slow = Duration{0};
    for (const Event& e : n.inbox) release(e.slot);
    n.inbox.clear();
    n.wakeup = membership::kNever;
    n.membership.reset();
}

void Cluster::deliver(const Event& e) {
    SimNode& to = nodes_[e.node];
    if (!to.running() || to.generation != e.generation) {
        // Nobody listens there now. A killed process's host says so; a dead one is silent.
        const bool refused = to.status == NodeStatus::crashed && to.refuses &&
                             to.generation == e.generation;
        if (refused && network_.connected(e.node, e.from)) {
            Event icmp;
            icmp.kind = EventKind::unreachable;
            icmp.at = now_ + network_.latency();
            icmp.node = e.node;
            icmp.generation = e.generation;
            icmp.from = e.from;
            schedule(icmp);
        }
        release(e.slot);
        return;
    }
    if (to.slow > Duration{0} && !e.slowed) {
        Event later = e;
        later.slowed = true;
        later.at = now_ + Duration(static_cast<Duration::rep>(
                              rng_.below(static_cast<std::uint64_t>(to.slow.count()) + 1)));
        schedule(later);
        return;
    }
    if (to.paused) {
        if (to.inbox.size() < kInboxDatagrams) {
            to.inbox.push_back(e);
        } else {
            release(e.slot);
        }
        return;
    }
    receive(e.node, e);
}

void Cluster::receive(std::uint32_t index, const Event& e) {
    SimNode& n = nodes_[index];
    n.membership->on_message(now_, PeerAddress::sim(e.from, e.from_generation), nodes_[e.from].id,
                             payloads_[e.slot]);
    release(e.slot);
    after_input(index);
}

void Cluster::resume(std::uint32_t index) {
    SimNode& n = nodes_[index];
    if (!n.running() || !n.paused) return;
    n.paused = false;
    // What queued in the socket is read first, then the overdue timers run.
    n.wakeup = membership::kNever;  // wakeups that fired while paused were skipped
    std::deque<Event> queued;
    queued.swap(n.inbox);
    for (const Event& e : queued) receive(index, e);
    reschedule_wakeup(index);
}

void Cluster::after_input(std::uint32_t index) {
    perform_actions(index);
    reschedule_wakeup(index);
}

void Cluster::perform_actions(std::uint32_t index) {
    SimNode& n = nodes_[index];
    for (membership::Action& action : n.membership->take_actions()) {
        if (auto* event = std::get_if<membership::PeerEvent>(&action)) {
            on_peer_event(index, *event);
            continue;
        }
        if (auto* changed = std::get_if<membership::IncarnationChanged>(&action)) {
            n.persisted = changed->incarnation;
            continue;
        }
        auto& send = std::get<membership::Send>(action);
        count_traffic(send.bytes.size() + (send.device ? membership::limits::kSealToPeerOverheadBytes
                                                       : membership::limits::kSealToClusterOverheadBytes));
        if (send.to.kind() != PeerAddress::Kind::sim || send.to.sim_node() >= nodes_.size()) continue;
        const std::uint32_t to = send.to.sim_node();
        network_.route(index, to, arrivals_);
        for (std::size_t k = 0; k < arrivals_.size(); ++k) {
            Event e;
            e.kind = EventKind::deliver;
            e.at = now_ + arrivals_[k];
            e.node = to;
            e.generation = send.to.port();
            e.from = index;
            e.from_generation = n.generation;
            e.slot = store(k + 1 == arrivals_.size() ? std::move(send.bytes) : send.bytes);
            schedule(e);
        }
    }
}

void Cluster::reschedule_wakeup(std::uint32_t index) {
    SimNode& n = nodes_[index];
    if (!n.running() || n.paused) return;
    const Time next = std::max(now_, n.membership->next_wakeup());
    if (next >= n.wakeup) return;  // an earlier wakeup is queued: it reschedules when it fires
    n.wakeup = next;
    Event e;
    e.kind = EventKind::wakeup;
    e.node = index;
    e.at = next;
    schedule(e);
}

void Cluster::set_running_count(int delta) {
    const double span = std::chrono::duration<double>(now_ - running_since_).count();
    report_.traffic.node_seconds += static_cast<double>(running_) * span;
    if (scenario_.has_window) {
        const Time from = std::max(running_since_, scenario_.window_begin);
        const Time to = std::min(now_, scenario_.window_end);
        if (to > from)
            report_.window.node_seconds +=
                static_cast<double>(running_) * std::chrono::duration<double>(to - from).count();
    }
    running_ = static_cast<std::size_t>(static_cast<long>(running_) + delta);
    running_since_ = now_;
}

Report simulate(const Scenario& scenario, std::uint64_t seed, std::FILE* trace) {
    Cluster cluster(scenario, seed, trace);
    return cluster.run();
}

}  // namespace starling::sim

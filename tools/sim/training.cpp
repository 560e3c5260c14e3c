// The training simulator's event loop: devices train batch by batch on virtual time, their
// learners' actions become transfers over modelled links, and the scenario's faults strike at
// their times. One seeded generator per purpose keeps runs reproducible.
#include "tools/sim/training.hpp"

#include <algorithm>
#include <numeric>
#include <stdexcept>
#include <utility>

#include "tools/sim/training_simulation.hpp"

namespace starling::sim {
namespace detail {

Simulation::Simulation(const TrainingScenario& scenario, const data::Dataset& train,
                       const data::Dataset& test, std::FILE* progress, const Adversary& adversary)
    : sc_(scenario), test_(test), progress_(progress), adversary_(adversary),
      net_rng_(scenario.seed ^ 0x6E6574776F726Bull), garbage_rng_(scenario.seed ^ 0xBADull) {
    eval_set_ = test.subset(first_rows(std::min<std::size_t>(scenario.eval_subset, test.size())));
    deal(train);
}

TrainingReport Simulation::run() {
    for (auto& d : devices_) start_device(d, /*catch_up=*/false);
    update_views();
    for (std::size_t i = 0; i < sc_.events.size(); ++i)
        push(Event{.at = sc_.events[i].at, .kind = EventKind::scenario, .scenario_index = i});
    push(Event{.at = 0.0, .kind = EventKind::eval});

    while (!queue_.empty()) {
        Event e = queue_.top();
        queue_.pop();
        if (sc_.run_seconds > 0 && e.at > sc_.run_seconds) break;
        if (e.kind == EventKind::eval && all_done() && !report_.curve.empty()) continue;
        // A pull answered since its timeout was set leaves a tick with nothing to do: once
        // every device is done it must not stretch the run's virtual length.
        if (e.kind == EventKind::tick && all_done() && stale_tick(e)) continue;
        now_ = e.at;
        dispatch(e);
    }
    report_.virtual_seconds = now_;
    report_.eval_images = eval_set_.size();
    report_.test_images = test_.size();
    finish();
    return std::move(report_);
}

std::vector<std::uint32_t> Simulation::first_rows(std::size_t n) {
    std::vector<std::uint32_t> rows(n);
    std::iota(rows.begin(), rows.end(), 0u);
    return rows;
}

void Simulation::deal(const data::Dataset& train) {
    const std::size_t want = std::min<std::size_t>(
        train.size(), std::size_t{sc_.nodes} * sc_.images_per_node);
    std::vector<std::uint32_t> rows(train.size());
    std::iota(rows.begin(), rows.end(), 0u);
    model::Rng rng(sc_.seed ^ 0x5348415244ull);
    if (want < train.size()) rng.shuffle(std::span<std::uint32_t>(rows));
    rows.resize(want);
    std::sort(rows.begin(), rows.end());
    const data::Dataset cut = train.subset(rows);
    auto shards = data::split_indices(cut, sc_.split, sc_.nodes, sc_.seed);
    if (!shards) {
        error_ = shards.error().message;
        return;
    }
    devices_.resize(sc_.nodes);
    for (std::uint32_t i = 0; i < sc_.nodes; ++i) {
        Device& d = devices_[i];
        d.index = i;
        d.speed = i < sc_.speeds.size() ? sc_.speeds[i] : 1.0;
        d.shard = cut.subset((*shards)[i]);
        d.horizon = static_cast<std::uint64_t>(sc_.epochs * static_cast<double>(d.shard.size()));
        d.order_rng = model::Rng(sc_.seed * 1000003ull + i);
    }
}

void Simulation::push(Event e) {
    e.seq = seq_++;
    queue_.push(std::move(e));
}

void Simulation::start_device(Device& d, bool catch_up) {
    d.model = std::make_unique<model::Mlp>(sc_.widths);
    d.model->init_he(sc_.common_init ? sc_.seed : sc_.seed * 7919ull + d.index + 1);
    model::OptimizerConfig oc;
    oc.learning_rate = sc_.learning_rate;
    oc.momentum = sc_.momentum;
    oc.nesterov = sc_.nesterov;
    oc.weight_decay = sc_.weight_decay;
    oc.kind = sc_.optimizer;
    d.optimizer = std::make_unique<model::Optimizer>(oc, d.model->parameters().size());
    d.workspace = std::make_unique<model::Workspace>(*d.model, sc_.batch);
    d.served = sc_.served_average > 0 ? std::make_unique<model::Mlp>(*d.model) : nullptr;
    d.learner = std::make_unique<gossip::GossipLearner>(
        device_id(d.index), *d.model, sc_.learner, sc_.seed * 31ull + d.index * 2654435761ull);
    d.alive = true;
    d.finished = d.trained >= d.horizon && sc_.run_seconds <= 0;
    d.consensus_done = 0;
    d.gossip_inbox.clear();
    d.gossip_sends.clear();
    d.batch_models.clear();
    d.batch_round = false;
    d.unreported = 0;
    d.snapshot_samples = 0;
    d.snapshot_ready = d.snapshot_live = false;
    d.move_waiting = false;
    d.job_sends.clear();
    d.job_model.reset();
    d.gossip_working = false;
    d.step_scheduled = false;
    d.tick_at = Time::max();
    d.learner->on_start(to_time(now_), catch_up);
}

bool Simulation::reachable(const Device& a, const Device& b) const {
    return a.alive && b.alive && a.group == b.group;
}

// The membership view every device holds: live devices in its partition (membership
// converges on that within seconds; the simulator skips the detection delay).
void Simulation::update_views() {
    for (Device& d : devices_) {
        if (!d.alive) continue;
        std::vector<gossip::PeerInfo> peers;
        for (const Device& p : devices_)
            if (p.index != d.index && reachable(d, p))
                peers.push_back({device_id(p.index), p.learner->samples_seen()});
        d.learner->on_peers_changed(peers, to_time(now_));
        service(d);
    }
}

double Simulation::step_seconds(const Device& d, std::size_t n) const {
    return static_cast<double>(n) / (sc_.base_samples_per_second * d.speed * sc_.duty);
}

// Turns the learner's actions into transfers, and keeps a step and a tick scheduled.
void Simulation::service(Device& d) {
    if (!d.alive) return;
    route(d, d.learner->take_actions(), d.gossip_sends);
    start_gossip_job(d);
    schedule(d);
}

// The learner's actions become transfers; with a gossip thread, sends wait in `sends` for it
// to encode them.
void Simulation::route(Device& d, std::vector<gossip::Action> actions,
                       std::vector<PendingSend>& sends) {
    const std::vector<std::uint8_t>* encoded = nullptr;  // a round's peers share one message
    for (gossip::Action& a : actions) {
        Device& peer = devices_[device_index(a.peer)];
        if (a.kind == gossip::ActionKind::send_model) {
            const bool new_round = a.bytes.get() != encoded;
            encoded = a.bytes.get();
            auto bytes = a.bytes;
            if (is_adversary(d.index)) bytes = garbage(d);
            if (!sc_.gossip_thread) {
                const bool opened = opens_link(d, peer);
                if (new_round) d.cpu_debt += sc_.cpu_per_send / d.speed;
                if (opened) d.cpu_debt += sc_.cpu_per_handshake / d.speed;
                transfer(d, peer, a.transfer, std::move(bytes), opened);
            } else {
                sends.push_back({encoded, peer.index, a.transfer, std::move(bytes)});
            }
        } else {
            if (reachable(d, peer)) {
                push(Event{.at = now_ + sc_.latency_seconds, .kind = EventKind::request,
                           .node = peer.index, .generation = peer.generation, .from = d.index,
                           .from_generation = d.generation, .transfer = a.transfer});
            } else {
                push(Event{.at = now_ + (peer.alive ? kUnreachableTimeoutSeconds
                                                    : 2 * sc_.latency_seconds),
                           .kind = EventKind::request_failed, .node = d.index,
                           .generation = d.generation, .transfer = a.transfer});
            }
        }
    }
}

void Simulation::schedule(Device& d) {
    const Time wake = d.learner->next_wakeup();
    if (wake != Time::max() && wake != d.tick_at) {
        d.tick_at = wake;
        push(Event{.at = std::max(now_, to_seconds(wake)), .kind = EventKind::tick,
                   .node = d.index, .generation = d.generation});
    }
    if (!d.finished && !d.step_scheduled && d.learner->ready_to_train()) {
        d.step_scheduled = true;
        if (std::exchange(d.move_waiting, false)) d.cpu_debt += sc_.handoff_per_receive / d.speed;
        const double gossip_cpu = d.cpu_debt;
        d.cpu_debt = 0;
        push(Event{.at = now_ + gossip_cpu + step_seconds(d, static_cast<std::size_t>(sc_.batch)),
                   .kind = EventKind::step, .node = d.index, .generation = d.generation});
    }
}

// Either device's transfers use the link between two devices: it is kept by the one with the
// lower index (a crash clears a device's links; the other's generation tells a restart).
bool Simulation::opens_link(Device& from, Device& to) {
    Device& keeper = from.index < to.index ? from : to;
    const Device& other = from.index < to.index ? to : from;
    const auto [it, fresh] =
        keeper.links.try_emplace(other.index, OpenLink{other.generation, now_});
    const bool opens = fresh || sc_.link_idle <= 0 ||
                       it->second.peer_generation != other.generation ||
                       now_ - it->second.used > sc_.link_idle;
    it->second = OpenLink{other.generation, now_};
    ++report_.transfers;
    if (opens) ++report_.links_opened;
    return opens;
}

double Simulation::open_links(Device& d, std::vector<PendingSend>& sends) {
    double seconds = 0;
    for (PendingSend& p : sends)
        if ((p.opened_link = opens_link(d, devices_[p.peer]))) seconds += sc_.cpu_per_handshake;
    return seconds;
}

void Simulation::transfer(Device& from, Device& to, std::uint64_t id,
                          std::shared_ptr<const std::vector<std::uint8_t>> bytes,
                          bool opened_link) {
    if (!reachable(from, to)) {
        push(Event{.at = now_ + (to.alive ? kUnreachableTimeoutSeconds : 2 * sc_.latency_seconds),
                   .kind = EventKind::send_failed, .node = from.index,
                   .generation = from.generation, .transfer = id});
        return;
    }
    // A switched LAN: the sender's uplink carries one transfer at a time into the switch,
    // which queues it for the receiver's downlink (also one at a time). A busy receiver
    // delays the arrival, not the sender's other transfers.
    const double seconds = static_cast<double>(bytes->size()) / sc_.bandwidth_bytes_per_second;
    const double up_start = std::max(now_, from.up_free);
    from.up_free = up_start + seconds;
    const double down_start = std::max(up_start, to.down_free);
    to.down_free = down_start + seconds;
    const double arrive = down_start + seconds + sc_.latency_seconds;
    if (sc_.loss > 0 && net_rng_.uniform() < sc_.loss) {
        push(Event{.at = arrive, .kind = EventKind::send_failed, .node = from.index,
                   .generation = from.generation, .transfer = id});
        return;
    }
    push(Event{.at = arrive, .kind = EventKind::deliver, .node = to.index,
               .generation = to.generation, .from = from.index,
               .from_generation = from.generation, .transfer = id, .bytes = std::move(bytes),
               .opened_link = opened_link});
}

bool Simulation::is_adversary(std::uint32_t index) const {
    return std::find(adversary_.nodes.begin(), adversary_.nodes.end(), index) !=
           adversary_.nodes.end();
}

std::shared_ptr<const std::vector<std::uint8_t>> Simulation::garbage(Device& d) {
    gossip::ModelMessage h = d.learner->header();
    std::vector<float> values(d.model->parameters().size());
    for (float& v : values) v = adversary_.scale * static_cast<float>(garbage_rng_.normal());
    gossip::ModelEncoder encoder(gossip::Encoding::fp32);
    ++report_.garbage_sent;
    return std::make_shared<const std::vector<std::uint8_t>>(encoder.encode(h, values));
}

float Simulation::learning_rate(const Device& d) const {
    double progress = 0;
    if (sc_.run_seconds > 0) progress = now_ / sc_.run_seconds;
    else if (d.horizon > 0)
        progress = static_cast<double>(d.trained) / static_cast<double>(d.horizon);
    return static_cast<float>(sc_.learning_rate *
                              model::schedule_factor(sc_.schedule, progress, sc_.cooldown_share));
}

void Simulation::reset_momentum(Device& d) {
    std::vector<std::vector<float>> zero(d.optimizer->state().size(),
                                         std::vector<float>(d.model->parameters().size(), 0.0f));
    if (Status s = d.optimizer->restore(d.optimizer->steps(), std::move(zero)); !s)
        throw std::logic_error("resetting the optimizer's state: " + s.error().message);
}

void Simulation::train_step(Device& d) {
    d.step_scheduled = false;
    if (d.finished || !d.learner->ready_to_train()) return;
    const std::size_t batch =
        std::min<std::size_t>(static_cast<std::size_t>(sc_.batch), d.shard.size());
    if (d.cursor + batch > d.order.size()) {
        d.order.resize(d.shard.size());
        std::iota(d.order.begin(), d.order.end(), 0u);
        d.order_rng.shuffle(std::span<std::uint32_t>(d.order));
        d.cursor = 0;
    }
    const std::span<const std::uint32_t> rows(d.order.data() + d.cursor, batch);
    d.cursor += batch;
    d.shard.gather(rows, d.workspace->activation(0));
    d.labels.resize(batch);
    for (std::size_t i = 0; i < batch; ++i) d.labels[i] = d.shard.labels[rows[i]];
    model::train_step(*d.model, *d.workspace, static_cast<int>(batch), d.labels.data(),
                      *d.optimizer, learning_rate(d));
    if (d.served) {
        model::follow_average(d.served->parameters(), d.model->parameters(),
                              sc_.served_average);
    }
    d.trained += batch;
    report_.samples_trained += batch;
    if (!sc_.gossip_thread) {
        d.learner->on_local_samples(batch, to_time(now_));
    } else if ((d.unreported += batch) >= sc_.learner.samples_per_round) {
        hand_over(d);
    }
    const bool out_of_time = sc_.run_seconds > 0 && now_ >= sc_.run_seconds;
    if ((sc_.run_seconds <= 0 && d.trained >= d.horizon) || out_of_time) {
        d.finished = true;
        if (d.served) {  // the device's answer is its average; the consensus rounds mix those
            std::ranges::copy(d.served->parameters(), d.model->parameters().begin());
            d.served.reset();
        }
        if (sc_.consensus_rounds > 0)
            push(Event{.at = now_ + sc_.consensus_interval, .kind = EventKind::consensus,
                       .node = d.index, .generation = d.generation});
    }
    service(d);
}

// A model arrived at d (its downlink delivered it): without a gossip thread d merges it now,
// with one it waits for that thread (or is dropped when kGossipInbox already wait).
void Simulation::receive(Device& d, const Event& e) {
    Device& from = devices_[e.from];
    const bool sender_same = from.alive && from.generation == e.from_generation;
    const bool ok = d.alive && d.generation == e.generation && d.group == from.group;
    if (ok && !sc_.gossip_thread) {
        merge(d, e);
    } else if (ok && d.gossip_inbox.size() >= kGossipInbox) {
        ++report_.models_dropped;
    } else if (ok) {
        d.gossip_inbox.push_back(e);
        start_gossip_job(d);
    }
    if (sender_same) {
        from.learner->on_send_finished(e.transfer, ok, to_time(now_));
        service(from);
    }
}

// d decodes and merges a received model (on its training core, or its gossip thread's work
// done, the move added to the model).
void Simulation::merge(Device& d, const Event& e) {
    const bool follow = sc_.momentum_policy == MomentumPolicy::follow && !d.finished;
    const bool record = sc_.gossip_thread && d.snapshot_live;
    if (follow || record)
        d.before_merge.assign(d.model->parameters().begin(), d.model->parameters().end());
    const auto outcome = d.learner->on_model_bytes(device_id(e.from), *e.bytes, to_time(now_));
    if (record && outcome == gossip::Received::merged)
        model::record_move(d.moves, d.model->parameters(), d.before_merge, /*accumulate=*/true);
    if (record && outcome == gossip::Received::adopted) {  // the copy is of no use now
        d.snapshot.assign(d.model->parameters().begin(), d.model->parameters().end());
        std::ranges::fill(d.moves, 0.0f);
    }
    // With a gossip thread the trainer adds what merges moved once, at its next step, however
    // many models merged meanwhile (runtime::LearningLoop::take_moves).
    if (sc_.gossip_thread) {
        if (outcome != gossip::Received::refused) d.move_waiting = true;
    } else {
        d.cpu_debt += (sc_.cpu_per_receive + (e.opened_link ? sc_.cpu_per_handshake : 0.0)) /
                      d.speed;
    }
    if (follow && outcome == gossip::Received::merged)
        d.optimizer->follow_move(d.before_merge, d.model->parameters(), learning_rate(d));
    if (outcome == gossip::Received::adopted ||
        (outcome == gossip::Received::merged && sc_.momentum_policy == MomentumPolicy::reset))
        reset_momentum(d);
    // Adopted: nothing of the old model is worth serving.
    if (outcome == gossip::Received::adopted && d.served)
        std::ranges::copy(d.model->parameters(), d.served->parameters().begin());
    service(d);
}

void Simulation::dispatch(const Event& e) {
    switch (e.kind) {
    case EventKind::eval:
        evaluate_all();
        if (!all_done()) push(Event{.at = now_ + sc_.eval_every, .kind = EventKind::eval});
        return;
    case EventKind::scenario:
        apply(sc_.events[e.scenario_index]);
        return;
    default: break;
    }
    Device& d = devices_[e.node];
    switch (e.kind) {
    case EventKind::step:
        if (d.alive && d.generation == e.generation) train_step(d);
        return;
    case EventKind::tick:
        if (d.alive && d.generation == e.generation) {
            d.tick_at = Time::max();
            d.learner->on_tick(to_time(now_));
            service(d);
        }
        return;
    case EventKind::deliver:
        receive(d, e);
        return;
    case EventKind::gossip_done:
        if (d.alive && d.generation == e.generation) gossip_done(d);
        return;
    case EventKind::request: {
        // The pull request reached the peer: it queues an answer like any send.
        Device& from = devices_[e.from];
        if (d.alive && d.generation == e.generation && reachable(d, from)) {
            d.learner->on_model_requested(device_id(e.from), to_time(now_));
            service(d);
        } else if (from.alive && from.generation == e.from_generation) {
            from.learner->on_request_failed(e.transfer, to_time(now_));
            service(from);
        }
        return;
    }
    case EventKind::request_failed:
        if (d.alive && d.generation == e.generation) {
            d.learner->on_request_failed(e.transfer, to_time(now_));
            service(d);
        }
        return;
    case EventKind::send_failed:
        if (d.alive && d.generation == e.generation) {
            d.learner->on_send_finished(e.transfer, false, to_time(now_));
            service(d);
        }
        return;
    case EventKind::consensus:
        if (d.alive && d.generation == e.generation && d.consensus_done < sc_.consensus_rounds) {
            ++d.consensus_done;
            d.learner->on_round_due(to_time(now_));
            service(d);
            if (d.consensus_done < sc_.consensus_rounds)
                push(Event{.at = now_ + sc_.consensus_interval, .kind = EventKind::consensus,
                           .node = d.index, .generation = d.generation});
        }
        return;
    default: return;
    }
}

void Simulation::apply(const TrainingEvent& ev) {
    switch (ev.kind) {
    case TrainingEvent::crash:
        for (const std::uint32_t n : ev.nodes) {
            Device& d = devices_[n];
            if (!d.alive) continue;
            add_stats(d.retired, d.learner->stats());
            d.alive = false;
            d.links.clear();
            ++d.generation;
        }
        break;
    case TrainingEvent::restart:
        for (const std::uint32_t n : ev.nodes) {
            Device& d = devices_[n];
            if (d.alive) continue;
            ++d.generation;
            start_device(d, /*catch_up=*/true);
        }
        break;
    case TrainingEvent::partition:
        for (Device& d : devices_) d.group = static_cast<int>(ev.groups.size());
        for (std::size_t g = 0; g < ev.groups.size(); ++g)
            for (const std::uint32_t n : ev.groups[g]) devices_[n].group = static_cast<int>(g);
        break;
    case TrainingEvent::heal:
        for (Device& d : devices_) d.group = 0;
        break;
    }
    update_views();
}

bool Simulation::stale_tick(const Event& e) const {
    const Device& d = devices_[e.node];
    return !d.alive || d.generation != e.generation ||
           d.learner->next_wakeup() == Time::max();
}

bool Simulation::all_done() const {
    for (const Device& d : devices_)
        if (d.alive && (!d.finished || d.consensus_done < sc_.consensus_rounds)) return false;
    return true;
}

}  // namespace detail

using detail::Simulation;

bool device_class_speed(std::string_view name, double& speed) noexcept {
    struct Class {
        std::string_view name;
        double speed;
    };
    static constexpr Class kClasses[] = {{"celeron", 0.3}, {"i3", 0.6}, {"i5", 0.8}, {"i7", 1.0}};
    for (const Class& c : kClasses) {
        if (c.name == name) {
            speed = c.speed;
            return true;
        }
    }
    return false;
}

Result<TrainingReport> simulate_training(const TrainingScenario& scenario,
                                         const data::Dataset& train, const data::Dataset& test,
                                         std::FILE* progress, const Adversary& adversary) {
    if (Status s = model::validate_widths(scenario.widths); !s) return s.error();
    if (train.features != scenario.widths.front() || test.features != scenario.widths.front())
        return make_error(ErrorCode::invalid_argument,
                          "the model takes " + std::to_string(scenario.widths.front()) +
                              " inputs, the data has " + std::to_string(train.features));
    for (const std::uint32_t n : adversary.nodes)
        if (n >= scenario.nodes)
            return make_error(ErrorCode::invalid_argument, "adversary node out of range");
    Simulation sim(scenario, train, test, progress, adversary);
    if (!sim.error_.empty()) return make_error(ErrorCode::invalid_argument, sim.error_);
    return sim.run();
}

}  // namespace starling::sim

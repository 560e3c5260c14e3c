// The node's gossip thread as the simulator models it: it wakes, takes the models waiting and
// the trainer's latest copy, merges the models, then encodes and sends the round from the copy
// plus what the merges moved since (runtime::LearningLoop does the same on a real device).
#include <algorithm>
#include <iterator>
#include <utility>

#include "tools/sim/training_simulation.hpp"

namespace starling::sim::detail {

// An idle gossip thread takes its next job: the next model of those it took at its last
// wake, pull answers, then that wake's round; when all are done it wakes again and takes
// what waits. A round that found the link budget taken sends nothing and costs nothing.
void Simulation::start_gossip_job(Device& d) {
    if (!sc_.gossip_thread || d.gossip_working || !d.alive) return;
    for (;;) {
        if (d.batch_models.empty() && !d.batch_round) {
            if (d.gossip_inbox.empty() && !d.snapshot_ready && d.gossip_sends.empty()) return;
            d.batch_models.swap(d.gossip_inbox);
            d.learner->end_batch();
            if (sc_.batch_average) d.learner->begin_batch();
            d.batch_round = std::exchange(d.snapshot_ready, false);
        }
        double seconds = 0;
        if (!d.batch_models.empty()) {
            d.job_model = std::move(d.batch_models.front());
            d.batch_models.pop_front();
            seconds = sc_.cpu_per_receive +
                      (d.job_model->opened_link ? sc_.cpu_per_handshake : 0.0);
        } else if (d.gossip_sends.empty()) {
            d.batch_round = false;
            encode_round(d);
            if (d.job_sends.empty()) continue;
            seconds = sc_.cpu_per_send + open_links(d, d.job_sends);
        } else {  // pull answers (one message, its peers), before the round
            const void* round = d.gossip_sends.front().round;
            const auto end = std::ranges::find_if(
                d.gossip_sends, [round](const PendingSend& p) { return p.round != round; });
            d.job_sends.assign(std::make_move_iterator(d.gossip_sends.begin()),
                               std::make_move_iterator(end));
            d.gossip_sends.erase(d.gossip_sends.begin(), end);
            seconds = sc_.cpu_per_send + open_links(d, d.job_sends);
        }
        d.gossip_working = true;
        d.gossip_busy += seconds / d.speed;
        push(Event{.at = now_ + seconds / d.speed, .kind = EventKind::gossip_done,
                   .node = d.index, .generation = d.generation});
        return;
    }
}

// The thread's round: the learner sees the samples the copy carries and encodes the copy
// plus the moves merged since it was made (swapped in for the encoding only).
void Simulation::encode_round(Device& d) {
    const std::span<float> w = d.model->parameters();
    d.before_merge.assign(w.begin(), w.end());
    std::ranges::copy(d.snapshot, w.begin());
    if (d.snapshot_live) model::add_move(w, d.moves);
    d.snapshot_live = false;
    d.learner->on_local_samples(std::exchange(d.snapshot_samples, 0), to_time(now_));
    std::ranges::copy(d.before_merge, w.begin());
    route(d, d.learner->take_actions(), d.job_sends);
}

// The trainer hands the gossip thread its model (a copy, charged to training).
void Simulation::hand_over(Device& d) {
    const std::span<const float> w = d.model->parameters();
    d.snapshot.assign(w.begin(), w.end());
    d.snapshot_samples += std::exchange(d.unreported, 0);
    d.snapshot_ready = d.snapshot_live = true;
    d.moves.assign(w.size(), 0.0f);
    d.cpu_debt += sc_.handoff_per_send / d.speed;
    start_gossip_job(d);
}

// The gossip thread finished its job: a round's transfers leave, or a model is merged.
void Simulation::gossip_done(Device& d) {
    d.gossip_working = false;
    for (PendingSend& p : std::exchange(d.job_sends, {}))
        transfer(d, devices_[p.peer], p.transfer, std::move(p.bytes), p.opened_link);
    if (d.job_model) {
        Event e = std::move(*d.job_model);
        d.job_model.reset();
        merge(d, e);  // services d, which starts the next job
    }
    start_gossip_job(d);
    schedule(d);
}

}  // namespace starling::sim::detail

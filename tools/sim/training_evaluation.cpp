// Evaluating the simulated devices during a run and writing the final report: each device's
// accuracy, the average of all models, and the learners' counters summed.
#include <algorithm>
#include <limits>
#include <map>
#include <optional>

#include "tools/sim/training_simulation.hpp"

namespace starling::sim::detail {

void add_stats(gossip::LearnerStats& into, const gossip::LearnerStats& s) {
    into.sends_completed += s.sends_completed;
    into.bytes_sent += s.bytes_sent;
    into.sends_started += s.sends_started;
    into.models_merged += s.models_merged;
    into.models_adopted += s.models_adopted;
    into.models_clipped += s.models_clipped;
    into.lattice_blocks += s.lattice_blocks;
    into.lattice_blocks_unresolved += s.lattice_blocks_unresolved;
    into.lost_pulls += s.lost_pulls;
    into.rounds += s.rounds;
    into.rounds_waited += s.rounds_waited;
    for (std::size_t i = 0; i < gossip::kRefusalReasons; ++i) into.refused[i] += s.refused[i];
}

double Simulation::mean_epochs() const {
    double sum = 0;
    std::uint32_t n = 0;
    for (const Device& d : devices_) {
        if (!d.alive || d.shard.size() == 0) continue;
        sum += static_cast<double>(d.trained) / static_cast<double>(d.shard.size());
        ++n;
    }
    return n > 0 ? sum / n : 0.0;
}

std::uint64_t Simulation::bytes_sent_total() const {
    std::uint64_t total = 0;
    for (const Device& d : devices_)
        total += d.retired.bytes_sent + (d.learner ? d.learner->stats().bytes_sent : 0);
    return total;
}

CurvePoint Simulation::evaluate_on(const data::Dataset& ds, std::vector<double>* per_device) {
    CurvePoint p;
    p.time = now_;
    p.mean_epochs = mean_epochs();
    p.min = 1.0;
    double sum = 0;
    std::map<double, std::pair<double, std::uint32_t>> speeds;  // speed -> sum, live devices
    for (const Device& d : devices_) {
        double acc = std::numeric_limits<double>::quiet_NaN();
        if (d.alive) {
            acc = model::evaluate(d.served ? *d.served : *d.model, ds).accuracy;
            sum += acc;
            p.min = std::min(p.min, acc);
            p.max = std::max(p.max, acc);
            ++p.live;
            auto& [speed_sum, count] = speeds[d.speed];
            speed_sum += acc;
            ++count;
        }
        if (per_device) per_device->push_back(acc);
    }
    p.mean = p.live > 0 ? sum / p.live : 0.0;
    for (const auto& [speed, tally] : speeds)
        p.by_speed.emplace_back(speed, tally.first / tally.second);
    if (p.live == 0) p.min = 0;
    p.bytes_per_node = static_cast<double>(bytes_sent_total()) /
                       static_cast<double>(std::max<std::size_t>(devices_.size(), 1));
    return p;
}

void Simulation::evaluate_all() {
    const CurvePoint p = evaluate_on(eval_set_, nullptr);
    add_to_curve(p);
    if (progress_ == nullptr) return;
    std::fprintf(progress_, "t=%8.3fs epochs=%6.2f acc mean %.4f min %.4f max %.4f live %u",
                 p.time, p.mean_epochs, p.mean, p.min, p.max, p.live);
    // Where the devices of several speeds differ, and what their consensus would read: the gap
    // between the average model and the mean is what disagreement between devices costs.
    if (p.by_speed.size() > 1) {
        std::fprintf(progress_, " | by speed");
        for (const auto& [speed, acc] : p.by_speed)
            std::fprintf(progress_, " %.1f:%.4f", speed, acc);
    }
    if (p.live > 1) {
        if (const std::optional<model::Mlp> average = average_model())
            std::fprintf(progress_, " | average model %.4f",
                         model::evaluate(*average, eval_set_).accuracy);
    }
    std::fprintf(progress_, "\n");
}

void Simulation::add_to_curve(const CurvePoint& p) {
    report_.curve.push_back(p);
    if (sc_.target_accuracy > 0 && report_.target_reached_at < 0 && p.mean >= sc_.target_accuracy) {
        report_.target_reached_at = p.time;
        report_.target_reached_epochs = p.mean_epochs;
    }
}

std::optional<model::Mlp> Simulation::average_model() const {
    std::optional<model::Mlp> average;
    std::uint32_t live = 0;
    for (const Device& d : devices_) {
        if (!d.alive) continue;
        const model::Mlp& m = d.served ? *d.served : *d.model;
        if (!average) {
            average.emplace(m);
        } else {
            auto into = average->parameters();
            const auto from = m.parameters();
            for (std::size_t i = 0; i < into.size(); ++i) into[i] += from[i];
        }
        ++live;
    }
    if (!average) return average;
    for (float& v : average->parameters()) v /= static_cast<float>(live);
    return average;
}

void Simulation::evaluate_average_model() {
    report_.average_model_full = report_.average_model_subset =
        std::numeric_limits<double>::quiet_NaN();
    const std::optional<model::Mlp> average = average_model();
    if (!average) return;
    report_.average_model_full = model::evaluate(*average, test_).accuracy;
    report_.average_model_subset = model::evaluate(*average, eval_set_).accuracy;
}

void Simulation::finish() {
    report_.final_full = evaluate_on(test_, &report_.final_accuracy);
    // A run judged at its deadline, which falls between two evaluations, ends its curve (and may
    // reach the target) there, when the curve is on the same whole test set.
    if (eval_set_.size() == test_.size() &&
        (report_.curve.empty() || report_.curve.back().time < report_.final_full.time))
        add_to_curve(report_.final_full);
    evaluate_average_model();
    gossip::LearnerStats total;
    for (const Device& d : devices_) {
        add_stats(total, d.retired);
        if (d.learner) add_stats(total, d.learner->stats());
    }
    report_.exchanges = total.sends_completed;
    report_.bytes_sent = total.bytes_sent;
    report_.bytes_per_exchange =
        total.sends_started > 0 ? static_cast<double>(total.bytes_sent) / total.sends_started : 0;
    report_.fp32_message_bytes = static_cast<double>(gossip::encoded_size_estimate(
        gossip::Encoding::fp32, model::parameter_count(sc_.widths), sc_.widths.size() - 1));
    report_.merges = total.models_merged;
    report_.adopted = total.models_adopted;
    report_.clipped = total.models_clipped;
    report_.lattice_blocks = total.lattice_blocks;
    report_.lattice_blocks_unresolved = total.lattice_blocks_unresolved;
    report_.lost_pulls = total.lost_pulls;
    report_.rounds = total.rounds;
    report_.rounds_waited = total.rounds_waited;
    if (sc_.gossip_thread && now_ > 0 && !devices_.empty()) {
        double busy = 0;
        for (const Device& d : devices_) busy += d.gossip_busy;
        report_.gossip_thread_busy = busy / now_ / static_cast<double>(devices_.size());
    }
    for (std::size_t i = 0; i < gossip::kRefusalReasons; ++i) report_.refused[i] = total.refused[i];
}

}  // namespace starling::sim::detail

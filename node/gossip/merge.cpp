#include "node/gossip/merge.hpp"

#include <algorithm>
#include <array>
#include <cassert>
#include <cmath>

namespace starling::gossip {

std::string_view to_string(Weighting weighting) noexcept {
    switch (weighting) {
    case Weighting::equal: return "equal";
    case Weighting::samples_seen: return "samples";
    case Weighting::push_sum: return "push-sum";
    }
    return "?";
}

bool parse_weighting(std::string_view text, Weighting& out) noexcept {
    for (const Weighting w : {Weighting::equal, Weighting::samples_seen, Weighting::push_sum}) {
        if (text == to_string(w)) {
            out = w;
            return true;
        }
    }
    return false;
}

// Sums of squares in double over independent lanes: one running sum would chain every add on
// the last (latency-bound, and never vectorised, since reordering changes the rounding). `terms`
// gives value i's term for each of the Sums sums; every sum is folded lane 0 to 7.
template <std::size_t Sums, typename Terms>
std::array<double, Sums> lane_sums(std::size_t n, Terms terms) noexcept {
    constexpr std::size_t kLanes = 8;
    std::array<std::array<double, kLanes>, Sums> lanes{};
    const auto add = [&](std::size_t lane, std::size_t i) {
        const std::array<double, Sums> t = terms(i);
        for (std::size_t s = 0; s < Sums; ++s) lanes[s][lane] += t[s];
    };
    std::size_t i = 0;
    for (; i + kLanes <= n; i += kLanes)
        for (std::size_t l = 0; l < kLanes; ++l) add(l, i + l);
    for (; i < n; ++i) add(0, i);
    std::array<double, Sums> sums{};
    for (std::size_t s = 0; s < Sums; ++s)
        for (const double l : lanes[s]) sums[s] += l;
    return sums;
}

double l2_norm(std::span<const float> values) noexcept {
    return std::sqrt(lane_sums<1>(values.size(), [values](std::size_t i) {
        const double v = values[i];
        return std::array{v * v};
    })[0]);
}

double l2_distance(std::span<const float> a, std::span<const float> b) noexcept {
    assert(a.size() == b.size());
    return std::sqrt(lane_sums<1>(a.size(), [a, b](std::size_t i) {
        const double d = double(a[i]) - double(b[i]);
        return std::array{d * d};
    })[0]);
}

namespace {

// The two sums a merge judges by, in one pass over both models: lane_sums as l2_distance and
// l2_norm take them, so the same values to the last bit.
struct SumsOfSquares {
    double apart = 0.0;  // (theirs - local)^2
    double local = 0.0;
};

SumsOfSquares sums_of_squares(std::span<const float> theirs, std::span<const float> local) {
    const auto sums = lane_sums<2>(theirs.size(), [theirs, local](std::size_t i) {
        const double t = theirs[i], l = local[i];
        const double d = t - l;
        return std::array{d * d, l * l};
    });
    return {sums[0], sums[1]};
}

// Whether |theirs| > factor * |local|. |theirs| <= |local| + |theirs - local|, so a model near
// the local one (every model but a bad one) passes without a third sum over its values.
bool too_large(std::span<const float> theirs, double local_norm, double distance, double factor) {
    const double limit = factor * local_norm;
    constexpr double kRounding = 1e-9;  // relative; the sums' rounding is far below it
    if ((local_norm + distance) * (1.0 + kRounding) <= limit) return false;
    return l2_norm(theirs) > limit;
}

}  // namespace

Merger::Merger(MergeConfig config) : config_(config) {}

double Merger::median_distance() const {
    if (distances_.empty()) return 0.0;
    std::vector<double> sorted(distances_.begin(), distances_.end());
    std::nth_element(sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(sorted.size() / 2),
                     sorted.end());
    return sorted[sorted.size() / 2];
}

void Merger::judge(bool refused, const DeviceId& origin) {
    judged_.push_back({refused, origin});
    while (judged_.size() > kJudgedWindow) judged_.pop_front();
}

bool Merger::left_behind() const {
    std::size_t refused = 0;
    std::vector<DeviceId> origins;  // distinct, of all judged models
    std::vector<DeviceId> refusing;  // distinct, of the refused ones
    for (const Judged& j : judged_) {
        if (std::find(origins.begin(), origins.end(), j.origin) == origins.end())
            origins.push_back(j.origin);
        if (!j.refused) continue;
        ++refused;
        if (std::find(refusing.begin(), refusing.end(), j.origin) == refusing.end())
            refusing.push_back(j.origin);
    }
    return origins.size() <= kOriginsBeforeReset && refusing.size() >= 2 &&
           2 * refused >= kJudgedWindow;
}

MergeOutcome Merger::merge(LocalModel local, const ModelMessage& incoming) {
    assert(incoming.parameters.size() == local.parameters.size());
    const std::span<const float> theirs = incoming.parameters;
    MergeOutcome out;
    const SumsOfSquares sums = sums_of_squares(theirs, local.parameters);
    out.distance = std::sqrt(sums.apart);
    out.samples_seen = local.samples_seen;
    out.mass = local.mass;

    // Judge against recent history once there is enough of it. A run of refusals from several
    // different origins means this node, not they, moved away (a healed partition, a restore):
    // the history is then dropped and the model accepted.
    // A model far larger in norm than the local one is refused from the first merge on (an
    // initialised model is a fair yardstick: training changes norms by small factors).
    const double local_norm = std::sqrt(sums.local);
    if (local_norm > 0 && too_large(theirs, local_norm, out.distance, config_.norm_factor))
        return out;
    double radius = 0.0;
    if (distances_.size() >= std::max<std::size_t>(config_.min_history, 1)) {
        const double median = median_distance();
        const bool too_far = out.distance > config_.outlier_factor * median;
        judge(too_far, incoming.origin);
        if (too_far) {
            if (std::find(refusing_origins_.begin(), refusing_origins_.end(), incoming.origin) ==
                refusing_origins_.end())
                refusing_origins_.push_back(incoming.origin);
            if (refusing_origins_.size() < kOriginsBeforeReset && !left_behind()) return out;
            distances_.clear();
            window_.clear();
            judged_.clear();
        } else {
            radius = config_.clip_factor * median;
        }
    }
    refusing_origins_.clear();

    // The incoming model, pulled back onto the clip radius when far (but not an outlier); a
    // copy only when it is clipped or kept for the trimmed mean.
    std::span<const float> incoming_values = theirs;
    out.clipped = radius > 0.0 && out.distance > radius;
    if (out.clipped || config_.trimmed_window > 0) {
        scratch_.assign(theirs.begin(), theirs.end());
        if (out.clipped) {
            const float keep = static_cast<float>(radius / out.distance);
            for (std::size_t i = 0; i < scratch_.size(); ++i)
                scratch_[i] = local.parameters[i] + keep * (scratch_[i] - local.parameters[i]);
        }
        incoming_values = scratch_;
    }
    distances_.push_back(out.clipped ? radius : out.distance);
    while (distances_.size() > std::max<std::size_t>(config_.history, 1)) distances_.pop_front();

    double w = 1.0 / (2.0 + local.batch_weight);
    switch (config_.weighting) {
    case Weighting::equal: out.batch_weight = 1.0; break;
    case Weighting::samples_seen: {
        const double mine = static_cast<double>(local.samples_seen) + local.batch_weight;
        const double theirs_seen = static_cast<double>(incoming.samples_seen);
        if (mine + theirs_seen > 0) w = theirs_seen / (mine + theirs_seen);
        out.batch_weight = theirs_seen;
        break;
    }
    case Weighting::push_sum:
        w = incoming.mass / (incoming.mass + local.mass);
        out.mass = incoming.mass + local.mass;
        break;
    }
    out.samples_seen = std::max(local.samples_seen, incoming.samples_seen);
    out.incoming_weight = w;
    out.accepted = true;

    if (config_.trimmed_window == 0) {
        const float wf = static_cast<float>(w);
        for (std::size_t i = 0; i < incoming_values.size(); ++i)
            local.parameters[i] += wf * (incoming_values[i] - local.parameters[i]);
        return out;
    }

    // Coordinate-wise trimmed mean over the local model and the recent accepted ones.
    window_.push_back(scratch_);
    while (window_.size() > config_.trimmed_window) window_.pop_front();
    const std::size_t k = window_.size() + 1;
    const auto trim = static_cast<std::size_t>(config_.trim_fraction * static_cast<double>(k));
    const std::size_t kept = k > 2 * trim ? k - 2 * trim : 1;
    const std::size_t first = k > 2 * trim ? trim : (k - 1) / 2;
    std::vector<float> column(k);
    for (std::size_t i = 0; i < local.parameters.size(); ++i) {
        column[0] = local.parameters[i];
        for (std::size_t m = 0; m < window_.size(); ++m) column[m + 1] = window_[m][i];
        std::sort(column.begin(), column.end());
        double sum = 0.0;
        for (std::size_t m = first; m < first + kept; ++m) sum += column[m];
        local.parameters[i] = static_cast<float>(sum / static_cast<double>(kept));
    }
    return out;
}

}  // namespace starling::gossip

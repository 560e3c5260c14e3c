#pragma once
// Folding a peer's model into the local one: a weighted average by what each model has seen,
// guarded against a bad update (norm and distance checks against recent history, clipping), with
// a coordinate-wise trimmed mean over the last few models as a sturdier option.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <span>
#include <string_view>
#include <vector>

#include "node/gossip/model_wire.hpp"

namespace starling::gossip {

enum class Weighting : std::uint8_t {
    equal,         // plain pairwise average
    samples_seen,  // each side by the examples behind it (gossip learning's "age")
    push_sum,      // each side by its push-sum mass; masses add up
};
std::string_view to_string(Weighting weighting) noexcept;
bool parse_weighting(std::string_view text, Weighting& out) noexcept;

struct MergeConfig {
    Weighting weighting = Weighting::samples_seen;
    // Refuse a model whose distance to the local one exceeds outlier_factor times the median
    // of the last `history` accepted distances (once min_history of them are known).
    double outlier_factor = 4.0;
    std::size_t history = 16;
    std::size_t min_history = 4;
    // Pull a model further than clip_factor times that median back onto that radius.
    double clip_factor = 2.0;
    // Refuse a model whose norm exceeds norm_factor times the local norm (always, history or
    // not: huge values never get in, even as a device's first merge).
    double norm_factor = 3.0;
    // Coordinate-wise trimmed mean over the local model and the last `trimmed_window` accepted
    // models (0: off, plain weighted average); trim_fraction of each tail is dropped.
    std::size_t trimmed_window = 0;
    double trim_fraction = 0.2;
};

struct LocalModel {
    std::span<float> parameters;
    std::uint64_t samples_seen = 0;  // examples behind it
    double mass = 1.0;               // push-sum mass
    // Weight (in the weighting's units: models for equal, examples for samples_seen) of the
    // models already folded into `parameters` in this batch: the next one then takes its share
    // of the batch's average, not half of what is there. 0: a plain pairwise merge.
    double batch_weight = 0.0;
};

struct MergeOutcome {
    bool accepted = false;            // false: refused as an outlier (Refusal::outlier)
    bool clipped = false;
    double distance = 0.0;            // L2 between incoming and local, before clipping
    double incoming_weight = 0.0;     // the share the incoming model got (0 when refused)
    double batch_weight = 0.0;        // what it adds to LocalModel::batch_weight
    std::uint64_t samples_seen = 0;   // the merged model's
    double mass = 1.0;                // the merged model's
};

// Distinct origins refused as too far, with no acceptance between, after which this node
// concludes that it is the one that moved (a healed partition): history is dropped, the model
// accepted. One hostile peer alone never triggers it; a model too large in norm never does.
inline constexpr std::size_t kOriginsBeforeReset = 3;
// In a small cluster (no more than kOriginsBeforeReset origins among the last kJudgedWindow
// judged models) the same conclusion when half of those were refused as too far, from two origins
// or more: there a group left behind together keeps accepting its own members' models between
// refusals, and there are too few others for three in a row (two of a 4-device cluster stuck
// apart from the other two refused ~1,550 models each and never merged again). In a larger one
// the rule above stays the only one: this one, tried there, reset devices that were not behind.
inline constexpr std::size_t kJudgedWindow = 8;

class Merger {
public:
    explicit Merger(MergeConfig config);

    const MergeConfig& config() const noexcept { return config_; }

    // Merges `incoming` (already decoded and shape-checked) into `local`, or refuses it as an
    // outlier. On acceptance local.parameters holds the merge; the caller stores the returned
    // samples_seen and mass.
    MergeOutcome merge(LocalModel local, const ModelMessage& incoming);

    std::size_t known_distances() const noexcept { return distances_.size(); }
    // Median of the recent accepted distances (0 when none).
    double median_distance() const;

private:
    MergeConfig config_;
    std::deque<double> distances_;
    std::deque<std::vector<float>> window_;  // last accepted models, for the trimmed mean
    std::vector<DeviceId> refusing_origins_;  // distinct origins refused since the last accept
    struct Judged {
        bool refused = false;
        DeviceId origin{};
    };
    std::deque<Judged> judged_;  // the last kJudgedWindow outcomes of the distance check
    void judge(bool refused, const DeviceId& origin);
    bool left_behind() const;
    std::vector<float> scratch_;
};

// L2 norm and distance over flat parameter buffers (double accumulation).
double l2_norm(std::span<const float> values) noexcept;
double l2_distance(std::span<const float> a, std::span<const float> b) noexcept;

}  // namespace starling::gossip

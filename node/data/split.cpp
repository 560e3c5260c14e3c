// Splits are built only from std::mt19937_64 (whose output the standard fixes) and our own
// distributions: std::uniform_*_distribution, std::shuffle and std::gamma_distribution differ
// between standard libraries, which would give two nodes different shards for one seed.

#include "node/data/split.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>

#include "node/data/limits.hpp"

namespace starling::data {
namespace {

using Rng = std::mt19937_64;
using Shards = std::vector<std::vector<std::uint32_t>>;

// Uniform in [0, n) without modulo bias: draws below 2^64 mod n are rejected.
std::uint64_t uniform_below(Rng& rng, std::uint64_t n) {
    const std::uint64_t threshold = (0 - n) % n;
    for (;;)
        if (const std::uint64_t r = rng(); r >= threshold) return r % n;
}

// Uniform in [0, 1) from the top 53 bits.
double uniform_unit(Rng& rng) {
    return static_cast<double>(rng() >> 11) * 0x1.0p-53;
}

// Uniform in (0, 1], so its logarithm is finite.
double uniform_positive(Rng& rng) {
    return static_cast<double>((rng() >> 11) + 1) * 0x1.0p-53;
}

template <class T>
void fisher_yates(std::vector<T>& items, Rng& rng) {
    for (std::size_t i = items.size(); i > 1; --i)
        std::swap(items[i - 1], items[uniform_below(rng, i)]);
}

// Marsaglia's polar method; the second normal of each pair is dropped to keep no hidden state.
double standard_normal(Rng& rng) {
    for (;;) {
        const double u = 2.0 * uniform_unit(rng) - 1.0;
        const double v = 2.0 * uniform_unit(rng) - 1.0;
        const double s = u * u + v * v;
        if (s > 0.0 && s < 1.0) return u * std::sqrt(-2.0 * std::log(s) / s);
    }
}

// log of a Gamma(shape, 1) draw, by Marsaglia & Tsang (2000). Logs keep tiny shapes, whose
// draws underflow to 0 as plain doubles, usable for Dirichlet proportions.
double log_gamma_draw(double shape, Rng& rng) {
    if (shape < 1.0)  // Gamma(a) = Gamma(a + 1) · U^(1/a)
        return log_gamma_draw(shape + 1.0, rng) + std::log(uniform_positive(rng)) / shape;
    const double d = shape - 1.0 / 3.0;
    const double c = 1.0 / std::sqrt(9.0 * d);
    for (;;) {
        const double x = standard_normal(rng);
        const double t = 1.0 + c * x;
        if (t <= 0.0) continue;
        const double v = t * t * t;
        const double u = uniform_positive(rng);
        if (u < 1.0 - 0.0331 * x * x * x * x) return std::log(d * v);
        if (std::log(u) < 0.5 * x * x + d * (1.0 - v + std::log(v))) return std::log(d * v);
    }
}

// Proportions ~ Dir(alpha, ..., alpha) over `parts` entries, summing to 1.
std::vector<double> dirichlet_draw(double alpha, std::uint32_t parts, Rng& rng) {
    std::vector<double> p(parts);
    for (double& x : p) x = log_gamma_draw(alpha, rng);
    const double top = *std::max_element(p.begin(), p.end());
    double sum = 0.0;
    for (double& x : p) sum += (x = std::exp(x - top));
    for (double& x : p) x /= sum;
    return p;
}

// Example indices per label, ascending; labels no example has stay empty.
Shards examples_by_class(const Dataset& ds) {
    Shards by_class(kMaxClassCount);
    for (std::size_t i = 0; i < ds.size(); ++i)
        by_class[ds.labels[i]].push_back(static_cast<std::uint32_t>(i));
    return by_class;
}

// Hands `items` out to `holders` in contiguous runs whose sizes differ by at most one.
void deal_evenly(const std::vector<std::uint32_t>& items, const std::vector<std::uint32_t>& holders,
                 Shards& shards) {
    const std::size_t base = items.size() / holders.size();
    const std::size_t extra = items.size() % holders.size();
    std::size_t next = 0;
    for (std::size_t h = 0; h < holders.size(); ++h) {
        const std::size_t take = base + (h < extra ? 1 : 0);
        auto& shard = shards[holders[h]];
        shard.insert(shard.end(), items.begin() + next, items.begin() + next + take);
        next += take;
    }
}

Shards split_iid(const Dataset& ds, std::uint32_t nodes, Rng& rng) {
    std::vector<std::uint32_t> order(ds.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<std::uint32_t>(i);
    fisher_yates(order, rng);
    std::vector<std::uint32_t> everyone(nodes);
    for (std::uint32_t n = 0; n < nodes; ++n) everyone[n] = n;
    Shards shards(nodes);
    deal_evenly(order, everyone, shards);
    return shards;
}

Result<Shards> split_classes(const Dataset& ds, std::uint32_t per_node, std::uint32_t nodes,
                             Rng& rng) {
    Shards by_class = examples_by_class(ds);
    std::vector<std::uint32_t> present;
    for (std::uint32_t c = 0; c < by_class.size(); ++c)
        if (!by_class[c].empty()) present.push_back(c);
    if (per_node > present.size())
        return make_error(ErrorCode::invalid_argument, "classes:" + std::to_string(per_node) +
                                                           " needs " + std::to_string(per_node) +
                                                           " distinct classes, the dataset has " +
                                                           std::to_string(present.size()));
    // Round-robin over a shuffled class list: node n takes K consecutive entries, which are
    // distinct because K <= the list's length, and every class is taken equally often (±1).
    fisher_yates(present, rng);
    Shards holders(kMaxClassCount);
    for (std::uint64_t n = 0; n < nodes; ++n)
        for (std::uint64_t k = 0; k < per_node; ++k)
            holders[present[(n * per_node + k) % present.size()]].push_back(
                static_cast<std::uint32_t>(n));
    Shards shards(nodes);
    for (std::uint32_t c = 0; c < by_class.size(); ++c) {
        if (holders[c].empty()) continue;
        if (by_class[c].size() < holders[c].size())
            return make_error(ErrorCode::invalid_argument,
                              "class " + std::to_string(c) + " has " +
                                  std::to_string(by_class[c].size()) + " examples but " +
                                  std::to_string(holders[c].size()) + " nodes must share it");
        fisher_yates(by_class[c], rng);
        deal_evenly(by_class[c], holders[c], shards);
    }
    return shards;
}

// Gives every empty shard one example from the largest shard (the first, on ties). Possible
// whenever nodes <= examples: an empty shard means the others hold them all.
void fill_empty_shards(Shards& shards) {
    for (auto& shard : shards) {
        if (!shard.empty()) continue;
        auto donor =
            std::max_element(shards.begin(), shards.end(),
                             [](const auto& a, const auto& b) { return a.size() < b.size(); });
        shard.push_back(donor->back());
        donor->pop_back();
    }
}

Shards split_dirichlet(const Dataset& ds, double alpha, std::uint32_t nodes, Rng& rng) {
    Shards by_class = examples_by_class(ds);
    Shards shards(nodes);
    for (auto& members : by_class) {
        if (members.empty()) continue;
        const std::vector<double> share = dirichlet_draw(alpha, nodes, rng);
        fisher_yates(members, rng);
        // Cut points at the cumulative proportions; the last cut is forced to the end so
        // rounding never drops or repeats an example.
        double cumulative = 0.0;
        std::size_t start = 0;
        for (std::uint32_t n = 0; n < nodes; ++n) {
            cumulative += share[n];
            const auto cut = static_cast<std::size_t>(
                std::floor(cumulative * static_cast<double>(members.size())));
            const std::size_t end =
                n + 1 == nodes ? members.size() : std::clamp(cut, start, members.size());
            shards[n].insert(shards[n].end(), members.begin() + start, members.begin() + end);
            start = end;
        }
    }
    fill_empty_shards(shards);
    return shards;
}

Status check_split_inputs(const Dataset& ds, std::uint32_t nodes) {
    if (nodes == 0) return make_error(ErrorCode::invalid_argument, "cannot split among 0 nodes");
    if (ds.size() == 0)
        return make_error(ErrorCode::invalid_argument, "cannot split an empty dataset");
    if (ds.size() > kMaxExampleCount)
        return make_error(ErrorCode::too_large,
                          std::to_string(ds.size()) + " examples exceed the limit");
    if (nodes > ds.size())
        return make_error(ErrorCode::invalid_argument,
                          std::to_string(nodes) + " nodes but only " + std::to_string(ds.size()) +
                              " examples: every node needs at least one");
    return Ok{};
}

}  // namespace

Result<SplitScheme> parse_split_scheme(std::string_view text) {
    const auto bad = [&](std::string_view why) {
        return make_error(ErrorCode::invalid_argument,
                          "split scheme \"" + std::string(text) + "\": " + std::string(why));
    };
    const auto argument = [&](std::string_view prefix) { return text.substr(prefix.size()); };
    if (text == "iid") return SplitScheme{SplitScheme::iid, 0, 0.0};
    if (text.starts_with("classes:")) {
        const std::string_view k = argument("classes:");
        int value = 0;
        const auto [end, ec] = std::from_chars(k.data(), k.data() + k.size(), value);
        if (ec != std::errc() || end != k.data() + k.size() || k.empty())
            return bad("K must be a whole number");
        if (value < 1 || value > static_cast<int>(kMaxClassCount))
            return bad("K must be in 1..256");
        return SplitScheme{SplitScheme::classes, value, 0.0};
    }
    if (text.starts_with("dirichlet:")) {
        const std::string_view a = argument("dirichlet:");
        double value = 0.0;
        const auto [end, ec] = std::from_chars(a.data(), a.data() + a.size(), value);
        if (ec != std::errc() || end != a.data() + a.size() || a.empty())
            return bad("ALPHA must be a number");
        if (!std::isfinite(value) || value <= 0.0) return bad("ALPHA must be finite and above 0");
        return SplitScheme{SplitScheme::dirichlet, 0, value};
    }
    return bad("expected iid, classes:K or dirichlet:ALPHA");
}

std::string to_string(const SplitScheme& scheme) {
    switch (scheme.kind) {
        case SplitScheme::iid:
            return "iid";
        case SplitScheme::classes:
            return "classes:" + std::to_string(scheme.classes_per_node);
        case SplitScheme::dirichlet: {
            // The fewest significant digits that read back as alpha. Not std::to_chars: its
            // floating-point tables alone are ~110 KB of the static binary's 4 MB budget.
            char text[32] = "";
            for (int digits = 1; digits <= 17; ++digits) {
                std::snprintf(text, sizeof text, "%.*g", digits, scheme.alpha);
                if (std::strtod(text, nullptr) == scheme.alpha) break;
            }
            return "dirichlet:" + std::string(text);
        }
    }
    return "unknown";
}

Result<Shards> split_indices(const Dataset& ds, const SplitScheme& scheme, std::uint32_t nodes,
                             std::uint64_t seed) {
    if (Status st = check_split_inputs(ds, nodes); !st) return st.error();
    Rng rng(seed);
    Result<Shards> shards = Shards{};
    switch (scheme.kind) {
        case SplitScheme::iid:
            shards = split_iid(ds, nodes, rng);
            break;
        case SplitScheme::classes:
            if (scheme.classes_per_node < 1)
                return make_error(ErrorCode::invalid_argument, "classes:K needs K >= 1");
            shards =
                split_classes(ds, static_cast<std::uint32_t>(scheme.classes_per_node), nodes, rng);
            break;
        case SplitScheme::dirichlet:
            if (!std::isfinite(scheme.alpha) || scheme.alpha <= 0.0)
                return make_error(ErrorCode::invalid_argument,
                                  "dirichlet:ALPHA needs a finite ALPHA > 0");
            shards = split_dirichlet(ds, scheme.alpha, nodes, rng);
            break;
    }
    if (shards)
        for (auto& shard : *shards) std::sort(shard.begin(), shard.end());
    return shards;
}

}  // namespace starling::data

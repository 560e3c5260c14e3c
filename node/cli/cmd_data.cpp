// `starling data split`: one dataset dealt out to N simulated nodes, one directory each, in the
// same layout load_dir reads, so every node process loads its shard like a real device would.

#include "node/cli/commands.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "node/cli/cli.hpp"
#include "node/data/dataset.hpp"
#include "node/data/split.hpp"
#include "protocol/result.hpp"

namespace starling::cli {
namespace {

namespace fs = std::filesystem;
using data::Dataset;

constexpr std::size_t kMinNodeDigits = 3;

// node-007 for 10 nodes, node-0042 for 1000 or more: names sort in node order.
std::string node_dir_name(std::uint32_t node, std::uint32_t nodes) {
    const std::string digits = std::to_string(node);
    const std::size_t width = std::max(kMinNodeDigits, std::to_string(nodes - 1).size());
    return "node-" + std::string(width - digits.size(), '0') + digits;
}

// " 0:600 3:598 ..." for the classes present.
std::string class_counts(const Dataset& ds) {
    std::array<std::size_t, 256> counts{};
    for (std::uint8_t label : ds.labels) ++counts[label];
    std::string text;
    for (std::size_t c = 0; c < counts.size(); ++c)
        if (counts[c] != 0) text += " " + std::to_string(c) + ":" + std::to_string(counts[c]);
    return text;
}

// Writes each node's shard, one summary line per node; returns the first failure.
Status write_shards(const Dataset& train, const std::vector<std::vector<std::uint32_t>>& shards,
                    const fs::path& out) {
    const auto nodes = static_cast<std::uint32_t>(shards.size());
    for (std::uint32_t n = 0; n < nodes; ++n) {
        const Dataset shard = train.subset(shards[n]);
        const std::string name = node_dir_name(n, nodes);
        if (Status st = data::save_dir(shard, out / name, data::Split::train); !st) return st;
        std::cout << name << ": " << shard.size() << " examples," << class_counts(shard) << '\n';
    }
    return Ok{};
}

}  // namespace

int run_data_split(const DataSplitArgs& opts) {
    if (opts.nodes < 1 || opts.nodes > kMaxSplitNodes)
        return report(make_error(ErrorCode::invalid_argument,
                                 "--nodes must be in 1.." + std::to_string(kMaxSplitNodes) + ", got " +
                                     std::to_string(opts.nodes)));
    const Result<data::SplitScheme> scheme = data::parse_split_scheme(opts.scheme);
    if (!scheme) return report(scheme.error());
    const Result<Dataset> train = data::load_dir(opts.source, data::Split::train);
    if (!train) return report(train.error());
    // The test split is optional; anything wrong with one that is there is still an error.
    const Result<Dataset> test = data::load_dir(opts.source, data::Split::test);
    if (!test && test.error().code != ErrorCode::not_found) return report(test.error());

    const auto nodes = static_cast<std::uint32_t>(opts.nodes);
    const auto shards = data::split_indices(*train, *scheme, nodes, opts.seed);
    if (!shards) return report(shards.error());
    const fs::path out(opts.out);
    if (Status st = write_shards(*train, *shards, out); !st) return report(st.error());
    if (test)
        if (Status st = data::save_dir(*test, out / "test", data::Split::test); !st)
            return report(st.error());

    std::size_t assigned = 0;
    for (const auto& shard : *shards) assigned += shard.size();
    std::cout << "total: " << assigned << " of " << train->size() << " train examples over "
              << nodes << " nodes (" << data::to_string(*scheme) << ", seed " << opts.seed << "); ";
    if (test)
        std::cout << test->size() << " test examples in " << (out / "test").string() << '\n';
    else
        std::cout << "no test split in " << opts.source << '\n';
    return kExitOk;
}

}  // namespace starling::cli

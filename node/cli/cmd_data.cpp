// `starling data split`: one dataset dealt out to N simulated nodes, one directory each, in the
// same layout load_dir reads, so every node process loads its shard like a real device would.

#include "node/cli/cmd_data.hpp"

#include <CLI/CLI.hpp>
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

constexpr long long kMaxNodes = 4096;
constexpr std::size_t kMinNodeDigits = 3;

struct DataSplitOptions {
    std::string source;
    std::string out;
    std::string scheme = "iid";
    long long nodes = 0;
    std::uint64_t seed = 1;
};

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

int run_data_split(const DataSplitOptions& opts) {
    if (opts.nodes < 1 || opts.nodes > kMaxNodes)
        return report(make_error(ErrorCode::invalid_argument,
                                 "--nodes must be in 1.." + std::to_string(kMaxNodes) + ", got " +
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

}  // namespace

void add_data_commands(CLI::App& app) {
    CLI::App* data = app.add_subcommand("data", "Prepare local datasets");
    data->require_subcommand(1);
    CLI::App* split = data->add_subcommand(
        "split",
        "Deal a dataset's train split out to N node directories (and copy its test split)");
    auto opts = std::make_shared<DataSplitOptions>();
    split->add_option("--source", opts->source, "Directory with the dataset (IDX or CSV names)")
        ->required();
    split->add_option("--nodes", opts->nodes, "Number of nodes, 1..4096")->required();
    split->add_option("--scheme", opts->scheme, "iid, classes:K or dirichlet:ALPHA")
        ->capture_default_str();
    split->add_option("--seed", opts->seed, "The same seed gives the same shards on every platform")
        ->capture_default_str();
    split->add_option("--out", opts->out, "Directory to write node-NNN/ and test/ into")
        ->required();
    split->callback([opts] { exit_code() = run_data_split(*opts); });
}

}  // namespace starling::cli

#pragma once
// Dealing one dataset's examples out to simulated nodes: evenly (iid), a few classes each
// (classes:K), or with Dirichlet-skewed class mixes (dirichlet:ALPHA), the usual non-IID recipes.
// The same seed gives the same shards on every platform and standard library.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "node/data/dataset.hpp"
#include "protocol/result.hpp"

namespace starling::data {

struct SplitScheme {
    enum Kind { iid, classes, dirichlet };
    Kind kind = iid;
    int classes_per_node = 0;  // classes:K
    double alpha = 0.0;        // dirichlet:ALPHA; small is skewed, large approaches iid
};

// "iid", "classes:K" (1 <= K <= 256) or "dirichlet:ALPHA" (finite ALPHA > 0).
Result<SplitScheme> parse_split_scheme(std::string_view text);

// The scheme in the form parse_split_scheme reads.
std::string to_string(const SplitScheme& scheme);

// One list of example indices per node, each sorted ascending. iid and dirichlet assign every
// example to exactly one node and leave no node empty; classes:K gives each node exactly K
// distinct classes and uses every example at most once (classes held by no node go unused).
// Fails with invalid_argument when the dataset cannot be split that way (e.g. more nodes than
// examples, K above the number of classes present).
Result<std::vector<std::vector<std::uint32_t>>> split_indices(const Dataset& ds,
                                                              const SplitScheme& scheme,
                                                              std::uint32_t nodes,
                                                              std::uint64_t seed);

}  // namespace starling::data

// Splitting a dataset among simulated nodes: scheme parsing, determinism, and each scheme's
// promises (balance, classes per node, full coverage).
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "node/data/split.hpp"

using namespace starling;
using namespace starling::data;

namespace {

using Shards = std::vector<std::vector<std::uint32_t>>;

// `n` examples of one feature; label i % classes, so classes are interleaved and equal-sized.
Dataset labelled(std::size_t n, std::uint32_t classes) {
    Dataset ds;
    ds.features = 1;
    ds.classes = classes;
    for (std::size_t i = 0; i < n; ++i) {
        ds.labels.push_back(static_cast<std::uint8_t>(i % classes));
        ds.bytes.push_back(static_cast<std::uint8_t>(i));
    }
    return ds;
}

Shards split(const Dataset& ds, const std::string& scheme, std::uint32_t nodes,
             std::uint64_t seed) {
    Result<SplitScheme> parsed = parse_split_scheme(scheme);
    REQUIRE_MESSAGE(parsed.ok(), parsed.error().message);
    Result<Shards> shards = split_indices(ds, *parsed, nodes, seed);
    REQUIRE_MESSAGE(shards.ok(), shards.error().message);
    REQUIRE(shards->size() == nodes);
    return std::move(shards).value();
}

// How often each example index occurs over all shards.
std::vector<int> uses(const Shards& shards, std::size_t n) {
    std::vector<int> count(n, 0);
    for (const auto& shard : shards) {
        CHECK(std::is_sorted(shard.begin(), shard.end()));
        for (std::uint32_t i : shard) {
            REQUIRE(i < n);
            ++count[i];
        }
    }
    return count;
}

std::set<std::uint8_t> classes_in(const Dataset& ds, const std::vector<std::uint32_t>& shard) {
    std::set<std::uint8_t> seen;
    for (std::uint32_t i : shard) seen.insert(ds.labels[i]);
    return seen;
}

}  // namespace

TEST_CASE("split schemes parse, and bad ones are refused") {
    Result<SplitScheme> iid = parse_split_scheme("iid");
    REQUIRE(iid.ok());
    CHECK(iid->kind == SplitScheme::iid);
    Result<SplitScheme> classes = parse_split_scheme("classes:3");
    REQUIRE(classes.ok());
    CHECK(classes->kind == SplitScheme::classes);
    CHECK(classes->classes_per_node == 3);
    Result<SplitScheme> dir = parse_split_scheme("dirichlet:0.5");
    REQUIRE(dir.ok());
    CHECK(dir->kind == SplitScheme::dirichlet);
    CHECK(dir->alpha == 0.5);
    CHECK(to_string(*dir) == "dirichlet:0.5");
    CHECK(to_string(*classes) == "classes:3");

    for (const char* bad : {"",
                            "IID",
                            "iid ",
                            "iid:1",
                            "classes",
                            "classes:",
                            "classes:0",
                            "classes:-1",
                            "classes:x",
                            "classes:2x",
                            "classes:257",
                            "classes:1.5",
                            "dirichlet",
                            "dirichlet:",
                            "dirichlet:0",
                            "dirichlet:-1",
                            "dirichlet:nan",
                            "dirichlet:inf",
                            "dirichlet:1e999",
                            "dirichlet:0.5x",
                            "shards:2"}) {
        CAPTURE(bad);
        Result<SplitScheme> r = parse_split_scheme(bad);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code == ErrorCode::invalid_argument);
    }
}

TEST_CASE("the same seed gives the same shards, another seed other shards") {
    const Dataset ds = labelled(500, 10);
    for (const char* scheme : {"iid", "classes:2", "dirichlet:0.3"}) {
        CAPTURE(scheme);
        CHECK(split(ds, scheme, 7, 42) == split(ds, scheme, 7, 42));
        CHECK(split(ds, scheme, 7, 42) != split(ds, scheme, 7, 43));
    }
}

TEST_CASE("shards are pinned for a seed, so every platform and standard library agree") {
    // Only std::mt19937_64's output, fixed by the standard, and our own code decide these
    // (the iid case was cross-checked against an independent mt19937_64 in Python).
    const Dataset ds = labelled(10, 2);
    CHECK(split(ds, "iid", 3, 1) == Shards{{1, 3, 7, 9}, {0, 4, 5}, {2, 6, 8}});
    CHECK(split(ds, "classes:1", 2, 1) == Shards{{1, 3, 5, 7, 9}, {0, 2, 4, 6, 8}});
    CHECK(split(ds, "dirichlet:1", 3, 1) == Shards{{5}, {0, 8}, {1, 2, 3, 4, 6, 7, 9}});
}

TEST_CASE("iid covers every example once in shards whose sizes differ by at most one") {
    const Dataset ds = labelled(1003, 10);
    const Shards shards = split(ds, "iid", 10, 5);
    for (int n : uses(shards, ds.size())) CHECK(n == 1);
    for (const auto& shard : shards) CHECK((shard.size() == 100 || shard.size() == 101));
    CHECK(split(ds, "iid", 1, 5)[0].size() == ds.size());
}

TEST_CASE("classes:K gives each node exactly K classes and uses no example twice") {
    const Dataset ds = labelled(1000, 10);
    const Shards shards = split(ds, "classes:2", 10, 9);
    for (int n : uses(shards, ds.size())) CHECK(n <= 1);
    std::vector<int> holders(10, 0);
    for (const auto& shard : shards) {
        const auto seen = classes_in(ds, shard);
        CHECK(seen.size() == 2);
        for (std::uint8_t c : seen) ++holders[c];
    }
    for (int h : holders) CHECK(h == 2);  // round-robin: every class used equally
    for (const auto& shard : shards) CHECK(shard.size() == 100);

    // More nodes than class slots: classes are shared, examples still used at most once.
    const Shards many = split(ds, "classes:3", 25, 9);
    for (int n : uses(many, ds.size())) CHECK(n <= 1);
    for (const auto& shard : many) CHECK(classes_in(ds, shard).size() == 3);
}

TEST_CASE("dirichlet covers every example exactly once and leaves no node empty") {
    const Dataset ds = labelled(2000, 10);
    for (const char* scheme :
         {"dirichlet:0.001", "dirichlet:0.1", "dirichlet:1", "dirichlet:100"}) {
        CAPTURE(scheme);
        const Shards shards = split(ds, scheme, 20, 3);
        for (int n : uses(shards, ds.size())) CHECK(n == 1);
        for (const auto& shard : shards) CHECK_FALSE(shard.empty());
    }
    // As many nodes as examples: one each, even when the proportions are extreme.
    const Dataset tiny = labelled(30, 3);
    for (const auto& shard : split(tiny, "dirichlet:0.01", 30, 8)) CHECK(shard.size() == 1);
}

TEST_CASE("dirichlet alpha sets the skew: small alpha concentrates classes, large spreads them") {
    const Dataset ds = labelled(10000, 10);
    const auto largest_class_share = [&](const Shards& shards) {
        double worst = 0.0;
        for (const auto& shard : shards) {
            std::vector<double> count(10, 0.0);
            for (std::uint32_t i : shard) count[ds.labels[i]] += 1.0;
            worst = std::max(worst, *std::max_element(count.begin(), count.end()) /
                                        static_cast<double>(shard.size()));
        }
        return worst;
    };
    const Shards skewed = split(ds, "dirichlet:0.05", 10, 11);
    const Shards even = split(ds, "dirichlet:1000", 10, 11);
    CHECK(largest_class_share(skewed) > 0.5);
    CHECK(largest_class_share(even) < 0.2);
    for (const auto& shard : even) CHECK(shard.size() == doctest::Approx(1000).epsilon(0.1));
}

TEST_CASE("splits that cannot be made are refused") {
    const Dataset ds = labelled(20, 4);
    const SplitScheme iid{SplitScheme::iid, 0, 0.0};
    const auto code = [&](const SplitScheme& s, std::uint32_t nodes) {
        Result<Shards> r = split_indices(ds, s, nodes, 1);
        REQUIRE_FALSE(r.ok());
        INFO(r.error().message);
        return r.error().code;
    };
    CHECK(code(iid, 0) == ErrorCode::invalid_argument);
    CHECK(code(iid, 21) == ErrorCode::invalid_argument);
    CHECK(code(SplitScheme{SplitScheme::dirichlet, 0, 1.0}, 21) == ErrorCode::invalid_argument);
    CHECK(code(SplitScheme{SplitScheme::classes, 5, 0.0}, 2) == ErrorCode::invalid_argument);
    CHECK(code(SplitScheme{SplitScheme::classes, 0, 0.0}, 2) == ErrorCode::invalid_argument);
    CHECK(code(SplitScheme{SplitScheme::dirichlet, 0, 0.0}, 2) == ErrorCode::invalid_argument);
    // Each class has 5 examples; 8 nodes × 4 classes puts 8 holders on each.
    CHECK(code(SplitScheme{SplitScheme::classes, 4, 0.0}, 8) == ErrorCode::invalid_argument);
    Result<Shards> empty = split_indices(Dataset{}, iid, 1, 1);
    REQUIRE_FALSE(empty.ok());
    CHECK(empty.error().code == ErrorCode::invalid_argument);
}

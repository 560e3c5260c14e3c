#pragma once
// Every `starling` subcommand as a plain function of its arguments. Only main.cpp knows the
// command-line parser, so the commands compile fast and can be called directly.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace starling::cli {

struct TrainArgs {
    std::string data;
    std::string test;
    std::string model = "mlp";
    std::uint32_t epochs = 20;
    int batch = 64;
    std::string optimizer = "sgd";
    std::optional<float> learning_rate;  // default: 0.05 for sgd, 0.001 for adam
    float momentum = 0.9f;
    bool nesterov = false;  // SGD: each step looks ahead along the momentum
    float weight_decay = 0.0f;
    std::string schedule = "cosine";
    std::uint64_t seed = 1;
    std::string out = "starling-model.ckpt";
    std::string resume;
    std::string simd;
    // Empty: train flat out. "auto": the configuration's budget (default by hardware profile);
    // "25%": a quarter of the machine. Either way the resource governor paces the steps.
    std::string cpu_budget;
    std::string config;  // for the [training] and [governor] keys; default as for `node`
};
inline constexpr int kMaxBatch = 4096;

struct EvalArgs {
    std::string model;
    std::string data;
    std::string split = "auto";
    bool confusion = false;
    bool trained = false;  // the trained weights, not the served average a node checkpoints
};

struct DataSplitArgs {
    std::string source;
    std::string out;
    std::string scheme = "iid";
    long long nodes = 0;
    std::uint64_t seed = 1;
};
inline constexpr long long kMaxSplitNodes = 4096;

// `cluster init|enroll|revoke` and `keys rotate|list`: the operator's trust commands
// (cmd_cluster.cpp).
struct ClusterInitArgs {
    std::string dir;
    std::string name = "starling";
    bool force = false;
};

struct EnrollArgs {
    std::string cluster;
    std::string role = "trainer";
    std::uint32_t days = 3650;
    std::string name;  // one device: --name and --out
    std::string out;
    std::uint32_t count = 0;  // many: --count, --prefix and --out-dir
    std::string prefix = "node-";
    std::string out_dir;
    bool force = false;
};
inline constexpr std::uint32_t kMaxCertificateDays = 36500;

struct RevokeArgs {
    std::string cluster;
    std::string name;
    std::string out;
    bool force = false;
};

struct KeysRotateArgs {
    std::string cluster;
    std::uint32_t overlap_hours = 24;
    std::string out;  // the signed announcement; default <cluster>/epoch-<N>.announce
    bool force = false;
};
inline constexpr std::uint32_t kMaxOverlapHours = 24 * 90;

struct KeysListArgs {
    std::string cluster;
    std::string bundle;
};

// `node` and `members`: a running node and its view of the cluster (cmd_node.cpp).
// Empty strings and lists: not given, the configuration file's value (node_service.hpp) holds.
struct NodeArgs {
    std::string config;  // default /etc/starling/starling.toml when it exists
    std::string bundle;  // default: the first-boot search (firmware/provisioning.hpp)
    std::string state;
    std::string data;       // the local dataset; training joins in the gossip-learning issue
    std::string listen;     // ADDR[:PORT]; default: the interface's address, port 7946
    std::string interface;  // default: the default route's; "none": no LAN discovery
    std::vector<std::string> seeds;
    // Training (node_training.cpp): test split (default: the data's own), architecture, wire
    // encoding of models, peers per round, and how often to checkpoint and evaluate.
    std::string test;
    std::string model = "mlp";
    std::string encoding = "int8";  // 0.25x the bytes of fp32 at no measured accuracy cost
    std::string compress = "none";  // "zstd": a lossless pass over each model's payload
    std::uint32_t fanout = 2;
    std::uint32_t round_samples = 600;  // local samples between rounds
    std::uint32_t round_interval_ms = 200;  // and at least this long
    std::string merge_momentum = "keep";  // "follow": quasi-global momentum (non-IID clusters)
    float learning_rate = 0.05f;  // SGD's starting rate; the settle schedule takes it to a tenth
    float momentum = 0.9f;
    bool nesterov = false;  // SGD: each step looks ahead along the momentum
    bool wait_for_link = false;  // a round due with sends still in flight holds training
    std::uint32_t checkpoint_interval_s = 30;
    std::uint32_t eval_interval_s = 10;
    // The flags of the other configuration keys (--cpu-budget, --psi-cpu...): key -> values.
    std::map<std::string, std::vector<std::string>> settings;
    // Test-only (hidden): loss and delay injected on the receive path, seeded.
    double test_drop_rate = 0.0;
    std::uint32_t test_delay_ms = 0;
    std::uint64_t test_fault_seed = 1;
    // Observability: the Prometheus endpoint ([ADDR:]PORT, off when empty) and the history period.
    std::string metrics;
    std::uint32_t history_interval_s = 10;
};
inline constexpr std::uint32_t kMaxHistoryIntervalS = 3600;
inline constexpr std::uint32_t kMaxTestDelayMs = 10'000;
inline constexpr std::uint32_t kMaxNodeFanout = 16;
inline constexpr std::uint32_t kMaxRoundSamples = 1'000'000;
inline constexpr std::uint32_t kMaxRoundIntervalMs = 60'000;
inline constexpr std::uint32_t kMaxTrainingIntervalS = 3600;

// `revoke --state DIR FILE`: hands a revocation file (`cluster revoke`) to a running node,
// which keeps it and spreads it to every member (cmd_node.cpp).
struct RevokeNodeArgs {
    std::string state;
    std::string file;
};

struct MembersArgs {
    std::string state;
    bool json = false;
    bool stats = false;
};

// `config check FILE`: validates the configuration file and prints the effective values
// (cmd_config.cpp).
struct ConfigCheckArgs {
    std::string file = "/etc/starling/starling.toml";
};

// Each returns the process exit code (cli.hpp).
int run_train(const TrainArgs& args);
int run_eval(const EvalArgs& args);
int run_info();
int run_data_split(const DataSplitArgs& args);
int run_cluster_init(const ClusterInitArgs& args);
int run_enroll(const EnrollArgs& args);
int run_revoke_node(const RevokeNodeArgs& args);
int run_keys_rotate(const KeysRotateArgs& args);
int run_keys_list(const KeysListArgs& args);
int run_node(const NodeArgs& args);
int run_members(const MembersArgs& args);
int run_revoke(const RevokeArgs& args);
int run_config_check(const ConfigCheckArgs& args);

}  // namespace starling::cli

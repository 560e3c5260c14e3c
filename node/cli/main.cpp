// `starling`: the node binary, identical on every device class. This file alone knows the
// command-line parser; each subcommand is a plain function in commands.hpp.
#include <CLI/CLI.hpp>

#include <memory>

#include "firmware/config.hpp"
#include "node/cli/cli.hpp"
#include "node/cli/commands.hpp"

namespace {

using namespace starling::cli;

// Each subcommand's callback stores its exit code here for main() to return.
int g_exit_code = kExitOk;

void add_train(CLI::App& app) {
    auto a = std::make_shared<TrainArgs>();
    CLI::App* train = app.add_subcommand("train", "Train a model on this device's local data");
    train->add_option("--data", a->data, "Directory with train-*-ubyte[.gz] or train.csv")
        ->required();
    train->add_option("--test", a->test,
                      "Directory with the test split (default: the data directory's own)");
    train->add_option("--model", a->model, "softmax, mlp, or widths like 784-256-10")
        ->capture_default_str();
    train->add_option("--epochs", a->epochs, "Local epochs")
        ->check(CLI::Range(1u, 100000u))
        ->capture_default_str();
    train->add_option("--batch", a->batch, "Mini-batch size")
        ->check(CLI::Range(1, kMaxBatch))
        ->capture_default_str();
    train->add_option("--optimizer", a->optimizer, "sgd or adam")->capture_default_str();
    train->add_option("--lr", a->learning_rate,
                      "Learning rate (default 0.05 for sgd, 0.001 for adam)")
        ->check(CLI::PositiveNumber);
    train->add_option("--momentum", a->momentum, "SGD momentum")
        ->check(CLI::Range(0.0f, 0.999f))
        ->capture_default_str();
    train->add_flag("--nesterov", a->nesterov,
                    "SGD with Nesterov's momentum: each step along gradient + momentum x velocity");
    train->add_option("--weight-decay", a->weight_decay, "L2 weight decay")
        ->check(CLI::Range(0.0f, 1.0f))
        ->capture_default_str();
    train->add_option("--schedule", a->schedule,
                      "Learning rate: cosine (to 0 over --epochs), settle (to a tenth over "
                      "--epochs, then held), cooldown (held, then straight to 0 over the last "
                      "half) or constant")
        ->capture_default_str();
    train->add_option("--seed", a->seed, "Seed for initialisation and shuffling")
        ->capture_default_str();
    train->add_option("--out", a->out, "Checkpoint, written after every epoch")
        ->capture_default_str();
    train->add_option("--resume", a->resume, "Continue from this checkpoint");
    train->add_option("--simd", a->simd,
                      "Force a lower kernel level: sse2, sse4.2, avx2, avx512 (also STARLING_SIMD)");
    train->add_option("--cpu-budget", a->cpu_budget,
                      "Pace training to this share of the machine, e.g. 25%, or auto (the "
                      "configured one; default by hardware profile), pausing while the device "
                      "is busy, hot or short of memory");
    train->add_option("--config", a->config,
                      "Configuration file for the governor's limits (default "
                      "/etc/starling/starling.toml when it exists)");
    train->callback([a] { g_exit_code = run_train(*a); });
}

void add_eval(CLI::App& app) {
    auto a = std::make_shared<EvalArgs>();
    CLI::App* eval = app.add_subcommand("eval", "Evaluate a checkpoint on a data directory");
    eval->add_option("--model", a->model, "Checkpoint file")->required();
    eval->add_option("--data", a->data, "Data directory")->required();
    eval->add_option("--split", a->split, "auto (test if present), train or test")
        ->capture_default_str();
    eval->add_flag("--confusion", a->confusion, "Print the confusion matrix");
    eval->add_flag("--trained", a->trained,
                   "A node's checkpoint: evaluate the trained weights, not the served model "
                   "(their running average)");
    eval->callback([a] { g_exit_code = run_eval(*a); });
}

void add_data(CLI::App& app) {
    CLI::App* data = app.add_subcommand("data", "Prepare local datasets");
    data->require_subcommand(1);
    auto a = std::make_shared<DataSplitArgs>();
    CLI::App* split = data->add_subcommand(
        "split", "Deal a dataset's train split out to N node directories (and copy its test split)");
    split->add_option("--source", a->source, "Directory with the dataset (IDX or CSV names)")
        ->required();
    split->add_option("--nodes", a->nodes, "Number of nodes, 1..4096")->required();
    split->add_option("--scheme", a->scheme, "iid, classes:K or dirichlet:ALPHA")
        ->capture_default_str();
    split->add_option("--seed", a->seed, "The same seed gives the same shards on every platform")
        ->capture_default_str();
    split->add_option("--out", a->out, "Directory to write node-NNN/ and test/ into")->required();
    split->callback([a] { g_exit_code = run_data_split(*a); });
}

void add_cluster(CLI::App& app) {
    CLI::App* cluster = app.add_subcommand(
        "cluster", "The operator's trust records: create a cluster, enroll and revoke devices");
    cluster->require_subcommand(1);

    auto i = std::make_shared<ClusterInitArgs>();
    CLI::App* init =
        cluster->add_subcommand("init", "Create a cluster: owner key, id, network key");
    init->add_option("--dir", i->dir, "Directory for cluster.secrets (created with mode 0700)")
        ->required();
    init->add_option("--name", i->name, "Cluster name, [a-z0-9._-]")->capture_default_str();
    init->add_flag("--force", i->force, "Replace an existing cluster (its certificates die)");
    init->callback([i] { g_exit_code = run_cluster_init(*i); });

    auto e = std::make_shared<EnrollArgs>();
    CLI::App* enroll = cluster->add_subcommand(
        "enroll", "Issue certificates and write enrollment bundles (mode 0600), one per device");
    enroll->add_option("--cluster", e->cluster, "Cluster directory")->required();
    enroll->add_option("--name", e->name, "One device: its name, [a-z0-9._-]");
    enroll->add_option("--out", e->out, "One device: the bundle file to write");
    enroll->add_option("--count", e->count, "Many devices: how many");
    enroll->add_option("--prefix", e->prefix, "Many devices: names PREFIX001..")
        ->capture_default_str();
    enroll->add_option("--out-dir", e->out_dir, "Many devices: directory for NAME.bundle files");
    enroll->add_option("--role", e->role, "trainer or observer")->capture_default_str();
    enroll->add_option("--days", e->days, "Certificate validity in days")->capture_default_str();
    enroll->add_flag("--force", e->force, "Replace existing bundle files");
    enroll->callback([e] { g_exit_code = run_enroll(*e); });

    auto r = std::make_shared<RevokeArgs>();
    CLI::App* revoke = cluster->add_subcommand("revoke", "Revoke a device's certificate");
    revoke->add_option("--cluster", r->cluster, "Cluster directory")->required();
    revoke->add_option("--name", r->name, "The device")->required();
    revoke->add_option("--out", r->out, "The signed revocation file to write")->required();
    revoke->add_flag("--force", r->force, "Replace an existing revocation file");
    revoke->callback([r] { g_exit_code = run_revoke(*r); });
}

void add_keys(CLI::App& app) {
    CLI::App* keys = app.add_subcommand("keys", "The cluster's network keys, by epoch");
    keys->require_subcommand(1);

    auto r = std::make_shared<KeysRotateArgs>();
    CLI::App* rotate = keys->add_subcommand(
        "rotate", "New network key: used after half the overlap, old ones accepted to its end");
    rotate->add_option("--cluster", r->cluster, "Cluster directory")->required();
    rotate->add_option("--overlap-hours", r->overlap_hours, "Hours the old key stays accepted")
        ->capture_default_str();
    rotate->add_option("--out", r->out,
                       "Signed announcement to write (default: CLUSTER/epoch-N.announce)");
    rotate->add_flag("--force", r->force, "Replace an existing announcement file");
    rotate->callback([r] { g_exit_code = run_keys_rotate(*r); });

    auto l = std::make_shared<KeysListArgs>();
    CLI::App* list = keys->add_subcommand("list", "Epochs and their validity");
    list->add_option("--cluster", l->cluster, "Cluster directory");
    list->add_option("--bundle", l->bundle, "An enrollment bundle instead");
    list->callback([l] { g_exit_code = run_keys_list(*l); });
}

void add_node(CLI::App& app) {
    auto a = std::make_shared<NodeArgs>();
    CLI::App* node = app.add_subcommand(
        "node", "Run a node: join the cluster on the LAN and stay until SIGTERM (a graceful leave)");
    node->footer(
        "Every key of the configuration file has a flag, and a flag wins over the file.\n"
        "First boot: without --bundle the node takes the first valid bundle of STATE/node.bundle, "
        "/etc/starling/{HOSTNAME,node}.bundle, then ROOT[/*[/*]]/starling/{HOSTNAME,node}.bundle "
        "for each provisioning ROOT (default /media, /run/media, /mnt), installs it as "
        "STATE/node.bundle (mode 0600) and starts; with none it logs why and retries (2 s, "
        "doubling to 60 s).");
    node->add_option("--config", a->config,
                     "Configuration file (default /etc/starling/starling.toml when it exists)");
    node->add_option("--bundle", a->bundle, "This device's enrollment bundle (default: first boot "
                                            "search, below)");
    node->add_option("--state", a->state,
                     "State directory (created with mode 0700; default /var/lib/starling)");
    node->add_option("--data", a->data, "Local dataset directory (for training)");
    node->add_option("--test", a->test, "Test split directory (default: the data directory's own)");
    node->add_option("--model", a->model, "mlp, softmax or widths such as 784-128-10")
        ->capture_default_str();
    node->add_option("--encoding", a->encoding,
                     "Models on the wire: fp32, fp16, int8 or int4 (blockwise, error feedback), "
                     "or lattice (4 bits resolved against the receiver's own model)")
        ->capture_default_str();
    node->add_option("--compress", a->compress,
                     "none, or zstd: a lossless pass over each model (int8 and int4 shrink; "
                     "lattice residues hardly do, and go as they are)")
        ->check(CLI::IsMember({"none", "zstd"}))
        ->capture_default_str();
    node->add_option("--fanout", a->fanout, "Peers each round's model goes to")
        ->check(CLI::Range(1u, kMaxNodeFanout))
        ->capture_default_str();
    node->add_option("--round-samples", a->round_samples,
                     "Local samples trained between two rounds (fewer: devices agree more often)")
        ->check(CLI::Range(1u, kMaxRoundSamples))
        ->capture_default_str();
    node->add_option("--round-interval", a->round_interval_ms,
                     "Milliseconds at least between two rounds (each sends the model to "
                     "--fanout peers, over links kept open to them)")
        ->check(CLI::Range(0u, kMaxRoundIntervalMs))
        ->capture_default_str();
    node->add_option("--merge-momentum", a->merge_momentum,
                     "keep: momentum from the device's own gradients; follow: merges join it too "
                     "(for devices whose classes differ)")
        ->check(CLI::IsMember({"keep", "follow"}))
        ->capture_default_str();
    node->add_option("--lr", a->learning_rate,
                     "SGD's learning rate at the start; it settles to a tenth of it")
        ->check(CLI::Range(1e-6f, 10.0f))
        ->capture_default_str();
    node->add_option("--momentum", a->momentum, "SGD momentum")
        ->check(CLI::Range(0.0f, 0.999f))
        ->capture_default_str();
    node->add_flag("--nesterov", a->nesterov,
                   "SGD with Nesterov's momentum (not with --merge-momentum follow)");
    node->add_flag("--wait-for-link", a->wait_for_link,
                   "Hold training while a round's models are still on the wire instead of "
                   "skipping the next round (devices whose classes differ: agree more often, "
                   "train slower)");
    node->add_option("--checkpoint-interval", a->checkpoint_interval_s,
                     "Seconds between checkpoints (STATE/model.ckpt)")
        ->check(CLI::Range(1u, kMaxTrainingIntervalS))
        ->capture_default_str();
    node->add_option("--eval-interval", a->eval_interval_s, "Seconds between evaluations")
        ->check(CLI::Range(1u, kMaxTrainingIntervalS))
        ->capture_default_str();
    node->add_option("--listen", a->listen,
                     "ADDR[:PORT] to listen on (default: the interface's address, port 7946)");
    node->add_option("--interface", a->interface,
                     "LAN interface for discovery (default: the default route's; none: off)");
    node->add_option("--seed", a->seeds, "ADDR[:PORT] of a node to join through (repeatable)");
    node->add_option("--metrics", a->metrics,
                     "[ADDR:]PORT: serve Prometheus metrics at /metrics (default address 127.0.0.1)");
    node->add_option("--history-interval", a->history_interval_s,
                     "Seconds between lines of the metrics history (STATE/history)")
        ->check(CLI::Range(1u, kMaxHistoryIntervalS))
        ->capture_default_str();
    // The other keys' flags, named in the schema (firmware/config.cpp).
    for (const starling::firmware::ConfigKey& key : starling::firmware::config_keys()) {
        const std::string flag = "--" + std::string(key.flag);
        if (node->get_option_no_throw(flag) != nullptr) continue;
        CLI::Option* option =
            node->add_option(flag, a->settings[std::string(key.name)], std::string(key.help));
        if (!key.list) option->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    }
    // Test-only: loss and delay injected in the node's own transport (tc netem is unavailable).
    node->add_option("--test-drop-rate", a->test_drop_rate)->group("");
    node->add_option("--test-delay-ms", a->test_delay_ms)->group("");
    node->add_option("--test-fault-seed", a->test_fault_seed)->group("");
    node->callback([a] { g_exit_code = run_node(*a); });
}

void add_members(CLI::App& app) {
    auto a = std::make_shared<MembersArgs>();
    CLI::App* members = app.add_subcommand(
        "members", "The cluster as a running node sees it (asked over its control socket)");
    members->add_option("--state", a->state, "The running node's state directory")->required();
    members->add_flag("--json", a->json, "One JSON object per member");
    members->add_flag("--stats", a->stats, "The node's datagram and drop counters instead");
    members->callback([a] { g_exit_code = run_members(*a); });
}

void add_revoke(CLI::App& app) {
    auto a = std::make_shared<RevokeNodeArgs>();
    CLI::App* revoke = app.add_subcommand(
        "revoke", "Hand a revocation ('cluster revoke' output) to a running node: it keeps it and "
                  "spreads it to every member, which drop and refuse that device");
    revoke->add_option("--state", a->state, "The running node's state directory")->required();
    revoke->add_option("file", a->file, "The revocation file")->required();
    revoke->callback([a] { g_exit_code = run_revoke_node(*a); });
}

void add_config(CLI::App& app) {
    CLI::App* config = app.add_subcommand("config", "The configuration file");
    config->require_subcommand(1);
    auto a = std::make_shared<ConfigCheckArgs>();
    CLI::App* check = config->add_subcommand(
        "check", "Validate a configuration file and print each effective value and its origin");
    check->add_option("file", a->file, "The file (default /etc/starling/starling.toml)")
        ->capture_default_str();
    check->callback([a] { g_exit_code = run_config_check(*a); });
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"Starling: masterless peer-to-peer training for edge devices"};
    app.set_version_flag("--version", STARLING_VERSION);
    app.require_subcommand(1);
    app.footer("Exit codes: 0 success, 1 the command failed (I/O, corrupt file), 2 bad arguments "
               "or bad input data.");
    add_train(app);
    add_eval(app);
    add_data(app);
    add_cluster(app);
    add_keys(app);
    add_node(app);
    add_members(app);
    add_revoke(app);
    add_config(app);
    app.add_subcommand("info", "Version, CPU features and the kernels in use")->callback([] {
        g_exit_code = run_info();
    });
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        const int code = app.exit(e);
        return code == 0 ? kExitOk : kExitUsage;
    }
    return g_exit_code;
}

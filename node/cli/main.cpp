// `starling`: the node binary, identical on every device class. This file alone knows the
// command-line parser; each subcommand is a plain function in commands.hpp.
#include <CLI/CLI.hpp>

#include <memory>

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
    train->add_option("--weight-decay", a->weight_decay, "L2 weight decay")
        ->check(CLI::Range(0.0f, 1.0f))
        ->capture_default_str();
    train->add_option("--schedule", a->schedule,
                      "Learning rate: cosine (decays to 0 over --epochs) or constant")
        ->capture_default_str();
    train->add_option("--seed", a->seed, "Seed for initialisation and shuffling")
        ->capture_default_str();
    train->add_option("--out", a->out, "Checkpoint, written after every epoch")
        ->capture_default_str();
    train->add_option("--resume", a->resume, "Continue from this checkpoint");
    train->add_option("--simd", a->simd,
                      "Force a lower kernel level: sse2, sse4.2, avx2, avx512 (also STARLING_SIMD)");
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

#pragma once
// Every `starling` subcommand as a plain function of its arguments. Only main.cpp knows the
// command-line parser, so the commands compile fast and can be called directly.

#include <cstdint>
#include <optional>
#include <string>

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
    float weight_decay = 0.0f;
    std::string schedule = "cosine";
    std::uint64_t seed = 1;
    std::string out = "starling-model.ckpt";
    std::string resume;
    std::string simd;
};
inline constexpr int kMaxBatch = 4096;

struct EvalArgs {
    std::string model;
    std::string data;
    std::string split = "auto";
    bool confusion = false;
};

struct DataSplitArgs {
    std::string source;
    std::string out;
    std::string scheme = "iid";
    long long nodes = 0;
    std::uint64_t seed = 1;
};
inline constexpr long long kMaxSplitNodes = 4096;

// Each returns the process exit code (cli.hpp).
int run_train(const TrainArgs& args);
int run_eval(const EvalArgs& args);
int run_info();
int run_data_split(const DataSplitArgs& args);

}  // namespace starling::cli

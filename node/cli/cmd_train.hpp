#pragma once
// `starling train`, `starling eval` and `starling info`: training on one device.

#include <CLI/CLI.hpp>

namespace starling::cli {

void add_train_commands(CLI::App& app);

}  // namespace starling::cli

#pragma once
// `starling data ...`: preparing local datasets, e.g. splitting one into per-node shards.

#include <CLI/CLI.hpp>

namespace starling::cli {

// Like every subcommand, failures go through cli.hpp's report() and the callback stores the exit
// code (2 bad arguments or data, 1 I/O) in exit_code() instead of throwing.
void add_data_commands(CLI::App& app);

}  // namespace starling::cli

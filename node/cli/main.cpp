// `starling`: the node binary, identical on every device class.
#include <CLI/CLI.hpp>

#include "node/cli/cli.hpp"
#include "node/cli/cmd_data.hpp"
#include "node/cli/cmd_train.hpp"

int main(int argc, char** argv) {
    CLI::App app{"Starling: masterless peer-to-peer training for edge devices"};
    app.set_version_flag("--version", STARLING_VERSION);
    app.require_subcommand(1);
    app.footer("Exit codes: 0 success, 1 the command failed (I/O, corrupt file), 2 bad arguments "
               "or bad input data.");
    starling::cli::add_train_commands(app);
    starling::cli::add_data_commands(app);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        const int code = app.exit(e);
        return code == 0 ? 0 : starling::cli::kExitUsage;
    }
    return starling::cli::exit_code();
}

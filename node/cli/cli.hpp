#pragma once
// Shared conventions of the `starling` subcommands: exit codes and how errors are reported.

#include <string>

#include "protocol/result.hpp"

namespace starling::cli {

// Exit codes, documented in `starling --help`.
enum Exit : int {
    kExitOk = 0,
    kExitFailure = 1,  // the command ran and failed: I/O, a corrupt file, a refused peer
    kExitUsage = 2,    // bad arguments or bad input data
};

// Prints "starling: error: <message>" to stderr; returns the exit code for the error's kind.
int report(const Error& error);

// True when standard output is a terminal (progress redraws in place; plain lines otherwise).
bool stdout_is_terminal();

}  // namespace starling::cli

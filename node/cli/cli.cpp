#include "node/cli/cli.hpp"

#include <unistd.h>

#include <cstdio>

namespace starling::cli {

int report(const Error& error) {
    std::fprintf(stderr, "starling: error: %s\n", error.message.c_str());
    switch (error.code) {
        case ErrorCode::invalid_argument:
        case ErrorCode::malformed:
        case ErrorCode::truncated:
        case ErrorCode::too_large:
        case ErrorCode::not_found:
            return kExitUsage;
        default:
            return kExitFailure;
    }
}

bool stdout_is_terminal() { return isatty(STDOUT_FILENO) == 1; }

}  // namespace starling::cli

#include <cstdio>

#include "firmware/config.hpp"
#include "firmware/hardware.hpp"
#include "node/cli/cli.hpp"
#include "node/cli/commands.hpp"

namespace starling::cli {

int run_config_check(const ConfigCheckArgs& args) {
    const firmware::HardwareProfile hw = firmware::detect_hardware();
    auto loaded = firmware::load_config_file(args.file, firmware::default_config(hw));
    if (!loaded) {
        // Every error on its own line, each naming the key and the line; bad input exits 2.
        std::fprintf(stderr, "%s\n", loaded.error().message.c_str());
        return loaded.error().code == ErrorCode::not_found || loaded.error().code == ErrorCode::io
                   ? kExitFailure
                   : kExitUsage;
    }
    std::printf("# %s is valid; effective configuration (profile: %s, %u cores):\n",
                args.file.c_str(), std::string(firmware::to_string(hw.device_class)).c_str(),
                hw.logical_cores);
    std::fputs(firmware::explain(*loaded).c_str(), stdout);
    return kExitOk;
}

}  // namespace starling::cli

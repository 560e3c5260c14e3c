// libFuzzer target for the configuration file: an operator-written (or corrupted) TOML text
// must give a config or an error naming key and line, never a crash; the same holds for flags.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "firmware/config.hpp"

namespace {

// A fixed profile: the fuzzer explores the parser, not this machine.
const starling::firmware::LoadedConfig& base() {
    static const starling::firmware::LoadedConfig config = [] {
        starling::firmware::HardwareProfile p;
        p.device_class = starling::firmware::DeviceClass::celeron;
        p.logical_cores = 4;
        return starling::firmware::default_config(p);
    }();
    return config;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size > starling::firmware::kMaxConfigBytes) return 0;  // load_config_file's own cap
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    auto loaded = starling::firmware::apply_config_text(text, "fuzz.toml", base());
    if (loaded) {
        (void)starling::firmware::explain(*loaded);
    } else if (loaded.error().message.empty()) {
        __builtin_trap();  // every refusal must say why
    }
    // The same bytes as a flag's value for every key.
    for (const auto& key : starling::firmware::config_keys()) {
        const starling::firmware::FlagValues flag[] = {{std::string(key.name), {std::string(text)}}};
        (void)starling::firmware::apply_flags(base(), flag);
    }
    return 0;
}

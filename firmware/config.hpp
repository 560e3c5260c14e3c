#pragma once
// The one configuration file, /etc/starling/starling.toml: every key known, its default from the
// hardware profile or a constant, and where each effective value came from (for `config check`).

#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "firmware/governor.hpp"
#include "firmware/hardware.hpp"
#include "protocol/result.hpp"

namespace starling::firmware {

inline constexpr std::string_view kDefaultConfigPath = "/etc/starling/starling.toml";
inline constexpr std::uintmax_t kMaxConfigBytes = 64 * 1024;

struct Config {
    // [node]
    std::string listen;     // ADDR[:PORT]; empty: the interface's address, port 7946
    std::string interface;  // empty: the default route's; "none": no LAN discovery
    std::vector<std::string> seeds;
    std::string state_dir = "/var/lib/starling";
    std::string data_dir = "/var/lib/starling/data";
    std::string bundle;  // empty: first boot searches (firmware/provisioning.hpp)
    // Where provisioning media are mounted: ROOT/starling/, ROOT/*/starling/, ROOT/*/*/starling/.
    std::vector<std::string> provisioning = {"/media", "/run/media", "/mnt"};
    // [training]
    unsigned cpu_budget_percent = 25;  // of the whole machine
    unsigned batch = 64;
    unsigned threads = 1;
    // [governor]
    unsigned thermal_limit_c = 80;     // pause above, resume 5 °C below
    unsigned memory_floor_mib = 256;   // pause while MemAvailable is below
    unsigned psi_cpu_percent = 40;     // pause above these "some avg10" pressures
    unsigned psi_memory_percent = 10;
    unsigned psi_io_percent = 30;
    unsigned busy_cpu_percent = 75;    // pause while other processes use more of the machine
    // [log]
    std::string log_level = "info";  // error, warn, info, debug
};

// Where an effective value came from.
enum class Origin { default_value, profile, file, flag };

struct ValueSource {
    Origin origin = Origin::default_value;
    unsigned line = 0;  // for Origin::file
};

struct LoadedConfig {
    Config config;
    std::map<std::string, ValueSource, std::less<>> sources;  // "training.batch" -> ...
};

// Constants, then the profile's suggestions (threads, batch, CPU budget).
[[nodiscard]] LoadedConfig default_config(const HardwareProfile& profile);

// Applies a TOML document over `base`. Every error (syntax, unknown key, wrong type, out of
// range) is reported, one per line, as "NAME:LINE: key 'table.key': what is wrong".
[[nodiscard]] Result<LoadedConfig> apply_config_text(std::string_view text, std::string_view name,
                                                     LoadedConfig base);
[[nodiscard]] Result<LoadedConfig> load_config_file(const std::filesystem::path& file,
                                                    LoadedConfig base);

// A command-line flag for every key: "--cpu-budget" sets training.cpu_budget.
struct ConfigKey {
    std::string_view name;  // "training.cpu_budget"
    std::string_view flag;  // "cpu-budget"
    std::string_view help;
    bool list = false;      // repeatable; the flag's values replace the file's list
};
[[nodiscard]] std::span<const ConfigKey> config_keys() noexcept;

// Values given on the command line for one key (by its name); they win over the file.
struct FlagValues {
    std::string name;
    std::vector<std::string> values;  // the last one counts, except for lists
};
// Checks each value like the file's (range, choices; "25%" where the key is a percentage) and
// reports every error as "--flag: what is wrong", one per line.
[[nodiscard]] Result<LoadedConfig> apply_flags(LoadedConfig base, std::span<const FlagValues> flags);

// The governor's limits from the [training] and [governor] keys, for a machine of `logical_cores`.
[[nodiscard]] GovernorLimits governor_limits(const Config& config, unsigned logical_cores) noexcept;

// One line per key: "table.key = value   # origin", for `starling config check`.
[[nodiscard]] std::string explain(const LoadedConfig& loaded);

}  // namespace starling::firmware

#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "firmware/config.hpp"

using namespace starling;
using namespace starling::firmware;

namespace {

const std::string kData = STARLING_TEST_DATA_DIR "/config/";

HardwareProfile celeron() {
    HardwareProfile p;
    p.cpu_model = "Intel(R) Celeron(R) J4125 CPU @ 2.00GHz";
    p.device_class = DeviceClass::celeron;
    p.logical_cores = 4;
    p.memory_bytes = std::uint64_t{4} << 30;
    p.features.sse2 = p.features.sse4_2 = true;
    return p;
}

bool has(const std::string& text, std::string_view part) {
    return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("defaults come from constants and the hardware profile") {
    const LoadedConfig d = default_config(celeron());
    CHECK(d.config.cpu_budget_percent == 25);
    CHECK(d.config.threads == 1);
    CHECK(d.config.batch == 64);
    CHECK(d.config.state_dir == "/var/lib/starling");
    CHECK(d.sources.at("training.cpu_budget").origin == Origin::profile);
    CHECK(d.sources.at("governor.thermal_limit_c").origin == Origin::default_value);
}

TEST_CASE("a good file overrides the keys it names and records their lines") {
    auto loaded = load_config_file(kData + "good.toml", default_config(celeron()));
    REQUIRE(loaded.ok());
    const Config& c = loaded->config;
    CHECK(c.listen == "10.0.0.2:7946");
    CHECK(c.seeds == std::vector<std::string>{"10.0.0.5:7946", "10.0.0.6"});
    CHECK(c.cpu_budget_percent == 30);
    CHECK(c.batch == 128);
    CHECK(c.threads == 1);
    CHECK(c.log_level == "debug");
    CHECK(loaded->sources.at("training.batch").origin == Origin::file);
    CHECK(loaded->sources.at("training.batch").line == 7);
    CHECK(loaded->sources.at("training.threads").origin == Origin::profile);
    const std::string text = explain(*loaded);
    CHECK(has(text, "training.batch = 128"));
    CHECK(has(text, "# file, line 7"));
    CHECK(has(text, "training.threads = 1"));
    CHECK(has(text, "# hardware profile"));
}

TEST_CASE("the packaged default file is valid") {
    auto loaded = load_config_file(STARLING_TEST_DATA_DIR "/../../firmware/package/starling.toml",
                                   default_config(celeron()));
    REQUIRE_MESSAGE(loaded.ok(), (loaded.ok() ? "" : loaded.error().message));
    CHECK(loaded->config.thermal_limit_c == 80);
}

TEST_CASE("an unknown key is an error naming the key and its line") {
    auto loaded = load_config_file(kData + "unknown-key.toml", default_config(celeron()));
    REQUIRE_FALSE(loaded.ok());
    CHECK(loaded.error().code == ErrorCode::invalid_argument);
    CHECK(has(loaded.error().message, "unknown-key.toml:5: key 'training.cpu_budjet': unknown key"));
}

TEST_CASE("bad values are errors naming each key and line") {
    auto loaded = load_config_file(kData + "bad-values.toml", default_config(celeron()));
    REQUIRE_FALSE(loaded.ok());
    const std::string& m = loaded.error().message;
    CHECK(has(m, ":2: key 'training.cpu_budget': 150 is outside 1..100"));
    CHECK(has(m, ":3: key 'training.batch': expected an integer"));
    CHECK(has(m, ":6: key 'log.level': 'loud' is not one of error|warn|info|debug"));
}

TEST_CASE("unknown tables, top-level keys, syntax errors and missing files are errors") {
    const LoadedConfig base = default_config(celeron());
    auto table = apply_config_text("[nodes]\nlisten = \"x\"\n", "t.toml", base);
    REQUIRE_FALSE(table.ok());
    CHECK(has(table.error().message, "t.toml:2: key 'nodes.listen': unknown key"));

    auto top = apply_config_text("cpu_budget = 3\n", "t.toml", base);
    REQUIRE_FALSE(top.ok());
    CHECK(has(top.error().message, "t.toml:1: key 'cpu_budget': unknown key"));

    auto syntax = apply_config_text("[node]\nlisten = \n", "t.toml", base);
    REQUIRE_FALSE(syntax.ok());
    CHECK(syntax.error().code == ErrorCode::malformed);
    CHECK(has(syntax.error().message, "t.toml:2: "));

    auto utf8 = apply_config_text("[node]\n# caf\xc3\xa9\nlisten = \"\xcb\xad\"\n", "t.toml", base);
    REQUIRE_FALSE(utf8.ok());
    CHECK(utf8.error().code == ErrorCode::malformed);
    CHECK(has(utf8.error().message, "t.toml:2: a non-ASCII byte"));

    auto seeds = apply_config_text("[node]\nseeds = [1, 2]\n", "t.toml", base);
    REQUIRE_FALSE(seeds.ok());
    CHECK(has(seeds.error().message, "'node.seeds': expected an array of strings"));

    auto missing = load_config_file(kData + "no-such.toml", base);
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.error().code == ErrorCode::not_found);
}

TEST_CASE("errors are listed in line order") {
    auto loaded = load_config_file(kData + "bad-values.toml", default_config(celeron()));
    REQUIRE_FALSE(loaded.ok());
    const std::string& m = loaded.error().message;
    CHECK(m.find(":2:") < m.find(":3:"));
    CHECK(m.find(":3:") < m.find(":6:"));
}

TEST_CASE("flags win over the file and the profile, each checked like the file's value") {
    auto file = load_config_file(kData + "good.toml", default_config(celeron()));
    REQUIRE(file.ok());
    REQUIRE(file->config.cpu_budget_percent == 30);
    const FlagValues flags[] = {{"training.cpu_budget", {"25%"}},
                                {"node.listen", {"127.0.0.1:9000"}},
                                {"node.seeds", {"10.1.1.1", "10.1.1.2:7000"}},
                                {"governor.busy_cpu", {"60"}}};
    auto merged = apply_flags(*file, flags);
    REQUIRE_MESSAGE(merged.ok(), (merged.ok() ? "" : merged.error().message));
    const Config& c = merged->config;
    CHECK(c.cpu_budget_percent == 25);
    CHECK(c.listen == "127.0.0.1:9000");
    CHECK(c.seeds == std::vector<std::string>{"10.1.1.1", "10.1.1.2:7000"});
    CHECK(c.busy_cpu_percent == 60);
    CHECK(c.batch == 128);  // not given: the file's value stays
    CHECK(merged->sources.at("training.cpu_budget").origin == Origin::flag);
    CHECK(merged->sources.at("training.batch").origin == Origin::file);
    CHECK(has(explain(*merged), "# command line"));
    const GovernorLimits g = governor_limits(c, 4);
    CHECK(g.cpu_budget_percent == 25);
    CHECK(g.logical_cores == 4);
    CHECK(g.busy_cpu_percent == 60);
}

TEST_CASE("bad flag values are errors naming the flag") {
    const LoadedConfig base = default_config(celeron());
    const FlagValues flags[] = {{"training.cpu_budget", {"250%"}},
                                {"training.batch", {"64%"}},
                                {"log.level", {"loud"}},
                                {"governor.psi_cpu", {"x"}}};
    auto merged = apply_flags(base, flags);
    REQUIRE_FALSE(merged.ok());
    const std::string& m = merged.error().message;
    CHECK(has(m, "--cpu-budget: 250% is outside 1..100"));
    CHECK(has(m, "--batch: '64%' is not a whole number"));
    CHECK(has(m, "--log-level: 'loud' is not one of error|warn|info|debug"));
    CHECK(has(m, "--psi-cpu: 'x' is not a percentage"));
}

TEST_CASE("every key has a distinct flag") {
    std::vector<std::string_view> flags;
    for (const ConfigKey& k : config_keys()) {
        CHECK_FALSE(k.flag.empty());
        CHECK_FALSE(k.help.empty());
        flags.push_back(k.flag);
    }
    std::sort(flags.begin(), flags.end());
    CHECK(std::adjacent_find(flags.begin(), flags.end()) == flags.end());
    CHECK(flags.size() == default_config(celeron()).sources.size());
}

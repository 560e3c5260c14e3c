#include "firmware/config.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <utility>
#include <variant>

// toml++ is compiled header-only here and nowhere else: Debian ships it only as a shared library
// while the release binary is static, and it is the slowest header in the tree. Expected failures
// are values: parse() returns a parse_result instead of throwing.
#define TOML_EXCEPTIONS 0
#define TOML_ENABLE_FORMATTERS 0  // parse only: nothing is ever printed as TOML
#include <toml++/toml.h>

namespace starling::firmware {
namespace {

using StringMember = std::string Config::*;
using ListMember = std::vector<std::string> Config::*;
using NumberMember = unsigned Config::*;

struct Field {
    ConfigKey key;
    std::variant<StringMember, ListMember, NumberMember> member;
    unsigned min = 0;  // numbers: the accepted range
    unsigned max = 0;
    std::string_view choices = {};  // strings: "a|b|c"; empty accepts any
    bool percent = false;           // a flag may write "25%"
};

inline constexpr std::size_t kMaxListEntries = 64;
inline constexpr std::size_t kMaxStringBytes = 4096;

// The schema: every key the file may hold, and its flag.
const Field kFields[] = {
    {{"node.listen", "listen", "ADDR[:PORT] to listen on (default: the interface's, port 7946)"},
     &Config::listen},
    {{"node.interface", "interface", "LAN interface for discovery (default: the default "
                                     "route's; none: off)"},
     &Config::interface},
    {{"node.seeds", "seed", "ADDR[:PORT] of a node to join through (repeatable)", true},
     &Config::seeds},
    {{"node.state_dir", "state", "State directory (created with mode 0700)"}, &Config::state_dir},
    {{"node.data_dir", "data", "Local dataset directory (for training)"}, &Config::data_dir},
    {{"node.bundle", "bundle", "This device's enrollment bundle (default: installed on first "
                               "boot from the places in `starling node --help`)"},
     &Config::bundle},
    {{"node.provisioning", "provisioning",
      "Where provisioning media are mounted (repeatable; default /media /run/media /mnt)", true},
     &Config::provisioning},
    {{"training.cpu_budget", "cpu-budget", "CPU budget of training, percent of the machine"},
     &Config::cpu_budget_percent, 1, 100, {}, true},
    {{"training.batch", "batch", "Mini-batch size"}, &Config::batch, 1, 4096},
    {{"training.threads", "threads", "Training threads"}, &Config::threads, 1, 256},
    {{"governor.thermal_limit_c", "thermal-limit", "Pause training above this temperature, C"},
     &Config::thermal_limit_c, 40, 110},
    {{"governor.memory_floor_mib", "memory-floor", "Pause training while MemAvailable is below, "
                                                   "MiB"},
     &Config::memory_floor_mib, 16, 1u << 20},
    {{"governor.psi_cpu", "psi-cpu", "Pause training above this CPU pressure (PSI some avg10)"},
     &Config::psi_cpu_percent, 1, 100, {}, true},
    {{"governor.psi_memory", "psi-memory", "Pause training above this memory pressure"},
     &Config::psi_memory_percent, 1, 100, {}, true},
    {{"governor.psi_io", "psi-io", "Pause training above this IO pressure"},
     &Config::psi_io_percent, 1, 100, {}, true},
    {{"governor.busy_cpu", "busy-cpu", "Pause training while other processes use more of the "
                                       "machine, percent"},
     &Config::busy_cpu_percent, 1, 100, {}, true},
    {{"log.level", "log-level", "error, warn, info or debug"}, &Config::log_level, 0, 0,
     "error|warn|info|debug"},
};

const ConfigKey kKeys[] = {
    kFields[0].key,  kFields[1].key,  kFields[2].key,  kFields[3].key,  kFields[4].key,
    kFields[5].key,  kFields[6].key,  kFields[7].key,  kFields[8].key,  kFields[9].key,
    kFields[10].key, kFields[11].key, kFields[12].key, kFields[13].key, kFields[14].key,
    kFields[15].key, kFields[16].key,
};
static_assert(std::size(kKeys) == std::size(kFields));

const Field* find_field(std::string_view name) {
    for (const Field& f : kFields)
        if (f.key.name == name) return &f;
    return nullptr;
}

bool is_choice(std::string_view choices, std::string_view value) {
    while (!choices.empty()) {
        const auto bar = choices.find('|');
        if (choices.substr(0, bar) == value) return true;
        if (bar == std::string_view::npos) break;
        choices.remove_prefix(bar + 1);
    }
    return false;
}

// Each setter returns what is wrong with the value, or an empty string.
std::string set_string(const Field& f, StringMember m, const toml::node& node, Config& c) {
    const auto* s = node.as_string();
    if (s == nullptr) return "expected a string";
    if (s->get().size() > kMaxStringBytes) return "longer than 4096 bytes";
    if (!f.choices.empty() && !is_choice(f.choices, s->get()))
        return "'" + s->get() + "' is not one of " + std::string(f.choices);
    c.*m = s->get();
    return {};
}

std::string set_list(ListMember m, const toml::node& node, Config& c) {
    const auto* array = node.as_array();
    if (array == nullptr) return "expected an array of strings";
    if (array->size() > kMaxListEntries) return "more than 64 entries";
    std::vector<std::string> values;
    for (const toml::node& item : *array) {
        const auto* s = item.as_string();
        if (s == nullptr || s->get().size() > kMaxStringBytes)
            return "expected an array of strings";
        values.push_back(s->get());
    }
    c.*m = std::move(values);
    return {};
}

std::string set_number(const Field& f, NumberMember m, const toml::node& node, Config& c) {
    const auto* i = node.as_integer();
    if (i == nullptr) return "expected an integer";
    const std::int64_t v = i->get();
    if (v < f.min || v > f.max)
        return std::to_string(v) + " is outside " + std::to_string(f.min) + ".." +
               std::to_string(f.max);
    c.*m = static_cast<unsigned>(v);
    return {};
}

std::string set_value(const Field& f, const toml::node& node, Config& c) {
    if (const auto* m = std::get_if<StringMember>(&f.member)) return set_string(f, *m, node, c);
    if (const auto* m = std::get_if<ListMember>(&f.member)) return set_list(*m, node, c);
    return set_number(f, std::get<NumberMember>(f.member), node, c);
}

// Every error of a file, reported in line order (toml++ walks tables in key order).
struct Errors {
    std::string_view file;
    std::vector<std::pair<unsigned, std::string>> lines;
    void add(unsigned line, std::string_view key, std::string_view what) {
        lines.emplace_back(line, std::string(file) + ":" + std::to_string(line) + ": key '" +
                                     std::string(key) + "': " + std::string(what));
    }
    [[nodiscard]] std::string text() {
        std::stable_sort(lines.begin(), lines.end(),
                         [](const auto& a, const auto& b) { return a.first < b.first; });
        std::string all;
        for (const auto& [line, message] : lines) all += (all.empty() ? "" : "\n") + message;
        return all;
    }
};

void apply_table(const std::string& table, const toml::table& keys, LoadedConfig& out,
                 Errors& errors) {
    for (const auto& [key, node] : keys) {
        const std::string name = table + "." + std::string(key.str());
        const unsigned line = node.source().begin.line;
        const Field* field = find_field(name);
        if (field == nullptr) {
            errors.add(line, name, "unknown key");
            continue;
        }
        const std::string what = set_value(*field, node, out.config);
        if (!what.empty()) {
            errors.add(line, name, what);
            continue;
        }
        out.sources[name] = {Origin::file, line};
    }
}

std::string show_value(const Field& f, const Config& c) {
    if (const auto* m = std::get_if<StringMember>(&f.member)) return "\"" + c.**m + "\"";
    if (const auto* m = std::get_if<NumberMember>(&f.member)) return std::to_string(c.**m);
    std::string list = "[";
    for (const auto& s : c.*std::get<ListMember>(f.member))
        list += (list.size() > 1 ? ", \"" : "\"") + s + "\"";
    return list + "]";
}

std::string show_source(const ValueSource& s) {
    switch (s.origin) {
        case Origin::default_value: return "default";
        case Origin::profile: return "hardware profile";
        case Origin::file: return "file, line " + std::to_string(s.line);
        case Origin::flag: return "command line";
    }
    return "default";
}

// A flag's value, checked like the file's: the same ranges and choices.
std::string set_from_flag(const Field& f, const std::vector<std::string>& values, Config& c) {
    if (values.empty()) return "no value";
    if (const auto* m = std::get_if<ListMember>(&f.member)) {
        if (values.size() > kMaxListEntries) return "more than 64 values";
        c.**m = values;
        return {};
    }
    std::string_view text = values.back();
    if (text.size() > kMaxStringBytes) return "longer than 4096 bytes";
    if (const auto* m = std::get_if<StringMember>(&f.member)) {
        if (!f.choices.empty() && !is_choice(f.choices, text))
            return "'" + std::string(text) + "' is not one of " + std::string(f.choices);
        c.**m = std::string(text);
        return {};
    }
    if (f.percent && !text.empty() && text.back() == '%') text.remove_suffix(1);
    std::uint64_t v = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || end != text.data() + text.size() || text.empty())
        return "'" + std::string(values.back()) + "' is not " +
               (f.percent ? "a percentage" : "a whole number");
    if (v < f.min || v > f.max)
        return std::string(values.back()) + " is outside " + std::to_string(f.min) + ".." +
               std::to_string(f.max);
    c.*std::get<NumberMember>(f.member) = static_cast<unsigned>(v);
    return {};
}

}  // namespace

std::span<const ConfigKey> config_keys() noexcept { return kKeys; }

Result<LoadedConfig> apply_flags(LoadedConfig base, std::span<const FlagValues> flags) {
    std::string errors;
    for (const FlagValues& given : flags) {
        const Field* field = find_field(given.name);
        std::string what = field == nullptr ? std::string("no such key '") + given.name + "'"
                                            : set_from_flag(*field, given.values, base.config);
        if (!what.empty()) {
            const std::string flag = field == nullptr ? given.name : std::string(field->key.flag);
            errors += (errors.empty() ? "--" : "\n--") + flag + ": " + what;
            continue;
        }
        base.sources[given.name] = {Origin::flag, 0};
    }
    if (!errors.empty()) return make_error(ErrorCode::invalid_argument, errors);
    return base;
}

LoadedConfig default_config(const HardwareProfile& profile) {
    LoadedConfig d;
    for (const Field& f : kFields) d.sources[std::string(f.key.name)] = {};
    const ProfileDefaults p = profile_defaults(profile);
    d.config.cpu_budget_percent = p.cpu_budget_percent;
    d.config.threads = p.threads;
    d.config.batch = p.batch;
    for (const char* key : {"training.cpu_budget", "training.threads", "training.batch"})
        d.sources[key] = {Origin::profile, 0};
    return d;
}

Result<LoadedConfig> apply_config_text(std::string_view text, std::string_view name,
                                       LoadedConfig base) {
    // ASCII only: toml++ 3.3 (Debian 12) reaches __builtin_unreachable on some non-ASCII input
    // (tomlplusplus issue 295, found by tools/fuzz/fuzz_config), and no key needs more.
    if (const auto at = std::find_if(text.begin(), text.end(),
                                     [](char c) { return static_cast<unsigned char>(c) >= 0x80; });
        at != text.end()) {
        const auto line = 1 + std::count(text.begin(), at, '\n');
        return make_error(ErrorCode::malformed,
                          std::string(name) + ":" + std::to_string(line) +
                              ": a non-ASCII byte; the configuration file is plain ASCII");
    }
    toml::parse_result parsed = toml::parse(text, name);
    if (!parsed) {
        const auto& e = parsed.error();
        return make_error(ErrorCode::malformed,
                          std::string(name) + ":" + std::to_string(e.source().begin.line) + ": " +
                              std::string(e.description()));
    }
    Errors errors{name, {}};
    for (const auto& [key, node] : parsed.table()) {
        const std::string table(key.str());
        if (const toml::table* keys = node.as_table(); keys != nullptr && find_field(table) == nullptr)
            apply_table(table, *keys, base, errors);
        else
            errors.add(node.source().begin.line, table,
                       "unknown key (expected the tables [node], [training], [governor], [log])");
    }
    if (!errors.lines.empty()) return make_error(ErrorCode::invalid_argument, errors.text());
    return base;
}

Result<LoadedConfig> load_config_file(const std::filesystem::path& file, LoadedConfig base) {
    std::error_code ec;
    const auto size = std::filesystem::file_size(file, ec);
    if (ec) return make_error(ErrorCode::not_found, file.string() + ": " + ec.message());
    if (size > kMaxConfigBytes)
        return make_error(ErrorCode::too_large, file.string() + ": larger than 64 KiB");
    std::ifstream in(file, std::ios::binary);
    std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    if (!in && !in.eof()) return make_error(ErrorCode::io, file.string() + ": read failed");
    return apply_config_text(text, file.string(), std::move(base));
}

GovernorLimits governor_limits(const Config& c, unsigned logical_cores) noexcept {
    GovernorLimits g;
    g.cpu_budget_percent = c.cpu_budget_percent;
    g.logical_cores = logical_cores;
    g.thermal_limit_c = c.thermal_limit_c;
    g.memory_floor_mib = c.memory_floor_mib;
    g.psi_cpu_percent = c.psi_cpu_percent;
    g.psi_memory_percent = c.psi_memory_percent;
    g.psi_io_percent = c.psi_io_percent;
    g.busy_cpu_percent = c.busy_cpu_percent;
    return g;
}

std::string explain(const LoadedConfig& loaded) {
    std::string out;
    for (const Field& f : kFields) {
        std::string line = std::string(f.key.name) + " = " + show_value(f, loaded.config);
        if (line.size() < 44) line.resize(44, ' ');
        const auto it = loaded.sources.find(f.key.name);
        out += line + "  # " + show_source(it == loaded.sources.end() ? ValueSource{} : it->second) +
               "\n";
    }
    return out;
}

}  // namespace starling::firmware

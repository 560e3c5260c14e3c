#include "node/runtime/metrics.hpp"

#include <unistd.h>

#include <array>
#include <algorithm>
#include <cassert>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <vector>

namespace starling::runtime {
namespace {

// /proc files read whole: stat is ~300 bytes; anything longer is not what we expect.
constexpr std::size_t kMaxProcFileBytes = 4096;
// Fields of /proc/self/stat after the command name: utime and stime are the 12th and 13th.
constexpr std::size_t kStatUtimeField = 11;
constexpr std::size_t kStatStimeField = 12;

void escape_label(std::string& out, std::string_view value) {
    for (const char c : value) {
        if (c == '\\') out += "\\\\";
        else if (c == '"') out += "\\\"";
        else if (c == '\n') out += "\\n";
        else out += c;
    }
}

Result<std::string> read_small(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return make_error(ErrorCode::io, "cannot read '" + path.string() + "'");
    std::string text(kMaxProcFileBytes + 1, '\0');
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    text.resize(static_cast<std::size_t>(in.gcount()));
    if (text.size() > kMaxProcFileBytes)
        return make_error(ErrorCode::too_large, "'" + path.string() + "' is too long");
    return text;
}

Error malformed(const std::filesystem::path& path) {
    return make_error(ErrorCode::malformed, "unexpected contents in '" + path.string() + "'");
}

}  // namespace

bool valid_metric_name(std::string_view name) noexcept {
    if (name.empty()) return false;
    for (std::size_t i = 0; i < name.size(); ++i) {
        const char c = name[i];
        const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
        const bool digit = c >= '0' && c <= '9';
        if (!letter && !(digit && i > 0)) return false;
    }
    return true;
}

std::string metric_value(double value) {
    if (std::isnan(value)) return "NaN";
    if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
    std::array<char, 40> text{};
    if (value == std::floor(value) && std::fabs(value) < 1e15)
        std::snprintf(text.data(), text.size(), "%.0f", value);
    else
        std::snprintf(text.data(), text.size(), "%.9g", value);
    return text.data();
}

void PrometheusText::counter(std::string_view name, std::string_view help, double value,
                             std::initializer_list<MetricLabel> labels) {
    sample("counter", name, help, value, labels);
}

void PrometheusText::gauge(std::string_view name, std::string_view help, double value,
                           std::initializer_list<MetricLabel> labels) {
    sample("gauge", name, help, value, labels);
}

void PrometheusText::sample(std::string_view type, std::string_view name, std::string_view help,
                            double value, std::initializer_list<MetricLabel> labels) {
    assert(valid_metric_name(name));
    if (name != family_) {
        family_ = name;
        out_ += "# HELP ";
        out_ += name;
        out_ += ' ';
        for (const char c : help) out_ += c == '\n' ? ' ' : c;  // HELP is one line
        out_ += "\n# TYPE ";
        out_ += name;
        out_ += ' ';
        out_ += type;
        out_ += '\n';
    }
    out_ += name;
    if (labels.size() != 0) {
        out_ += '{';
        bool first = true;
        for (const auto& [label, label_value] : labels) {
            assert(valid_metric_name(label));
            if (!first) out_ += ',';
            first = false;
            out_ += label;
            out_ += "=\"";
            escape_label(out_, label_value);
            out_ += '"';
        }
        out_ += '}';
    }
    out_ += ' ';
    out_ += metric_value(value);
    out_ += '\n';
}

std::string stats_as_gauges(std::string_view stats, std::string_view skip, std::string_view prefix) {
    const auto keys_of = [](std::string_view text) {
        std::vector<std::pair<std::string, std::string>> lines;
        while (!text.empty()) {
            const std::size_t end = std::min(text.find('\n'), text.size());
            const std::string_view line = text.substr(0, end);
            text.remove_prefix(std::min(end + 1, text.size()));
            const std::size_t space = line.find(' ');
            if (space == std::string_view::npos || space == 0) continue;
            lines.emplace_back(std::string(line.substr(0, space)), std::string(line.substr(space + 1)));
        }
        return lines;
    };
    std::vector<std::string> skipped;
    for (const auto& [key, value] : keys_of(skip)) skipped.push_back(key);
    PrometheusText p;
    for (auto& [key, value] : keys_of(stats)) {
        if (std::find(skipped.begin(), skipped.end(), key) != skipped.end()) continue;
        double number = 0.0;
        const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), number);
        if (ec != std::errc{} || end != value.data() + value.size() || !std::isfinite(number)) continue;
        std::string name(prefix);
        for (const char c : key) {
            const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
            name += ok ? c : '_';
        }
        if (!valid_metric_name(name)) continue;
        p.gauge(name, "From the node's stats answer: " + key, number);
    }
    return p.text();
}

Result<ProcessUsage> read_process_usage(const std::filesystem::path& proc_self) {
    ProcessUsage usage;
    const std::filesystem::path statm_path = proc_self / "statm";
    Result<std::string> statm = read_small(statm_path);
    if (!statm) return statm.error();
    std::istringstream statm_in(*statm);
    std::uint64_t size_pages = 0;
    std::uint64_t resident_pages = 0;
    if (!(statm_in >> size_pages >> resident_pages)) return malformed(statm_path);
    const long page = ::sysconf(_SC_PAGESIZE);
    usage.resident_bytes = resident_pages * static_cast<std::uint64_t>(page > 0 ? page : 4096);

    const std::filesystem::path stat_path = proc_self / "stat";
    Result<std::string> stat = read_small(stat_path);
    if (!stat) return stat.error();
    const std::size_t close = stat->rfind(')');  // the command name may hold spaces and ')'
    if (close == std::string::npos) return malformed(stat_path);
    std::istringstream fields(stat->substr(close + 1));
    std::vector<std::string> tokens;
    for (std::string t; tokens.size() <= kStatStimeField && fields >> t;) tokens.push_back(t);
    if (tokens.size() <= kStatStimeField) return malformed(stat_path);
    const long ticks = ::sysconf(_SC_CLK_TCK);
    std::uint64_t cpu_ticks = 0;
    for (const std::size_t field : {kStatUtimeField, kStatStimeField}) {
        const std::string& t = tokens[field];
        std::uint64_t value = 0;
        const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), value);
        if (ec != std::errc{} || end != t.data() + t.size()) return malformed(stat_path);
        cpu_ticks += value;
    }
    usage.cpu_seconds = static_cast<double>(cpu_ticks) / static_cast<double>(ticks > 0 ? ticks : 100);
    return usage;
}

}  // namespace starling::runtime

#pragma once
// The node's metrics in the Prometheus text exposition format (version 0.0.4), and the process's
// own resident memory and CPU time read from /proc, for the opt-in HTTP listener and the history.

#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

#include "protocol/result.hpp"

namespace starling::runtime {

// A label as name="value"; names follow [a-zA-Z_][a-zA-Z0-9_]*, values are escaped.
using MetricLabel = std::pair<std::string_view, std::string_view>;

// Writes metric families one sample at a time; HELP and TYPE are written once per family, before
// its first sample, so the samples of one family must be written together.
class PrometheusText {
public:
    void counter(std::string_view name, std::string_view help, double value,
                 std::initializer_list<MetricLabel> labels = {});
    void gauge(std::string_view name, std::string_view help, double value,
               std::initializer_list<MetricLabel> labels = {});
    [[nodiscard]] const std::string& text() const noexcept { return out_; }

private:
    void sample(std::string_view type, std::string_view name, std::string_view help, double value,
                std::initializer_list<MetricLabel> labels);
    std::string out_;
    std::string family_;  // the family whose samples are being written
};

// True for a valid metric or label name (the writer asserts it: names are ours, not input).
[[nodiscard]] bool valid_metric_name(std::string_view name) noexcept;
// A sample value as Prometheus spells it: integers exactly, NaN, +Inf, -Inf.
[[nodiscard]] std::string metric_value(double value);

// "key value" lines of a stats answer as gauges named `prefix` + key (keys sanitized to metric
// names), leaving out keys that `skip` (another stats answer) has and values that are not numbers.
[[nodiscard]] std::string stats_as_gauges(std::string_view stats, std::string_view skip,
                                          std::string_view prefix);

struct ProcessUsage {
    std::uint64_t resident_bytes = 0;
    double cpu_seconds = 0.0;  // user + system
};
// From `proc_self`/statm and `proc_self`/stat (injectable for tests); malformed or io otherwise.
[[nodiscard]] Result<ProcessUsage> read_process_usage(
    const std::filesystem::path& proc_self = "/proc/self");

}  // namespace starling::runtime

#pragma once
// `starling-inspect report`: a node's metrics history (node/runtime/history.hpp) turned into one
// self-contained HTML page with inline SVG plots (no scripts, no external assets), readable
// offline: accuracy per node and mean, loss, consensus distance, membership size and bytes/s.

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "protocol/result.hpp"

namespace starling::inspect {

// Nodes drawn one line each; more are summarized by the mean alone.
inline constexpr std::size_t kMaxPlottedNodes = 32;

struct HistoryPoint {
    double unix_seconds = 0.0;
    std::string node;  // the node that wrote the history
    double live = 0.0;
    double bytes_in = 0.0;
    double bytes_out = 0.0;
    std::map<std::string, double> accuracy;  // by member name, where reported
    std::map<std::string, double> loss;
    std::optional<double> consensus_distance;
};

// One history line each; lines that are not objects with "unix" are skipped and counted.
[[nodiscard]] std::vector<HistoryPoint> parse_history(const std::vector<std::string>& lines,
                                                      std::size_t& skipped);

struct Series {
    std::string name;
    std::vector<std::pair<double, double>> points;  // (x, y)
    bool emphasized = false;
};

// An SVG line plot with axes, ticks and a legend; an empty plot says "no data".
[[nodiscard]] std::string svg_plot(const std::string& title, const std::string& y_label,
                                   const std::vector<Series>& series);

// The whole page.
[[nodiscard]] std::string render_report(const std::vector<HistoryPoint>& points);

// `text` with &, <, >, " escaped.
[[nodiscard]] std::string html_escape(std::string_view text);

}  // namespace starling::inspect

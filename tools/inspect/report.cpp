#include "tools/inspect/report.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <ctime>

#include "tools/inspect/json.hpp"

namespace starling::inspect {
namespace {

constexpr int kWidth = 760;
constexpr int kHeight = 260;
constexpr int kLeft = 64;
constexpr int kRight = 150;  // legend
constexpr int kTop = 30;
constexpr int kBottom = 40;
constexpr std::array<const char*, 10> kColours = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728",
                                                  "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                                                  "#bcbd22", "#17becf"};

std::string fmt(double v, const char* format = "%.4g") {
    std::array<char, 32> text{};
    std::snprintf(text.data(), text.size(), format, v);
    return text.data();
}

std::string clock_text(double unix_seconds) {
    const std::time_t t = static_cast<std::time_t>(unix_seconds);
    std::tm tm{};
    gmtime_r(&t, &tm);
    std::array<char, 16> text{};
    std::strftime(text.data(), text.size(), "%H:%M:%S", &tm);
    return text.data();
}

Series mean_of(const std::vector<HistoryPoint>& points,
               const std::map<std::string, double> HistoryPoint::*field, const std::string& name) {
    Series mean{name, {}, true};
    for (const HistoryPoint& p : points) {
        const auto& values = p.*field;
        if (values.empty()) continue;
        double sum = 0.0;
        for (const auto& [n, v] : values) sum += v;
        mean.points.emplace_back(p.unix_seconds, sum / static_cast<double>(values.size()));
    }
    return mean;
}

std::vector<Series> per_node(const std::vector<HistoryPoint>& points,
                             const std::map<std::string, double> HistoryPoint::*field, double scale) {
    std::map<std::string, Series> by_node;
    for (const HistoryPoint& p : points)
        for (const auto& [name, v] : p.*field) {
            if (by_node.size() >= kMaxPlottedNodes && !by_node.contains(name)) continue;
            Series& s = by_node[name];
            s.name = name;
            s.points.emplace_back(p.unix_seconds, v * scale);
        }
    std::vector<Series> out;
    for (auto& [name, s] : by_node) out.push_back(std::move(s));
    return out;
}

}  // namespace

std::string html_escape(std::string_view text) {
    std::string out;
    for (const char c : text) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&quot;"; break;
            default: out += c;
        }
    }
    return out;
}

std::vector<HistoryPoint> parse_history(const std::vector<std::string>& lines, std::size_t& skipped) {
    std::vector<HistoryPoint> points;
    for (const std::string& line : lines) {
        Result<Json> doc = parse_json(line);
        if (!doc || !doc->is_object() || !doc->number_at("unix")) {
            ++skipped;
            continue;
        }
        HistoryPoint p;
        p.unix_seconds = *doc->number_at("unix");
        p.node = doc->string_at("node").value_or("");
        p.live = doc->number_at("live").value_or(0.0);
        p.bytes_in = doc->number_at("bytes_in").value_or(0.0);
        p.bytes_out = doc->number_at("bytes_out").value_or(0.0);
        p.consensus_distance = doc->number_at("consensus_distance");
        if (const Json* members = doc->find("members"); members != nullptr && members->is_array())
            for (const Json& m : members->items()) {
                const std::optional<std::string> name = m.string_at("name");
                const std::string state = m.string_at("state").value_or("");
                if (!name || state == "dead" || state == "left") continue;
                if (auto a = m.number_at("accuracy")) p.accuracy[*name] = *a;
                if (auto l = m.number_at("loss")) p.loss[*name] = *l;
            }
        points.push_back(std::move(p));
    }
    std::stable_sort(points.begin(), points.end(), [](const HistoryPoint& a, const HistoryPoint& b) {
        return a.unix_seconds < b.unix_seconds;
    });
    return points;
}

std::string svg_plot(const std::string& title, const std::string& y_label,
                     const std::vector<Series>& series) {
    const int plot_w = kWidth - kLeft - kRight;
    const int plot_h = kHeight - kTop - kBottom;
    double x0 = 0, x1 = 0, y0 = 0, y1 = 0;
    bool any = false;
    for (const Series& s : series)
        for (const auto& [x, y] : s.points) {
            if (!std::isfinite(x) || !std::isfinite(y)) continue;
            if (!any) x0 = x1 = x, y0 = y1 = y;
            x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, y), y1 = std::max(y1, y);
            any = true;
        }
    std::string svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(kWidth) +
                      "\" height=\"" + std::to_string(kHeight) + "\" viewBox=\"0 0 " +
                      std::to_string(kWidth) + " " + std::to_string(kHeight) +
                      "\" role=\"img\" aria-label=\"" + html_escape(title) + "\">\n";
    svg += "<rect x=\"0\" y=\"0\" width=\"" + std::to_string(kWidth) + "\" height=\"" +
           std::to_string(kHeight) + "\" fill=\"#ffffff\"/>\n";
    svg += "<text x=\"" + std::to_string(kLeft) + "\" y=\"18\" font-size=\"14\" font-weight=\"bold\">" +
           html_escape(title) + "</text>\n";
    svg += "<rect x=\"" + std::to_string(kLeft) + "\" y=\"" + std::to_string(kTop) + "\" width=\"" +
           std::to_string(plot_w) + "\" height=\"" + std::to_string(plot_h) +
           "\" fill=\"#f7f7f7\" stroke=\"#444444\"/>\n";
    if (!any) {
        svg += "<text x=\"" + std::to_string(kLeft + plot_w / 2) + "\" y=\"" +
               std::to_string(kTop + plot_h / 2) +
               "\" text-anchor=\"middle\" font-size=\"13\" fill=\"#666666\">no data reported</text>\n";
        return svg + "</svg>\n";
    }
    if (x1 == x0) x1 = x0 + 1;
    if (y1 == y0) y0 -= 0.5, y1 += 0.5;
    const auto px = [&](double x) { return kLeft + (x - x0) / (x1 - x0) * plot_w; };
    const auto py = [&](double y) { return kTop + plot_h - (y - y0) / (y1 - y0) * plot_h; };
    for (int i = 0; i <= 4; ++i) {  // y ticks and grid
        const double y = y0 + (y1 - y0) * i / 4.0;
        svg += "<line x1=\"" + std::to_string(kLeft) + "\" x2=\"" + std::to_string(kLeft + plot_w) +
               "\" y1=\"" + fmt(py(y), "%.1f") + "\" y2=\"" + fmt(py(y), "%.1f") +
               "\" stroke=\"#dddddd\"/>\n<text x=\"" + std::to_string(kLeft - 6) + "\" y=\"" +
               fmt(py(y) + 4, "%.1f") + "\" text-anchor=\"end\" font-size=\"11\">" + fmt(y) + "</text>\n";
    }
    for (int i = 0; i <= 4; ++i) {  // x ticks: UTC clock time
        const double x = x0 + (x1 - x0) * i / 4.0;
        svg += "<text x=\"" + fmt(px(x), "%.1f") + "\" y=\"" + std::to_string(kTop + plot_h + 16) +
               "\" text-anchor=\"middle\" font-size=\"11\">" + clock_text(x) + "</text>\n";
    }
    svg += "<text x=\"14\" y=\"" + std::to_string(kTop + plot_h / 2) +
           "\" font-size=\"11\" transform=\"rotate(-90 14 " + std::to_string(kTop + plot_h / 2) +
           ")\" text-anchor=\"middle\">" + html_escape(y_label) + "</text>\n";
    svg += "<text x=\"" + std::to_string(kLeft + plot_w / 2) + "\" y=\"" + std::to_string(kHeight - 6) +
           "\" text-anchor=\"middle\" font-size=\"11\">time (UTC)</text>\n";
    std::size_t colour = 0;
    int legend_y = kTop + 10;
    for (const Series& s : series) {
        if (s.points.empty()) continue;
        const std::string stroke = s.emphasized ? "#000000" : kColours[colour++ % kColours.size()];
        std::string path;
        for (const auto& [x, y] : s.points) {
            if (!std::isfinite(x) || !std::isfinite(y)) continue;
            path += (path.empty() ? "" : " ") + fmt(px(x), "%.1f") + "," + fmt(py(y), "%.1f");
        }
        svg += "<polyline fill=\"none\" stroke=\"" + stroke + "\" stroke-width=\"" +
               (s.emphasized ? "3" : "1.5") + "\" points=\"" + path + "\"/>\n";
        if (s.points.size() == 1)
            svg += "<circle cx=\"" + fmt(px(s.points[0].first), "%.1f") + "\" cy=\"" +
                   fmt(py(s.points[0].second), "%.1f") + "\" r=\"3\" fill=\"" + stroke + "\"/>\n";
        if (legend_y < kHeight - kBottom) {
            svg += "<line x1=\"" + std::to_string(kLeft + plot_w + 10) + "\" x2=\"" +
                   std::to_string(kLeft + plot_w + 28) + "\" y1=\"" + std::to_string(legend_y) +
                   "\" y2=\"" + std::to_string(legend_y) + "\" stroke=\"" + stroke +
                   "\" stroke-width=\"3\"/>\n<text x=\"" + std::to_string(kLeft + plot_w + 32) +
                   "\" y=\"" + std::to_string(legend_y + 4) + "\" font-size=\"11\">" +
                   html_escape(s.name) + "</text>\n";
            legend_y += 16;
        }
    }
    return svg + "</svg>\n";
}

std::string render_report(const std::vector<HistoryPoint>& points) {
    std::vector<Series> accuracy = per_node(points, &HistoryPoint::accuracy, 100.0);
    Series accuracy_mean = mean_of(points, &HistoryPoint::accuracy, "mean");
    for (auto& [x, y] : accuracy_mean.points) y *= 100.0;
    accuracy.push_back(accuracy_mean);
    std::vector<Series> loss = per_node(points, &HistoryPoint::loss, 1.0);
    loss.push_back(mean_of(points, &HistoryPoint::loss, "mean"));
    Series consensus{"consensus distance", {}, true};
    Series members{"live members", {}, true};
    Series in{"in", {}, false};
    Series out{"out", {}, false};
    for (std::size_t i = 0; i < points.size(); ++i) {
        const HistoryPoint& p = points[i];
        members.points.emplace_back(p.unix_seconds, p.live);
        if (p.consensus_distance) consensus.points.emplace_back(p.unix_seconds, *p.consensus_distance);
        if (i == 0) continue;
        const HistoryPoint& q = points[i - 1];
        const double dt = p.unix_seconds - q.unix_seconds;
        // A restart resets the counters: no rate across it.
        if (dt <= 0 || p.bytes_in < q.bytes_in || p.bytes_out < q.bytes_out) continue;
        in.points.emplace_back(p.unix_seconds, (p.bytes_in - q.bytes_in) / dt);
        out.points.emplace_back(p.unix_seconds, (p.bytes_out - q.bytes_out) / dt);
    }
    std::string node = points.empty() ? "" : points.back().node;
    std::string html =
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Starling "
        "cluster report</title>\n<style>body{font-family:sans-serif;margin:24px;color:#222;"
        "background:#ffffff}h1{font-size:20px}section{margin-bottom:18px}</style>\n</head>\n<body>\n";
    html += "<h1>Starling cluster report</h1>\n<p>As seen by node <b>" + html_escape(node) + "</b>: " +
            std::to_string(points.size()) + " samples";
    if (!points.empty())
        html += " from " + clock_text(points.front().unix_seconds) + " to " +
                clock_text(points.back().unix_seconds) + " UTC";
    html += ".</p>\n";
    const auto section = [&](const std::string& svg) { html += "<section>\n" + svg + "</section>\n"; };
    section(svg_plot("Test accuracy per node and mean", "accuracy (%)", accuracy));
    section(svg_plot("Training loss", "loss", loss));
    section(svg_plot("Consensus distance between models", "distance", {consensus}));
    section(svg_plot("Membership size", "live members", {members}));
    section(svg_plot("Bytes per second", "bytes/s", {in, out}));
    html += "</body>\n</html>\n";
    return html;
}

}  // namespace starling::inspect

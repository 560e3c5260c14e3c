#include "node/runtime/observe.hpp"

#include <array>
#include <charconv>
#include <cstdio>

namespace starling::runtime {
namespace {

std::string seconds_text(membership::Time t) {
    std::array<char, 32> text{};
    std::snprintf(text.data(), text.size(), "%.6f", static_cast<double>(t.count()) / 1e6);
    return text.data();
}

template <class Entry>
std::string header_line(const Ring<Entry>& ring, std::uint64_t cursor, std::uint64_t first_seq) {
    const std::uint64_t missed = first_seq > cursor + 1 ? first_seq - cursor - 1 : 0;
    return "{\"cursor\": " + std::to_string(ring.last_seq()) +
           ", \"missed\": " + std::to_string(missed) + "}\n";
}

}  // namespace

const char* to_string(LogLevel level) noexcept {
    switch (level) {
        case LogLevel::debug: return "debug";
        case LogLevel::info: return "info";
        case LogLevel::warn: return "warn";
        case LogLevel::error: return "error";
    }
    return "?";
}

std::optional<LogLevel> parse_log_level(std::string_view text) noexcept {
    for (LogLevel l : {LogLevel::debug, LogLevel::info, LogLevel::warn, LogLevel::error})
        if (text == to_string(l)) return l;
    return std::nullopt;
}

std::string json_quote(std::string_view text) {
    std::string out = "\"";
    for (const char c : text) {
        const auto u = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (u < 0x20 || u == 0x7F) {
            std::array<char, 8> escaped{};
            std::snprintf(escaped.data(), escaped.size(), "\\u%04x", u);
            out += escaped.data();
        } else {
            out += c;
        }
    }
    return out + '"';
}

std::optional<std::uint64_t> parse_since(std::string_view text) noexcept {
    constexpr std::string_view kPrefix = "since ";
    if (!text.starts_with(kPrefix)) return std::nullopt;
    text.remove_prefix(kPrefix.size());
    std::uint64_t value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size() || text.empty()) return std::nullopt;
    return value;
}

std::string trace_json(const Ring<TraceEntry>& ring, std::uint64_t cursor) {
    std::string body;
    std::uint64_t first = 0;
    ring.since(cursor, [&](const TraceEntry& e) {
        if (first == 0) first = e.seq;
        body += "{\"seq\": " + std::to_string(e.seq) + ", \"t\": " + seconds_text(e.time) +
                ", \"dir\": \"" + (e.direction == Direction::in ? "in" : "out") +
                "\", \"peer\": " + json_quote(e.peer_name) + ", \"address\": \"" +
                e.peer.to_string() + "\", \"kind\": " + json_quote(e.kind) +
                ", \"bytes\": " + std::to_string(e.bytes);
        if (e.model_version) body += ", \"model_version\": " + std::to_string(*e.model_version);
        body += "}\n";
    });
    return header_line(ring, cursor, first == 0 ? ring.last_seq() + 1 : first) + body;
}

std::string events_json(const Ring<Event>& ring, std::uint64_t cursor) {
    std::string body;
    std::uint64_t first = 0;
    ring.since(cursor, [&](const Event& e) {
        if (first == 0) first = e.seq;
        body += "{\"seq\": " + std::to_string(e.seq) + ", \"t\": " + seconds_text(e.time) +
                ", \"level\": \"" + to_string(e.level) + "\", \"kind\": " + json_quote(e.kind) +
                ", \"text\": " + json_quote(e.text) + "}\n";
    });
    return header_line(ring, cursor, first == 0 ? ring.last_seq() + 1 : first) + body;
}

}  // namespace starling::runtime

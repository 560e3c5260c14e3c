#pragma once
// What a running node shows its inspector (starling-inspect) over the control socket: a bounded
// ring of message summaries (the trace tap), a bounded ring of events (joins, failures, refused
// datagrams, log lines) and the log level, settable while the node runs. Readers ask "since N"
// with the cursor of their last answer, so a poller never sees a line twice and a slow one learns
// how many it missed.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>

#include "node/membership/types.hpp"
#include "node/net/address.hpp"

namespace starling::runtime {

// Message summaries kept for `trace`: a few seconds of a busy 100-node LAN.
inline constexpr std::size_t kMaxTraceEntries = 4096;
// Events kept for `watch`.
inline constexpr std::size_t kMaxEventEntries = 512;
// Lines in one answer: ~160 bytes each stays well under net::kMaxControlReplyBytes.
inline constexpr std::size_t kMaxEntriesPerAnswer = 1024;
// Refused datagrams become events at most this often per second (all counted in metrics).
inline constexpr std::uint32_t kMaxRefusalEventsPerSecond = 4;

enum class LogLevel : std::uint8_t { debug = 0, info = 1, warn = 2, error = 3 };
[[nodiscard]] const char* to_string(LogLevel level) noexcept;
[[nodiscard]] std::optional<LogLevel> parse_log_level(std::string_view text) noexcept;

enum class Direction : std::uint8_t { in, out };

// One datagram the node sent or received, as the tap saw it.
struct TraceEntry {
    std::uint64_t seq = 0;
    membership::Time time{};      // the node's monotonic clock
    Direction direction = Direction::in;
    net::Ipv4Endpoint peer;       // the other end
    std::string peer_name;        // certificate name, or "device-…" / "?" when unknown
    std::string kind;             // "ping", "beacon", "refused:bad_mac", …
    std::uint32_t bytes = 0;      // sealed size on the wire
    std::optional<std::uint64_t> model_version;  // when the message announces or carries one
};

struct Event {
    std::uint64_t seq = 0;
    membership::Time time{};
    LogLevel level = LogLevel::info;
    std::string kind;  // "peer", "refused", "node", "log"
    std::string text;
};

// A ring of at most `capacity` entries numbered from 1; `since(cursor)` returns those after it.
template <class Entry>
class Ring {
public:
    explicit Ring(std::size_t capacity) : capacity_(capacity) {}
    Entry& push(Entry entry) {
        entry.seq = ++last_seq_;
        if (entries_.size() == capacity_) entries_.pop_front();
        entries_.push_back(std::move(entry));
        return entries_.back();
    }
    // Entries with seq > cursor, oldest first, at most kMaxEntriesPerAnswer (the newest kept).
    template <class Fn>
    void since(std::uint64_t cursor, Fn&& each) const {
        std::size_t skip = 0;
        for (const Entry& e : entries_)
            if (e.seq <= cursor) ++skip;
        const std::size_t left = entries_.size() - skip;
        if (left > kMaxEntriesPerAnswer) skip += left - kMaxEntriesPerAnswer;
        for (std::size_t i = skip; i < entries_.size(); ++i) each(entries_[i]);
    }
    [[nodiscard]] std::uint64_t last_seq() const noexcept { return last_seq_; }

private:
    std::size_t capacity_;
    std::deque<Entry> entries_;
    std::uint64_t last_seq_ = 0;
};

// JSON lines for the control socket: first {"cursor": N, "missed": M}, then one object per entry.
[[nodiscard]] std::string trace_json(const Ring<TraceEntry>& ring, std::uint64_t cursor);
[[nodiscard]] std::string events_json(const Ring<Event>& ring, std::uint64_t cursor);
// "since N" → N; nullopt for anything else.
[[nodiscard]] std::optional<std::uint64_t> parse_since(std::string_view text) noexcept;
// `text` as a JSON string literal, quotes included.
[[nodiscard]] std::string json_quote(std::string_view text);

}  // namespace starling::runtime

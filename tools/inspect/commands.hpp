#pragma once
// The starling-inspect subcommands as plain functions (main.cpp alone knows the parser); each
// returns the process exit code.

#include <cstdint>
#include <string>

namespace starling::inspect {

enum Exit : int {
    kExitOk = 0,
    kExitFailure = 1,  // the node did not answer, a file could not be read or written
    kExitUsage = 2,    // bad arguments or unreadable input (not a pcap file, a bad bundle)
};

// The package's state directory: where the control socket is unless told otherwise.
inline constexpr const char* kDefaultStateDir = "/var/lib/starling";
// Polling bounds for watch and trace.
inline constexpr std::uint32_t kMinPollMs = 50;
inline constexpr std::uint32_t kMaxPollMs = 60'000;
// watch keeps this many accuracy samples for its sparkline.
inline constexpr std::size_t kSparklineSamples = 40;
// watch shows this many recent events.
inline constexpr std::size_t kWatchEvents = 10;

struct Source {
    std::string state = kDefaultStateDir;
    std::string control;  // overrides state
};

struct MembersArgs {
    Source source;
    bool json = false;
};
struct WatchArgs {
    Source source;
    bool json = false;
    bool plain = false;       // force plain lines on a terminal
    std::uint32_t interval_ms = 1000;
    double duration_s = 0;    // 0: until interrupted
};
struct TraceArgs {
    Source source;
    bool json = false;
    std::string peer;         // name or address
    std::string kind;
    std::uint32_t interval_ms = 250;
    double duration_s = 0;
};
struct LogLevelArgs {
    Source source;
    std::string level;  // debug, info, warn, error; empty: show the current one
};
struct DecodeArgs {
    std::string capture;
    std::string bundle;
    bool json = false;
    std::uint16_t port = 0;   // 0: every UDP datagram
};
struct ReportArgs {
    std::string state = kDefaultStateDir;
    std::string history;      // overrides state
    std::string out;
    bool json = false;
};

int run_members(const MembersArgs& args);
int run_watch(const WatchArgs& args);
int run_trace(const TraceArgs& args);
int run_log_level(const LogLevelArgs& args);
int run_decode(const DecodeArgs& args);
int run_report(const ReportArgs& args);

}  // namespace starling::inspect

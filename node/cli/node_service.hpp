#pragma once
// `starling node` as a service: its settings from the configuration file and the flags (flags
// win), the first-boot wait for an enrollment bundle, and the sd_notify conversation with
// systemd (READY, WATCHDOG, STATUS, STOPPING), kept apart from the node itself.

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "crypto/cluster.hpp"
#include "firmware/config.hpp"
#include "firmware/provisioning.hpp"
#include "node/cli/commands.hpp"
#include "node/net/event_loop.hpp"

namespace starling::cli {

using LogFn = std::function<void(std::string_view)>;

struct NodeSettings {
    NodeArgs args;                   // with the configuration's values filled in
    firmware::LoadedConfig config;   // every key and its origin (training reads its budget here)
    std::string config_file;         // "" when no file was read
};

// Reads --config FILE (or /etc/starling/starling.toml when it exists) over the hardware
// profile's defaults, then applies the flags given in `given`.
[[nodiscard]] Result<NodeSettings> resolve_node_settings(const NodeArgs& given,
                                                         const firmware::HardwareProfile& hw);

// Speaks to systemd when $NOTIFY_SOCKET is set: WATCHDOG=1 from the loop's timer at half
// $WATCHDOG_USEC (a stuck loop stops the pings and systemd restarts the node). A failed send
// is logged once and counted.
class ServiceNotifier {
  public:
    ServiceNotifier(net::EventLoop& loop, LogFn log);
    void ready(std::string_view status);
    void status(std::string_view text);
    void stopping();
    // Still starting (waiting for a bundle): asks systemd for `more` start-up time.
    void extend_start(std::chrono::microseconds more);
    [[nodiscard]] std::uint64_t failed_sends() const noexcept { return failed_; }

  private:
    void send(Status sent);
    void ping();
    net::Timer timer_;
    std::optional<std::chrono::microseconds> interval_;
    LogFn log_;
    std::uint64_t failed_ = 0;
};

// The bundle the node runs with: --bundle / node.bundle when given, else the first-boot search
// (firmware/provisioning.hpp). While none is valid it logs one line per distinct reason, says
// why in STATUS and retries with backoff; nullopt when SIGTERM/SIGINT arrives meanwhile.
[[nodiscard]] std::optional<crypto::EnrollmentBundle> wait_for_bundle(net::EventLoop& loop,
                                                                      const NodeSettings& s,
                                                                      ServiceNotifier& service,
                                                                      const LogFn& log);

}  // namespace starling::cli

#pragma once
// A Starling node on the network: the membership core driven by one event loop, every datagram
// sealed and opened with the cluster's keys, peers found by LAN beacons, seeds and the last known
// peers, one log line per membership change, and a graceful leave.
//
// Threading: everything runs on the one thread that delivers the transport's callbacks and the
// alarm (the EventLoop's in production); the node is not thread-safe.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/cluster.hpp"
#include "node/membership/config.hpp"
#include "node/net/transport.hpp"
#include "node/runtime/clock.hpp"
#include "node/runtime/discovery.hpp"
#include "node/runtime/state_dir.hpp"
#include "protocol/result.hpp"

namespace starling::runtime {

// Where a node listens unless told otherwise (memberlist's port), and the LAN group its beacons
// go to (organization-local scope, never routed off the site).
inline constexpr std::uint16_t kDefaultPort = 7946;
inline constexpr net::Ipv4Endpoint kBeaconGroup{{239, 255, 77, 77}, 7947};

struct NodeOptions {
    net::Ipv4Endpoint advertise;                  // where peers reach this node
    std::optional<net::Ipv4Endpoint> beacon_group;  // LAN multicast group; none: seeds only
    std::vector<net::Ipv4Endpoint> seeds;         // --seed, at most membership::limits::kMaxSeeds
    membership::Timers timers;
    DiscoveryTimers discovery;
    std::uint64_t rng_seed = 0;  // 0: random
    membership::Duration history_interval = std::chrono::seconds(10);  // metrics history lines
};

// A member the node holds alive, and where it listens.
struct LiveMember {
    crypto::DeviceId id{};
    net::Ipv4Endpoint address;
};
using OtherChannelHandler =
    std::function<bool(const crypto::DeviceId& sender, std::span<const std::uint8_t> plaintext)>;

// One line of the node's log, without the newline ("1234.567890 peer up nuc-002 ...").
using LogSink = std::function<void(std::string_view line)>;

class Node {
public:
    // Loads the revocations in the state directory and the last known peers, and persists the
    // new boot counter; nothing is sent before start(). `transport`, `clock` and `alarm` are
    // borrowed and must outlive the node.
    [[nodiscard]] static Result<std::unique_ptr<Node>> create(crypto::EnrollmentBundle bundle,
                                                              StateDir state,
                                                              net::Transport& transport,
                                                              const Clock& clock, Alarm& alarm,
                                                              NodeOptions options, LogSink log);
    ~Node();
    Node(const Node&) = delete;
    Node& operator=(const Node&) = delete;

    // Starts receiving, beaconing and joining.
    void start();
    // Graceful leave: a signed "left" record spreads, then `done` runs (on the loop's thread)
    // once it has, or after a bound. Asking twice calls `done` at once.
    void leave(std::function<void()> done);
    // A fatal local failure (the state directory cannot be written) also ends the node: `stop`
    // runs with the error's message. Set before start().
    void on_fatal(std::function<void(const std::string&)> stop);

    // The control socket's answers: "members" (a table), "members json", "stats", "metrics"
    // (Prometheus text), "trace since N", "events since N", "log level [LEVEL]".
    [[nodiscard]] std::string answer(std::string_view request) const;
    // The Prometheus text exposition of the node's metrics (node/runtime/metrics.hpp).
    [[nodiscard]] std::string metrics() const;
    // Where the metrics history takes its member list from (default: the node's own "members
    // json"); the training layer gives its annotated one (model version, accuracy, loss). Called
    // on the node's thread.
    void set_history_members(std::function<std::string()> members_json);
    // More top-level fields for each history line (`"name": value, ...`, no braces), e.g. the
    // training layer's consensus distance. Called on the node's thread.
    void set_history_fields(std::function<std::string()> fields);

    [[nodiscard]] std::size_t live_peers() const;
    [[nodiscard]] const crypto::Certificate& certificate() const;

    // For what rides beside membership (model exchange, node_members.cpp): the members held
    // alive, a sealed datagram to one of them, and the datagrams of channels the node does not
    // speak (the handler returns true when the datagram was its own).
    [[nodiscard]] std::vector<LiveMember> live_members() const;
    void send_to_member(const crypto::DeviceId& device, const net::Ipv4Endpoint& to,
                        std::span<const std::uint8_t> plaintext);
    void on_other_channel(OtherChannelHandler handler);
    [[nodiscard]] bool is_revoked(const crypto::DeviceId& device) const;
    // A revocation from the operator (crypto::encode_revocation bytes, as in the file `starling
    // cluster revoke` writes): verified against the owner's key, applied (the device is refused
    // and marked revoked), kept in the state directory and spread to every member. True when new.
    [[nodiscard]] Result<bool> revoke(std::span<const std::uint8_t> revocation);
    [[nodiscard]] net::Ipv4Endpoint advertised() const;

    struct Impl;  // node_impl.hpp
    explicit Node(std::unique_ptr<Impl> impl);  // by create()

private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace starling::runtime

#pragma once
// Real nodes (node/runtime) on the fake network with a hand-moved clock: a whole cluster in one
// process, where time moves only when the test runs it and every run replays exactly. Given link
// settings, the nodes talk over the simulator's packet network instead (tools/sim/sim_network.hpp):
// latency, loss, duplication, reordering and partitions, replayed from a seed.

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/cluster.hpp"
#include "node/runtime/node.hpp"
#include "tests/node/fake_transport.hpp"
#include "tests/protocol/temp_dir.hpp"
#include "tools/sim/sim_network.hpp"

namespace starling::runtime::testing {

using namespace std::chrono_literals;

inline constexpr std::uint64_t kUnixStart = 1'700'000'000;

class FakeClock final : public Clock {
public:
    membership::Time now() const override { return now_; }
    std::uint64_t unix_seconds() const override {
        return kUnixStart + static_cast<std::uint64_t>(now_.count() / 1'000'000);
    }
    void advance_to(membership::Time t) { now_ = std::max(now_, t); }

private:
    membership::Time now_{1'000'000};
};

class FakeAlarm final : public Alarm {
public:
    void set(membership::Time at, std::function<void()> on_time) override {
        at_ = at;
        on_time_ = std::move(on_time);
    }
    void cancel() override { at_.reset(); }
    const std::optional<membership::Time>& at() const { return at_; }
    void fire() {
        at_.reset();
        if (auto f = on_time_) f();
    }

private:
    std::optional<membership::Time> at_;
    std::function<void()> on_time_;
};

struct NodeSlot {
    std::string name;
    net::Ipv4Endpoint address;
    std::vector<std::uint8_t> bundle;  // encoded: each start decodes a fresh copy
    std::unique_ptr<net::Transport> transport;
    std::unique_ptr<FakeAlarm> alarm;
    std::unique_ptr<Node> node;
    std::vector<std::string> log;
    bool left = false;
};

class NodeCluster {
public:
    // `size` devices n001.. of one cluster, then `foreign` of another cluster on the same LAN.
    // With `lan`, every node joins the beacon group. With `link`, datagrams cross the simulated
    // network (seeded by `seed`) rather than the instant fake one.
    NodeCluster(std::size_t size, bool lan, std::size_t foreign = 0,
                std::optional<sim::LinkSettings> link = std::nullopt, std::uint64_t seed = 1);
    ~NodeCluster();

    // Takes the other cluster's device identities (same keys, so same ids): a run replays only
    // when the ids that order members and rank answerers are the same. Before any start.
    void adopt_identities(const NodeCluster& other);
    void start(std::size_t index, const std::vector<std::size_t>& seeds = {});
    // Starts node 0, then nodes 1..count-1 with node 0 as their seed.
    void start_all(std::size_t count);
    void crash(std::size_t index);  // kill -9: gone, its host refuses datagrams
    void leave(std::size_t index);  // graceful; the node is gone once its leave has spread
    void run_for(membership::Duration d);

    // Lines of node `index`'s log containing `text`.
    [[nodiscard]] std::size_t logged(std::size_t index, std::string_view text) const;
    [[nodiscard]] std::string members(std::size_t index) const;  // the "members json" answer
    [[nodiscard]] std::string stats(std::size_t index) const;
    // Every running node of the cluster lists every other running one as alive.
    [[nodiscard]] bool all_see_all_alive() const;
    [[nodiscard]] const std::filesystem::path state_dir(std::size_t index) const;
    crypto::ClusterSecrets& secrets() { return secrets_; }
    NodeSlot& slot(std::size_t index) { return slots_.at(index); }

    net::testing::FakeNetwork network;
    std::unique_ptr<sim::SimulatedNetwork> simulated;  // set when built with link settings
    FakeClock clock;

private:
    bool lan_;
    starling::testing::TempDir dir_;
    crypto::ClusterSecrets secrets_;
    std::vector<NodeSlot> slots_;
    std::size_t cluster_size_;
};

}  // namespace starling::runtime::testing

#pragma once
// The simulator's insides: nodes, the event queue and the observers that turn what happens into
// a Report. cluster.cpp runs events and faults; observe.cpp measures and judges.

#include <cstdint>
#include <cstdio>
#include <deque>
#include <memory>
#include <queue>
#include <unordered_map>
#include <vector>

#include "node/membership/membership.hpp"
#include "tools/sim/fake_authenticator.hpp"
#include "tools/sim/network.hpp"
#include "tools/sim/simulation.hpp"

namespace starling::sim {

using membership::DeviceId;
using membership::Incarnation;
using membership::Membership;
using membership::PeerAddress;

enum class NodeStatus : std::uint8_t { idle, running, crashed, left };

enum class EventKind : std::uint8_t { step, deliver, wakeup, unreachable, resume, exit, check };

struct Event {
    Time at{};
    std::uint64_t order = 0;  // ties broken by scheduling order: the run is deterministic
    EventKind kind = EventKind::step;
    bool slowed = false;      // deliver: the receiver's slowness already applied
    std::uint16_t generation = 0;       // deliver/unreachable: of the destination address
    std::uint16_t from_generation = 0;  // deliver: of the sender's address
    std::uint32_t node = 0;   // destination (deliver), subject (others)
    std::uint32_t from = 0;   // sender (deliver, unreachable: the node the ICMP goes to)
    std::uint32_t slot = 0;   // deliver: payload slot; step: step index

    bool operator>(const Event& other) const {
        return at != other.at ? at > other.at : order > other.order;
    }
};

struct SimNode {
    DeviceId id{};
    std::uint16_t generation = 0;  // of its address: bumped by a move
    std::uint32_t life = 0;        // starts so far
    NodeStatus status = NodeStatus::idle;
    bool refuses = false;          // crashed by a kill: its host answers "unreachable"
    bool paused = false;
    Duration slow{};
    Incarnation persisted = 0;          // the last IncarnationChanged it reported
    Incarnation life_incarnation = 0;   // the incarnation this life started with
    std::unique_ptr<FakeAuthenticator> auth;
    std::unique_ptr<Membership> membership;
    Time wakeup = membership::kNever;   // the wakeup event in the queue, if any
    std::deque<Event> inbox;            // datagrams that arrived while paused

    PeerAddress address(std::uint32_t index) const { return PeerAddress::sim(index, generation); }
    bool running() const { return status == NodeStatus::running; }
};

class Cluster {
public:
    Cluster(const Scenario& scenario, std::uint64_t seed, std::FILE* trace);
    Report run();

private:
    // cluster.cpp
    void schedule(Event event);
    void apply_step(const Step& step);
    void start_node(std::uint32_t index, bool moved);
    void stop_node(std::uint32_t index, NodeStatus status, bool refuses);
    void deliver(const Event& event);
    void receive(std::uint32_t index, const Event& event);
    void resume(std::uint32_t index);
    void after_input(std::uint32_t index);
    void perform_actions(std::uint32_t index);
    void reschedule_wakeup(std::uint32_t index);
    std::uint32_t store(std::vector<std::uint8_t> bytes);
    void release(std::uint32_t slot);
    void set_running_count(int delta);

    // observe.cpp
    void on_peer_event(std::uint32_t observer, const membership::PeerEvent& event);
    void arm_convergence(const std::string& cause);
    void watch_detection(std::uint32_t node, bool refused);
    void ensure_check();
    void on_check();
    bool converged() const;
    bool all_hold_failed(std::uint32_t subject) const;
    void count_traffic(std::size_t bytes);
    void judge();

    const Scenario& scenario_;
    std::uint64_t seed_;
    std::FILE* trace_;
    Time now_{};
    std::uint64_t order_ = 0;
    std::priority_queue<Event, std::vector<Event>, std::greater<>> queue_;
    std::vector<SimNode> nodes_;
    membership::DeviceIdMap<std::uint32_t> by_id_;
    PacketSimulator network_;
    model::Rng rng_;  // seeds and start choices; the network has its own stream
    std::vector<std::vector<std::uint8_t>> payloads_;
    std::vector<std::uint32_t> free_slots_;
    std::vector<Duration> arrivals_;

    // Observation.
    Report report_;
    std::size_t running_ = 0;
    Time running_since_{};
    bool check_scheduled_ = false;
    std::optional<std::size_t> pending_convergence_;
};

}  // namespace starling::sim

#pragma once
// A fake clock and a fake transport for membership tests: a handful of Membership instances,
// datagrams delivered after a fixed latency in send order, drop rules set by the test. Time only
// moves when the test says so.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "node/membership/membership.hpp"

namespace starling::membership::testing {

using namespace std::chrono_literals;

// Signatures keyed by the signer's id: a node with `forge` set signs with a key nobody accepts.
class FakeAuthenticator final : public RecordAuthenticator {
public:
    explicit FakeAuthenticator(const DeviceId& self, bool forge = false) : self_(self), forge_(forge) {}
    Signature sign(const SignedRecordMessage& message) override;
    bool verify(const DeviceId& signer, const SignedRecordMessage& message,
                const Signature& signature) override;
    static Signature signature_of(const DeviceId& signer, const SignedRecordMessage& message,
                                  std::uint64_t salt = 0);

private:
    DeviceId self_;
    bool forge_;
};

DeviceId device(std::uint8_t n);  // a test id: n in the first byte, the rest fixed

struct TestNode {
    DeviceId id{};
    PeerAddress address;
    std::unique_ptr<FakeAuthenticator> auth;
    std::unique_ptr<Membership> membership;
    bool running = false;
    Incarnation persisted = 0;        // the last IncarnationChanged
    std::vector<PeerEvent> events;    // everything it reported
};

struct InFlight {
    Time at{};
    std::uint64_t order = 0;
    std::size_t from = 0;
    PeerAddress to;
    std::vector<std::uint8_t> bytes;
};

class TestCluster {
public:
    explicit TestCluster(Timers timers = Timers{}, std::uint64_t seed = 1000)
        : timers_(timers), seed_(seed) {}

    // Starts node `index` (a new one, or a restart of a stopped one), joining via `seed` if set.
    void start(std::size_t index, std::optional<std::size_t> seed,
               std::optional<Incarnation> last_incarnation = std::nullopt, bool forge = false);
    void crash(std::size_t index) { nodes_.at(index).running = false; }
    // The node's address changes under it (DHCP, another interface); it announces the new one.
    void move(std::size_t index, const PeerAddress& to);
    // Crashed nodes' hosts answer with "unreachable" instead of silence (kill -9 on a LAN).
    bool refuse_when_down = false;
    std::function<bool(std::size_t from, const PeerAddress& to)> drop;  // true: lose it

    void run_for(Duration d);
    void run_until(Time t);
    Time now() const { return now_; }

    TestNode& node(std::size_t index) { return nodes_.at(index); }
    std::size_t size() const { return nodes_.size(); }
    // The state `observer` believes `subject` is in; nullopt if unknown.
    std::optional<MemberState> view(std::size_t observer, std::size_t subject) const;
    bool all_see_all_alive() const;
    std::size_t count_events(std::size_t observer, PeerEventKind kind, std::size_t subject) const;
    // Delivers raw bytes to a node, as if `from_index` sent them.
    void inject(std::size_t to, std::size_t from_index, const std::vector<std::uint8_t>& bytes);
    std::uint64_t datagrams_sent() const { return datagrams_sent_; }

private:
    void drain(std::size_t index);
    void deliver(const InFlight& datagram);

    Timers timers_;
    std::uint64_t seed_;
    Time now_{0};
    std::vector<TestNode> nodes_;
    std::multimap<std::pair<Time, std::uint64_t>, InFlight> in_flight_;
    std::uint64_t order_ = 0;
    std::uint64_t datagrams_sent_ = 0;
    static constexpr Duration kLatency = 1ms;
};

}  // namespace starling::membership::testing

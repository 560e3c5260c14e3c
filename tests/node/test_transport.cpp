// One conformance suite for every Transport (node/net/transport.hpp): the real UDP transport on
// 127.0.0.1, the in-process fake and the simulator's packet network run the same cases. Waits are bounded by the event loop's
// guard, never by sleeping.

#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <string>
#include <thread>

#include "node/net/control.hpp"
#include "node/net/event_loop.hpp"
#include "node/net/udp_transport.hpp"
#include "protocol/limits.hpp"
#include "tests/node/fake_transport.hpp"
#include "tools/sim/sim_network.hpp"

namespace {

using namespace starling;
using namespace starling::net;
using namespace std::chrono_literals;

constexpr Ipv4Address kLoopback{127, 0, 0, 1};

struct UdpFixture {
    EventLoop loop;
    std::unique_ptr<Transport> open(const FaultOptions& faults = {}) {
        auto t = open_udp_transport(loop, UdpOptions{{kLoopback, 0}, std::nullopt, faults});
        REQUIRE(t.ok());
        return std::move(t).value();
    }
    bool pump_until(const std::function<bool()>& done) { return loop.run_until(done, 5s); }
    // Runs what is ready without waiting for more (nothing may arrive; that is the point).
    void settle() { (void)loop.run_until([] { return false; }, 50ms); }
    // A port nobody listens on: bound once, then released.
    Ipv4Endpoint unused_endpoint() {
        auto t = open();
        const Ipv4Endpoint e = t->local_endpoint();
        t->close();
        return e;
    }
};

struct FakeFixture {
    testing::FakeNetwork network;
    std::unique_ptr<Transport> open() { return network.open({kLoopback, 0}); }
    bool pump_until(const std::function<bool()>& done) {
        for (int round = 0; round < 100 && !done(); ++round) network.deliver();
        return done();
    }
    void settle() { network.deliver(); }
    Ipv4Endpoint unused_endpoint() { return {kLoopback, 9}; }
};

// The simulator's network on a clean link, moved in virtual time.
struct SimFixture {
    sim::SimulatedNetwork network{sim::LinkSettings{}, 7};
    std::unique_ptr<Transport> open() { return network.open({kLoopback, 0}); }
    bool pump_until(const std::function<bool()>& done) {
        for (int round = 0; round < 100'000 && !done(); ++round) {
            const auto next = network.next_arrival();
            if (!next) break;
            network.deliver_until(*next);
        }
        return done();
    }
    void settle() { (void)pump_until([] { return false; }); }
    Ipv4Endpoint unused_endpoint() { return {kLoopback, 9}; }
};

// What a transport handed to the test.
struct Inbox {
    struct Datagram {
        Ipv4Endpoint from;
        std::vector<std::uint8_t> bytes;
    };
    std::vector<Datagram> datagrams;
    std::vector<Ipv4Endpoint> refused;
    TransportHandlers handlers() {
        return {[this](const Ipv4Endpoint& from, std::span<const std::uint8_t> b) {
                    datagrams.push_back({from, {b.begin(), b.end()}});
                },
                [this](const Ipv4Endpoint& to) { refused.push_back(to); }};
    }
};

std::vector<std::uint8_t> payload(std::size_t size, std::uint8_t tag) {
    std::vector<std::uint8_t> bytes(size);
    for (std::size_t i = 0; i < size; ++i) bytes[i] = static_cast<std::uint8_t>(tag + i);
    return bytes;
}

}  // namespace

TEST_CASE_TEMPLATE("a datagram arrives once, whole, naming its sender", F, UdpFixture,
                   FakeFixture, SimFixture) {
    F f;
    auto a = f.open();
    auto b = f.open();
    Inbox at_a, at_b;
    a->start(at_a.handlers());
    b->start(at_b.handlers());
    CHECK(a->local_endpoint().port != 0);
    CHECK(a->local_endpoint() != b->local_endpoint());

    const auto bytes = payload(limits::kMaxDatagramBytes, 7);
    CHECK(a->send_to(b->local_endpoint(), bytes) != SendStatus::dropped);
    REQUIRE(f.pump_until([&] { return !at_b.datagrams.empty(); }));
    f.settle();
    REQUIRE(at_b.datagrams.size() == 1);
    CHECK(at_b.datagrams[0].from == a->local_endpoint());
    CHECK(at_b.datagrams[0].bytes == bytes);
    CHECK(at_a.datagrams.empty());
    CHECK(b->counters().received == 1);
    CHECK(a->counters().sent == 1);
}

TEST_CASE_TEMPLATE("send_to never calls back and refuses oversized payloads", F, UdpFixture,
                   FakeFixture, SimFixture) {
    F f;
    auto a = f.open();
    bool inside_send = false;
    bool called_inside_send = false;
    a->start({[&](const Ipv4Endpoint&, std::span<const std::uint8_t>) {
                  called_inside_send |= inside_send;
              },
              [&](const Ipv4Endpoint&) { called_inside_send |= inside_send; }});
    inside_send = true;
    CHECK(a->send_to(a->local_endpoint(), payload(10, 1)) != SendStatus::dropped);
    CHECK(a->send_to(f.unused_endpoint(), payload(10, 2)) != SendStatus::dropped);
    CHECK(a->send_to(a->local_endpoint(), payload(limits::kMaxDatagramBytes + 1, 3)) ==
          SendStatus::too_large);
    inside_send = false;
    f.settle();
    CHECK_FALSE(called_inside_send);
    CHECK(a->counters().sent == 2);
}

TEST_CASE_TEMPLATE("many datagrams in both directions all arrive on a quiet link", F, UdpFixture,
                   FakeFixture, SimFixture) {
    F f;
    auto a = f.open();
    auto b = f.open();
    Inbox at_a, at_b;
    a->start(at_a.handlers());
    b->start(at_b.handlers());
    constexpr std::size_t kCount = 50;
    for (std::size_t i = 0; i < kCount; ++i) {
        CHECK(a->send_to(b->local_endpoint(), payload(100, static_cast<std::uint8_t>(i))) !=
              SendStatus::dropped);
        CHECK(b->send_to(a->local_endpoint(), payload(100, static_cast<std::uint8_t>(i))) !=
              SendStatus::dropped);
    }
    REQUIRE(f.pump_until(
        [&] { return at_a.datagrams.size() == kCount && at_b.datagrams.size() == kCount; }));
    // Each exactly once: the first byte names the datagram.
    std::vector<int> seen(kCount, 0);
    for (const auto& d : at_b.datagrams) ++seen.at(d.bytes.at(0));
    for (int s : seen) CHECK(s == 1);
}

TEST_CASE_TEMPLATE("a host's refusal is reported with the refused address", F, UdpFixture,
                   FakeFixture, SimFixture) {
    F f;
    auto a = f.open();
    Inbox at_a;
    a->start(at_a.handlers());
    const Ipv4Endpoint nobody = f.unused_endpoint();
    CHECK(a->send_to(nobody, payload(20, 0)) != SendStatus::dropped);
    REQUIRE(f.pump_until([&] { return !at_a.refused.empty(); }));
    CHECK(at_a.refused.front() == nobody);
    CHECK(a->counters().unreachable >= 1);
    // The transport keeps working after a refusal.
    CHECK(a->send_to(a->local_endpoint(), payload(20, 1)) != SendStatus::dropped);
    CHECK(f.pump_until([&] { return at_a.datagrams.size() == 1; }));
}

TEST_CASE_TEMPLATE("after close nothing is delivered and sends are dropped", F, UdpFixture,
                   FakeFixture, SimFixture) {
    F f;
    auto a = f.open();
    auto b = f.open();
    Inbox at_b;
    a->start({});
    b->start(at_b.handlers());
    b->close();
    (void)a->send_to(b->local_endpoint(), payload(20, 0));
    CHECK(b->send_to(a->local_endpoint(), payload(20, 0)) == SendStatus::dropped);
    f.settle();
    CHECK(at_b.datagrams.empty());
    CHECK(b->counters().send_dropped == 1);
}

TEST_CASE("the UDP fault hook drops every datagram at rate 1 and none at rate 0") {
    UdpFixture f;
    auto lossy = f.open(FaultOptions{1.0, 0us, 42});
    auto sender = f.open();
    Inbox inbox;
    lossy->start(inbox.handlers());
    sender->start({});
    for (int i = 0; i < 10; ++i) (void)sender->send_to(lossy->local_endpoint(), payload(20, 0));
    REQUIRE(f.pump_until([&] { return lossy->counters().fault_dropped == 10; }));
    CHECK(inbox.datagrams.empty());
    CHECK(lossy->counters().received == 0);
}

TEST_CASE("the UDP fault hook's delays deliver every datagram, and a seed replays its losses") {
    UdpFixture f;
    auto delayed = f.open(FaultOptions{0.0, 20ms, 7});
    auto sender = f.open();
    Inbox inbox;
    delayed->start(inbox.handlers());
    sender->start({});
    for (int i = 0; i < 20; ++i)
        (void)sender->send_to(delayed->local_endpoint(), payload(20, static_cast<std::uint8_t>(i)));
    REQUIRE(f.pump_until([&] { return inbox.datagrams.size() == 20; }));

    // Half loss, same seed twice: the same datagrams are lost.
    auto lost_with_seed = [&f](std::uint64_t seed) {
        auto lossy = f.open(FaultOptions{0.5, 0us, seed});
        auto s = f.open();
        Inbox in;
        lossy->start(in.handlers());
        s->start({});
        for (int i = 0; i < 40; ++i)
            (void)s->send_to(lossy->local_endpoint(), payload(20, static_cast<std::uint8_t>(i)));
        REQUIRE(f.pump_until([&] {
            return lossy->counters().received + lossy->counters().fault_dropped == 40;
        }));
        std::vector<std::uint8_t> kept;
        for (const auto& d : in.datagrams) kept.push_back(d.bytes[0]);
        return kept;
    };
    const auto first = lost_with_seed(99);
    CHECK(first.size() > 5);
    CHECK(first.size() < 35);
    CHECK(lost_with_seed(99) == first);
}

TEST_CASE("the control socket answers one request per connection, owner-only") {
    UdpFixture f;  // for its event loop
    const auto dir = std::filesystem::temp_directory_path() /
                     ("starling-control-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    const auto path = dir / "control.sock";
    auto server = ControlServer::open(f.loop, path, [](std::string_view request) {
        return "you said " + std::string(request) + "\n";
    });
    REQUIRE(server.ok());
    CHECK((std::filesystem::status(path).permissions() & std::filesystem::perms::all) ==
          (std::filesystem::perms::owner_read | std::filesystem::perms::owner_write));

    std::atomic<bool> done{false};
    Result<std::string> reply = make_error(ErrorCode::io, "not asked");
    std::thread client([&] {
        reply = query_control(path, "members");
        done = true;
    });
    CHECK(f.loop.run_until([&] { return done.load(); }, 5s));
    client.join();
    REQUIRE(reply.ok());
    CHECK(*reply == "you said members\n");

    server->reset();
    CHECK_FALSE(std::filesystem::exists(path));
    CHECK(query_control(path, "members").error().code == ErrorCode::not_found);
    std::filesystem::remove_all(dir);
}

TEST_CASE("the simulated network loses, duplicates and partitions as set, and a seed replays it") {
    auto run = [](std::uint64_t seed) {
        sim::LinkSettings link;
        link.loss = 0.25;
        link.duplicate = 0.10;
        link.reorder = 0.5;
        SimFixture f{sim::SimulatedNetwork{link, seed}};
        auto a = f.open();
        auto b = f.open();
        Inbox at_b;
        a->start({});
        b->start(at_b.handlers());
        for (int i = 0; i < 2000; ++i)
            (void)a->send_to(b->local_endpoint(), payload(8, static_cast<std::uint8_t>(i)));
        f.settle();
        std::vector<std::uint8_t> order;
        for (const auto& d : at_b.datagrams) order.push_back(d.bytes.at(0));
        return order;
    };
    const auto first = run(3);
    // 2000 x (0.75 x 1.10) = 1650 expected; the bounds are ~8 standard deviations wide.
    CHECK(first.size() > 1500);
    CHECK(first.size() < 1800);
    CHECK(first == run(3));
    CHECK(first != run(4));

    SimFixture f;
    auto a = f.open();
    auto b = f.open();
    Inbox at_b;
    a->start({});
    b->start(at_b.handlers());
    f.network.partition({{a->local_endpoint()}, {b->local_endpoint()}});
    (void)a->send_to(b->local_endpoint(), payload(8, 1));
    f.settle();
    CHECK(at_b.datagrams.empty());
    f.network.heal();
    (void)a->send_to(b->local_endpoint(), payload(8, 2));
    f.settle();
    CHECK(at_b.datagrams.size() == 1);
}

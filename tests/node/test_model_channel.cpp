// Model channels over real TCP on 127.0.0.1: links kept open and reused, the link budget, busy
// learners, idle and revoked links closed, the handshake rate limit, and the stream transport
// beneath. Waits are bounded by the event loop's guard, never by sleeping.

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "node/net/event_loop.hpp"
#include "node/net/stream_transport.hpp"
#include "node/runtime/model_channel.hpp"
#include "tests/node/model_link_harness.hpp"

namespace {

using namespace starling;
using namespace starling::runtime;
using namespace std::chrono_literals;
using Bytes = std::vector<std::uint8_t>;
using runtime::testing::FakeClock;
using runtime::testing::LinkCluster;
using runtime::testing::LinkDevice;
using runtime::testing::model_of;

constexpr net::Ipv4Address kLoopback{127, 0, 0, 1};

struct ChannelNode {
    ChannelNode(net::EventLoop& loop, const LinkCluster& cluster, const std::string& name,
                const FakeClock& clock, ChannelLimits limits = {}, std::size_t model_size = 300'000)
        : device(cluster.device(name)), model(model_of(model_size, static_cast<std::uint8_t>(name[0]))) {
        net::ListenOptions options;
        options.bind = {kLoopback, 0};
        auto listener = net::open_stream_listener(loop, options);
        REQUIRE(listener.ok());
        ChannelHandlers h;
        h.current_model = [this] { return model; };
        h.received = [this](const crypto::Certificate& peer, Bytes bytes) {
            received.push_back({peer.name, std::move(bytes)});
            return accept;
        };
        h.finished = [this](std::uint64_t, const crypto::DeviceId&, ModelOp, std::optional<TransferFailure> f) {
            outcomes.push_back(f);
        };
        h.busy = [this] { return busy; };
        auto is_revoked = [this](const crypto::DeviceId& d) {
            return std::find(revoked.begin(), revoked.end(), d) != revoked.end();
        };
        channel = std::make_unique<ModelChannel>(loop, std::move(*listener),
                                                 cluster.identity(device, 1 << 20, is_revoked),
                                                 clock, limits, std::move(h));
        channel->start();
    }
    LinkDevice device;
    ModelBytes model;
    bool accept = true;
    bool busy = false;
    std::vector<crypto::DeviceId> revoked;
    std::vector<std::pair<std::string, Bytes>> received;
    std::vector<std::optional<TransferFailure>> outcomes;
    std::unique_ptr<ModelChannel> channel;
};

TEST_CASE("two channels exchange models over TCP and count bytes") {
    net::EventLoop loop;
    FakeClock clock;
    LinkCluster cluster;
    ChannelNode a(loop, cluster, "a", clock);
    ChannelNode b(loop, cluster, "b", clock);
    REQUIRE(a.channel->start_transfer(ModelOp::exchange, b.device.cert.device, b.channel->local_endpoint()));
    CHECK(a.channel->outgoing() == 1);
    REQUIRE(loop.run_until([&] { return a.outcomes.size() == 1 && b.channel->incoming() == 0; }, 30s));
    REQUIRE_MESSAGE(a.outcomes[0] == std::nullopt, std::string(to_string(a.outcomes[0].value_or(TransferFailure::link_busy))));
    REQUIRE(a.received.size() == 1);
    CHECK(a.received[0].first == "b");
    CHECK(a.received[0].second == *b.model);
    REQUIRE(b.received.size() == 1);
    CHECK(b.received[0].second == *a.model);
    CHECK(a.channel->counters().completed_out == 1);
    CHECK(b.channel->counters().completed_in == 1);
    CHECK(a.channel->counters().model_bytes_sent == a.model->size());
    CHECK(a.channel->counters().wire_bytes_sent > a.model->size());
    CHECK(a.channel->outgoing() == 0);

    // The next transfer takes the link that is open: no second connection, no handshake.
    REQUIRE(a.channel->start_transfer(ModelOp::pull, b.device.cert.device, b.channel->local_endpoint()));
    REQUIRE(loop.run_until([&] { return a.outcomes.size() == 2; }, 30s));
    CHECK(a.outcomes[1] == std::nullopt);
    CHECK(a.received.size() == 2);
    CHECK(a.channel->counters().links_opened_out == 1);
    CHECK(a.channel->counters().transfers_on_open_links == 1);
    CHECK(b.channel->counters().links_opened_in == 1);
    CHECK(b.channel->counters().completed_in == 2);
    CHECK(a.channel->links_out() == 1);
    CHECK(b.channel->links_in() == 1);

    // And b sends over the link a dialed.
    REQUIRE(b.channel->start_transfer(ModelOp::push, a.device.cert.device, a.channel->local_endpoint()));
    REQUIRE(loop.run_until([&] { return b.outcomes.size() == 1; }, 30s));
    CHECK(b.outcomes[0] == std::nullopt);
    CHECK(a.received.size() == 3);
    CHECK(a.received[2].second == *b.model);
    CHECK(b.channel->counters().links_opened_out == 0);
    CHECK(b.channel->counters().transfers_on_open_links == 1);
    CHECK(a.channel->counters().completed_in == 1);
    CHECK(a.channel->links_in() == 0);
    const std::vector<LinkView> seen_by_a = a.channel->links();
    const std::vector<LinkView> seen_by_b = b.channel->links();
    REQUIRE(seen_by_a.size() == 1);
    REQUIRE(seen_by_b.size() == 1);
    CHECK(seen_by_a[0].peer == b.device.cert.device);
    CHECK(seen_by_a[0].dialed);
    CHECK_FALSE(seen_by_b[0].dialed);
    CHECK(seen_by_b[0].peer == a.device.cert.device);
    CHECK(seen_by_a[0].transfers == 3);
    CHECK_FALSE(seen_by_a[0].busy);
}

TEST_CASE("the link budget, a refused model and a dead address are counted by reason") {
    net::EventLoop loop;
    FakeClock clock;
    LinkCluster cluster;
    ChannelLimits one;
    one.max_outgoing = 1;
    ChannelNode a(loop, cluster, "a", clock, one);
    ChannelNode b(loop, cluster, "b", clock);
    b.accept = false;  // b's decoder refuses what a pushes
    REQUIRE(a.channel->start_transfer(ModelOp::push, b.device.cert.device, b.channel->local_endpoint()));
    CHECK_FALSE(a.channel->start_transfer(ModelOp::push, b.device.cert.device, b.channel->local_endpoint()));
    CHECK(a.channel->counters().failed_out[static_cast<std::size_t>(TransferFailure::link_busy)] == 1);
    REQUIRE(loop.run_until([&] { return a.outcomes.size() == 1 && b.channel->incoming() == 0; }, 30s));
    CHECK(b.channel->counters().failed_in[static_cast<std::size_t>(TransferFailure::model_refused)] == 1);

    // Nobody listens on a closed listener's port: connect fails (once the open link is gone).
    const net::Ipv4Endpoint gone = b.channel->local_endpoint();
    b.channel->close();
    REQUIRE(loop.run_until([&] { return a.channel->links_out() == 0; }, 30s));
    REQUIRE(a.channel->start_transfer(ModelOp::pull, b.device.cert.device, gone));
    REQUIRE(loop.run_until([&] { return a.outcomes.size() == 2; }, 30s));
    CHECK(a.outcomes[1] == TransferFailure::connect);
    CHECK(a.channel->counters().failed_out[static_cast<std::size_t>(TransferFailure::connect)] == 1);
}

TEST_CASE("a learner with a full inbox closes incoming transfers before their handshake") {
    net::EventLoop loop;
    FakeClock clock;
    LinkCluster cluster;
    ChannelNode a(loop, cluster, "a", clock);
    ChannelNode b(loop, cluster, "b", clock);
    b.busy = true;
    REQUIRE(a.channel->start_transfer(ModelOp::push, b.device.cert.device, b.channel->local_endpoint()));
    REQUIRE(loop.run_until([&] { return a.outcomes.size() == 1 && b.channel->incoming() == 0; }, 30s));
    CHECK(a.outcomes[0].has_value());  // the sender sees a failed transfer (its round moves on)
    CHECK(b.received.empty());
    CHECK(b.channel->counters().failed_in[static_cast<std::size_t>(TransferFailure::learner_busy)] == 1);
    CHECK(b.channel->counters().wire_bytes_received == 0);  // not a byte of the handshake read

    // Once the learner has room, the next transfer goes through.
    b.busy = false;
    REQUIRE(a.channel->start_transfer(ModelOp::push, b.device.cert.device, b.channel->local_endpoint()));
    REQUIRE(loop.run_until([&] { return a.outcomes.size() == 2 && b.channel->incoming() == 0; }, 30s));
    CHECK(a.outcomes[1] == std::nullopt);
    CHECK(b.received.size() == 1);

    // Busy again: a push on the open link is answered busy before its model is sent; a pull is
    // still answered.
    b.busy = true;
    const std::uint64_t read = b.channel->counters().wire_bytes_received;
    REQUIRE(a.channel->start_transfer(ModelOp::push, b.device.cert.device, b.channel->local_endpoint()));
    REQUIRE(loop.run_until([&] { return a.outcomes.size() == 3; }, 30s));
    CHECK(a.outcomes[2] == TransferFailure::peer_busy);
    CHECK(b.channel->counters().failed_in[static_cast<std::size_t>(TransferFailure::learner_busy)] == 2);
    CHECK(b.channel->counters().wire_bytes_received - read < 1'000);
    REQUIRE(a.channel->start_transfer(ModelOp::pull, b.device.cert.device, b.channel->local_endpoint()));
    REQUIRE(loop.run_until([&] { return a.outcomes.size() == 4; }, 30s));
    CHECK(a.outcomes[3] == std::nullopt);
    CHECK(a.channel->counters().links_opened_out == 2);  // the refused one, then one for three
}

TEST_CASE("idle links close, and the next transfer opens a new one") {
    net::EventLoop loop;
    FakeClock clock;
    LinkCluster cluster;
    ChannelLimits quick;
    quick.link_idle_timeout = 1s;
    quick.link_sweep_interval = 5ms;
    ChannelNode a(loop, cluster, "a", clock, quick, 1000);
    ChannelNode b(loop, cluster, "b", clock, quick, 1000);
    REQUIRE(a.channel->start_transfer(ModelOp::pull, b.device.cert.device, b.channel->local_endpoint()));
    REQUIRE(loop.run_until([&] { return a.outcomes.size() == 1; }, 30s));
    clock.advance_to(clock.now() + 1500ms);  // past the dialer's timeout, short of the listener's
    REQUIRE(loop.run_until([&] {
        return a.channel->links_out() == 0 && b.channel->links_in() == 0;
    }, 30s));
    CHECK(a.channel->counters().links_closed_idle == 1);
    CHECK(b.channel->counters().links_closed_by_peer == 1);
    CHECK(b.channel->counters().links_closed_idle == 0);
    REQUIRE(a.channel->start_transfer(ModelOp::pull, b.device.cert.device, b.channel->local_endpoint()));
    REQUIRE(loop.run_until([&] { return a.outcomes.size() == 2; }, 30s));
    CHECK(a.outcomes[1] == std::nullopt);
    CHECK(a.channel->counters().links_opened_out == 2);
    CHECK(a.channel->counters().transfers_on_open_links == 0);
}

TEST_CASE("a link to a device revoked since its handshake is closed") {
    net::EventLoop loop;
    FakeClock clock;
    LinkCluster cluster;
    ChannelLimits rare;
    rare.link_sweep_interval = 1h;  // the request finds out first
    ChannelNode a(loop, cluster, "a", clock, rare, 1000);
    ChannelNode b(loop, cluster, "b", clock, rare, 1000);
    REQUIRE(a.channel->start_transfer(ModelOp::push, b.device.cert.device, b.channel->local_endpoint()));
    REQUIRE(loop.run_until([&] { return a.outcomes.size() == 1; }, 30s));
    REQUIRE(a.outcomes[0] == std::nullopt);

    b.revoked.push_back(a.device.cert.device);
    REQUIRE(a.channel->start_transfer(ModelOp::push, b.device.cert.device, b.channel->local_endpoint()));
    REQUIRE(loop.run_until([&] { return a.outcomes.size() == 2 && a.channel->links_out() == 0; }, 30s));
    CHECK(a.outcomes[1] == TransferFailure::peer_busy);
    CHECK(b.received.size() == 1);
    CHECK(b.channel->counters().failed_in[static_cast<std::size_t>(TransferFailure::handshake)] == 1);
    CHECK(b.channel->counters().links_closed_untrusted == 1);
    CHECK(a.channel->counters().links_closed_by_peer == 1);

    // A new link is refused at its handshake.
    REQUIRE(a.channel->start_transfer(ModelOp::push, b.device.cert.device, b.channel->local_endpoint()));
    REQUIRE(loop.run_until([&] { return a.outcomes.size() == 3; }, 30s));
    CHECK(a.outcomes[2].has_value());
    CHECK(b.received.size() == 1);
}

TEST_CASE("a revoked peer's request fails our own transfer under way on the same link") {
    net::EventLoop loop;
    FakeClock clock;
    LinkCluster cluster;
    ChannelLimits rare;
    rare.link_sweep_interval = 1h;
    ChannelNode a(loop, cluster, "a", clock, rare, 1000);
    ChannelNode b(loop, cluster, "b", clock, rare, 1000);
    REQUIRE(a.channel->start_transfer(ModelOp::pull, b.device.cert.device,
                                      b.channel->local_endpoint()));
    REQUIRE(loop.run_until([&] { return a.outcomes.size() == 1; }, 30s));

    // b's own push to a is under way on the link when b revokes a; then a's request reaches b
    // (before a's answer to b's push: one connection, in order).
    REQUIRE(b.channel->start_transfer(ModelOp::push, a.device.cert.device,
                                      a.channel->local_endpoint()));
    CHECK(b.channel->counters().transfers_on_open_links == 1);
    b.revoked.push_back(a.device.cert.device);
    REQUIRE(a.channel->start_transfer(ModelOp::push, b.device.cert.device,
                                      b.channel->local_endpoint()));
    REQUIRE(loop.run_until([&] { return a.outcomes.size() == 2 && b.outcomes.size() == 1; }, 30s));
    CHECK(b.outcomes[0] == TransferFailure::handshake);
    CHECK(b.channel->outgoing() == 0);
    CHECK(b.channel->links_in() == 0);
    CHECK(a.outcomes[1].has_value());
    CHECK(b.received.empty());
}

TEST_CASE("past max_links a newcomer takes the oldest idle link's place, unless it is refused") {
    net::EventLoop loop;
    FakeClock clock;
    LinkCluster cluster;
    ChannelLimits one;
    one.max_links = 1;
    ChannelNode a(loop, cluster, "a", clock, {}, 1000);
    ChannelNode b(loop, cluster, "b", clock, one, 1000);
    ChannelNode c(loop, cluster, "c", clock, {}, 1000);
    REQUIRE(a.channel->start_transfer(ModelOp::pull, b.device.cert.device,
                                      b.channel->local_endpoint()));
    REQUIRE(loop.run_until([&] { return a.outcomes.size() == 1; }, 30s));

    // A newcomer b's learner refuses costs no open link.
    b.busy = true;
    REQUIRE(c.channel->start_transfer(ModelOp::push, b.device.cert.device,
                                      b.channel->local_endpoint()));
    REQUIRE(loop.run_until([&] { return c.outcomes.size() == 1; }, 30s));
    CHECK(c.outcomes[0].has_value());
    CHECK(b.channel->counters().links_evicted == 0);
    CHECK(b.channel->links_in() == 1);

    // One b takes closes a's idle link for it.
    b.busy = false;
    REQUIRE(c.channel->start_transfer(ModelOp::push, b.device.cert.device,
                                      b.channel->local_endpoint()));
    REQUIRE(loop.run_until([&] { return c.outcomes.size() == 2 && a.channel->links_out() == 0; },
                           30s));
    CHECK(c.outcomes[1] == std::nullopt);
    CHECK(b.channel->counters().links_evicted == 1);
    CHECK(b.channel->links_in() == 1);
}

TEST_CASE("the sweep closes an idle link whose peer was revoked or whose certificate expired") {
    net::EventLoop loop;
    FakeClock clock;
    LinkCluster cluster;
    ChannelLimits quick;
    quick.link_sweep_interval = 5ms;
    ChannelNode a(loop, cluster, "a", clock, quick, 1000);
    ChannelNode b(loop, cluster, "b", clock, quick, 1000);
    ChannelNode c(loop, cluster, "c", clock, quick, 1000);
    REQUIRE(a.channel->start_transfer(ModelOp::pull, b.device.cert.device, b.channel->local_endpoint()));
    REQUIRE(c.channel->start_transfer(ModelOp::pull, b.device.cert.device, b.channel->local_endpoint()));
    REQUIRE(loop.run_until([&] { return a.outcomes.size() == 1 && c.outcomes.size() == 1; }, 30s));
    CHECK(b.channel->links_in() == 2);
    b.revoked.push_back(a.device.cert.device);
    REQUIRE(loop.run_until([&] { return b.channel->links_in() == 1 && a.channel->links_out() == 0; }, 30s));
    CHECK(b.channel->counters().links_closed_untrusted == 1);
    CHECK(c.channel->links_out() == 1);
    // A day later every certificate of this cluster has expired (harness: valid for a day).
    clock.advance_to(clock.now() + std::chrono::hours(25));
    REQUIRE(loop.run_until([&] { return b.channel->links_in() == 0 && c.channel->links_out() == 0; }, 30s));
}

// A listener the test drives by hand: a model link per connection, answering as it should
// until told to close the next link that speaks, unanswered.
struct HandListener {
    HandListener(net::EventLoop& loop, const LinkCluster& cluster)
        : device(cluster.device("hand")), identity(cluster.identity(device)) {
        net::ListenOptions options;
        options.bind = {kLoopback, 0};
        auto opened = net::open_stream_listener(loop, options);
        REQUIRE(opened.ok());
        listener = std::move(*opened);
        listener->start([this](std::unique_ptr<net::StreamConnection> c) {
            auto& conn = connections.emplace_back(std::move(c));
            auto& link = links.emplace_back(std::make_unique<ModelLink>(ModelLink::listener(
                identity, {[](ModelOp) { return std::nullopt; }, [this] { return model; }})));
            conn->start({[this, &conn, &link](std::span<const std::uint8_t> bytes) {
                             if (close_next && link->established()) {
                                 close_next = false;
                                 link->close(0);  // the request crossed our end frame
                             } else {
                                 REQUIRE(link->on_bytes(bytes, 0, runtime::testing::kUnixStart).ok());
                                 answered += link->take_outcomes().size();
                             }
                             REQUIRE(conn->send(link->take_output()).ok());
                             if (link->closed()) conn->finish_sending();
                         },
                         [](const Error*) {}});
        });
    }
    LinkDevice device;
    SessionIdentity identity;
    ModelBytes model = model_of(1000, 9);
    bool close_next = false;
    std::size_t answered = 0;
    std::unique_ptr<net::StreamListener> listener;
    std::vector<std::unique_ptr<net::StreamConnection>> connections;
    std::vector<std::unique_ptr<ModelLink>> links;
};

TEST_CASE("a request that crosses the listener's close of an open link goes again on a new one") {
    net::EventLoop loop;
    FakeClock clock;
    LinkCluster cluster;
    ChannelNode a(loop, cluster, "a", clock, {}, 1000);
    HandListener b(loop, cluster);
    const net::Ipv4Endpoint at = b.listener->local_endpoint();
    REQUIRE(a.channel->start_transfer(ModelOp::pull, b.device.cert.device, at));
    REQUIRE(loop.run_until([&] { return a.outcomes.size() == 1; }, 30s));
    REQUIRE(a.outcomes[0] == std::nullopt);

    b.close_next = true;
    REQUIRE(a.channel->start_transfer(ModelOp::pull, b.device.cert.device, at));
    REQUIRE(loop.run_until([&] { return a.outcomes.size() == 2; }, 30s));
    CHECK(a.outcomes[1] == std::nullopt);
    CHECK(a.received.size() == 2);
    CHECK(b.answered == 2);
    CHECK(b.links.size() == 2);
    const ChannelCounters& c = a.channel->counters();
    CHECK(c.transfers_on_open_links == 1);
    CHECK(c.transfers_retried == 1);
    CHECK(c.links_opened_out == 2);
    CHECK(c.started_out == 2);
    CHECK(c.completed_out == 2);
    CHECK(a.channel->outgoing() == 0);
}

TEST_CASE("a responder from another cluster is refused over TCP") {
    net::EventLoop loop;
    FakeClock clock;
    LinkCluster cluster;
    LinkCluster other;
    ChannelNode a(loop, cluster, "a", clock);
    ChannelNode m(loop, other, "m", clock);
    REQUIRE(a.channel->start_transfer(ModelOp::pull, m.device.cert.device, m.channel->local_endpoint()));
    REQUIRE(loop.run_until([&] { return a.outcomes.size() == 1 && m.channel->incoming() == 0; }, 30s));
    CHECK(a.outcomes[0].has_value());
    CHECK(a.received.empty());
    CHECK(m.received.empty());
    CHECK(m.channel->counters().completed_in == 0);
}

TEST_CASE("handshakes over the per-source rate are closed unanswered") {
    net::EventLoop loop;
    FakeClock clock;  // frozen: the bucket never refills
    LinkCluster cluster;
    ChannelLimits wide;
    wide.max_outgoing = 16;
    wide.max_incoming = 16;
    ChannelNode a(loop, cluster, "a", clock, wide, 1000);
    ChannelNode b(loop, cluster, "b", clock, wide, 1000);
    constexpr int kTries = 8;  // over the burst of limits::kHandshakeBurstPerSource
    for (int i = 0; i < kTries; ++i)
        REQUIRE(a.channel->start_transfer(ModelOp::pull, b.device.cert.device, b.channel->local_endpoint()));
    REQUIRE(loop.run_until([&] { return a.outcomes.size() == kTries; }, 60s));
    const auto& in = b.channel->counters();
    CHECK(in.failed_in[static_cast<std::size_t>(TransferFailure::rate_limited)] ==
          kTries - limits::kHandshakeBurstPerSource);
    CHECK(in.completed_in == limits::kHandshakeBurstPerSource);
    CHECK(std::count(a.outcomes.begin(), a.outcomes.end(), std::nullopt) ==
          limits::kHandshakeBurstPerSource);
}

TEST_CASE("stream transport: a listener over its connection limit closes the newcomer") {
    net::EventLoop loop;
    net::ListenOptions options;
    options.bind = {kLoopback, 0};
    options.max_connections = 1;
    auto listener = net::open_stream_listener(loop, options);
    REQUIRE(listener.ok());
    std::vector<std::unique_ptr<net::StreamConnection>> accepted;
    (*listener)->start([&](std::unique_ptr<net::StreamConnection> c) { accepted.push_back(std::move(c)); });
    std::vector<std::unique_ptr<net::StreamConnection>> dialed;
    std::vector<std::unique_ptr<net::ConnectAttempt>> attempts;
    auto dial = [&] {
        attempts.push_back(net::connect_stream(loop, (*listener)->local_endpoint(), 5s, {},
                                               [&](Result<std::unique_ptr<net::StreamConnection>> c) {
                                                   REQUIRE(c.ok());
                                                   dialed.push_back(std::move(*c));
                                               }));
    };
    dial();
    REQUIRE(loop.run_until([&] { return dialed.size() == 1 && accepted.size() == 1; }, 30s));
    dial();
    REQUIRE(loop.run_until([&] { return dialed.size() == 2 && (*listener)->counters().refused_full == 1; }, 30s));
    CHECK((*listener)->counters().accepted == 1);

    // Bytes go through the accepted one, and a queue bound is enforced at send().
    Bytes got;
    bool ended = false;
    accepted[0]->start({[&](std::span<const std::uint8_t> b) { got.insert(got.end(), b.begin(), b.end()); },
                        [&](const Error* e) { ended = e == nullptr; }});
    net::StreamConnection& sender = *dialed[0];
    sender.start({nullptr, nullptr});
    const Bytes payload(100'000, 7);
    for (int i = 0; i < 3; ++i) CHECK(sender.send(payload).ok());
    const Bytes too_big(net::kDefaultMaxQueuedStreamBytes, 1);
    CHECK(sender.send(too_big).error().code == ErrorCode::too_large);
    sender.finish_sending();
    CHECK_FALSE(sender.send(payload).ok());
    REQUIRE(loop.run_until([&] { return ended; }, 30s));
    CHECK(got == Bytes(3 * payload.size(), 7));
}

}  // namespace

// Model transfers: the sans-I/O session (push, pull, exchange; wrong cluster, revoked peer, wrong
// peer, truncated and altered streams, the model limit) and the same over real TCP on 127.0.0.1
// (the stream transport, the link budget, the handshake rate limit). Waits are bounded by the
// event loop's guard, never by sleeping.

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "crypto/certificate.hpp"
#include "crypto/handshake.hpp"
#include "node/net/event_loop.hpp"
#include "node/net/stream_transport.hpp"
#include "node/runtime/model_channel.hpp"
#include "node/runtime/model_session.hpp"
#include "tests/node/node_harness.hpp"

namespace {

using namespace starling;
using namespace starling::runtime;
using namespace std::chrono_literals;
using Bytes = std::vector<std::uint8_t>;
using runtime::testing::FakeClock;
using runtime::testing::kUnixStart;

constexpr std::uint64_t kNowMs = 1'000;
constexpr net::Ipv4Address kLoopback{127, 0, 0, 1};

struct Device {
    crypto::KxKeyPair kx = crypto::KxKeyPair::generate();
    crypto::Certificate cert;
    Bytes encoded;
};

struct Cluster {
    crypto::SignKeyPair owner = crypto::SignKeyPair::generate();
    crypto::ClusterId id{};
    Cluster() { crypto::random_bytes(id); }

    Device device(const std::string& name) const {
        Device d;
        d.cert.cluster = id;
        crypto::random_bytes(d.cert.device);
        d.cert.name = name;
        d.cert.sign_key = crypto::SignKeyPair::generate().public_key;
        d.cert.kx_key = d.kx.public_key;
        d.cert.not_before = kUnixStart - 3'600;
        d.cert.not_after = kUnixStart + 86'400;
        d.cert.serial = 1;
        crypto::sign_certificate(d.cert, owner.secret_key);
        d.encoded = crypto::encode_certificate(d.cert);
        return d;
    }
    SessionIdentity identity(const Device& d, std::size_t max_model_bytes = 1 << 20,
                             std::function<bool(const crypto::DeviceId&)> revoked = {}) const {
        return SessionIdentity{&d.kx, d.encoded, crypto::TrustAnchor{id, owner.public_key, revoked},
                               max_model_bytes};
    }
};

ModelBytes model_of(std::size_t n, std::uint8_t seed) {
    auto m = std::make_shared<Bytes>(n);
    for (std::size_t i = 0; i < n; ++i) (*m)[i] = static_cast<std::uint8_t>(seed + i * 31);
    return m;
}

// Moves bytes between two sessions until neither has anything to say; the first error wins.
// `tamper` may alter what the initiator sends (index into its stream, after the handshake).
Status shuttle(ModelSession& a, ModelSession& b, std::size_t piece = 1000) {
    for (int round = 0; round < 10'000; ++round) {
        Bytes from_a = a.take_output();
        Bytes from_b = b.take_output();
        if (from_a.empty() && from_b.empty()) break;
        for (std::size_t i = 0; i < from_a.size(); i += piece) {
            const auto part = std::span<const std::uint8_t>(from_a).subspan(i, std::min(piece, from_a.size() - i));
            if (Status s = b.on_bytes(part, kNowMs, kUnixStart); !s) return s;
        }
        if (!from_b.empty())
            if (Status s = a.on_bytes(from_b, kNowMs, kUnixStart); !s) return s;
    }
    return Ok{};
}

TEST_CASE("a push, a pull and an exchange carry the models both ways") {
    Cluster cluster;
    Device alice = cluster.device("alice");
    Device bob = cluster.device("bob");
    const ModelBytes alices = model_of(200'000, 1);
    const ModelBytes bobs = model_of(150'000, 2);

    for (ModelOp op : {ModelOp::push, ModelOp::pull, ModelOp::exchange}) {
        CAPTURE(static_cast<int>(op));
        auto a = ModelSession::initiator(cluster.identity(alice), op, bob.cert.device, alices, kNowMs);
        auto b = ModelSession::responder(cluster.identity(bob), [&] { return bobs; });
        REQUIRE(shuttle(a, b).ok());
        CHECK(a.done());
        CHECK(b.done());
        REQUIRE(a.peer() != nullptr);
        CHECK(a.peer()->device == bob.cert.device);
        CHECK(b.peer()->device == alice.cert.device);
        CHECK(b.op() == op);
        CHECK(b.received_model() == (sends_model(op) ? *alices : Bytes{}));
        CHECK(a.received_model() == (fetches_model(op) ? *bobs : Bytes{}));
        CHECK(a.output_finished());
        CHECK(b.output_finished());
    }
}

TEST_CASE("a pull from a peer without a model fails as no_model") {
    Cluster cluster;
    Device alice = cluster.device("alice");
    Device bob = cluster.device("bob");
    auto a = ModelSession::initiator(cluster.identity(alice), ModelOp::pull, bob.cert.device, nullptr, kNowMs);
    auto b = ModelSession::responder(cluster.identity(bob), [] { return ModelBytes{}; });
    CHECK_FALSE(shuttle(a, b).ok());
    CHECK(a.failure() == TransferFailure::no_model);
}

TEST_CASE("another cluster, a revoked device or the wrong device is refused at the handshake") {
    Cluster cluster;
    Cluster other;
    Device alice = cluster.device("alice");
    Device bob = cluster.device("bob");
    Device mallory = other.device("mallory");
    const ModelBytes m = model_of(1000, 3);

    SUBCASE("another cluster") {
        auto a = ModelSession::initiator(other.identity(mallory), ModelOp::push, bob.cert.device, m, kNowMs);
        auto b = ModelSession::responder(cluster.identity(bob), [&] { return m; });
        CHECK_FALSE(shuttle(a, b).ok());
        CHECK((a.failed() || b.failed()));
        CHECK(b.received_model().empty());
        CHECK_FALSE(b.done());
    }
    SUBCASE("revoked") {
        auto a = ModelSession::initiator(cluster.identity(alice), ModelOp::push, bob.cert.device, m, kNowMs);
        auto b = ModelSession::responder(
            cluster.identity(bob, 1 << 20, [&](const crypto::DeviceId& d) { return d == alice.cert.device; }),
            [&] { return m; });
        CHECK_FALSE(shuttle(a, b).ok());
        CHECK(b.failure() == TransferFailure::handshake);
        CHECK_FALSE(b.done());
    }
    SUBCASE("the wrong device answers") {
        Device carol = cluster.device("carol");
        auto a = ModelSession::initiator(cluster.identity(alice), ModelOp::pull, carol.cert.device, nullptr, kNowMs);
        auto b = ModelSession::responder(cluster.identity(bob), [&] { return m; });
        CHECK_FALSE(shuttle(a, b).ok());
        CHECK(a.failure() == TransferFailure::wrong_peer);
        CHECK(a.received_model().empty());
    }
}

TEST_CASE("a stream cut short, altered or over the model limit is refused") {
    Cluster cluster;
    Device alice = cluster.device("alice");
    Device bob = cluster.device("bob");
    const ModelBytes m = model_of(100'000, 4);
    auto a = ModelSession::initiator(cluster.identity(alice), ModelOp::push, bob.cert.device, m, kNowMs);
    auto b = ModelSession::responder(cluster.identity(bob, 50'000), [&] { return m; });
    // Handshake messages 1 and 2, then message 3 and the sealed request in one piece.
    REQUIRE(b.on_bytes(a.take_output(), kNowMs, kUnixStart).ok());
    REQUIRE(a.on_bytes(b.take_output(), kNowMs, kUnixStart).ok());
    Bytes request = a.take_output();
    REQUIRE(request.size() > 100'000);

    SUBCASE("over the limit") {
        CHECK_FALSE(b.on_bytes(request, kNowMs, kUnixStart).ok());
        CHECK(b.failure() == TransferFailure::too_large);
    }
    SUBCASE("cut short") {
        auto b2 = ModelSession::responder(cluster.identity(bob), [&] { return m; });
        auto a2 = ModelSession::initiator(cluster.identity(alice), ModelOp::push, bob.cert.device, m, kNowMs);
        REQUIRE(b2.on_bytes(a2.take_output(), kNowMs, kUnixStart).ok());
        REQUIRE(a2.on_bytes(b2.take_output(), kNowMs, kUnixStart).ok());
        Bytes r = a2.take_output();
        r.resize(r.size() - 30);  // the end frame and a little more are missing
        REQUIRE(b2.on_bytes(r, kNowMs, kUnixStart).ok());
        CHECK_FALSE(b2.on_end_of_input().ok());
        CHECK(b2.failure() == TransferFailure::truncated);
        CHECK(b2.received_model().empty());
    }
    SUBCASE("altered") {
        auto b2 = ModelSession::responder(cluster.identity(bob), [&] { return m; });
        auto a2 = ModelSession::initiator(cluster.identity(alice), ModelOp::push, bob.cert.device, m, kNowMs);
        REQUIRE(b2.on_bytes(a2.take_output(), kNowMs, kUnixStart).ok());
        REQUIRE(a2.on_bytes(b2.take_output(), kNowMs, kUnixStart).ok());
        Bytes r = a2.take_output();
        r[r.size() / 2] ^= 0x01;
        CHECK_FALSE(b2.on_bytes(r, kNowMs, kUnixStart).ok());
        CHECK(b2.failure() == TransferFailure::corrupt);
    }
}

TEST_CASE("a handshake length over the limit is refused before any work") {
    Cluster cluster;
    Device bob = cluster.device("bob");
    auto b = ModelSession::responder(cluster.identity(bob), [] { return ModelBytes{}; });
    const Bytes huge_length = {0xFF, 0xFF, 0x00};
    CHECK_FALSE(b.on_bytes(huge_length, kNowMs, kUnixStart).ok());
    CHECK(b.failure() == TransferFailure::malformed);
}

// ---- Over TCP on the loopback. ----

struct ChannelNode {
    ChannelNode(net::EventLoop& loop, const Cluster& cluster, const std::string& name,
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
        channel = std::make_unique<ModelChannel>(loop, std::move(*listener), cluster.identity(device),
                                                 clock, limits, std::move(h));
        channel->start();
    }
    Device device;
    ModelBytes model;
    bool accept = true;
    bool busy = false;
    std::vector<std::pair<std::string, Bytes>> received;
    std::vector<std::optional<TransferFailure>> outcomes;
    std::unique_ptr<ModelChannel> channel;
};

TEST_CASE("two channels exchange models over TCP and count bytes") {
    net::EventLoop loop;
    FakeClock clock;
    Cluster cluster;
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
}

TEST_CASE("the link budget, a refused model and a dead address are counted by reason") {
    net::EventLoop loop;
    FakeClock clock;
    Cluster cluster;
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

    // Nobody listens on a closed listener's port: connect fails.
    const net::Ipv4Endpoint gone = b.channel->local_endpoint();
    b.channel->close();
    REQUIRE(a.channel->start_transfer(ModelOp::pull, b.device.cert.device, gone));
    REQUIRE(loop.run_until([&] { return a.outcomes.size() == 2; }, 30s));
    CHECK(a.outcomes[1] == TransferFailure::connect);
    CHECK(a.channel->counters().failed_out[static_cast<std::size_t>(TransferFailure::connect)] == 1);
}

TEST_CASE("a learner with a full inbox closes incoming transfers before their handshake") {
    net::EventLoop loop;
    FakeClock clock;
    Cluster cluster;
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
}

TEST_CASE("a responder from another cluster is refused over TCP") {
    net::EventLoop loop;
    FakeClock clock;
    Cluster cluster;
    Cluster other;
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
    Cluster cluster;
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

// Model links, sans-I/O: push, pull and exchange one after another on one link (one handshake),
// transfers both ways at once, busy answers, clean closes and closes during a transfer; wrong
// cluster, revoked peer, wrong peer, cut short, altered and oversized streams; the message
// reader's checks.

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <vector>

#include "node/runtime/model_link.hpp"
#include "tests/node/model_link_harness.hpp"

namespace {

using namespace starling;
using namespace starling::runtime;
using namespace starling::runtime::testing;
using Bytes = std::vector<std::uint8_t>;

constexpr std::uint64_t kNowMs = 1'000;

// Moves bytes between two links until neither has anything to say; the first error wins.
// Returns the bytes `a` sent, for the tests that count them.
Status shuttle(ModelLink& a, ModelLink& b, std::size_t* a_sent = nullptr,
               std::size_t piece = 1000) {
    for (int round = 0; round < 10'000; ++round) {
        Bytes from_a = a.take_output();
        Bytes from_b = b.take_output();
        if (from_a.empty() && from_b.empty()) break;
        if (a_sent != nullptr) *a_sent += from_a.size();
        for (std::size_t i = 0; i < from_a.size(); i += piece) {
            const std::size_t n = std::min(piece, from_a.size() - i);
            const auto part = std::span<const std::uint8_t>(from_a).subspan(i, n);
            if (Status s = b.on_bytes(part, kNowMs, kUnixStart); !s) return s;
        }
        if (!from_b.empty())
            if (Status s = a.on_bytes(from_b, kNowMs, kUnixStart); !s) return s;
    }
    return Ok{};
}

LinkResponder answering(const ModelBytes& mine,
                        std::optional<TransferFailure> refuse = std::nullopt) {
    return {[refuse](ModelOp) { return refuse; }, [mine] { return mine; }};
}

TEST_CASE("push, pull and exchange follow each other on one link, with one handshake") {
    LinkCluster cluster;
    LinkDevice alice = cluster.device("alice");
    LinkDevice bob = cluster.device("bob");
    const ModelBytes alices = model_of(200'000, 1);
    const ModelBytes bobs = model_of(150'000, 2);
    auto a = ModelLink::dialer(cluster.identity(alice), bob.cert.device, answering(nullptr));
    auto b = ModelLink::listener(cluster.identity(bob), answering(bobs));

    std::uint64_t n = 0;
    for (ModelOp op : {ModelOp::push, ModelOp::pull, ModelOp::exchange, ModelOp::pull}) {
        CAPTURE(static_cast<int>(op));
        REQUIRE(a.begin(op, alices, kNowMs).ok());
        CHECK_FALSE(a.idle());
        std::size_t sent = 0;
        REQUIRE(shuttle(a, b, &sent).ok());
        REQUIRE(a.established());
        CHECK(a.peer()->device == bob.cert.device);
        CHECK(b.peer()->device == alice.cert.device);
        const std::vector<TransferOutcome> mine = a.take_outcomes();
        const std::vector<TransferOutcome> theirs = b.take_outcomes();
        REQUIRE(mine.size() == 1);
        REQUIRE(theirs.size() == 1);
        CHECK(mine[0].failure == std::nullopt);
        CHECK(theirs[0].failure == std::nullopt);
        CHECK(theirs[0].op == op);
        CHECK(mine[0].model == (fetches_model(op) ? *bobs : Bytes{}));
        CHECK(theirs[0].model == (sends_model(op) ? *alices : Bytes{}));
        CHECK(mine[0].model_bytes_sent == (sends_model(op) ? alices->size() : 0));
        CHECK(theirs[0].model_bytes_sent == (fetches_model(op) ? bobs->size() : 0));
        if (n > 0 && op == ModelOp::pull) CHECK(sent < 100);  // a request, no handshake again
        CHECK(a.idle());
        CHECK(b.idle());
        CHECK(a.transfers() == ++n);
    }
}

TEST_CASE("either side sends over the link, both at once") {
    LinkCluster cluster;
    LinkDevice alice = cluster.device("alice");
    LinkDevice bob = cluster.device("bob");
    const ModelBytes alices = model_of(120'000, 1);
    const ModelBytes bobs = model_of(90'000, 2);
    auto a = ModelLink::dialer(cluster.identity(alice), bob.cert.device, answering(alices));
    auto b = ModelLink::listener(cluster.identity(bob), answering(bobs));
    CHECK_FALSE(b.can_begin());  // a listener asks once the handshake is done
    REQUIRE(a.begin(ModelOp::pull, nullptr, kNowMs).ok());
    REQUIRE(shuttle(a, b).ok());
    REQUIRE(a.take_outcomes().size() == 1);
    REQUIRE(b.take_outcomes().size() == 1);

    // Bob pushes and Alice pulls, under way together; then Bob pulls.
    REQUIRE(b.can_begin());
    REQUIRE(b.begin(ModelOp::push, bobs, kNowMs).ok());
    REQUIRE(a.begin(ModelOp::pull, nullptr, kNowMs).ok());
    REQUIRE(shuttle(a, b).ok());
    std::vector<TransferOutcome> at_a = a.take_outcomes();
    std::vector<TransferOutcome> at_b = b.take_outcomes();
    REQUIRE(at_a.size() == 2);
    REQUIRE(at_b.size() == 2);
    const auto find = [](const std::vector<TransferOutcome>& o, bool ours) {
        return *std::find_if(o.begin(), o.end(),
                             [ours](const TransferOutcome& t) { return t.ours == ours; });
    };
    CHECK(find(at_a, true).op == ModelOp::pull);
    CHECK(find(at_a, true).model == *bobs);  // Alice's pull
    CHECK(find(at_a, false).op == ModelOp::push);
    CHECK(find(at_a, false).model == *bobs);  // Bob's push, taken by Alice
    CHECK(find(at_b, true).failure == std::nullopt);
    CHECK(find(at_b, true).model_bytes_sent == bobs->size());
    CHECK(find(at_b, false).model_bytes_sent == bobs->size());  // the pull Bob answered
    REQUIRE(b.begin(ModelOp::pull, nullptr, kNowMs).ok());
    REQUIRE(shuttle(a, b).ok());
    at_b = b.take_outcomes();
    REQUIRE(at_b.size() == 1);
    CHECK(at_b[0].model == *alices);
    CHECK(a.transfers() == 4);
    CHECK(b.transfers() == 4);
}

TEST_CASE("a pull from a peer without a model fails as no_model and the link goes on") {
    LinkCluster cluster;
    LinkDevice alice = cluster.device("alice");
    LinkDevice bob = cluster.device("bob");
    auto a = ModelLink::dialer(cluster.identity(alice), bob.cert.device, answering(nullptr));
    auto b = ModelLink::listener(cluster.identity(bob), answering(nullptr));
    REQUIRE(a.begin(ModelOp::pull, nullptr, kNowMs).ok());
    REQUIRE(shuttle(a, b).ok());
    std::vector<TransferOutcome> o = a.take_outcomes();
    REQUIRE(o.size() == 1);
    CHECK(o[0].failure == TransferFailure::no_model);
    REQUIRE(a.begin(ModelOp::push, model_of(1000, 3), kNowMs).ok());
    REQUIRE(shuttle(a, b).ok());
    o = a.take_outcomes();
    REQUIRE(o.size() == 1);
    CHECK(o[0].failure == std::nullopt);
    CHECK(b.take_outcomes().size() == 2);
}

TEST_CASE("a busy listener answers before the model is sent") {
    LinkCluster cluster;
    LinkDevice alice = cluster.device("alice");
    LinkDevice bob = cluster.device("bob");
    const ModelBytes m = model_of(200'000, 4);
    bool busy = true;
    auto a = ModelLink::dialer(cluster.identity(alice), bob.cert.device, answering(nullptr));
    auto b = ModelLink::listener(
        cluster.identity(bob),
        {[&busy](ModelOp op) {
             return busy && sends_model(op) ? std::optional(TransferFailure::learner_busy)
                                            : std::nullopt;
         },
         [m] { return m; }});
    REQUIRE(a.begin(ModelOp::push, m, kNowMs).ok());
    std::size_t sent = 0;
    REQUIRE(shuttle(a, b, &sent).ok());
    CHECK(sent < 2'000);  // the handshake and the request; not the model
    std::vector<TransferOutcome> mine = a.take_outcomes();
    std::vector<TransferOutcome> theirs = b.take_outcomes();
    REQUIRE(mine.size() == 1);
    REQUIRE(theirs.size() == 1);
    CHECK(mine[0].failure == TransferFailure::peer_busy);
    CHECK(theirs[0].failure == TransferFailure::learner_busy);
    CHECK(theirs[0].model.empty());

    busy = false;
    REQUIRE(a.begin(ModelOp::push, m, kNowMs).ok());
    REQUIRE(shuttle(a, b).ok());
    theirs = b.take_outcomes();
    REQUIRE(theirs.size() == 1);
    CHECK(theirs[0].model == *m);
}

TEST_CASE("closes: clean between transfers, truncated during one") {
    LinkCluster cluster;
    LinkDevice alice = cluster.device("alice");
    LinkDevice bob = cluster.device("bob");
    const ModelBytes m = model_of(10'000, 5);
    auto a = ModelLink::dialer(cluster.identity(alice), bob.cert.device, answering(nullptr));
    auto b = ModelLink::listener(cluster.identity(bob), answering(m));
    REQUIRE(a.begin(ModelOp::pull, nullptr, kNowMs).ok());
    REQUIRE(shuttle(a, b).ok());
    CHECK(a.take_outcomes().size() == 1);
    CHECK(b.take_outcomes().size() == 1);

    SUBCASE("the dialer closes between transfers") {
        a.close(kNowMs);
        CHECK(a.closed());
        CHECK_FALSE(a.begin(ModelOp::pull, nullptr, kNowMs).ok());
        REQUIRE(shuttle(a, b).ok());
        CHECK(b.peer_closed());
        CHECK(b.on_end_of_input().ok());
        CHECK_FALSE(b.failed());
    }
    SUBCASE("the connection ends between transfers") {
        CHECK(b.on_end_of_input().ok());
        CHECK(b.peer_closed());
    }
    SUBCASE("the listener closes as a request crosses it: nothing of it was taken") {
        REQUIRE(a.begin(ModelOp::push, m, kNowMs).ok());
        Bytes request = a.take_output();
        b.close(kNowMs);
        REQUIRE(b.on_bytes(request, kNowMs, kUnixStart).ok());  // not answered
        CHECK(b.take_outcomes().empty());
        CHECK_FALSE(a.on_bytes(b.take_output(), kNowMs, kUnixStart).ok());
        CHECK(a.failure() == TransferFailure::truncated);
        CHECK(a.awaiting_answer());  // the channel may send it again on a new link
    }
    SUBCASE("the connection ends during a transfer") {
        REQUIRE(a.begin(ModelOp::push, m, kNowMs).ok());
        REQUIRE(b.on_bytes(a.take_output(), kNowMs, kUnixStart).ok());  // the request
        REQUIRE(a.on_bytes(b.take_output(), kNowMs, kUnixStart).ok());  // ready
        Bytes model = a.take_output();
        model.resize(model.size() / 2);
        REQUIRE(b.on_bytes(model, kNowMs, kUnixStart).ok());
        CHECK_FALSE(b.on_end_of_input().ok());
        CHECK(b.failure() == TransferFailure::truncated);
        CHECK(b.take_outcomes().empty());
    }
}

TEST_CASE("another cluster, a revoked device or the wrong device is refused at the handshake") {
    LinkCluster cluster;
    LinkCluster other;
    LinkDevice alice = cluster.device("alice");
    LinkDevice bob = cluster.device("bob");
    LinkDevice mallory = other.device("mallory");
    const ModelBytes m = model_of(1000, 3);

    SUBCASE("another cluster") {
        auto a = ModelLink::dialer(other.identity(mallory), bob.cert.device, answering(nullptr));
        auto b = ModelLink::listener(cluster.identity(bob), answering(m));
        REQUIRE(a.begin(ModelOp::push, m, kNowMs).ok());
        CHECK_FALSE(shuttle(a, b).ok());
        CHECK((a.failed() || b.failed()));
        CHECK(b.take_outcomes().empty());
        CHECK_FALSE(b.established());
    }
    SUBCASE("revoked") {
        auto a = ModelLink::dialer(cluster.identity(alice), bob.cert.device, answering(nullptr));
        auto b = ModelLink::listener(
            cluster.identity(bob, 1 << 20,
                             [&](const crypto::DeviceId& d) { return d == alice.cert.device; }),
            answering(m));
        REQUIRE(a.begin(ModelOp::push, m, kNowMs).ok());
        CHECK_FALSE(shuttle(a, b).ok());
        CHECK(b.failure() == TransferFailure::handshake);
        CHECK(b.take_outcomes().empty());
    }
    SUBCASE("the wrong device answers") {
        LinkDevice carol = cluster.device("carol");
        auto a = ModelLink::dialer(cluster.identity(alice), carol.cert.device, answering(nullptr));
        auto b = ModelLink::listener(cluster.identity(bob), answering(m));
        REQUIRE(a.begin(ModelOp::pull, nullptr, kNowMs).ok());
        CHECK_FALSE(shuttle(a, b).ok());
        CHECK(a.failure() == TransferFailure::wrong_peer);
        CHECK(a.take_outcomes().empty());
    }
}

TEST_CASE("a stream altered or over the model limit is refused") {
    LinkCluster cluster;
    LinkDevice alice = cluster.device("alice");
    LinkDevice bob = cluster.device("bob");
    const ModelBytes m = model_of(100'000, 4);
    auto a = ModelLink::dialer(cluster.identity(alice), bob.cert.device, answering(nullptr));

    SUBCASE("over the limit: refused at its header") {
        auto b = ModelLink::listener(cluster.identity(bob, 50'000), answering(m));
        REQUIRE(a.begin(ModelOp::push, m, kNowMs).ok());
        CHECK_FALSE(shuttle(a, b).ok());
        CHECK(b.failure() == TransferFailure::too_large);
        CHECK(b.take_outcomes().empty());
    }
    SUBCASE("altered") {
        auto b = ModelLink::listener(cluster.identity(bob), answering(m));
        REQUIRE(a.begin(ModelOp::push, m, kNowMs).ok());
        REQUIRE(b.on_bytes(a.take_output(), kNowMs, kUnixStart).ok());
        REQUIRE(a.on_bytes(b.take_output(), kNowMs, kUnixStart).ok());
        REQUIRE(b.on_bytes(a.take_output(), kNowMs, kUnixStart).ok());
        REQUIRE(a.on_bytes(b.take_output(), kNowMs, kUnixStart).ok());  // ready
        Bytes r = a.take_output();
        REQUIRE(r.size() > 100'000);
        r[r.size() / 2] ^= 0x01;
        CHECK_FALSE(b.on_bytes(r, kNowMs, kUnixStart).ok());
        CHECK(b.failure() == TransferFailure::corrupt);
        CHECK(b.take_outcomes().empty());
    }
}

TEST_CASE("a transfer begins only on an idle dialer, with a model when it sends one") {
    LinkCluster cluster;
    LinkDevice alice = cluster.device("alice");
    LinkDevice bob = cluster.device("bob");
    auto a = ModelLink::dialer(cluster.identity(alice, 1000), bob.cert.device, answering(nullptr));
    auto b = ModelLink::listener(cluster.identity(bob), answering(nullptr));
    CHECK_FALSE(a.begin(ModelOp::push, nullptr, kNowMs).ok());
    CHECK_FALSE(a.begin(ModelOp::push, model_of(1001, 1), kNowMs).ok());
    CHECK(a.idle());
    REQUIRE(a.begin(ModelOp::pull, nullptr, kNowMs).ok());
    CHECK_FALSE(a.begin(ModelOp::pull, nullptr, kNowMs).ok());
    CHECK_FALSE(b.begin(ModelOp::pull, nullptr, kNowMs).ok());
}

TEST_CASE("a handshake length over the limit is refused before any work") {
    LinkCluster cluster;
    LinkDevice bob = cluster.device("bob");
    auto b = ModelLink::listener(cluster.identity(bob), answering(nullptr));
    const Bytes huge_length = {0xFF, 0xFF, 0x00};
    CHECK_FALSE(b.on_bytes(huge_length, kNowMs, kUnixStart).ok());
    CHECK(b.failure() == TransferFailure::malformed);
}

// ---- The reader of link messages. ----

Bytes message(LinkMessage kind, const Bytes& body = {}) {
    const auto h = link_header(kind, body.size());
    Bytes out(h.begin(), h.end());
    out.insert(out.end(), body.begin(), body.end());
    return out;
}

std::optional<ErrorCode> refusal(const Bytes& bytes, std::size_t limit = 100) {
    LinkReader r(limit);
    r.input() = bytes;
    for (;;) {
        auto m = r.next();
        if (!m) return m.error().code;
        if (!*m) return std::nullopt;
    }
}

TEST_CASE("the link reader splits messages in any pieces and checks each header") {
    const Bytes model(60, 7);
    Bytes stream = message(LinkMessage::push);
    for (const Bytes& part : {message(LinkMessage::model, model), message(LinkMessage::pull),
                              message(LinkMessage::exchange), message(LinkMessage::model, {1})})
        stream.insert(stream.end(), part.begin(), part.end());
    LinkReader r(100);
    std::vector<LinkReader::Message> got;
    for (std::uint8_t byte : stream) {
        r.input().push_back(byte);
        auto m = r.next();
        REQUIRE(m.ok());
        if (*m) got.push_back(std::move(**m));
    }
    REQUIRE(got.size() == 5);
    CHECK(got[0].kind == LinkMessage::push);
    CHECK(got[1].kind == LinkMessage::model);
    CHECK(got[1].body == model);
    CHECK(got[2].kind == LinkMessage::pull);
    CHECK(got[4].body == Bytes{1});
    CHECK(r.buffered() == 0);

    // Two whole messages in one piece: the model is copied out, the rest stays.
    LinkReader two(100);
    two.input() = message(LinkMessage::reply_model, model);
    const Bytes ok = message(LinkMessage::ok);
    two.input().insert(two.input().end(), ok.begin(), ok.end());
    auto first = two.next();
    REQUIRE((first.ok() && first->has_value()));
    CHECK((*first)->body == model);
    auto second = two.next();
    REQUIRE((second.ok() && second->has_value()));
    CHECK((*second)->kind == LinkMessage::ok);
}

TEST_CASE("the link reader refuses unknown kinds, bodies that do not belong, and size") {
    CHECK(refusal(Bytes{0, 0, 0, 0, 0}) == ErrorCode::malformed);
    CHECK(refusal(Bytes{10, 0, 0, 0, 0}) == ErrorCode::malformed);
    CHECK(refusal(message(LinkMessage::push, {1})) == ErrorCode::malformed);
    CHECK(refusal(message(LinkMessage::ready, {1})) == ErrorCode::malformed);
    CHECK(refusal(message(LinkMessage::model)) == ErrorCode::malformed);  // empty model
    CHECK(refusal(message(LinkMessage::reply_model)) == ErrorCode::malformed);
    CHECK(refusal(message(LinkMessage::model, Bytes(100, 1))) == std::nullopt);
    CHECK(refusal(message(LinkMessage::reply_model, Bytes(100, 1))) == std::nullopt);
    // Over the limit: refused from the header alone, before any of the body arrived.
    const auto h = link_header(LinkMessage::reply_model, 101);
    CHECK(refusal(Bytes(h.begin(), h.end())) == ErrorCode::too_large);
    const Bytes huge = {4, 0xFF, 0xFF, 0xFF, 0xFF};
    CHECK(refusal(huge, std::size_t{1} << 30) == ErrorCode::too_large);
}

}  // namespace

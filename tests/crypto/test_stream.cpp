// Authenticated streams: the certificate-checked handshake, sealed frames (round trip in random
// pieces, tampering, truncation, reordering, replay, rekeying) and the handshake rate limiter.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "crypto/certificate.hpp"
#include "crypto/handshake.hpp"
#include "crypto/rate_limit.hpp"
#include "crypto/stream.hpp"

using namespace starling;
using namespace starling::crypto;
using Bytes = std::vector<std::uint8_t>;

namespace {

constexpr std::uint64_t kNow = 1'800'000'000;  // unix seconds, inside every test certificate

struct Device {
    KxKeyPair kx = KxKeyPair::generate();
    SignKeyPair sign = SignKeyPair::generate();
    Certificate cert;
    Bytes encoded;
};

struct Cluster {
    SignKeyPair owner = SignKeyPair::generate();
    ClusterId id{};
    Cluster() { random_bytes(id); }

    Device device(const std::string& name, std::uint64_t not_after = kNow + 86'400) const {
        Device d;
        d.cert.cluster = id;
        random_bytes(d.cert.device);
        d.cert.name = name;
        d.cert.sign_key = d.sign.public_key;
        d.cert.kx_key = d.kx.public_key;
        d.cert.not_before = kNow - 3'600;
        d.cert.not_after = not_after;
        d.cert.serial = 1;
        sign_certificate(d.cert, owner.secret_key);
        d.encoded = encode_certificate(d.cert);
        return d;
    }
    TrustAnchor trust(std::function<bool(const DeviceId&)> revoked = {}) const {
        return TrustAnchor{id, owner.public_key, std::move(revoked)};
    }
};

// Runs all three messages; the first failure, with the side that saw it.
Status run(Handshake& initiator, Handshake& responder, std::uint64_t now = kNow) {
    for (int i = 0; i < 3; ++i) {
        Handshake& writer = i % 2 == 0 ? initiator : responder;
        Handshake& reader = i % 2 == 0 ? responder : initiator;
        auto message = writer.write_message();
        if (!message) return message.error();
        if (Status s = reader.read_message(*message, now); !s) return s;
    }
    return Ok{};
}

Bytes random_bytes_of(std::size_t n, std::mt19937_64& rng) {
    Bytes out(n);
    for (auto& b : out) b = static_cast<std::uint8_t>(rng());
    return out;
}

noise::CipherState fixed_cipher() {
    std::array<std::uint8_t, noise::kKeyBytes> key{};
    key[0] = 0x42;
    return noise::CipherState(key);
}

// A small stream: three data frames and the end frame, with the frame boundaries.
struct SmallStream {
    Bytes bytes;
    std::vector<std::size_t> frame_starts;
};
SmallStream small_stream() {
    StreamSealer sealer(fixed_cipher(), 0);
    SmallStream s;
    for (const Bytes& chunk : {Bytes{1, 2, 3}, Bytes(40, 7), Bytes{9}}) {
        s.frame_starts.push_back(s.bytes.size());
        REQUIRE(sealer.seal(chunk, 0, s.bytes));
    }
    s.frame_starts.push_back(s.bytes.size());
    REQUIRE(sealer.finish(0, s.bytes));
    return s;
}

// Feeds a whole stream and reports input end: OK only for an intact, finished stream.
Status open_all(std::span<const std::uint8_t> bytes, Bytes& out, RekeyPolicy policy = {}) {
    StreamOpener opener(fixed_cipher(), policy);
    if (Status s = opener.on_bytes_received(bytes, out); !s) return s;
    return opener.on_end_of_input();
}

}  // namespace

TEST_CASE("two devices of one cluster handshake and stream to each other") {
    const Cluster cluster;
    const Device alice = cluster.device("alice");
    const Device bob = cluster.device("bob");
    Handshake initiator(noise::Role::initiator, alice.kx, alice.encoded, cluster.trust());
    Handshake responder(noise::Role::responder, bob.kx, bob.encoded, cluster.trust());
    REQUIRE(run(initiator, responder));
    auto a = initiator.finish();
    auto b = responder.finish();
    REQUIRE(a);
    REQUIRE(b);
    CHECK(a->peer.name == "bob");
    CHECK(b->peer.name == "alice");
    CHECK(a->handshake_hash == b->handshake_hash);
    CHECK_FALSE(initiator.finish());  // only once

    StreamSealer sealer(std::move(a->ciphers.send), 0);
    StreamOpener opener(std::move(b->ciphers.receive));
    const Bytes model(5000, 0xab);
    Bytes wire;
    REQUIRE(sealer.seal(model, 0, wire));
    REQUIRE(sealer.finish(0, wire));
    Bytes got;
    REQUIRE(opener.on_bytes_received(wire, got));
    REQUIRE(opener.on_end_of_input());
    CHECK(got == model);
}

TEST_CASE("a handshake across clusters fails at message 2 (prologue)") {
    const Cluster ours;
    const Cluster theirs;
    const Device alice = ours.device("alice");
    const Device mallory = theirs.device("mallory");
    Handshake initiator(noise::Role::initiator, alice.kx, alice.encoded, ours.trust());
    Handshake responder(noise::Role::responder, mallory.kx, mallory.encoded, theirs.trust());
    const Status s = run(initiator, responder);
    REQUIRE_FALSE(s);
    CHECK(s.error().code == ErrorCode::corrupt);
    CHECK(initiator.failed());
}

TEST_CASE("a peer whose Noise static key is not its certificate's kx_key is refused") {
    const Cluster cluster;
    const Device alice = cluster.device("alice");
    const Device bob = cluster.device("bob");
    const KxKeyPair stolen_cert_wrong_key = KxKeyPair::generate();
    SUBCASE("responder lies: the initiator refuses message 2") {
        Handshake initiator(noise::Role::initiator, alice.kx, alice.encoded, cluster.trust());
        Handshake responder(noise::Role::responder, stolen_cert_wrong_key, bob.encoded,
                            cluster.trust());
        const Status s = run(initiator, responder);
        REQUIRE_FALSE(s);
        CHECK(s.error().code == ErrorCode::insecure);
        CHECK(initiator.failed());
    }
    SUBCASE("initiator lies: the responder refuses message 3") {
        Handshake initiator(noise::Role::initiator, stolen_cert_wrong_key, alice.encoded,
                            cluster.trust());
        Handshake responder(noise::Role::responder, bob.kx, bob.encoded, cluster.trust());
        const Status s = run(initiator, responder);
        REQUIRE_FALSE(s);
        CHECK(s.error().code == ErrorCode::insecure);
        CHECK(responder.failed());
        CHECK_FALSE(responder.finish());
    }
}

TEST_CASE("revoked, expired and foreign-signed certificates are refused") {
    const Cluster cluster;
    const Device alice = cluster.device("alice");
    SUBCASE("revoked") {
        const Device bob = cluster.device("bob");
        const DeviceId bad = bob.cert.device;
        Handshake initiator(noise::Role::initiator, alice.kx, alice.encoded,
                            cluster.trust([&](const DeviceId& d) { return d == bad; }));
        Handshake responder(noise::Role::responder, bob.kx, bob.encoded, cluster.trust());
        const Status s = run(initiator, responder);
        REQUIRE_FALSE(s);
        CHECK(s.error().code == ErrorCode::insecure);
    }
    SUBCASE("expired") {
        const Device bob = cluster.device("bob", kNow - 1);
        Handshake initiator(noise::Role::initiator, alice.kx, alice.encoded, cluster.trust());
        Handshake responder(noise::Role::responder, bob.kx, bob.encoded, cluster.trust());
        CHECK_FALSE(run(initiator, responder));
        CHECK(initiator.failed());
    }
    SUBCASE("signed by another owner for our cluster id") {
        Cluster forger;
        forger.id = cluster.id;
        const Device bob = forger.device("bob");
        Handshake initiator(noise::Role::initiator, alice.kx, alice.encoded, cluster.trust());
        Handshake responder(noise::Role::responder, bob.kx, bob.encoded, cluster.trust());
        CHECK_FALSE(run(initiator, responder));
        CHECK(initiator.failed());
    }
}

TEST_CASE("handshake messages are size-capped and read in turn") {
    const Cluster cluster;
    const Device alice = cluster.device("alice");
    const Device bob = cluster.device("bob");
    Handshake responder(noise::Role::responder, bob.kx, bob.encoded, cluster.trust());
    CHECK_FALSE(responder.write_message());  // the initiator speaks first
    CHECK_FALSE(responder.failed());
    const Status big = responder.read_message(Bytes(limits::kMaxHandshakeMessageBytes + 1), kNow);
    REQUIRE_FALSE(big);
    CHECK(big.error().code == ErrorCode::too_large);
    Handshake fresh(noise::Role::responder, bob.kx, bob.encoded, cluster.trust());
    const Status padded = fresh.read_message(Bytes(33), kNow);
    REQUIRE_FALSE(padded);
    CHECK(padded.error().code == ErrorCode::malformed);
    Handshake initiator(noise::Role::initiator, alice.kx, alice.encoded, cluster.trust());
    auto m1 = initiator.write_message();
    REQUIRE(m1);
    CHECK(m1->size() == 32);  // no certificate in the clear
    const Status short2 = initiator.read_message(Bytes(50), kNow);
    REQUIRE_FALSE(short2);
    CHECK(short2.error().code == ErrorCode::truncated);
}

TEST_CASE("1 MB round trip in random pieces, rekeying on both sides at the same frames") {
    std::mt19937_64 rng(20261126);
    INFO("seed 20261126");
    const Bytes model = random_bytes_of(1'000'000, rng);
    const RekeyPolicy policy{100'000, 1'000};
    StreamSealer sealer(fixed_cipher(), 0, policy);
    Bytes wire;
    std::uint64_t now_ms = 0;
    for (std::size_t at = 0; at < model.size();) {
        const std::size_t n = std::min<std::size_t>(model.size() - at, 1 + rng() % 150'000);
        REQUIRE(sealer.seal(std::span(model).subspan(at, n), now_ms, wire));
        at += n;
        now_ms += 7;
    }
    REQUIRE(sealer.finish(now_ms, wire));
    CHECK(sealer.rekeys() >= 5);  // after every ~100 KB

    StreamOpener opener(fixed_cipher(), policy);
    Bytes got;
    for (std::size_t at = 0; at < wire.size();) {
        const std::size_t largest = rng() % 2 != 0 ? 7 : 90'000;  // tiny and TCP-sized pieces
        const std::size_t n = std::min<std::size_t>(wire.size() - at, 1 + rng() % largest);
        REQUIRE(opener.on_bytes_received(std::span(wire).subspan(at, n), got));
        CHECK(opener.buffered_bytes() <= kMaxFrameBytes);
        at += n;
    }
    REQUIRE(opener.on_end_of_input());
    CHECK(got == model);
    CHECK(opener.rekeys() == sealer.rekeys());
    CHECK(opener.bytes_opened() == model.size());
}

TEST_CASE("rekey by time: the first frame after the interval uses a fresh key") {
    StreamSealer sealer(fixed_cipher(), 1'000, RekeyPolicy{1 << 20, 120'000});
    Bytes wire;
    REQUIRE(sealer.seal(Bytes(10, 1), 1'000, wire));
    REQUIRE(sealer.seal(Bytes(10, 2), 120'999, wire));
    CHECK(sealer.rekeys() == 0);
    REQUIRE(sealer.seal(Bytes(10, 3), 121'000, wire));
    CHECK(sealer.rekeys() == 1);
    REQUIRE(sealer.finish(121'000, wire));
    Bytes got;
    StreamOpener opener(fixed_cipher());
    REQUIRE(opener.on_bytes_received(wire, got));
    REQUIRE(opener.on_end_of_input());
    CHECK(opener.rekeys() == 1);
    CHECK(got.size() == 30);
}

TEST_CASE("every single-byte alteration and every truncation is refused") {
    const SmallStream s = small_stream();
    Bytes out;
    REQUIRE(open_all(s.bytes, out));
    for (std::size_t i = 0; i < s.bytes.size(); ++i) {
        Bytes altered = s.bytes;
        altered[i] ^= 0x20;
        Bytes ignored;
        CHECK_MESSAGE(!open_all(altered, ignored), "flipped byte " << i);
    }
    for (std::size_t cut = 0; cut < s.bytes.size(); ++cut) {
        Bytes ignored;
        CHECK_MESSAGE(!open_all(std::span(s.bytes).first(cut), ignored), "cut at " << cut);
    }
}

TEST_CASE("a missing end frame, reordered, replayed and trailing frames are refused") {
    const SmallStream s = small_stream();
    const auto frame = [&](std::size_t i) {
        const std::size_t end =
            i + 1 < s.frame_starts.size() ? s.frame_starts[i + 1] : s.bytes.size();
        return Bytes(s.bytes.begin() + static_cast<std::ptrdiff_t>(s.frame_starts[i]),
                     s.bytes.begin() + static_cast<std::ptrdiff_t>(end));
    };
    const auto join = [&](std::initializer_list<std::size_t> order) {
        Bytes out;
        for (std::size_t i : order) {
            const Bytes f = frame(i);
            out.insert(out.end(), f.begin(), f.end());
        }
        return out;
    };
    Bytes out;
    const Status missing_end = open_all(join({0, 1, 2}), out);
    REQUIRE_FALSE(missing_end);
    CHECK(missing_end.error().code == ErrorCode::truncated);
    CHECK(out.size() == 44);  // what authenticated was released, but the stream is not complete

    Bytes ignored;
    const Status reordered = open_all(join({0, 2, 1, 3}), ignored);
    REQUIRE_FALSE(reordered);
    CHECK(reordered.error().code == ErrorCode::corrupt);
    const Status replayed = open_all(join({0, 1, 1, 2, 3}), ignored);
    REQUIRE_FALSE(replayed);
    CHECK(replayed.error().code == ErrorCode::corrupt);
    const Status dropped = open_all(join({0, 2, 3}), ignored);
    CHECK_FALSE(dropped);
    const Status trailing = open_all(join({0, 1, 2, 3, 0}), ignored);
    REQUIRE_FALSE(trailing);
    CHECK(trailing.error().code == ErrorCode::malformed);
}

TEST_CASE("limits: oversized frames are refused from the header, and a sender must rekey") {
    StreamOpener opener(fixed_cipher());
    Bytes out;
    const Bytes huge_header = {0x00, 0x01, 0x00, 0x11};  // 65,553-byte body: one over the cap
    const Status s = opener.on_bytes_received(huge_header, out);
    REQUIRE_FALSE(s);
    CHECK(s.error().code == ErrorCode::too_large);
    CHECK(opener.buffered_bytes() == 0);
    CHECK_FALSE(opener.on_bytes_received(Bytes{1}, out));  // dead for good

    StreamOpener unknown_flags(fixed_cipher());
    CHECK_FALSE(unknown_flags.on_bytes_received(Bytes{0x80, 0x00, 0x00, 0x20}, out));

    // A sender allowed 1 MiB per key, read by an opener that allows 64 KiB.
    StreamSealer lazy(fixed_cipher(), 0, RekeyPolicy{1 << 20, 120'000});
    Bytes wire;
    REQUIRE(lazy.seal(Bytes(200'000, 5), 0, wire));
    const Status overused = open_all(wire, out, RekeyPolicy{64 << 10, 120'000});
    REQUIRE_FALSE(overused);
    CHECK(overused.error().code == ErrorCode::too_large);

    StreamOpener capped(fixed_cipher(), RekeyPolicy{}, 1'000);
    StreamSealer sealer(fixed_cipher(), 0);
    Bytes big;
    REQUIRE(sealer.seal(Bytes(1'001, 1), 0, big));
    CHECK_FALSE(capped.on_bytes_received(big, out));
}

TEST_CASE("frames carry at most 64 KiB and the sealer refuses use after finish") {
    StreamSealer sealer(fixed_cipher(), 0);
    Bytes wire;
    REQUIRE(sealer.seal(Bytes(200'000, 3), 0, wire));
    const std::size_t overhead = kFrameHeaderBytes + noise::kTagBytes;
    CHECK(wire.size() == 200'000 + 4 * overhead);  // 3 full frames and one of 3,392 bytes
    CHECK(wire[0] == 0x00);
    CHECK(wire[1] == 0x01);  // 65,536 + 16 = 0x010010
    CHECK(wire[2] == 0x00);
    CHECK(wire[3] == 0x10);
    REQUIRE(sealer.finish(0, wire));
    CHECK_FALSE(sealer.seal(Bytes(1, 1), 0, wire));
    CHECK_FALSE(sealer.finish(0, wire));
}

TEST_CASE("handshake rate limiter: 20/s per source with a burst of 5, bounded table") {
    HandshakeRateLimiter limiter(4);
    const SourceAddress a{1};
    const SourceAddress b{2};
    for (int i = 0; i < 5; ++i) CHECK(limiter.admit(a, 1'000));
    CHECK_FALSE(limiter.admit(a, 1'000));
    CHECK(limiter.admit(b, 1'000));  // sources are independent
    CHECK_FALSE(limiter.admit(a, 1'049));
    CHECK(limiter.admit(a, 1'050));  // one token per 50 ms
    CHECK_FALSE(limiter.admit(a, 1'050));
    CHECK_FALSE(limiter.admit(a, 900));  // time going backwards earns nothing

    int admitted = 0;
    for (int i = 0; i < 10; ++i) admitted += limiter.admit(a, 60'000) ? 1 : 0;
    CHECK(admitted == 5);  // a long pause refills the burst, not more

    CHECK(limiter.admit(b, 60'000));
    CHECK(limiter.admit(SourceAddress{3}, 60'000));
    CHECK(limiter.admit(SourceAddress{4}, 60'000));
    CHECK(limiter.tracked_sources() == 4);
    CHECK_FALSE(limiter.admit(SourceAddress{5}, 60'000));  // full, nobody idle yet
    CHECK(limiter.tracked_sources() == 4);
    CHECK(limiter.admit(SourceAddress{5}, 60'300));  // idle full buckets were swept
    CHECK(limiter.tracked_sources() <= 4);
}

// Sealed datagrams: pinned known answers, round trips, and every way a hostile or broken sender
// can fail (flips, truncation, replay, foreign cluster, unknown epoch, forged sender).
#include <doctest/doctest.h>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "crypto/datagram.hpp"
#include "tests/crypto/datagram_fixture.hpp"

using namespace starling;
using namespace starling::crypto;
using starling::test::bytes_of;
using starling::test::kCounter;
using starling::test::kEpoch;
using starling::test::kNow;

namespace {

std::string hex_of(std::span<const std::uint8_t> bytes) {
    return to_hex(bytes);
}

DatagramDrop drop_of(DatagramCrypto& receiver, std::span<const std::uint8_t> datagram) {
    auto opened = receiver.open(datagram, kNow);
    REQUIRE_FALSE(opened.ok());
    return opened.drop();
}

std::vector<std::uint8_t> sealed(Result<std::vector<std::uint8_t>> result) {
    REQUIRE(result.ok());
    return std::move(result).value();
}

struct Pair {
    test::TestCluster net;
    test::TestDevice& a = net.add_device(0xa0);
    test::TestDevice& b = net.add_device(0xb0);
    std::unique_ptr<DatagramCrypto> at_a = net.crypto_for(a);
    std::unique_ptr<DatagramCrypto> at_b = net.crypto_for(b);

    std::vector<std::uint8_t> seal(DatagramKind kind, std::uint64_t counter,
                                   std::span<const std::uint8_t> plaintext) {
        return sealed(kind == DatagramKind::to_peer
                          ? at_a->seal_to_peer(b.id, kEpoch, counter, plaintext, kNow)
                          : at_a->seal_to_cluster(kEpoch, counter, plaintext, kNow));
    }
};

constexpr DatagramKind kKinds[] = {DatagramKind::to_peer, DatagramKind::to_cluster};

}  // namespace

// Pinned once, and recomputed without libsodium by tools/scripts/datagram_vectors.py.
TEST_CASE("known answers: cluster tag, pairwise and cluster keys, whole datagrams") {
    Pair p;
    CHECK(hex_of(cluster_tag(p.net.cluster)) == "0fc7897846523078");

    const SymmetricKey& network_key = *p.net.epochs.network_key(kEpoch, kNow);
    const auto ab =
        derive_pairwise_keys(p.net.local(p.a), p.b.id, p.b.kx.public_key, kEpoch, network_key);
    const auto ba =
        derive_pairwise_keys(p.net.local(p.b), p.a.id, p.a.kx.public_key, kEpoch, network_key);
    REQUIRE(ab.has_value());
    REQUIRE(ba.has_value());
    CHECK(hex_of(ab->send.bytes()) ==
          "e7bdc38aab00ed84eae7678f75ba85f6b8d8c625c63f1e8f70cc5073546b075c");
    CHECK(hex_of(ab->receive.bytes()) ==
          "88f47465a2769d9c87ce7b873a5b509163dbd5946a11e728ca8fe1f9a03d243b");
    CHECK(hex_of(ab->send.bytes()) == hex_of(ba->receive.bytes()));
    CHECK(hex_of(ab->receive.bytes()) == hex_of(ba->send.bytes()));
    CHECK(hex_of(derive_cluster_datagram_key(p.net.cluster, kEpoch, network_key).bytes()) ==
          "34e223ad1ac3bf1e5074c2d33a8624b9a1a9c2b43357fa2249bdea426e198df7");

    // The nonce comes from the header and Ed25519 is deterministic: whole datagrams are fixed.
    const auto hi = bytes_of("hi");
    CHECK(hex_of(p.seal(DatagramKind::to_peer, kCounter, hi)) ==
          "d1010fc789784652307807000000a0a1a2a3a4a5a6a7a8a9aaabacadaeaf0500000003000000"
          "2b537712c721356c2d8afb7852e99b524c11");
    CHECK(hex_of(p.seal(DatagramKind::to_cluster, kCounter + 1, hi)) ==
          "d1020fc789784652307807000000a0a1a2a3a4a5a6a7a8a9aaabacadaeaf0600000003000000"
          "6a0f35ed9b0f571bab713b5d09f6fe53fa20e9dd3c5670189345a305753b75fdfbc21503f447"
          "84511e817556b670b4503ee6e4253497c3e56d78e62e41fa71713e39034888bff8d538cd9d4a"
          "e17df32ec88b");
}

TEST_CASE("a low-order peer key derives nothing") {
    Pair p;
    const KxPublicKey zero{};
    CHECK_FALSE(derive_pairwise_keys(p.net.local(p.a), p.b.id, zero, kEpoch,
                                     *p.net.epochs.network_key(kEpoch, kNow))
                    .has_value());
}

TEST_CASE("the header is little-endian with fixed offsets") {
    DatagramHeader header;
    header.kind = DatagramKind::to_cluster;
    header.cluster_tag = test::counting_bytes<kClusterTagBytes>(0x10);
    header.epoch = 0x04030201;
    header.sender = test::counting_bytes<kDatagramSenderBytes>(0x30);
    header.counter = 0x0807060504030201;
    std::array<std::uint8_t, kDatagramHeaderBytes> bytes{};
    encode_datagram_header(header, bytes);
    CHECK(hex_of(bytes) ==
          "d102"
          "1011121314151617"
          "01020304"
          "303132333435363738393a3b3c3d3e3f"
          "0102030405060708");
    const auto parsed = parse_datagram_header(bytes);
    REQUIRE(parsed.ok());
    CHECK(parsed->kind == header.kind);
    CHECK(parsed->cluster_tag == header.cluster_tag);
    CHECK(parsed->epoch == header.epoch);
    CHECK(parsed->sender == header.sender);
    CHECK(parsed->counter == header.counter);

    bytes[0] = 0xd2;
    CHECK(parse_datagram_header(bytes).drop() == DatagramDrop::unsupported_version);
    bytes[0] = 0x01;
    CHECK(parse_datagram_header(bytes).drop() == DatagramDrop::malformed);
    bytes[0] = 0xd1;
    bytes[1] = 3;
    CHECK(parse_datagram_header(bytes).drop() == DatagramDrop::malformed);
}

TEST_CASE("counters: boot in the high half, strictly increasing") {
    DatagramCounter counter(3);
    CHECK(counter.next() == (std::uint64_t{3} << 32));
    CHECK(counter.next() == (std::uint64_t{3} << 32) + 1);
}

TEST_CASE("both kinds round trip, empty and maximal plaintexts included") {
    Pair p;
    std::uint64_t counter = kCounter;
    for (const DatagramKind kind : kKinds) {
        const std::size_t max =
            kind == DatagramKind::to_peer ? kMaxPeerPlaintextBytes : kMaxClusterPlaintextBytes;
        for (const std::size_t size : {std::size_t{0}, std::size_t{1}, std::size_t{100}, max}) {
            CAPTURE(size);
            std::vector<std::uint8_t> plaintext(size);
            for (std::size_t i = 0; i < size; ++i) plaintext[i] = static_cast<std::uint8_t>(i * 7);
            const auto datagram = p.seal(kind, ++counter, plaintext);
            CHECK(datagram.size() <= limits::kMaxDatagramBytes);
            auto opened = p.at_b->open(datagram, kNow);
            REQUIRE(opened.ok());
            CHECK(opened->plaintext == plaintext);
            CHECK(opened->header.kind == kind);
            CHECK(opened->header.sender == p.a.id);
            CHECK(opened->header.epoch == kEpoch);
            CHECK(opened->header.counter == counter);
        }
        std::vector<std::uint8_t> too_big(max + 1);
        const auto refused = kind == DatagramKind::to_peer
                                 ? p.at_a->seal_to_peer(p.b.id, kEpoch, ++counter, too_big, kNow)
                                 : p.at_a->seal_to_cluster(kEpoch, ++counter, too_big, kNow);
        REQUIRE_FALSE(refused.ok());
        CHECK(refused.error().code == ErrorCode::too_large);
    }
    const auto to_self = p.at_a->seal_to_peer(p.a.id, kEpoch, ++counter, bytes_of("x"), kNow);
    REQUIRE_FALSE(to_self.ok());
    CHECK(to_self.error().code == ErrorCode::invalid_argument);
}

TEST_CASE("every single-byte change in header or body is refused, and changes nothing") {
    Pair p;
    std::uint64_t counter = kCounter;
    for (const DatagramKind kind : kKinds) {
        const auto original = p.seal(kind, ++counter, bytes_of("membership update"));
        for (std::size_t i = 0; i < original.size(); ++i) {
            for (const std::uint8_t mask : {0x01, 0x80, 0xff}) {
                auto flipped = original;
                flipped[i] ^= mask;
                CAPTURE(i);
                CAPTURE(int{mask});
                CHECK_FALSE(p.at_b->open(flipped, kNow).ok());
            }
        }
        CHECK(p.at_b->open(original, kNow).ok());  // no refused variant touched the replay window
    }
}

TEST_CASE("truncation at every length and one extra byte are refused") {
    Pair p;
    std::uint64_t counter = kCounter;
    for (const DatagramKind kind : kKinds) {
        auto original = p.seal(kind, ++counter, bytes_of("beacon"));
        for (std::size_t size = 0; size < original.size(); ++size) {
            CAPTURE(size);
            CHECK_FALSE(p.at_b->open(std::span(original).first(size), kNow).ok());
        }
        auto longer = original;
        longer.push_back(0);
        CHECK(drop_of(*p.at_b, longer) == DatagramDrop::bad_mac);
        CHECK(p.at_b->open(original, kNow).ok());
    }
}

TEST_CASE("oversize is refused before parsing") {
    Pair p;
    std::vector<std::uint8_t> huge(limits::kMaxDatagramBytes + 1, 0xd1);
    CHECK(drop_of(*p.at_b, huge) == DatagramDrop::too_large);
    auto valid = p.seal(DatagramKind::to_peer, kCounter, bytes_of("x"));
    valid.resize(limits::kMaxDatagramBytes + 1);
    CHECK(drop_of(*p.at_b, valid) == DatagramDrop::too_large);
}

TEST_CASE("replays are refused; reordering within the window is accepted once") {
    Pair p;
    for (const DatagramKind kind : kKinds) {
        CAPTURE(static_cast<int>(kind));
        auto receiver = p.net.crypto_for(p.b);
        const std::uint64_t base = kCounter;
        const auto first = p.seal(kind, base, bytes_of("1"));
        const auto late = p.seal(kind, base + 1, bytes_of("2"));
        const auto newest = p.seal(kind, base + 8200, bytes_of("3"));
        const auto edge = p.seal(kind, base + 8200 - ReplayWindow::kWindowDatagrams, bytes_of("4"));
        const auto too_old =
            p.seal(kind, base + 8199 - ReplayWindow::kWindowDatagrams, bytes_of("5"));
        CHECK(receiver->open(first, kNow).ok());
        CHECK(drop_of(*receiver, first) == DatagramDrop::replayed);
        CHECK(receiver->open(newest, kNow).ok());
        CHECK(drop_of(*receiver, late) == DatagramDrop::replayed);  // 8,199 behind: too old
        CHECK(receiver->open(edge, kNow).ok());                     // 8,128 behind: in window
        CHECK(drop_of(*receiver, edge) == DatagramDrop::replayed);
        CHECK(drop_of(*receiver, too_old) == DatagramDrop::replayed);
        CHECK(drop_of(*receiver, newest) == DatagramDrop::replayed);
    }
}

TEST_CASE("unknown epoch, foreign cluster, unknown sender, own datagram") {
    Pair p;
    const auto sealed_7 = p.seal(DatagramKind::to_cluster, kCounter, bytes_of("x"));

    const auto no_key = p.at_a->seal_to_cluster(99, kCounter, bytes_of("x"), kNow);
    REQUIRE_FALSE(no_key.ok());
    CHECK(no_key.error().code == ErrorCode::not_found);

    test::TestCluster other;  // same device keys, another cluster id and network key
    other.cluster[0] ^= 1;
    auto& b_elsewhere = other.add_device(0xb0);
    other.add_device(0xa0);
    CHECK(drop_of(*other.crypto_for(b_elsewhere), sealed_7) == DatagramDrop::foreign_cluster);

    test::TestCluster strangers;  // B's view when A has no certificate there
    auto& lonely_b = strangers.add_device(0xb0);
    CHECK(drop_of(*strangers.crypto_for(lonely_b), sealed_7) == DatagramDrop::unknown_sender);
    CHECK(drop_of(*strangers.crypto_for(lonely_b),
                  p.seal(DatagramKind::to_peer, kCounter, bytes_of("x"))) ==
          DatagramDrop::unknown_sender);

    CHECK(drop_of(*p.at_a, sealed_7) == DatagramDrop::from_self);

    p.net.epochs.retire(kEpoch);
    CHECK(drop_of(*p.at_b, sealed_7) == DatagramDrop::unknown_epoch);
}

TEST_CASE("a datagram for one peer does not open at another") {
    Pair p;
    auto& c = p.net.add_device(0xc0);
    const auto to_c = sealed(p.at_a->seal_to_peer(c.id, kEpoch, kCounter, bytes_of("x"), kNow));
    CHECK(drop_of(*p.at_b, to_c) == DatagramDrop::bad_mac);
    CHECK(p.net.crypto_for(c)->open(to_c, kNow).ok());
}

TEST_CASE("a member forging another member's sender id is refused") {
    Pair p;
    auto& mallory = p.net.add_device(0xd0);
    // Mallory holds the network key and her own keys, and writes A's id into the header.
    LocalDevice posing = p.net.local(mallory);
    posing.device = p.a.id;
    DatagramCrypto forger(posing, p.net.epochs, p.net.peers);

    const auto to_peer = sealed(forger.seal_to_peer(p.b.id, kEpoch, kCounter, bytes_of("x"), kNow));
    CHECK(drop_of(*p.at_b, to_peer) == DatagramDrop::bad_mac);  // not A's pairwise key
    const auto to_cluster = sealed(forger.seal_to_cluster(kEpoch, kCounter, bytes_of("x"), kNow));
    CHECK(drop_of(*p.at_b, to_cluster) == DatagramDrop::bad_signature);  // not A's signature
    // Neither moved A's replay window.
    CHECK(p.at_b->open(p.seal(DatagramKind::to_cluster, kCounter, bytes_of("x")), kNow).ok());
}

TEST_CASE("rotation: both epochs open while both keys are held, then only the new one") {
    Pair p;
    p.net.epochs.add(kEpoch + 1, test::counting_key(0x60));
    std::uint64_t counter = kCounter;
    for (const DatagramKind kind : kKinds) {
        const auto old_epoch =
            sealed(kind == DatagramKind::to_peer
                       ? p.at_a->seal_to_peer(p.b.id, kEpoch, ++counter, {}, kNow)
                       : p.at_a->seal_to_cluster(kEpoch, ++counter, {}, kNow));
        const auto new_epoch =
            sealed(kind == DatagramKind::to_peer
                       ? p.at_a->seal_to_peer(p.b.id, kEpoch + 1, ++counter, {}, kNow)
                       : p.at_a->seal_to_cluster(kEpoch + 1, ++counter, {}, kNow));
        CHECK(p.at_b->open(new_epoch, kNow).ok());
        CHECK(p.at_b->open(old_epoch, kNow).ok());  // own window per epoch: order does not matter
        auto reepoched = old_epoch;  // header says the new epoch, body sealed under the old one
        reepoched[10] = static_cast<std::uint8_t>(kEpoch + 1);
        CHECK(drop_of(*p.at_b, reepoched) == DatagramDrop::bad_mac);
    }
    const auto late_old = sealed(p.at_a->seal_to_cluster(kEpoch, ++counter, {}, kNow));
    p.net.epochs.retire(kEpoch);
    p.at_b->forget_epoch(kEpoch);
    CHECK(drop_of(*p.at_b, late_old) == DatagramDrop::unknown_epoch);
    CHECK(
        p.at_b->open(sealed(p.at_a->seal_to_cluster(kEpoch + 1, ++counter, {}, kNow)), kNow).ok());
}

TEST_CASE("a peer with a new certificate gets new pairwise keys") {
    Pair p;
    CHECK(p.at_b->open(p.seal(DatagramKind::to_peer, kCounter, bytes_of("x")), kNow).ok());
    test::TestDevice renewed(0xa8);  // A's new kx key, same device id
    renewed.id = p.a.id;
    p.net.peers.add(p.a.id, renewed.sign.public_key, renewed.kx.public_key);
    DatagramCrypto at_renewed(p.net.local(renewed), p.net.epochs, p.net.peers);
    const auto next =
        sealed(at_renewed.seal_to_peer(p.b.id, kEpoch, kCounter + 1, bytes_of("y"), kNow));
    CHECK(p.at_b->open(next, kNow).ok());
    CHECK(drop_of(*p.at_b, p.seal(DatagramKind::to_peer, kCounter + 2, bytes_of("z"))) ==
          DatagramDrop::bad_mac);  // the old key no longer opens
}

TEST_CASE("the replay table refuses new senders when full, until an epoch retires") {
    test::TestCluster net;
    auto& receiver_device = net.add_device(0x00);
    auto receiver = net.crypto_for(receiver_device);
    std::vector<std::unique_ptr<DatagramCrypto>> senders;
    for (std::size_t i = 0; i <= limits::kMaxReplayWindows; ++i) {
        auto& device = net.add_device(static_cast<std::uint8_t>(0x10 + i));
        device.id[15] = static_cast<std::uint8_t>(i);  // ids unique even where keys repeat
        device.id[14] = static_cast<std::uint8_t>(i >> 8);
        net.peers.add(device.id, device.sign.public_key, device.kx.public_key);
        senders.push_back(net.crypto_for(device));
    }
    for (std::size_t i = 0; i < limits::kMaxReplayWindows; ++i)
        REQUIRE(
            receiver->open(sealed(senders[i]->seal_to_cluster(kEpoch, 1, {}, kNow)), kNow).ok());
    net.epochs.add(kEpoch + 1, test::counting_key(0x60));
    const auto last = sealed(senders.back()->seal_to_cluster(kEpoch + 1, 1, {}, kNow));
    CHECK(drop_of(*receiver, last) == DatagramDrop::too_many_senders);
    CHECK(receiver->open(sealed(senders[0]->seal_to_cluster(kEpoch, 2, {}, kNow)), kNow)
              .ok());  // known
    net.epochs.retire(kEpoch);
    CHECK(receiver->open(last, kNow).ok());
}

TEST_CASE("signature checks are budgeted per second, per sender and in all") {
    test::TestCluster net;
    auto& receiver_device = net.add_device(0x01);
    auto& a = net.add_device(0xa0);
    auto& b = net.add_device(0xb0);
    DatagramCrypto receiver(net.local(receiver_device), net.epochs, net.peers, VerifyBudget{3, 5});
    auto from_a = net.crypto_for(a);
    auto from_b = net.crypto_for(b);
    std::uint64_t counter = kCounter;
    auto cluster_datagram = [&](DatagramCrypto& sender) {
        return sealed(sender.seal_to_cluster(kEpoch, ++counter, bytes_of("hello"), kNow));
    };
    for (int i = 0; i < 3; ++i) CHECK(receiver.open(cluster_datagram(*from_a), kNow).ok());
    const auto refused = cluster_datagram(*from_a);
    auto dropped = receiver.open(refused, kNow);
    REQUIRE_FALSE(dropped.ok());
    CHECK(dropped.drop() == DatagramDrop::over_verify_budget);
    // Another sender still has its own share, until the total runs out.
    CHECK(receiver.open(cluster_datagram(*from_b), kNow).ok());
    CHECK(receiver.open(cluster_datagram(*from_b), kNow).ok());
    dropped = receiver.open(cluster_datagram(*from_b), kNow);
    REQUIRE_FALSE(dropped.ok());
    CHECK(dropped.drop() == DatagramDrop::over_verify_budget);
    // Pairwise datagrams never need a signature check.
    CHECK(receiver.open(sealed(from_a->seal_to_peer(receiver_device.id, kEpoch, ++counter,
                                                    bytes_of("p"), kNow)),
                        kNow)
              .ok());
    // A refused datagram was not marked seen: it opens in the next second.
    CHECK(receiver.open(refused, kNow + 1).ok());
}

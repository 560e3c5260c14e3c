// The network key ring: install → use → remove across a rotation, windows that only narrow,
// and replayed or conflicting epochs refused. Times are plain numbers: no clock is read.
#include <doctest/doctest.h>

#include <cstdint>

#include "crypto/cluster.hpp"
#include "crypto/keyring.hpp"
#include "protocol/limits.hpp"
#include "tests/crypto/identity_fixture.hpp"

using namespace starling;
using namespace starling::crypto;
using starling::testing::kNow;
using starling::testing::why;

namespace {

constexpr std::uint64_t kHour = 3600;

NetworkKeyEpoch epoch(std::uint32_t number, std::uint64_t not_before,
                      std::uint64_t not_after = kNoExpiry) {
    NetworkKeyEpoch e;
    e.epoch = number;
    random_bytes(e.key.bytes());
    e.not_before = not_before;
    e.not_after = not_after;
    return e;
}

}  // namespace

TEST_CASE("a rotation installs the new epoch, switches senders halfway, retires the old") {
    auto created = ClusterSecrets::create("home", kNow);
    REQUIRE_MESSAGE(created.ok(), why(created));
    ClusterSecrets& cluster = *created;
    NetworkKeyRing& ring = cluster.network_keys;
    REQUIRE(ring.current(kNow) != nullptr);
    CHECK(ring.current(kNow)->epoch == 1);

    const std::uint64_t t = kNow + 10 * kHour;
    const auto announced = cluster.rotate_network_key(t, 24 * kHour);
    REQUIRE_MESSAGE(announced.ok(), why(announced));
    CHECK(announced->key.epoch == 2);
    CHECK(announced->retire_older_at == t + 24 * kHour);
    CHECK(verify_key_announcement(*announced, cluster.owner.public_key, cluster.cluster).ok());

    const std::uint64_t skew = ring.clock_skew_seconds();
    // Install: both accepted, the old one still sent with.
    CHECK(ring.current(t)->epoch == 1);
    CHECK(ring.accept(2, t) != nullptr);
    CHECK(ring.accept(1, t) != nullptr);
    // Use: from the middle of the overlap the new epoch is sent with; the old still accepted.
    CHECK(ring.current(t + 12 * kHour - 1)->epoch == 1);
    CHECK(ring.current(t + 12 * kHour)->epoch == 2);
    CHECK(ring.accept(1, t + 24 * kHour + skew) != nullptr);
    // Remove: after the overlap (and the skew allowance) the old epoch is refused.
    CHECK(ring.accept(1, t + 24 * kHour + skew + 1) == nullptr);
    CHECK(ring.accept(2, t + 24 * kHour + skew + 1) != nullptr);
    ring.forget_expired(t + 24 * kHour + skew + 1);
    CHECK(ring.epochs().size() == 1);
    CHECK(ring.epochs().front().epoch == 2);
}

TEST_CASE("a rotation with no overlap switches at once") {
    auto cluster = ClusterSecrets::create("home", kNow);
    REQUIRE(cluster.ok());
    REQUIRE(cluster->rotate_network_key(kNow + 5, 0).ok());
    NetworkKeyRing& ring = cluster->network_keys;
    CHECK(ring.current(kNow + 5)->epoch == 2);
    CHECK(ring.accept(1, kNow + 5 + ring.clock_skew_seconds() + 1) == nullptr);
}

TEST_CASE("windows only narrow, and a retired epoch is never installed again") {
    NetworkKeyRing ring(0);
    NetworkKeyEpoch one = epoch(1, 0);
    const NetworkKeyEpoch replay = one.clone();
    REQUIRE(ring.install(std::move(one)).ok());
    REQUIRE(ring.install(epoch(2, kNow)).ok());
    ring.retire_older(2, kNow + kHour);
    CHECK(ring.accept(1, kNow + kHour) != nullptr);
    CHECK(ring.accept(1, kNow + kHour + 1) == nullptr);

    // Replaying epoch 1's original (open-ended) window does not reopen it.
    REQUIRE(ring.install(replay.clone()).ok());
    CHECK(ring.accept(1, kNow + kHour + 1) == nullptr);
    // The same epoch number with another key is an attack or a bug: refused.
    CHECK(ring.install(epoch(2, kNow)).error().code == ErrorCode::corrupt);

    ring.forget_expired(kNow + kHour + 1);
    CHECK(ring.epochs().size() == 1);
    CHECK(ring.install(replay.clone()).error().code == ErrorCode::invalid_argument);
    CHECK(ring.retired_below() == 2);
}

TEST_CASE("install refuses nonsense and a full ring forgets its oldest epoch") {
    NetworkKeyRing ring(0);
    CHECK(ring.install(epoch(0, 0)).error().code == ErrorCode::invalid_argument);
    CHECK(ring.install(epoch(1, 10, 9)).error().code == ErrorCode::invalid_argument);
    for (std::uint32_t n = 2; n < 2 + limits::kMaxNetworkKeyEpochs; ++n)
        REQUIRE(ring.install(epoch(n, n)).ok());
    CHECK(ring.epochs().size() == limits::kMaxNetworkKeyEpochs);
    CHECK(ring.install(epoch(1, 0)).error().code == ErrorCode::too_large);
    REQUIRE(ring.install(epoch(100, 100)).ok());
    CHECK(ring.epochs().size() == limits::kMaxNetworkKeyEpochs);
    CHECK(ring.epochs().front().epoch == 3);
    CHECK(ring.install(epoch(2, 2)).error().code == ErrorCode::invalid_argument);
}

TEST_CASE("current is the highest epoch in use; none before the first or after the last") {
    NetworkKeyRing ring(0);
    CHECK(ring.current(kNow) == nullptr);
    REQUIRE(ring.install(epoch(1, kNow, kNow + 100)).ok());
    REQUIRE(ring.install(epoch(2, kNow + 50, kNow + 200)).ok());
    CHECK(ring.current(kNow - 1) == nullptr);
    CHECK(ring.current(kNow + 49)->epoch == 1);
    CHECK(ring.current(kNow + 50)->epoch == 2);
    CHECK(ring.current(kNow + 201) == nullptr);
    CHECK(ring.accept(3, kNow) == nullptr);  // never installed
}

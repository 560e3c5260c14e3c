// Certificates, revocations and key-epoch announcements: what the owner signs verifies, and
// anything else (another owner, another cluster, outside the window, any flipped bit, a new
// name) is refused; decoders turn hostile bytes into errors, never crashes.
#include <doctest/doctest.h>
#include <flatbuffers/flatbuffers.h>

#include <cstdint>
#include <random>
#include <vector>

#include "crypto/certificate.hpp"
#include "protocol/limits.hpp"
#include "protocol/trust_generated.h"
#include "tests/crypto/identity_fixture.hpp"

using namespace starling;
using namespace starling::crypto;
using starling::testing::kDay;
using starling::testing::kNow;
using starling::testing::Owner;
using starling::testing::why;

namespace {

void check_same(const Certificate& a, const Certificate& b) {
    CHECK(a.cluster == b.cluster);
    CHECK(a.device == b.device);
    CHECK(a.name == b.name);
    CHECK(a.role == b.role);
    CHECK(a.sign_key == b.sign_key);
    CHECK(a.kx_key == b.kx_key);
    CHECK(a.not_before == b.not_before);
    CHECK(a.not_after == b.not_after);
    CHECK(a.serial == b.serial);
    CHECK(a.signature == b.signature);
}

Revocation revoke(const Owner& owner, const Certificate& cert, std::uint64_t at = kNow) {
    Revocation r{cert.cluster, cert.device, cert.name, at, {}};
    sign_revocation(r, owner.keys.secret_key);
    return r;
}

KeyEpochAnnouncement announce(const Owner& owner, std::uint32_t epoch) {
    KeyEpochAnnouncement a;
    a.key.epoch = epoch;
    random_bytes(a.key.key.bytes());
    a.key.not_before = kNow;
    a.retire_older_at = kNow + kDay;
    sign_key_announcement(a, owner.keys.secret_key, owner.cluster);
    return a;
}

// Truncations, random garbage and an oversized buffer: each a clean error of a known kind.
template <class Decode>
void check_hostile_inputs(const std::vector<std::uint8_t>& good, std::size_t max_bytes,
                          Decode decode) {
    for (std::size_t n = 0; n < good.size(); ++n) {
        const auto r = decode(std::span<const std::uint8_t>(good.data(), n));
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code == ErrorCode::malformed);
    }
    std::mt19937 rng(12345);
    for (int round = 0; round < 2000; ++round) {
        std::vector<std::uint8_t> junk(rng() % (max_bytes + 1));
        for (auto& b : junk) b = static_cast<std::uint8_t>(rng());
        CHECK_FALSE(decode(junk).ok());
    }
    std::vector<std::uint8_t> huge = good;
    huge.resize(max_bytes + 1);
    const auto r = decode(huge);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == ErrorCode::too_large);
}

}  // namespace

TEST_CASE("names: short, lower-case, file-name safe") {
    for (const char* ok : {"nuc-001", "a", "pi4.kitchen", "x_y", "0"})
        CHECK(check_name(ok, "n").ok());
    for (const char* bad : {"", "-x", ".hidden", "..", "UPPER", "a/b", "sp ace", "é"})
        CHECK(check_name(bad, "n").error().code == ErrorCode::malformed);
    CHECK(check_name(std::string(limits::kMaxNameBytes, 'a'), "n").ok());
    CHECK_FALSE(check_name(std::string(limits::kMaxNameBytes + 1, 'a'), "n").ok());
}

TEST_CASE("a certificate the owner signed verifies inside its window, edges included") {
    const Owner owner;
    const Certificate cert = owner.certify("nuc-001", kNow, kNow + kDay);
    const SignPublicKey& pk = owner.keys.public_key;
    CHECK_MESSAGE(verify_certificate(cert, pk, owner.cluster, kNow).ok(),
                  why(verify_certificate(cert, pk, owner.cluster, kNow)));
    CHECK(verify_certificate(cert, pk, owner.cluster, kNow + kDay).ok());
    CHECK(verify_certificate(cert, pk, owner.cluster, kNow - 1).error().code ==
          ErrorCode::invalid_argument);  // not yet valid
    CHECK(verify_certificate(cert, pk, owner.cluster, kNow + kDay + 1).error().code ==
          ErrorCode::invalid_argument);  // expired
    CHECK(verify_certificate_signature(cert, pk, owner.cluster).ok());
}

TEST_CASE("a certificate from another owner, for another cluster, or altered is refused") {
    const Owner owner;
    const Owner other;
    const Certificate cert = owner.certify("nuc-001");
    CHECK(verify_certificate(cert, other.keys.public_key, owner.cluster, kNow).error().code ==
          ErrorCode::corrupt);
    CHECK(verify_certificate(cert, owner.keys.public_key, other.cluster, kNow).error().code ==
          ErrorCode::invalid_argument);

    Certificate renamed = cert;
    renamed.name = "nuc-002";
    CHECK(verify_certificate(renamed, owner.keys.public_key, owner.cluster, kNow).error().code ==
          ErrorCode::corrupt);
    Certificate promoted = owner.certify("watcher");
    promoted.role = Role::observer;
    CHECK_FALSE(verify_certificate(promoted, owner.keys.public_key, owner.cluster, kNow).ok());
    Certificate extended = cert;
    extended.not_after += 1;
    CHECK_FALSE(verify_certificate(extended, owner.keys.public_key, owner.cluster, kNow).ok());
    Certificate moved = cert;
    moved.cluster = other.cluster;  // re-labelled for another cluster of the same owner
    CHECK_FALSE(verify_certificate(moved, owner.keys.public_key, other.cluster, kNow).ok());
}

TEST_CASE("a certificate survives encode/decode, and any flipped bit is refused") {
    const Owner owner;
    const Certificate cert = owner.certify("nuc-042");
    const auto bytes = encode_certificate(cert);
    CHECK(bytes.size() <= limits::kMaxCertificateBytes);
    const auto decoded = decode_certificate(bytes);
    REQUIRE_MESSAGE(decoded.ok(), why(decoded));
    check_same(*decoded, cert);

    for (std::size_t bit = 0; bit < bytes.size() * 8; ++bit) {
        auto flipped = bytes;
        flipped[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
        const auto r = decode_certificate(flipped);
        const bool refused =
            !r.ok() || !verify_certificate(*r, owner.keys.public_key, owner.cluster, kNow).ok();
        CHECK_MESSAGE(refused, "bit " << bit << " flipped was accepted");
    }
}

TEST_CASE("decode refuses truncated, garbage, oversized and misaligned-but-valid is fine") {
    const Owner owner;
    const auto bytes = encode_certificate(owner.certify("nuc-001"));
    check_hostile_inputs(bytes, limits::kMaxCertificateBytes,
                         [](std::span<const std::uint8_t> b) { return decode_certificate(b); });
    std::vector<std::uint8_t> shifted(bytes.size() + 1);
    std::copy(bytes.begin(), bytes.end(), shifted.begin() + 1);
    CHECK(decode_certificate(std::span<const std::uint8_t>(shifted).subspan(1)).ok());
    // Found by fuzz_revocation: an empty input at an odd address once reached memcpy(nullptr).
    CHECK(decode_certificate(std::span<const std::uint8_t>(shifted).subspan(1, 0)).error().code ==
          ErrorCode::malformed);
    CHECK_FALSE(decode_revocation(std::span<const std::uint8_t>(shifted).subspan(1, 0)).ok());
    auto trailing = bytes;
    trailing.push_back(0);
    CHECK(decode_certificate(trailing).error().code == ErrorCode::malformed);
}

TEST_CASE("a second, non-canonical encoding of a valid certificate is refused") {
    const Owner owner;
    const Certificate cert = owner.certify("nuc-001");
    flatbuffers::FlatBufferBuilder fbb;
    fbb.ForceDefaults(true);  // writes role = trainer explicitly: same fields, other bytes
    const auto root = wire::CreateCertificate(
        fbb, fbb.CreateVector(cert.cluster.data(), 16), fbb.CreateVector(cert.device.data(), 16),
        fbb.CreateString(cert.name), wire::DeviceRole::trainer,
        fbb.CreateVector(cert.sign_key.data(), 32), fbb.CreateVector(cert.kx_key.data(), 32),
        cert.not_before, cert.not_after, cert.serial, fbb.CreateVector(cert.signature.data(), 64));
    fbb.FinishSizePrefixed(root, "SCRT");
    const std::vector<std::uint8_t> other(fbb.GetBufferPointer(),
                                          fbb.GetBufferPointer() + fbb.GetSize());
    REQUIRE(other != encode_certificate(cert));
    const auto r = decode_certificate(other);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == ErrorCode::malformed);
}

TEST_CASE("a revocation verifies, survives encode/decode, and refuses tampering") {
    const Owner owner;
    const Owner other;
    const Revocation r = revoke(owner, owner.certify("nuc-013"));
    CHECK(verify_revocation(r, owner.keys.public_key, owner.cluster).ok());
    CHECK(verify_revocation(r, other.keys.public_key, owner.cluster).error().code ==
          ErrorCode::corrupt);
    CHECK(verify_revocation(r, owner.keys.public_key, other.cluster).error().code ==
          ErrorCode::invalid_argument);
    Revocation later = r;
    later.revoked_at += 1;
    CHECK_FALSE(verify_revocation(later, owner.keys.public_key, owner.cluster).ok());

    const auto bytes = encode_revocation(r);
    const auto decoded = decode_revocation(bytes);
    REQUIRE_MESSAGE(decoded.ok(), why(decoded));
    CHECK(decoded->device == r.device);
    CHECK(decoded->name == r.name);
    CHECK(decoded->revoked_at == r.revoked_at);
    CHECK(verify_revocation(*decoded, owner.keys.public_key, owner.cluster).ok());
    for (std::size_t bit = 0; bit < bytes.size() * 8; ++bit) {
        auto flipped = bytes;
        flipped[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
        const auto d = decode_revocation(flipped);
        CHECK((!d.ok() || !verify_revocation(*d, owner.keys.public_key, owner.cluster).ok()));
    }
    check_hostile_inputs(bytes, limits::kMaxRevocationBytes,
                         [](std::span<const std::uint8_t> b) { return decode_revocation(b); });
}

TEST_CASE("a certificate's signature never verifies as a revocation (domain separation)") {
    const Owner owner;
    const Certificate cert = owner.certify("nuc-001");
    Revocation forged{cert.cluster, cert.device, cert.name, kNow, cert.signature};
    CHECK(verify_revocation(forged, owner.keys.public_key, owner.cluster).error().code ==
          ErrorCode::corrupt);
}

TEST_CASE("a key-epoch announcement verifies, round-trips, and installs into a ring") {
    const Owner owner;
    const Owner other;
    KeyEpochAnnouncement a = announce(owner, 2);
    CHECK(verify_key_announcement(a, owner.keys.public_key, owner.cluster).ok());
    CHECK(verify_key_announcement(a, other.keys.public_key, owner.cluster).error().code ==
          ErrorCode::corrupt);
    CHECK(verify_key_announcement(a, owner.keys.public_key, other.cluster).error().code ==
          ErrorCode::corrupt);

    const auto bytes = encode_key_announcement(a);
    auto decoded = decode_key_announcement(bytes);
    REQUIRE_MESSAGE(decoded.ok(), why(decoded));
    CHECK(decoded->key.epoch == 2);
    CHECK(equal_constant_time(decoded->key.key.bytes(), a.key.key.bytes()));
    check_hostile_inputs(
        bytes, limits::kMaxKeyAnnouncementBytes,
        [](std::span<const std::uint8_t> b) { return decode_key_announcement(b); });

    NetworkKeyRing ring(0);
    KeyEpochAnnouncement first = announce(owner, 1);
    first.key.not_before = 0;
    sign_key_announcement(first, owner.keys.secret_key, owner.cluster);
    REQUIRE(
        accept_key_announcement(ring, std::move(first), owner.keys.public_key, owner.cluster).ok());
    REQUIRE(accept_key_announcement(ring, std::move(*decoded), owner.keys.public_key, owner.cluster)
                .ok());
    CHECK(ring.current(kNow)->epoch == 2);
    CHECK(ring.accept(1, kNow + kDay) != nullptr);
    CHECK(ring.accept(1, kNow + kDay + 1) == nullptr);

    KeyEpochAnnouncement forged = announce(other, 3);
    CHECK_FALSE(
        accept_key_announcement(ring, std::move(forged), owner.keys.public_key, owner.cluster)
            .ok());
    CHECK(ring.epochs().size() == 2);
}

TEST_CASE("hex round-trips bytes, and anything but pairs of hex digits is refused") {
    const std::vector<std::uint8_t> bytes{0x00, 0x7f, 0xa5, 0xff};
    CHECK(to_hex(bytes) == "007fa5ff");
    REQUIRE(from_hex("007fa5ff").has_value());
    CHECK(*from_hex("007fa5ff") == bytes);
    CHECK(*from_hex("007FA5FF") == bytes);
    CHECK(from_hex("")->empty());
    CHECK_FALSE(from_hex("007").has_value());      // odd length
    CHECK_FALSE(from_hex("00 7f").has_value());    // a space
    CHECK_FALSE(from_hex("0g").has_value());       // not a digit
    CHECK_FALSE(from_hex("007fa5ff\n").has_value());
}

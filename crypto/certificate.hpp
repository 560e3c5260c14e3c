#pragma once
// Who may join: the owner's root key signs one certificate per device (its id, name, role and
// public keys), signs revocations, and signs each new network-key epoch. A device proves its
// identity with the matching secrets.
//
// Signatures cover canonical bodies defined byte by byte in certificate.cpp (a domain string,
// then fixed-width fields, then the length-prefixed name), never the FlatBuffer bytes. Decoders
// also refuse any wire form the encoder would not have produced, so one record has one encoding.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/keyring.hpp"
#include "crypto/keys.hpp"
#include "protocol/result.hpp"

namespace starling::crypto {

enum class Role : std::uint8_t { trainer = 0, observer = 1 };

[[nodiscard]] const char* to_string(Role role) noexcept;

// Device and cluster names: 1..limits::kMaxNameBytes bytes of [a-z0-9._-], the first one of
// [a-z0-9] (names become file names). malformed otherwise; `what` names the field in the error.
[[nodiscard]] Status check_name(std::string_view name, std::string_view what);

struct Certificate {
    ClusterId cluster{};
    DeviceId device{};
    std::string name;  // e.g. "nuc-001" (check_name)
    Role role = Role::trainer;
    SignPublicKey sign_key{};      // the device's Ed25519 key (signs its own records)
    KxPublicKey kx_key{};          // the device's X25519 key (pairwise keys, Noise static key)
    std::uint64_t not_before = 0;  // unix seconds
    std::uint64_t not_after = 0;   // unix seconds, inclusive
    std::uint64_t serial = 0;      // grows with every certificate the owner issues
    Signature signature{};         // the owner's, over encode_certificate_body()
};

struct Revocation {
    ClusterId cluster{};
    DeviceId device{};
    std::string name;
    std::uint64_t revoked_at = 0;  // unix seconds
    Signature signature{};         // the owner's, over encode_revocation_body()
};

// A new network-key epoch from the owner. It carries the key itself, so it only ever travels
// sealed (cluster datagrams, Noise streams) and its encoded bytes must be wiped after use.
struct KeyEpochAnnouncement {
    NetworkKeyEpoch key;
    std::uint64_t retire_older_at = 0;  // every older epoch is accepted until here
    Signature signature{};              // the owner's, over the cluster id and the fields above
};

// The exact bytes the owner signs.
[[nodiscard]] std::vector<std::uint8_t> encode_certificate_body(const Certificate& cert);
[[nodiscard]] std::vector<std::uint8_t> encode_revocation_body(const Revocation& revocation);

// Sign in place with the owner's key.
void sign_certificate(Certificate& cert, const SignSecretKey& owner);
void sign_revocation(Revocation& revocation, const SignSecretKey& owner);
void sign_key_announcement(KeyEpochAnnouncement& announcement, const SignSecretKey& owner,
                           const ClusterId& cluster);

// Checks the cluster, the name, the owner's signature and the validity window at `now`:
// invalid_argument (another cluster, expired, not yet valid), malformed (name), corrupt
// (signature: forged, altered, or signed by another owner).
[[nodiscard]] Status verify_certificate(const Certificate& cert, const SignPublicKey& owner,
                                        const ClusterId& cluster, std::uint64_t now_unix_seconds);
// The same without the clock: for a bundle being loaded on a device whose clock may be unset.
[[nodiscard]] Status verify_certificate_signature(const Certificate& cert,
                                                  const SignPublicKey& owner,
                                                  const ClusterId& cluster);
[[nodiscard]] Status verify_revocation(const Revocation& revocation, const SignPublicKey& owner,
                                       const ClusterId& cluster);
[[nodiscard]] Status verify_key_announcement(const KeyEpochAnnouncement& announcement,
                                             const SignPublicKey& owner, const ClusterId& cluster);

// Verifies an announcement, then installs its epoch and retires the older ones in `ring`.
[[nodiscard]] Status accept_key_announcement(NetworkKeyRing& ring,
                                             KeyEpochAnnouncement announcement,
                                             const SignPublicKey& owner, const ClusterId& cluster);

// The versioned wire forms (size-prefixed FlatBuffers, protocol/schemas/trust.fbs). Decoders cap
// the size (limits.hpp), run the Verifier with tight limits, check every length and name, and
// refuse non-canonical encodings; they do not check signatures (verify_* do).
[[nodiscard]] std::vector<std::uint8_t> encode_certificate(const Certificate& cert);
[[nodiscard]] Result<Certificate> decode_certificate(std::span<const std::uint8_t> bytes);
[[nodiscard]] std::vector<std::uint8_t> encode_revocation(const Revocation& revocation);
[[nodiscard]] Result<Revocation> decode_revocation(std::span<const std::uint8_t> bytes);
[[nodiscard]] std::vector<std::uint8_t> encode_key_announcement(
    const KeyEpochAnnouncement& announcement);  // holds the key: wipe after sealing
[[nodiscard]] Result<KeyEpochAnnouncement> decode_key_announcement(
    std::span<const std::uint8_t> bytes);

}  // namespace starling::crypto

#pragma once
// Who may join: the owner's root key signs one certificate per device (its id, name, role and
// public keys), and signs revocations. A device proves its identity with the matching secrets.

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "crypto/keys.hpp"
#include "protocol/result.hpp"

namespace starling::crypto {

enum class Role : std::uint8_t { trainer = 0, observer = 1 };

struct Certificate {
    ClusterId cluster{};
    DeviceId device{};
    std::string name;  // e.g. "nuc-001": 1..63 bytes of [a-z0-9._-]
    Role role = Role::trainer;
    SignPublicKey sign_key{};  // the device's Ed25519 key (signs its own records)
    KxPublicKey kx_key{};      // the device's X25519 key (pairwise keys, Noise static key)
    std::uint64_t not_before = 0;  // unix seconds
    std::uint64_t not_after = 0;   // unix seconds
    std::uint64_t serial = 0;      // grows with every certificate the owner issues
    Signature signature{};         // the owner's, over encode_certificate_body()
};

struct Revocation {
    ClusterId cluster{};
    DeviceId device{};
    std::string name;
    std::uint64_t revoked_at = 0;  // unix seconds
    Signature signature{};         // the owner's
};

// Signs a certificate or revocation in place with the owner's key.
void sign_certificate(Certificate& cert, const SignSecretKey& owner);
void sign_revocation(Revocation& revocation, const SignSecretKey& owner);

// Checks the owner's signature, the cluster, the name and the validity window at `now`.
[[nodiscard]] Status verify_certificate(const Certificate& cert, const SignPublicKey& owner,
                                        const ClusterId& cluster, std::uint64_t now_unix_seconds);
[[nodiscard]] Status verify_revocation(const Revocation& revocation, const SignPublicKey& owner,
                                       const ClusterId& cluster);

// The canonical, versioned wire form (FlatBuffers, protocol/schemas/trust.fbs) and its parser,
// which runs the Verifier with tight limits before reading any field.
std::vector<std::uint8_t> encode_certificate(const Certificate& cert);
[[nodiscard]] Result<Certificate> decode_certificate(std::span<const std::uint8_t> bytes);
std::vector<std::uint8_t> encode_revocation(const Revocation& revocation);
[[nodiscard]] Result<Revocation> decode_revocation(std::span<const std::uint8_t> bytes);

}  // namespace starling::crypto

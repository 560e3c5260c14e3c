#pragma once
// Whom this node trusts: the certificates of its cluster's devices, learned from verified beacons
// and certificate answers, minus revoked devices. It is the PeerDirectory behind DatagramCrypto
// (keys to open and seal) and the RecordAuthenticator behind Membership (Ed25519 self-records).

#include <cstddef>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "crypto/certificate.hpp"
#include "crypto/datagram.hpp"
#include "crypto/keys.hpp"
#include "node/membership/authenticator.hpp"
#include "node/runtime/clock.hpp"
#include "protocol/limits.hpp"
#include "protocol/result.hpp"

namespace starling::runtime {

// Certificates and revocations held: the cluster's own bound on enrolled devices.
inline constexpr std::size_t kMaxKnownCertificates = limits::kMaxClusterDevices;

class PeerTable final : public crypto::PeerDirectory, public membership::RecordAuthenticator {
public:
    // `own` is this device's certificate, `sign` its key pair (borrowed: must outlive the table).
    PeerTable(const crypto::ClusterId& cluster, const crypto::SignPublicKey& owner,
              const crypto::Certificate& own, const crypto::SignKeyPair& sign, const Clock& clock);

    enum class Learned : std::uint8_t { added, known, refused };
    // Keeps `cert` if the owner signed it for this cluster, it is valid now and its device is not
    // revoked; a newer serial replaces an older certificate of the same device.
    Learned learn(const crypto::Certificate& cert);
    // The same from wire bytes (crypto::encode_certificate).
    Learned learn(std::span<const std::uint8_t> certificate_bytes);
    // Refuses the device from now on (the caller verified the owner's signature). invalid_argument
    // when it names this device; too_large when the table is full.
    [[nodiscard]] Status revoke(const crypto::Revocation& revocation);

    [[nodiscard]] const crypto::Certificate* find(const crypto::DeviceId& device) const;
    [[nodiscard]] bool is_revoked(const crypto::DeviceId& device) const;
    // The certificate's name, or the first bytes of the id in hex for a device not known.
    [[nodiscard]] std::string name_of(const crypto::DeviceId& device) const;
    [[nodiscard]] std::size_t size() const noexcept { return certificates_.size(); }
    [[nodiscard]] const crypto::Certificate& own() const noexcept { return own_; }

    // crypto::PeerDirectory. An unknown sender of a beacon is vouched for by the certificate the
    // beacon carries, once the owner's signature on it verifies.
    std::optional<crypto::KxPublicKey> kx_key(const crypto::DeviceId& device) const override;
    std::optional<crypto::SignPublicKey> sign_key(
        const crypto::DeviceId& device, std::span<const std::uint8_t> plaintext) const override;

    // membership::RecordAuthenticator.
    membership::Signature sign(const membership::SignedRecordMessage& message) override;
    bool verify(const membership::DeviceId& signer, const membership::SignedRecordMessage& message,
                const membership::Signature& signature) override;

private:
    [[nodiscard]] bool acceptable(const crypto::Certificate& cert) const;

    crypto::ClusterId cluster_;
    crypto::SignPublicKey owner_;
    crypto::Certificate own_;
    const crypto::SignKeyPair& sign_;
    const Clock& clock_;
    std::map<crypto::DeviceId, crypto::Certificate> certificates_;
    std::map<crypto::DeviceId, std::string> revoked_;  // with the name the owner revoked
};

}  // namespace starling::runtime

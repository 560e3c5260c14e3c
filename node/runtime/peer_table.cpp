#include "node/runtime/peer_table.hpp"

#include <sodium.h>

#include "node/runtime/discovery_wire.hpp"

namespace starling::runtime {
namespace {

constexpr std::size_t kNameIdBytes = 4;  // hex of an unknown device's id in logs

}  // namespace

PeerTable::PeerTable(const crypto::ClusterId& cluster, const crypto::SignPublicKey& owner,
                     const crypto::Certificate& own, const crypto::SignKeyPair& sign,
                     const Clock& clock)
    : cluster_(cluster), owner_(owner), own_(own), sign_(sign), clock_(clock) {}

bool PeerTable::acceptable(const crypto::Certificate& cert) const {
    return cert.device != own_.device && !revoked_.contains(cert.device) &&
           crypto::verify_certificate(cert, owner_, cluster_, clock_.unix_seconds()).ok();
}

PeerTable::Learned PeerTable::learn(const crypto::Certificate& cert) {
    auto it = certificates_.find(cert.device);
    if (it != certificates_.end() && it->second.serial >= cert.serial) return Learned::known;
    if (it == certificates_.end() && certificates_.size() >= kMaxKnownCertificates)
        return Learned::refused;
    if (!acceptable(cert)) return Learned::refused;
    certificates_.insert_or_assign(cert.device, cert);
    return it == certificates_.end() ? Learned::added : Learned::known;
}

PeerTable::Learned PeerTable::learn(std::span<const std::uint8_t> certificate_bytes) {
    Result<crypto::Certificate> cert = crypto::decode_certificate(certificate_bytes);
    return cert ? learn(*cert) : Learned::refused;
}

Status PeerTable::revoke(const crypto::Revocation& revocation) {
    if (revocation.device == own_.device)
        return make_error(ErrorCode::invalid_argument,
                          "this device '" + own_.name + "' is revoked: re-enroll it");
    if (!revoked_.contains(revocation.device) && revoked_.size() >= kMaxKnownCertificates)
        return make_error(ErrorCode::too_large, "too many revocations");
    revoked_.emplace(revocation.device, revocation.name);
    certificates_.erase(revocation.device);
    return Ok{};
}

const crypto::Certificate* PeerTable::find(const crypto::DeviceId& device) const {
    if (device == own_.device) return &own_;
    auto it = certificates_.find(device);
    return it == certificates_.end() ? nullptr : &it->second;
}

bool PeerTable::is_revoked(const crypto::DeviceId& device) const {
    return revoked_.contains(device);
}

std::string PeerTable::name_of(const crypto::DeviceId& device) const {
    if (const crypto::Certificate* cert = find(device)) return cert->name;
    if (const auto it = revoked_.find(device); it != revoked_.end()) return it->second;
    return "device-" + crypto::to_hex(std::span(device).first(kNameIdBytes));
}

std::optional<crypto::KxPublicKey> PeerTable::kx_key(const crypto::DeviceId& device) const {
    auto it = certificates_.find(device);
    if (it == certificates_.end()) return std::nullopt;
    return it->second.kx_key;
}

std::optional<crypto::SignPublicKey> PeerTable::sign_key(
    const crypto::DeviceId& device, std::span<const std::uint8_t> plaintext) const {
    if (auto it = certificates_.find(device); it != certificates_.end())
        return it->second.sign_key;
    if (revoked_.contains(device) || channel_of(plaintext) != Channel::discovery)
        return std::nullopt;
    Result<DiscoveryMessage> m = decode_discovery(plaintext);
    if (!m || m->kind != DiscoveryKind::beacon) return std::nullopt;
    Result<crypto::Certificate> cert = crypto::decode_certificate(m->beacon.certificate);
    if (!cert || cert->device != device || !acceptable(*cert)) return std::nullopt;
    return cert->sign_key;
}

membership::Signature PeerTable::sign(const membership::SignedRecordMessage& message) {
    membership::Signature signature{};
    crypto_sign_detached(signature.data(), nullptr, message.data(), message.size(),
                         sign_.secret_key.bytes().data());
    return signature;
}

bool PeerTable::verify(const membership::DeviceId& signer,
                       const membership::SignedRecordMessage& message,
                       const membership::Signature& signature) {
    const crypto::Certificate* cert = find(signer);
    if (cert == nullptr) return false;
    return crypto_sign_verify_detached(signature.data(), message.data(), message.size(),
                                       cert->sign_key.data()) == 0;
}

}  // namespace starling::runtime

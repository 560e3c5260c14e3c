#include "crypto/certificate.hpp"

#include <sodium.h>

#include <algorithm>
#include <array>
#include <utility>

#include "crypto/sodium.hpp"
#include "crypto/trust_wire.hpp"
#include "protocol/limits.hpp"

namespace starling::crypto {
namespace {

namespace tw = trust_wire;
namespace wire = starling::wire;

// Canonical bodies, all integers little-endian; each starts with its length-prefixed domain
// string, so a signature over one kind of record is never valid for another:
//   certificate  u8 16 "starling-cert-v1" | cluster 16 | device 16 | u8 role | sign_key 32 |
//                kx_key 32 | u64 not_before | u64 not_after | u64 serial | u8 len | name
//   revocation   u8 18 "starling-revoke-v1" | cluster 16 | device 16 | u64 revoked_at |
//                u8 len | name
//   key epoch    u8 18 "starling-netkey-v1" | cluster 16 | u32 epoch | key 32 |
//                u64 not_before | u64 not_after | u64 retire_older_at
constexpr std::string_view kCertificateDomain = "starling-cert-v1";
constexpr std::string_view kRevocationDomain = "starling-revoke-v1";
constexpr std::string_view kKeyEpochDomain = "starling-netkey-v1";

// Appends canonical fields to a body; the buffer is reserved once and wiped on request.
class BodyWriter {
  public:
    explicit BodyWriter(std::string_view domain) {
        bytes_.reserve(256);
        text(domain);
    }
    void raw(std::span<const std::uint8_t> b) { bytes_.insert(bytes_.end(), b.begin(), b.end()); }
    void u8(std::uint8_t v) { bytes_.push_back(v); }
    void le(std::uint64_t v, std::size_t width) {
        for (std::size_t i = 0; i < width; ++i)
            bytes_.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
    }
    void text(std::string_view s) {  // callers keep s within limits::kMaxNameBytes
        u8(static_cast<std::uint8_t>(s.size()));
        bytes_.insert(bytes_.end(), s.begin(), s.end());
    }
    std::vector<std::uint8_t> take() { return std::move(bytes_); }

  private:
    std::vector<std::uint8_t> bytes_;
};

std::vector<std::uint8_t> key_epoch_body(const KeyEpochAnnouncement& a, const ClusterId& cluster) {
    BodyWriter w(kKeyEpochDomain);
    w.raw(cluster);
    w.le(a.key.epoch, 4);
    w.raw(a.key.key.bytes());
    w.le(a.key.not_before, 8);
    w.le(a.key.not_after, 8);
    w.le(a.retire_older_at, 8);
    return w.take();
}

Signature sign_body(std::span<const std::uint8_t> body, const SignSecretKey& owner) {
    ensure_initialized();
    Signature signature{};
    crypto_sign_detached(signature.data(), nullptr, body.data(), body.size(), owner.bytes().data());
    return signature;
}

bool signature_holds(const Signature& signature, std::span<const std::uint8_t> body,
                     const SignPublicKey& owner) {
    ensure_initialized();
    return crypto_sign_verify_detached(signature.data(), body.data(), body.size(), owner.data()) ==
           0;
}

Status check_cluster(const ClusterId& found, const ClusterId& expected, const std::string& what) {
    if (equal_constant_time(found, expected)) return Ok{};
    return make_error(ErrorCode::invalid_argument,
                      what + " belongs to cluster " + to_hex(found) + ", not " + to_hex(expected));
}

Error bad_signature(const std::string& what) {
    return make_error(ErrorCode::corrupt, what +
                                              ": the owner's signature does not verify (forged, "
                                              "altered, or signed by another owner)");
}

std::string describe(std::string_view kind, const std::string& name) {
    return std::string(kind) + " '" + name + "'";
}

// One encoding per record: re-encoding what was decoded must give back the input bytes.
Status check_canonical(std::span<const std::uint8_t> input, const std::vector<std::uint8_t>& again,
                       std::string_view record) {
    if (std::equal(input.begin(), input.end(), again.begin(), again.end())) return Ok{};
    return tw::malformed(record, "not in canonical form (padding, field order or defaults differ)");
}

Status check_size(std::span<const std::uint8_t> bytes, std::size_t max, std::string_view record) {
    if (bytes.size() <= max) return Ok{};
    return make_error(ErrorCode::too_large, std::string(record) + ": " +
                                                std::to_string(bytes.size()) +
                                                " bytes, over the limit of " + std::to_string(max));
}

template <class Builder>
std::vector<std::uint8_t> finish(flatbuffers::FlatBufferBuilder& fbb, Builder root,
                                 const char* identifier) {
    fbb.FinishSizePrefixed(root, identifier);
    const auto span = fbb.GetBufferSpan();
    return {span.begin(), span.end()};
}

}  // namespace

const char* to_string(Role role) noexcept {
    return role == Role::observer ? "observer" : "trainer";
}

Status check_name(std::string_view name, std::string_view what) {
    const auto fail = [&](const std::string& why) {
        return make_error(ErrorCode::malformed, std::string(what) + ": " + why);
    };
    if (name.empty() || name.size() > limits::kMaxNameBytes)
        return fail(std::to_string(name.size()) + " bytes, expected 1.." +
                    std::to_string(limits::kMaxNameBytes));
    const auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
    if (!alnum(name.front())) return fail("must start with a-z or 0-9");
    for (std::size_t i = 0; i < name.size(); ++i) {
        const char c = name[i];
        if (!alnum(c) && c != '.' && c != '_' && c != '-')
            return fail("byte " + std::to_string(i) + " is not one of a-z 0-9 . _ -");
    }
    return Ok{};
}

std::vector<std::uint8_t> encode_certificate_body(const Certificate& cert) {
    BodyWriter w(kCertificateDomain);
    w.raw(cert.cluster);
    w.raw(cert.device);
    w.u8(static_cast<std::uint8_t>(cert.role));
    w.raw(cert.sign_key);
    w.raw(cert.kx_key);
    w.le(cert.not_before, 8);
    w.le(cert.not_after, 8);
    w.le(cert.serial, 8);
    w.text(std::string_view(cert.name).substr(0, limits::kMaxNameBytes));
    return w.take();
}

std::vector<std::uint8_t> encode_revocation_body(const Revocation& revocation) {
    BodyWriter w(kRevocationDomain);
    w.raw(revocation.cluster);
    w.raw(revocation.device);
    w.le(revocation.revoked_at, 8);
    w.text(std::string_view(revocation.name).substr(0, limits::kMaxNameBytes));
    return w.take();
}

void sign_certificate(Certificate& cert, const SignSecretKey& owner) {
    cert.signature = sign_body(encode_certificate_body(cert), owner);
}

void sign_revocation(Revocation& revocation, const SignSecretKey& owner) {
    revocation.signature = sign_body(encode_revocation_body(revocation), owner);
}

void sign_key_announcement(KeyEpochAnnouncement& announcement, const SignSecretKey& owner,
                           const ClusterId& cluster) {
    std::vector<std::uint8_t> body = key_epoch_body(announcement, cluster);
    announcement.signature = sign_body(body, owner);
    sodium_memzero(body.data(), body.size());
}

Status verify_certificate_signature(const Certificate& cert, const SignPublicKey& owner,
                                    const ClusterId& cluster) {
    if (Status s = check_name(cert.name, "certificate name"); !s) return s;
    const std::string what = describe("certificate", cert.name);
    if (Status s = check_cluster(cert.cluster, cluster, what); !s) return s;
    if (!signature_holds(cert.signature, encode_certificate_body(cert), owner))
        return bad_signature(what);
    if (cert.not_before > cert.not_after)
        return make_error(ErrorCode::malformed, what + ": not_before is after not_after");
    return Ok{};
}

Status verify_certificate(const Certificate& cert, const SignPublicKey& owner,
                          const ClusterId& cluster, std::uint64_t now_unix_seconds) {
    if (Status s = verify_certificate_signature(cert, owner, cluster); !s) return s;
    const std::string what = describe("certificate", cert.name);
    if (now_unix_seconds < cert.not_before)
        return make_error(ErrorCode::invalid_argument,
                          what + " is not valid before " + std::to_string(cert.not_before) +
                              " (unix seconds; now " + std::to_string(now_unix_seconds) + ")");
    if (now_unix_seconds > cert.not_after)
        return make_error(ErrorCode::invalid_argument,
                          what + " expired at " + std::to_string(cert.not_after) +
                              " (unix seconds; now " + std::to_string(now_unix_seconds) + ")");
    return Ok{};
}

Status verify_revocation(const Revocation& revocation, const SignPublicKey& owner,
                         const ClusterId& cluster) {
    if (Status s = check_name(revocation.name, "revocation name"); !s) return s;
    const std::string what = describe("revocation of", revocation.name);
    if (Status s = check_cluster(revocation.cluster, cluster, what); !s) return s;
    if (!signature_holds(revocation.signature, encode_revocation_body(revocation), owner))
        return bad_signature(what);
    return Ok{};
}

Status verify_key_announcement(const KeyEpochAnnouncement& announcement, const SignPublicKey& owner,
                               const ClusterId& cluster) {
    std::vector<std::uint8_t> body = key_epoch_body(announcement, cluster);
    const bool holds = signature_holds(announcement.signature, body, owner);
    sodium_memzero(body.data(), body.size());
    if (!holds)
        return bad_signature("announcement of network key epoch " +
                             std::to_string(announcement.key.epoch) + " for cluster " +
                             to_hex(cluster));
    return Ok{};
}

Status accept_key_announcement(NetworkKeyRing& ring, KeyEpochAnnouncement announcement,
                               const SignPublicKey& owner, const ClusterId& cluster) {
    if (Status s = verify_key_announcement(announcement, owner, cluster); !s) return s;
    const std::uint32_t epoch = announcement.key.epoch;
    if (Status s = ring.install(std::move(announcement.key)); !s) return s;
    ring.retire_older(epoch, announcement.retire_older_at);
    return Ok{};
}

std::vector<std::uint8_t> encode_certificate(const Certificate& cert) {
    flatbuffers::FlatBufferBuilder fbb(512);
    return finish(fbb, tw::build_certificate(fbb, cert), tw::kCertificateId);
}

Result<Certificate> decode_certificate(std::span<const std::uint8_t> bytes) {
    constexpr std::string_view kRecord = "certificate";
    if (Status s = check_size(bytes, limits::kMaxCertificateBytes, kRecord); !s) return s.error();
    const tw::AlignedBytes aligned(bytes);
    const auto root = tw::verified_root<wire::Certificate>(aligned.view(), tw::kCertificateId,
                                                           limits::kFlatbuffersMaxTables, kRecord);
    if (!root) return root.error();
    Result<Certificate> cert = tw::read_certificate(**root, kRecord);
    if (!cert) return cert;
    if (Status s = check_canonical(bytes, encode_certificate(*cert), kRecord); !s) return s.error();
    return cert;
}

std::vector<std::uint8_t> encode_revocation(const Revocation& revocation) {
    flatbuffers::FlatBufferBuilder fbb(256);
    const auto cluster = tw::bytes_field(fbb, revocation.cluster);
    const auto device = tw::bytes_field(fbb, revocation.device);
    const auto name = fbb.CreateString(revocation.name);
    const auto signature = tw::bytes_field(fbb, revocation.signature);
    const auto root =
        wire::CreateRevocation(fbb, cluster, device, name, revocation.revoked_at, signature);
    return finish(fbb, root, tw::kRevocationId);
}

Result<Revocation> decode_revocation(std::span<const std::uint8_t> bytes) {
    constexpr std::string_view kRecord = "revocation";
    if (Status s = check_size(bytes, limits::kMaxRevocationBytes, kRecord); !s) return s.error();
    const tw::AlignedBytes aligned(bytes);
    const auto root = tw::verified_root<wire::Revocation>(aligned.view(), tw::kRevocationId,
                                                          limits::kFlatbuffersMaxTables, kRecord);
    if (!root) return root.error();
    const wire::Revocation& table = **root;
    Revocation revocation;
    const std::string_view name(table.name()->c_str(), table.name()->size());
    if (Status s = check_name(name, "revocation name"); !s) return s.error();
    revocation.name = std::string(name);
    const std::string where = describe("revocation of", revocation.name);
    for (Status s : {tw::read_exact(table.cluster(), revocation.cluster, "cluster id", where),
                     tw::read_exact(table.device(), revocation.device, "device id", where),
                     tw::read_exact(table.signature(), revocation.signature, "signature", where)})
        if (!s) return s.error();
    revocation.revoked_at = table.revoked_at();
    if (Status s = check_canonical(bytes, encode_revocation(revocation), kRecord); !s)
        return s.error();
    return revocation;
}

std::vector<std::uint8_t> encode_key_announcement(const KeyEpochAnnouncement& announcement) {
    tw::WipingAllocator allocator;
    flatbuffers::FlatBufferBuilder fbb(256, &allocator);
    const auto key = tw::build_epoch(fbb, announcement.key);
    const auto signature = tw::bytes_field(fbb, announcement.signature);
    const auto root =
        wire::CreateKeyEpochAnnouncement(fbb, key, announcement.retire_older_at, signature);
    return finish(fbb, root, tw::kKeyAnnouncementId);
}

Result<KeyEpochAnnouncement> decode_key_announcement(std::span<const std::uint8_t> bytes) {
    constexpr std::string_view kRecord = "key-epoch announcement";
    if (Status s = check_size(bytes, limits::kMaxKeyAnnouncementBytes, kRecord); !s)
        return s.error();
    const tw::AlignedBytes aligned(bytes);
    const auto root = tw::verified_root<wire::KeyEpochAnnouncement>(
        aligned.view(), tw::kKeyAnnouncementId, limits::kFlatbuffersMaxTables, kRecord);
    if (!root) return root.error();
    Result<NetworkKeyEpoch> key = tw::read_epoch(*(*root)->key(), kRecord);
    if (!key) return key.error();
    KeyEpochAnnouncement announcement;
    announcement.key = std::move(*key);
    announcement.retire_older_at = (*root)->retire_older_at();
    if (Status s =
            tw::read_exact((*root)->signature(), announcement.signature, "signature", kRecord);
        !s)
        return s.error();
    std::vector<std::uint8_t> again = encode_key_announcement(announcement);
    const Status canonical = check_canonical(bytes, again, kRecord);
    sodium_memzero(again.data(), again.size());
    if (!canonical) return canonical.error();
    return announcement;
}

}  // namespace starling::crypto

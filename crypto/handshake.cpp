#include "crypto/handshake.hpp"

#include <algorithm>
#include <string>
#include <string_view>
#include <utility>

#include "protocol/limits.hpp"

namespace starling::crypto {
namespace {

constexpr std::string_view kPrologueTag = "starling-stream-v1";

// Message 1 carries only the initiator's ephemeral key: no payload, since nothing is encrypted yet.
constexpr std::size_t kFirstMessageBytes = noise::kDhBytes;

// The smallest message 2 and 3: keys and tags around an empty payload (which we then refuse).
constexpr std::size_t kMinSecondMessageBytes = 2 * noise::kDhBytes + 2 * noise::kTagBytes;
constexpr std::size_t kMinThirdMessageBytes = noise::kDhBytes + 2 * noise::kTagBytes;

// The largest certificate must fit message 2 (ephemeral, sealed static key, sealed payload).
static_assert(kMinSecondMessageBytes + limits::kMaxCertificateBytes <=
                  limits::kMaxHandshakeMessageBytes,
              "kMaxHandshakeMessageBytes must carry any valid certificate");

}  // namespace

std::vector<std::uint8_t> stream_prologue(const ClusterId& cluster) {
    std::vector<std::uint8_t> prologue(kPrologueTag.size() + cluster.size());
    const auto after_tag = std::copy(kPrologueTag.begin(), kPrologueTag.end(), prologue.begin());
    std::copy(cluster.begin(), cluster.end(), after_tag);
    return prologue;
}

Handshake::Handshake(noise::Role role, const KxKeyPair& static_key,
                     std::span<const std::uint8_t> certificate, TrustAnchor trust,
                     const KxKeyPair* ephemeral)
    : noise_(role, stream_prologue(trust.cluster), static_key, ephemeral),
      certificate_(certificate.begin(), certificate.end()),
      trust_(std::move(trust)) {}

Error Handshake::fail(Error error) {
    failed_ = true;
    error.message = "stream handshake: " + error.message;
    return error;
}

Result<std::vector<std::uint8_t>> Handshake::write_message() {
    if (failed_) return make_error(ErrorCode::invalid_argument, "stream handshake: already failed");
    if (!noise_.is_my_turn()) {
        return make_error(ErrorCode::invalid_argument, "stream handshake: not our turn to write");
    }
    // Message 1 goes out in the clear, so our certificate waits for message 2 or 3.
    const bool first = noise_.messages_done() == 0;
    const std::span<const std::uint8_t> payload =
        first ? std::span<const std::uint8_t>{} : std::span<const std::uint8_t>(certificate_);
    auto message = noise_.write_message(payload);
    if (!message) return fail(message.error());
    if (message->size() > limits::kMaxHandshakeMessageBytes) {
        return fail(
            make_error(ErrorCode::too_large, "our certificate makes a message over the cap"));
    }
    return message;
}

Status Handshake::read_message(std::span<const std::uint8_t> message,
                               std::uint64_t now_unix_seconds) {
    if (failed_) return make_error(ErrorCode::invalid_argument, "stream handshake: already failed");
    if (noise_.complete() || noise_.is_my_turn()) {
        return make_error(ErrorCode::invalid_argument, "stream handshake: not expecting a message");
    }
    // Size caps first, before any hashing or DH work.
    if (message.size() > limits::kMaxHandshakeMessageBytes) {
        return fail(make_error(ErrorCode::too_large, "message over kMaxHandshakeMessageBytes"));
    }
    const bool expecting_first = noise_.messages_done() == 0;
    if (expecting_first) {
        if (message.size() != kFirstMessageBytes) {
            return fail(make_error(ErrorCode::malformed, "message 1 must be exactly 32 bytes"));
        }
    } else {
        const std::size_t minimum = noise_.role() == noise::Role::initiator ? kMinSecondMessageBytes
                                                                            : kMinThirdMessageBytes;
        if (message.size() < minimum) {
            return fail(make_error(ErrorCode::truncated, "message too short"));
        }
    }
    auto payload = noise_.read_message(message);
    if (!payload) return fail(payload.error());
    if (expecting_first) return Ok{};  // 32 bytes: the ephemeral key and no payload
    return check_peer(*payload, now_unix_seconds);
}

Status Handshake::check_peer(std::span<const std::uint8_t> payload,
                             std::uint64_t now_unix_seconds) {
    auto cert = decode_certificate(payload);
    if (!cert) return fail(cert.error());
    if (Status s = verify_certificate(*cert, trust_.owner, trust_.cluster, now_unix_seconds); !s) {
        return fail(s.error());
    }
    const KxPublicKey* remote = noise_.remote_static();
    if (remote == nullptr || !equal_constant_time(*remote, cert->kx_key)) {
        return fail(make_error(ErrorCode::insecure,
                               "peer's Noise static key is not its certificate's kx_key"));
    }
    if (trust_.is_revoked && trust_.is_revoked(cert->device)) {
        return fail(
            make_error(ErrorCode::insecure, "peer device " + to_hex(cert->device) + " is revoked"));
    }
    peer_ = std::move(*cert);
    return Ok{};
}

Result<EstablishedSession> Handshake::finish() {
    if (!complete() || !peer_) {
        return make_error(ErrorCode::invalid_argument,
                          "stream handshake: finish before completion");
    }
    auto ciphers = noise_.split();
    if (!ciphers) return fail(ciphers.error());
    EstablishedSession session{std::move(*peer_), noise_.handshake_hash(), std::move(*ciphers)};
    peer_.reset();
    return session;
}

}  // namespace starling::crypto

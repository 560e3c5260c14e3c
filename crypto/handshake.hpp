#pragma once
// Starling's stream handshake: Noise XX whose static keys are vouched for by the owner's device
// certificates, so stream keys are only ever shared with a current, unrevoked device of this
// cluster. Sans-I/O: messages in and out as bytes, wall-clock time passed in.
//
//   initiator                                     responder
//   write_message()  -> e                     ->  read_message()      (exactly 32 bytes)
//   read_message()   <- e, ee, s, es, cert_R  <-  write_message()
//   write_message()  -> s, se, cert_I         ->  read_message()
//   finish()                                      finish()
// Each certificate travels encrypted (identity hiding) and is checked on arrival: the owner's
// signature, this cluster, its validity window at `now`, the peer's Noise static key equal to its
// kx_key, and the caller's revocation predicate. Rate-limit handshakes per source before
// creating a responder (crypto/rate_limit.hpp).

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <vector>

#include "crypto/certificate.hpp"
#include "crypto/keys.hpp"
#include "crypto/noise.hpp"
#include "protocol/result.hpp"

namespace starling::crypto {

// "starling-stream-v1" || cluster id: a handshake across versions or clusters fails at message 2.
std::vector<std::uint8_t> stream_prologue(const ClusterId& cluster);

// What the local device trusts: the owner's key for this cluster, and who has been revoked.
struct TrustAnchor {
    ClusterId cluster{};
    SignPublicKey owner{};
    std::function<bool(const DeviceId&)> is_revoked;  // true: refuse; empty: nobody revoked
};

// A finished handshake: the verified peer and the keys for both directions.
struct EstablishedSession {
    Certificate peer;
    noise::HandshakeHash handshake_hash{};  // the same on both sides; binds the transcript
    noise::TransportCiphers ciphers;        // oriented: `send` is ours to seal with
};

class Handshake {
public:
    // `certificate` is our own encoded certificate; its kx_key must be `static_key`'s public key.
    // `ephemeral` fixes the ephemeral key pair (fuzzing and tests only).
    Handshake(noise::Role role, const KxKeyPair& static_key,
              std::span<const std::uint8_t> certificate, TrustAnchor trust,
              const KxKeyPair* ephemeral = nullptr);

    bool is_my_turn() const noexcept { return !failed_ && noise_.is_my_turn(); }
    bool complete() const noexcept { return !failed_ && noise_.complete(); }
    bool failed() const noexcept { return failed_; }

    // Our next message. Errors: invalid_argument (out of turn, after a failure).
    [[nodiscard]] Result<std::vector<std::uint8_t>> write_message();
    // The peer's next message. Errors: too_large, truncated, malformed (size caps, payloads),
    // corrupt (authentication: wrong cluster, tampering), insecure (key and certificate
    // disagree, revoked), or the certificate checks' own errors (expired, foreign signer).
    [[nodiscard]] Status read_message(std::span<const std::uint8_t> message,
                                      std::uint64_t now_unix_seconds);
    // The session, once complete(). Only once.
    [[nodiscard]] Result<EstablishedSession> finish();

private:
    [[nodiscard]] Status check_peer(std::span<const std::uint8_t> payload,
                                    std::uint64_t now_unix_seconds);
    Error fail(Error error);

    noise::HandshakeState noise_;
    std::vector<std::uint8_t> certificate_;
    TrustAnchor trust_;
    std::optional<Certificate> peer_;
    bool failed_ = false;
};

}  // namespace starling::crypto

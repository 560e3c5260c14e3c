#pragma once
// Noise_XX_25519_ChaChaPoly_BLAKE2b (Noise spec revision 34), sans-I/O: mutual authentication and
// forward-secret session keys from libsodium primitives, checked against the published vectors.
//
// Only the XX pattern is implemented:   -> e   <- e, ee, s, es   -> s, se
// Errors are values; after any failed read or write the handshake is dead and must be discarded.

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "crypto/keys.hpp"
#include "protocol/result.hpp"

namespace starling::crypto::noise {

inline constexpr std::size_t kHashBytes = 64;           // BLAKE2b HASHLEN
inline constexpr std::size_t kHashBlockBytes = 128;     // BLAKE2b BLOCKLEN (HMAC)
inline constexpr std::size_t kKeyBytes = 32;            // ChaChaPoly key
inline constexpr std::size_t kDhBytes = 32;             // X25519 DHLEN
inline constexpr std::size_t kTagBytes = 16;            // Poly1305
inline constexpr std::size_t kMaxMessageBytes = 65535;  // the spec's cap on any Noise message
inline constexpr std::uint64_t kMaxNonce = ~std::uint64_t{0};  // reserved for Rekey()

using HandshakeHash = std::array<std::uint8_t, kHashBytes>;

enum class Role : std::uint8_t { initiator, responder };

// A ChaChaPoly key and its 64-bit counter nonce (4 zero bytes || u64 little-endian on the wire).
// Empty until given a key; an empty CipherState passes plaintext through, as the spec says.
class CipherState {
public:
    CipherState() = default;
    explicit CipherState(std::span<const std::uint8_t, kKeyBytes> key);

    // InitializeKey(): a new key, counter back to zero.
    void initialize_key(std::span<const std::uint8_t, kKeyBytes> key) noexcept;

    bool has_key() const noexcept { return has_key_; }
    std::uint64_t nonce() const noexcept { return nonce_; }

    // Seals `plaintext` into `out` (exactly plaintext.size() + kTagBytes bytes; may alias
    // plaintext's first bytes) under the next nonce. Fails only when the nonces are spent.
    [[nodiscard]] Status encrypt_with_ad(std::span<const std::uint8_t> ad,
                                         std::span<const std::uint8_t> plaintext,
                                         std::span<std::uint8_t> out);
    // Opens `ciphertext` into `out` (ciphertext.size() - kTagBytes bytes). On an authentication
    // failure nothing is released and the nonce does not advance.
    [[nodiscard]] Status decrypt_with_ad(std::span<const std::uint8_t> ad,
                                         std::span<const std::uint8_t> ciphertext,
                                         std::span<std::uint8_t> out);
    // Noise Rekey(): k = first 32 bytes of ENCRYPT(k, 2^64-1, "", 32 zero bytes); nonce kept.
    void rekey();

private:
    SymmetricKey key_;
    std::uint64_t nonce_ = 0;
    bool has_key_ = false;
};

// The two transport directions after Split(), already oriented for the local role.
struct TransportCiphers {
    CipherState send;
    CipherState receive;
};

// HMAC-BLAKE2b and HKDF exactly as the spec defines them (section 4.3); exposed for tests.
void hmac_blake2b(std::span<const std::uint8_t> key, std::span<const std::uint8_t> data,
                  std::span<std::uint8_t, kHashBytes> out) noexcept;
void hkdf2(std::span<const std::uint8_t, kHashBytes> chaining_key,
           std::span<const std::uint8_t> input_key_material,
           std::span<std::uint8_t, kHashBytes> out1, std::span<std::uint8_t, kHashBytes> out2);

// One side of an XX handshake. `ephemeral` injects a fixed ephemeral key pair (test vectors and
// fuzzing only); without it a fresh one is drawn when the first "e" token is written.
class HandshakeState {
public:
    HandshakeState(Role role, std::span<const std::uint8_t> prologue, const KxKeyPair& local_static,
                   const KxKeyPair* ephemeral = nullptr);
    HandshakeState(HandshakeState&&) noexcept = default;
    HandshakeState& operator=(HandshakeState&&) noexcept = default;

    Role role() const noexcept { return role_; }
    bool is_my_turn() const noexcept;  // the next step is write_message()
    bool complete() const noexcept { return step_ == kSteps; }
    int messages_done() const noexcept { return step_; }  // 0..3, both directions counted
    bool failed() const noexcept { return failed_; }

    // The next handshake message, carrying `payload` (encrypted from message 2 on).
    [[nodiscard]] Result<std::vector<std::uint8_t>> write_message(
        std::span<const std::uint8_t> payload);
    // Processes the peer's next message and returns its payload.
    [[nodiscard]] Result<std::vector<std::uint8_t>> read_message(
        std::span<const std::uint8_t> message);

    // The peer's static key, once its "s" token has been read.
    const KxPublicKey* remote_static() const noexcept {
        return has_remote_static_ ? &rs_ : nullptr;
    }
    // h: binds the whole transcript; final once complete().
    const HandshakeHash& handshake_hash() const noexcept { return h_; }

    // Split(): the transport ciphers. Only once, and only after complete().
    [[nodiscard]] Result<TransportCiphers> split();

private:
    static constexpr int kSteps = 3;

    void mix_hash(std::span<const std::uint8_t> data);
    void mix_key(std::span<const std::uint8_t> input_key_material);
    std::span<const std::uint8_t, kDhBytes> static_secret() const noexcept;
    std::span<const std::uint8_t, kDhBytes> ephemeral_secret() const noexcept;
    [[nodiscard]] Status mix_dh(std::span<const std::uint8_t, kDhBytes> local,
                                const KxPublicKey& remote);
    [[nodiscard]] Status encrypt_and_hash(std::span<const std::uint8_t> plaintext,
                                          std::vector<std::uint8_t>& out);
    [[nodiscard]] Result<std::vector<std::uint8_t>> decrypt_and_hash(
        std::span<const std::uint8_t> ciphertext);
    Error fail(ErrorCode code, const char* what);

    Role role_;
    int step_ = 0;  // messages processed so far: 0..3
    bool failed_ = false;
    bool split_done_ = false;
    HandshakeHash h_{};
    Secret<kHashBytes> ck_;
    CipherState cipher_;
    // Our static then ephemeral X25519 secrets, in one locked block: each Secret costs an
    // mmap/mlock/mprotect round (~40 us), a quarter of a handshake if every key had its own.
    Secret<2 * kDhBytes> local_secrets_;
    KxPublicKey s_public_{};
    KxPublicKey e_public_{};
    bool has_ephemeral_ = false;
    KxPublicKey rs_{};
    KxPublicKey re_{};
    bool has_remote_static_ = false;
};

}  // namespace starling::crypto::noise

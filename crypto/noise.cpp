#include "crypto/noise.hpp"

#include <sodium.h>

#include <algorithm>
#include <cassert>
#include <cstring>
#include <string>
#include <string_view>

#include "crypto/sodium.hpp"

namespace starling::crypto::noise {
namespace {

constexpr std::string_view kProtocolName = "Noise_XX_25519_ChaChaPoly_BLAKE2b";
static_assert(kProtocolName.size() <= kHashBytes, "a short name is padded, not hashed");
static_assert(kKeyBytes == crypto_aead_chacha20poly1305_ietf_KEYBYTES);
static_assert(kTagBytes == crypto_aead_chacha20poly1305_ietf_ABYTES);
static_assert(kHashBytes == crypto_generichash_blake2b_BYTES_MAX);
static_assert(kDhBytes == crypto_scalarmult_BYTES);

using Nonce = std::array<std::uint8_t, crypto_aead_chacha20poly1305_ietf_NPUBBYTES>;

// ChaChaPoly's 96-bit nonce: 32 zero bits, then the counter little-endian.
Nonce encode_nonce(std::uint64_t n) noexcept {
    Nonce nonce{};
    for (std::size_t i = 0; i < 8; ++i) nonce[4 + i] = static_cast<std::uint8_t>(n >> (8 * i));
    return nonce;
}

// Wipes a stack buffer of derived key material when the scope ends.
template <std::size_t N>
struct Scratch {
    std::array<std::uint8_t, N> bytes{};
    Scratch() = default;
    Scratch(const Scratch&) = delete;
    Scratch& operator=(const Scratch&) = delete;
    ~Scratch() { sodium_memzero(bytes.data(), bytes.size()); }
};

}  // namespace

// ---- CipherState ----

CipherState::CipherState(std::span<const std::uint8_t, kKeyBytes> key) {
    initialize_key(key);
}

void CipherState::initialize_key(std::span<const std::uint8_t, kKeyBytes> key) noexcept {
    std::memcpy(key_.bytes().data(), key.data(), kKeyBytes);
    nonce_ = 0;
    has_key_ = true;
}

Status CipherState::encrypt_with_ad(std::span<const std::uint8_t> ad,
                                    std::span<const std::uint8_t> plaintext,
                                    std::span<std::uint8_t> out) {
    assert(out.size() == plaintext.size() + (has_key_ ? kTagBytes : 0));
    if (!has_key_) {
        if (!plaintext.empty()) std::memmove(out.data(), plaintext.data(), plaintext.size());
        return Ok{};
    }
    if (nonce_ == kMaxNonce) {
        return make_error(ErrorCode::invalid_argument, "noise: cipher nonces exhausted");
    }
    const Nonce nonce = encode_nonce(nonce_);
    unsigned long long written = 0;
    crypto_aead_chacha20poly1305_ietf_encrypt(out.data(), &written, plaintext.data(),
                                              plaintext.size(), ad.data(), ad.size(), nullptr,
                                              nonce.data(), key_.bytes().data());
    ++nonce_;
    return Ok{};
}

Status CipherState::decrypt_with_ad(std::span<const std::uint8_t> ad,
                                    std::span<const std::uint8_t> ciphertext,
                                    std::span<std::uint8_t> out) {
    if (!has_key_) {
        assert(out.size() == ciphertext.size());
        if (!ciphertext.empty()) std::memmove(out.data(), ciphertext.data(), ciphertext.size());
        return Ok{};
    }
    if (ciphertext.size() < kTagBytes) {
        return make_error(ErrorCode::truncated, "noise: ciphertext shorter than its tag");
    }
    assert(out.size() == ciphertext.size() - kTagBytes);
    if (nonce_ == kMaxNonce) {
        return make_error(ErrorCode::invalid_argument, "noise: cipher nonces exhausted");
    }
    const Nonce nonce = encode_nonce(nonce_);
    unsigned long long written = 0;
    // libsodium checks the tag before it decrypts: no unauthenticated byte reaches `out`.
    if (crypto_aead_chacha20poly1305_ietf_decrypt(out.data(), &written, nullptr, ciphertext.data(),
                                                  ciphertext.size(), ad.data(), ad.size(),
                                                  nonce.data(), key_.bytes().data()) != 0) {
        return make_error(ErrorCode::corrupt, "noise: authentication failed");
    }
    ++nonce_;
    return Ok{};
}

void CipherState::rekey() {
    assert(has_key_);
    const Nonce nonce = encode_nonce(kMaxNonce);
    const std::array<std::uint8_t, kKeyBytes> zeros{};
    Scratch<kKeyBytes + kTagBytes> sealed;
    unsigned long long written = 0;
    crypto_aead_chacha20poly1305_ietf_encrypt(sealed.bytes.data(), &written, zeros.data(),
                                              zeros.size(), nullptr, 0, nullptr, nonce.data(),
                                              key_.bytes().data());
    std::memcpy(key_.bytes().data(), sealed.bytes.data(), kKeyBytes);
}

// ---- HMAC and HKDF (spec section 4.3) ----

void hmac_blake2b(std::span<const std::uint8_t> key, std::span<const std::uint8_t> data,
                  std::span<std::uint8_t, kHashBytes> out) noexcept {
    // Noise keys are HASHLEN bytes, never longer than a block, so they are only zero-padded.
    assert(key.size() <= kHashBlockBytes);
    Scratch<kHashBlockBytes> pad;
    std::copy(key.begin(), key.end(), pad.bytes.begin());
    for (auto& b : pad.bytes) b ^= 0x36;

    Scratch<kHashBytes> inner;
    crypto_generichash_blake2b_state state;
    crypto_generichash_blake2b_init(&state, nullptr, 0, kHashBytes);
    crypto_generichash_blake2b_update(&state, pad.bytes.data(), pad.bytes.size());
    crypto_generichash_blake2b_update(&state, data.data(), data.size());
    crypto_generichash_blake2b_final(&state, inner.bytes.data(), kHashBytes);

    for (auto& b : pad.bytes) b ^= 0x36 ^ 0x5c;  // ipad -> opad
    crypto_generichash_blake2b_init(&state, nullptr, 0, kHashBytes);
    crypto_generichash_blake2b_update(&state, pad.bytes.data(), pad.bytes.size());
    crypto_generichash_blake2b_update(&state, inner.bytes.data(), kHashBytes);
    crypto_generichash_blake2b_final(&state, out.data(), kHashBytes);
    sodium_memzero(&state, sizeof state);
}

void hkdf2(std::span<const std::uint8_t, kHashBytes> chaining_key,
           std::span<const std::uint8_t> input_key_material,
           std::span<std::uint8_t, kHashBytes> out1, std::span<std::uint8_t, kHashBytes> out2) {
    Scratch<kHashBytes> temp_key;
    hmac_blake2b(chaining_key, input_key_material, temp_key.bytes);
    const std::uint8_t one = 0x01;
    hmac_blake2b(temp_key.bytes, std::span(&one, 1), out1);
    Scratch<kHashBytes + 1> second;  // output1 || 0x02
    std::copy(out1.begin(), out1.end(), second.bytes.begin());
    second.bytes[kHashBytes] = 0x02;
    hmac_blake2b(temp_key.bytes, second.bytes, out2);
}

// ---- HandshakeState ----

HandshakeState::HandshakeState(Role role, std::span<const std::uint8_t> prologue,
                               const KxKeyPair& local_static, const KxKeyPair* ephemeral)
    : role_(role) {
    ensure_initialized();
    // InitializeSymmetric: a name of at most HASHLEN bytes is zero-padded, not hashed.
    std::copy(kProtocolName.begin(), kProtocolName.end(), h_.begin());
    std::copy(h_.begin(), h_.end(), ck_.bytes().begin());
    mix_hash(prologue);
    s_public_ = local_static.public_key;
    std::copy_n(local_static.secret_key.bytes().begin(), kDhBytes, local_secrets_.bytes().begin());
    if (ephemeral != nullptr) {
        e_public_ = ephemeral->public_key;
        std::copy_n(ephemeral->secret_key.bytes().begin(), kDhBytes,
                    local_secrets_.bytes().begin() + kDhBytes);
        has_ephemeral_ = true;
    }
}

bool HandshakeState::is_my_turn() const noexcept {
    if (failed_ || complete()) return false;
    const bool initiator_turn = step_ % 2 == 0;  // messages 1 and 3 go initiator -> responder
    return initiator_turn == (role_ == Role::initiator);
}

Error HandshakeState::fail(ErrorCode code, const char* what) {
    failed_ = true;
    return make_error(code, std::string("noise handshake: ") + what);
}

void HandshakeState::mix_hash(std::span<const std::uint8_t> data) {
    crypto_generichash_blake2b_state state;
    crypto_generichash_blake2b_init(&state, nullptr, 0, kHashBytes);
    crypto_generichash_blake2b_update(&state, h_.data(), h_.size());
    crypto_generichash_blake2b_update(&state, data.data(), data.size());
    crypto_generichash_blake2b_final(&state, h_.data(), kHashBytes);
}

void HandshakeState::mix_key(std::span<const std::uint8_t> input_key_material) {
    Scratch<kHashBytes> next_ck;
    Scratch<kHashBytes> temp_k;
    hkdf2(ck_.bytes(), input_key_material, next_ck.bytes, temp_k.bytes);
    std::copy(next_ck.bytes.begin(), next_ck.bytes.end(), ck_.bytes().begin());
    // HASHLEN 64 > 32: the cipher key is the first 32 bytes.
    cipher_.initialize_key(
        std::span<const std::uint8_t, kKeyBytes>(temp_k.bytes.data(), kKeyBytes));
}

std::span<const std::uint8_t, kDhBytes> HandshakeState::static_secret() const noexcept {
    return local_secrets_.bytes().first<kDhBytes>();
}

std::span<const std::uint8_t, kDhBytes> HandshakeState::ephemeral_secret() const noexcept {
    return local_secrets_.bytes().last<kDhBytes>();
}

Status HandshakeState::mix_dh(std::span<const std::uint8_t, kDhBytes> local,
                              const KxPublicKey& remote) {
    Scratch<kDhBytes> shared;
    // libsodium refuses an all-zero result (a low-order remote point): the peer is not honest.
    if (crypto_scalarmult(shared.bytes.data(), local.data(), remote.data()) != 0) {
        return fail(ErrorCode::corrupt, "peer key is a low-order point");
    }
    mix_key(shared.bytes);
    return Ok{};
}

Status HandshakeState::encrypt_and_hash(std::span<const std::uint8_t> plaintext,
                                        std::vector<std::uint8_t>& out) {
    const std::size_t start = out.size();
    out.resize(start + plaintext.size() + (cipher_.has_key() ? kTagBytes : 0));
    const std::span<std::uint8_t> sealed(out.data() + start, out.size() - start);
    if (Status s = cipher_.encrypt_with_ad(h_, plaintext, sealed); !s) {
        return fail(s.error().code, "cipher nonces exhausted");
    }
    mix_hash(sealed);
    return Ok{};
}

Result<std::vector<std::uint8_t>> HandshakeState::decrypt_and_hash(
    std::span<const std::uint8_t> ciphertext) {
    const std::size_t tag = cipher_.has_key() ? kTagBytes : 0;
    if (ciphertext.size() < tag) return fail(ErrorCode::truncated, "message too short");
    std::vector<std::uint8_t> plaintext(ciphertext.size() - tag);
    if (Status s = cipher_.decrypt_with_ad(h_, ciphertext, plaintext); !s) {
        return fail(s.error().code, "authentication failed");
    }
    mix_hash(ciphertext);
    return plaintext;
}

Result<std::vector<std::uint8_t>> HandshakeState::write_message(
    std::span<const std::uint8_t> payload) {
    if (failed_) return make_error(ErrorCode::invalid_argument, "noise handshake: already failed");
    if (!is_my_turn()) {
        return make_error(ErrorCode::invalid_argument, "noise handshake: not our turn");
    }

    std::vector<std::uint8_t> message;
    message.reserve(kDhBytes + kDhBytes + kTagBytes + payload.size() + kTagBytes);
    const auto write_e = [&] {
        if (!has_ephemeral_) {
            const auto secret = local_secrets_.bytes().last<kDhBytes>();
            random_bytes(secret);
            crypto_scalarmult_base(e_public_.data(), secret.data());
            has_ephemeral_ = true;
        }
        message.insert(message.end(), e_public_.begin(), e_public_.end());
        mix_hash(e_public_);
    };
    Status status = Ok{};
    switch (step_) {
        case 0:  // -> e
            write_e();
            break;
        case 1:  // <- e, ee, s, es
            write_e();
            status = mix_dh(ephemeral_secret(), re_);
            if (status) status = encrypt_and_hash(s_public_, message);
            if (status) status = mix_dh(static_secret(), re_);
            break;
        default:  // -> s, se
            status = encrypt_and_hash(s_public_, message);
            if (status) status = mix_dh(static_secret(), re_);
            break;
    }
    if (status) status = encrypt_and_hash(payload, message);
    if (!status) return status.error();
    if (message.size() > kMaxMessageBytes) {
        return fail(ErrorCode::too_large, "message over 65535 bytes");
    }
    ++step_;
    return message;
}

Result<std::vector<std::uint8_t>> HandshakeState::read_message(
    std::span<const std::uint8_t> message) {
    if (failed_) return make_error(ErrorCode::invalid_argument, "noise handshake: already failed");
    if (complete() || is_my_turn()) {
        return make_error(ErrorCode::invalid_argument, "noise handshake: not expecting a message");
    }
    if (message.size() > kMaxMessageBytes) {
        return fail(ErrorCode::too_large, "message over 65535 bytes");
    }

    std::span<const std::uint8_t> rest = message;
    const auto read_e = [&]() -> Status {
        if (rest.size() < kDhBytes) return fail(ErrorCode::truncated, "message too short for e");
        std::copy_n(rest.begin(), kDhBytes, re_.begin());
        rest = rest.subspan(kDhBytes);
        mix_hash(re_);
        return Ok{};
    };
    const auto read_s = [&]() -> Status {
        const std::size_t sealed = kDhBytes + (cipher_.has_key() ? kTagBytes : 0);
        if (rest.size() < sealed) return fail(ErrorCode::truncated, "message too short for s");
        auto key = decrypt_and_hash(rest.first(sealed));
        if (!key) return key.error();
        std::copy_n(key->begin(), kDhBytes, rs_.begin());
        has_remote_static_ = true;
        rest = rest.subspan(sealed);
        return Ok{};
    };
    Status status = Ok{};
    switch (step_) {
        case 0:  // -> e
            status = read_e();
            break;
        case 1:  // <- e, ee, s, es
            status = read_e();
            if (status) status = mix_dh(ephemeral_secret(), re_);
            if (status) status = read_s();
            if (status) status = mix_dh(ephemeral_secret(), rs_);
            break;
        default:  // -> s, se
            status = read_s();
            if (status) status = mix_dh(ephemeral_secret(), rs_);
            break;
    }
    if (!status) return status.error();
    auto payload = decrypt_and_hash(rest);
    if (!payload) return payload.error();
    ++step_;
    return payload;
}

Result<TransportCiphers> HandshakeState::split() {
    if (!complete() || failed_ || split_done_) {
        return make_error(ErrorCode::invalid_argument, "noise handshake: split before completion");
    }
    split_done_ = true;
    Scratch<kHashBytes> k1;
    Scratch<kHashBytes> k2;
    hkdf2(ck_.bytes(), {}, k1.bytes, k2.bytes);
    // Nothing more may be derived from ck, and the ephemeral secret must not outlive the handshake.
    sodium_memzero(ck_.bytes().data(), kHashBytes);
    sodium_memzero(local_secrets_.bytes().data(), local_secrets_.size());
    // The handshake's CipherState (its locked key block) becomes one direction: one Secret fewer.
    CipherState initiator_to_responder = std::move(cipher_);
    initiator_to_responder.initialize_key(std::span(k1.bytes).first<kKeyBytes>());
    CipherState responder_to_initiator(std::span(k2.bytes).first<kKeyBytes>());
    if (role_ == Role::initiator) {
        return TransportCiphers{std::move(initiator_to_responder),
                                std::move(responder_to_initiator)};
    }
    return TransportCiphers{std::move(responder_to_initiator), std::move(initiator_to_responder)};
}

}  // namespace starling::crypto::noise

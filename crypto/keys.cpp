#include "crypto/keys.hpp"

#include <sodium.h>

#include <new>
#include <utility>

#include "crypto/sodium.hpp"

namespace starling::crypto {

template <std::size_t N>
Secret<N>::Secret() {
    ensure_initialized();
    void* p = sodium_malloc(N);
    if (p == nullptr) throw std::bad_alloc();  // start-up failure, not a network condition
    data_ = static_cast<std::array<std::uint8_t, N>*>(p);
    sodium_memzero(data_->data(), N);
}

template <std::size_t N>
Secret<N>::~Secret() {
    if (data_ != nullptr) sodium_free(data_);  // wipes before unmapping
}

template <std::size_t N>
Secret<N>::Secret(Secret&& other) noexcept : data_(std::exchange(other.data_, nullptr)) {}

template <std::size_t N>
Secret<N>& Secret<N>::operator=(Secret&& other) noexcept {
    if (this != &other) {
        if (data_ != nullptr) sodium_free(data_);
        data_ = std::exchange(other.data_, nullptr);
    }
    return *this;
}

template class Secret<kSignSecretKeyBytes>;
template class Secret<kKxSecretKeyBytes>;  // == kSymmetricKeyBytes

SignKeyPair SignKeyPair::generate() {
    SignKeyPair pair;
    crypto_sign_keypair(pair.public_key.data(), pair.secret_key.bytes().data());
    return pair;
}

KxKeyPair KxKeyPair::generate() {
    KxKeyPair pair;
    random_bytes(pair.secret_key.bytes());
    crypto_scalarmult_base(pair.public_key.data(), pair.secret_key.bytes().data());
    return pair;
}

void random_bytes(std::span<std::uint8_t> out) {
    ensure_initialized();
    randombytes_buf(out.data(), out.size());
}

bool equal_constant_time(std::span<const std::uint8_t> a,
                         std::span<const std::uint8_t> b) noexcept {
    return a.size() == b.size() && sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string to_hex(std::span<const std::uint8_t> bytes) {
    std::string out(bytes.size() * 2 + 1, '\0');
    sodium_bin2hex(out.data(), out.size(), bytes.data(), bytes.size());
    out.pop_back();
    return out;
}

std::optional<std::vector<std::uint8_t>> from_hex(std::string_view hex) {
    if (hex.size() % 2 != 0) return std::nullopt;
    if (hex.empty()) return std::vector<std::uint8_t>{};  // libsodium wants a buffer
    std::vector<std::uint8_t> bytes(hex.size() / 2);
    std::size_t written = 0;
    const char* end = nullptr;
    if (sodium_hex2bin(bytes.data(), bytes.size(), hex.data(), hex.size(), nullptr, &written,
                       &end) != 0 ||
        written != bytes.size() || end != hex.data() + hex.size())
        return std::nullopt;
    return bytes;
}

}  // namespace starling::crypto

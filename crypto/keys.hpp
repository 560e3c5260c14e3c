#pragma once
// The key material of a Starling cluster, as fixed-size types shaped like libsodium's API:
// sizes are constants, secrets live in locked memory that is wiped when they die.

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace starling::crypto {

inline constexpr std::size_t kSignPublicKeyBytes = 32;  // Ed25519
inline constexpr std::size_t kSignSecretKeyBytes = 64;  // Ed25519 (seed || public key)
inline constexpr std::size_t kSignatureBytes = 64;      // Ed25519
inline constexpr std::size_t kKxPublicKeyBytes = 32;    // X25519
inline constexpr std::size_t kKxSecretKeyBytes = 32;    // X25519
inline constexpr std::size_t kSymmetricKeyBytes = 32;   // ChaCha20-Poly1305 / XChaCha20-Poly1305
inline constexpr std::size_t kDeviceIdBytes = 16;
inline constexpr std::size_t kClusterIdBytes = 16;

using DeviceId = std::array<std::uint8_t, kDeviceIdBytes>;
using ClusterId = std::array<std::uint8_t, kClusterIdBytes>;
using SignPublicKey = std::array<std::uint8_t, kSignPublicKeyBytes>;
using KxPublicKey = std::array<std::uint8_t, kKxPublicKeyBytes>;
using Signature = std::array<std::uint8_t, kSignatureBytes>;

// N secret bytes in memory that is locked (never swapped) and wiped on destruction. Movable,
// never copyable: a secret exists in one place.
template <std::size_t N>
class Secret {
public:
    Secret();
    ~Secret();
    Secret(Secret&& other) noexcept;
    Secret& operator=(Secret&& other) noexcept;
    Secret(const Secret&) = delete;
    Secret& operator=(const Secret&) = delete;

    static constexpr std::size_t size() noexcept { return N; }
    std::span<std::uint8_t, N> bytes() noexcept { return std::span<std::uint8_t, N>(*data_); }
    std::span<const std::uint8_t, N> bytes() const noexcept {
        return std::span<const std::uint8_t, N>(*data_);
    }

private:
    std::array<std::uint8_t, N>* data_;  // sodium_malloc'd: guard pages, mlock, wiped on free
};

using SignSecretKey = Secret<kSignSecretKeyBytes>;
using KxSecretKey = Secret<kKxSecretKeyBytes>;
using SymmetricKey = Secret<kSymmetricKeyBytes>;

struct SignKeyPair {
    SignPublicKey public_key{};
    SignSecretKey secret_key;
    static SignKeyPair generate();
};

struct KxKeyPair {
    KxPublicKey public_key{};
    KxSecretKey secret_key;
    static KxKeyPair generate();
};

// Fills a fixed-size array with random bytes (ids, nonces).
void random_bytes(std::span<std::uint8_t> out);

// Constant-time comparison of equal-length byte strings.
[[nodiscard]] bool equal_constant_time(std::span<const std::uint8_t> a,
                                       std::span<const std::uint8_t> b) noexcept;

// Lower-case hex, for logs and file names (device ids, key fingerprints).
std::string to_hex(std::span<const std::uint8_t> bytes);
// The bytes of a hex string (either case, nothing else); nullopt for anything else.
[[nodiscard]] std::optional<std::vector<std::uint8_t>> from_hex(std::string_view hex);

}  // namespace starling::crypto

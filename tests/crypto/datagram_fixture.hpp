#pragma once
// Devices with fixed keys in one cluster, for the datagram tests: every byte is reproducible, so
// known answers can be pinned (tools/scripts/datagram_vectors.py recomputes them independently).

#include <sodium.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "crypto/datagram.hpp"

namespace starling::test {

template <std::size_t N>
std::array<std::uint8_t, N> counting_bytes(std::uint8_t first) {
    std::array<std::uint8_t, N> out{};
    for (std::size_t i = 0; i < N; ++i) out[i] = static_cast<std::uint8_t>(first + i);
    return out;
}

inline crypto::SymmetricKey counting_key(std::uint8_t first) {
    crypto::SymmetricKey key;
    const auto bytes = counting_bytes<crypto::kSymmetricKeyBytes>(first);
    std::copy(bytes.begin(), bytes.end(), key.bytes().begin());
    return key;
}

inline std::vector<std::uint8_t> bytes_of(std::string_view text) {
    return {text.begin(), text.end()};
}

// One device: id, X25519 and Ed25519 keys all derived from `first`.
struct TestDevice {
    crypto::DeviceId id{};
    crypto::KxKeyPair kx;
    crypto::SignKeyPair sign;

    explicit TestDevice(std::uint8_t first) : id(counting_bytes<crypto::kDeviceIdBytes>(first)) {
        const auto kx_secret = counting_bytes<crypto::kKxSecretKeyBytes>(first + 1);
        std::copy(kx_secret.begin(), kx_secret.end(), kx.secret_key.bytes().begin());
        crypto_scalarmult_base(kx.public_key.data(), kx.secret_key.bytes().data());
        const auto seed = counting_bytes<crypto_sign_SEEDBYTES>(first + 2);
        crypto_sign_seed_keypair(sign.public_key.data(), sign.secret_key.bytes().data(),
                                 seed.data());
    }
};

inline constexpr std::uint32_t kEpoch = 7;
inline constexpr std::uint64_t kNow = 1700000000;  // unix seconds; EpochKeyList ignores time
inline constexpr std::uint64_t kCounter = (std::uint64_t{3} << 32) | 5;  // boot 3, seq 5

// A cluster whose members all know each other and hold the key of kEpoch. Each device opens
// with its own DatagramCrypto (own replay windows), sharing the keyring and peer table.
struct TestCluster {
    crypto::ClusterId cluster = counting_bytes<crypto::kClusterIdBytes>(0xc0);
    crypto::EpochKeyList epochs;
    crypto::PeerList peers;
    std::vector<std::unique_ptr<TestDevice>> devices;

    TestCluster() { epochs.add(kEpoch, counting_key(0x20)); }

    TestDevice& add_device(std::uint8_t first) {
        devices.push_back(std::make_unique<TestDevice>(first));
        auto& device = *devices.back();
        peers.add(device.id, device.sign.public_key, device.kx.public_key);
        return device;
    }

    crypto::LocalDevice local(const TestDevice& device) const {
        return {cluster, device.id, &device.kx, &device.sign};
    }

    std::unique_ptr<crypto::DatagramCrypto> crypto_for(const TestDevice& device) const {
        return std::make_unique<crypto::DatagramCrypto>(local(device), epochs, peers);
    }
};

}  // namespace starling::test

// The simulator's stand-in for device signatures.
#include "tools/sim/fake_authenticator.hpp"

#include <cstring>

namespace starling::sim {

namespace {

std::uint64_t keyed_hash(const membership::DeviceId& signer,
                         const membership::SignedRecordMessage& message, std::uint64_t salt) {
    std::uint64_t h = 0xCBF29CE484222325ull ^ salt;
    for (const std::uint8_t b : signer) h = (h ^ b) * 0x100000001B3ull;
    for (const std::uint8_t b : message) h = (h ^ b) * 0x100000001B3ull;
    h ^= h >> 31;
    h *= 0xBF58476D1CE4E5B9ull;
    return h ^ (h >> 29);
}

constexpr std::uint64_t kForgerSalt = 0xF0F0F0F0F0F0F0F0ull;

}  // namespace

membership::Signature FakeAuthenticator::sign(const membership::SignedRecordMessage& message) {
    membership::Signature s{};
    const std::uint64_t h = keyed_hash(self_, message, forger_ ? kForgerSalt : 0);
    std::memcpy(s.data(), &h, sizeof h);
    return s;
}

bool FakeAuthenticator::verify(const membership::DeviceId& signer,
                               const membership::SignedRecordMessage& message,
                               const membership::Signature& signature) {
    const std::uint64_t h = keyed_hash(signer, message, 0);
    std::uint64_t got = 0;
    std::memcpy(&got, signature.data(), sizeof got);
    if (got != h) return false;
    for (std::size_t i = sizeof got; i < signature.size(); ++i)
        if (signature[i] != 0) return false;
    return true;
}

}  // namespace starling::sim

#pragma once
// Shared by the identity suites: an owner, a cluster and a signed device certificate at a fixed
// time, and a way to print a failed Result's reason.

#include <cstdint>
#include <string>

#include "crypto/certificate.hpp"
#include "crypto/keys.hpp"
#include "protocol/result.hpp"

namespace starling::testing {

inline constexpr std::uint64_t kNow = 1'700'000'000;  // unix seconds, 2023-11-14
inline constexpr std::uint64_t kDay = 86'400;

// "" for success, else "<code>: <message>": for CHECK_MESSAGE / REQUIRE_MESSAGE.
template <class T>
std::string why(const Result<T>& r) {
    return r.ok() ? std::string()
                  : std::string(to_string(r.error().code)) + ": " + r.error().message;
}

struct Owner {
    crypto::SignKeyPair keys = crypto::SignKeyPair::generate();
    crypto::ClusterId cluster{};
    Owner() { crypto::random_bytes(cluster); }

    crypto::Certificate certify(const std::string& name, std::uint64_t not_before = kNow - kDay,
                                std::uint64_t not_after = kNow + kDay) const {
        crypto::Certificate cert;
        cert.cluster = cluster;
        crypto::random_bytes(cert.device);
        cert.name = name;
        cert.role = crypto::Role::trainer;
        cert.sign_key = crypto::SignKeyPair::generate().public_key;
        cert.kx_key = crypto::KxKeyPair::generate().public_key;
        cert.not_before = not_before;
        cert.not_after = not_after;
        cert.serial = 7;
        crypto::sign_certificate(cert, keys.secret_key);
        return cert;
    }
};

}  // namespace starling::testing

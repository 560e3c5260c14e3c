#pragma once
// What the model link and model channel tests share: a cluster whose owner issues devices, the
// identities the links run as, and recognisable model bytes.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "crypto/certificate.hpp"
#include "crypto/handshake.hpp"
#include "crypto/sodium.hpp"
#include "node/runtime/model_link.hpp"
#include "tests/node/node_harness.hpp"

namespace starling::runtime::testing {

struct LinkDevice {
    crypto::KxKeyPair kx = crypto::KxKeyPair::generate();
    crypto::Certificate cert;
    std::vector<std::uint8_t> encoded;
};

struct LinkCluster {
    crypto::SignKeyPair owner = crypto::SignKeyPair::generate();
    crypto::ClusterId id{};
    LinkCluster() { crypto::random_bytes(id); }

    // Valid from an hour before kUnixStart to `valid_for` seconds after it.
    LinkDevice device(const std::string& name, std::uint64_t valid_for = 86'400) const {
        LinkDevice d;
        d.cert.cluster = id;
        crypto::random_bytes(d.cert.device);
        d.cert.name = name;
        d.cert.sign_key = crypto::SignKeyPair::generate().public_key;
        d.cert.kx_key = d.kx.public_key;
        d.cert.not_before = kUnixStart - 3'600;
        d.cert.not_after = kUnixStart + valid_for;
        d.cert.serial = 1;
        crypto::sign_certificate(d.cert, owner.secret_key);
        d.encoded = crypto::encode_certificate(d.cert);
        return d;
    }
    SessionIdentity identity(const LinkDevice& d, std::size_t max_model_bytes = 1 << 20,
                             std::function<bool(const crypto::DeviceId&)> revoked = {}) const {
        return SessionIdentity{&d.kx, d.encoded,
                               crypto::TrustAnchor{id, owner.public_key, std::move(revoked)},
                               max_model_bytes};
    }
};

inline ModelBytes model_of(std::size_t n, std::uint8_t seed) {
    auto m = std::make_shared<std::vector<std::uint8_t>>(n);
    for (std::size_t i = 0; i < n; ++i) (*m)[i] = static_cast<std::uint8_t>(seed + i * 31);
    return m;
}

}  // namespace starling::runtime::testing

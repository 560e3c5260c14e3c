#pragma once
// Record signatures for the simulator: a keyed 64-bit hash standing in for Ed25519, so 1,000
// nodes verify millions of records in seconds. A node signs with a key derived from its id; a
// "forger" signs with another key and is refused like a device without a certificate.

#include <cstdint>

#include "node/membership/authenticator.hpp"

namespace starling::sim {

class FakeAuthenticator final : public membership::RecordAuthenticator {
public:
    explicit FakeAuthenticator(const membership::DeviceId& self, bool forger = false)
        : self_(self), forger_(forger) {}
    membership::Signature sign(const membership::SignedRecordMessage& message) override;
    bool verify(const membership::DeviceId& signer, const membership::SignedRecordMessage& message,
                const membership::Signature& signature) override;

private:
    membership::DeviceId self_;
    bool forger_;
};

}  // namespace starling::sim

#pragma once
// The seam through which the core signs this node's own records and checks everyone else's, so
// no member can forge another's address, revival or leave. The node implements it with Ed25519
// device keys from certificates; tests and the simulator with fakes.

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "node/membership/types.hpp"

namespace starling::membership {

// The canonical bytes a record's signature covers, little-endian:
// "starling member v1" (18) | id (16) | incarnation (8) | state (1) | address kind (1) |
// address (16) | port (2). Never the FlatBuffer bytes, which have more than one encoding.
inline constexpr std::size_t kSignedRecordMessageBytes = 18 + 16 + 8 + 1 + 1 + 16 + 2;
using SignedRecordMessage = std::array<std::uint8_t, kSignedRecordMessageBytes>;
[[nodiscard]] SignedRecordMessage signed_record_message(const SignedRecord& record);

// Called from the thread that drives the Membership, synchronously; must not block on I/O.
class RecordAuthenticator {
public:
    virtual ~RecordAuthenticator() = default;
    // Signs a record of this node's own (alive or left).
    virtual Signature sign(const SignedRecordMessage& message) = 0;
    // True only if `signer`'s current device key made `signature` over `message`; false for an
    // unknown or revoked device too. The core drops what fails and counts it.
    [[nodiscard]] virtual bool verify(const DeviceId& signer, const SignedRecordMessage& message,
                                      const Signature& signature) = 0;
};

}  // namespace starling::membership

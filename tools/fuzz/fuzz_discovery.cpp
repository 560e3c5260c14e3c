// libFuzzer target for discovery messages (node/runtime/discovery_wire.hpp): beacons, certificate
// requests and answers, revocations and revocation summaries arrive from any cluster member.
// Arbitrary bytes never crash the decoder, and whatever decodes re-encodes to bytes that decode
// to the same message (an answer too large for one datagram to its first certificates).
// Build: the 'fuzz' preset (cmake --preset fuzz && cmake --build build/fuzz --target fuzz_discovery).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "node/runtime/discovery_wire.hpp"

namespace {

using namespace starling::runtime;

std::vector<std::uint8_t> reencode(const DiscoveryMessage& m) {
    switch (m.kind) {
        case DiscoveryKind::beacon:
            return encode_beacon(m.beacon);
        case DiscoveryKind::certificate_request:
            return encode_certificate_request(m.wants);
        case DiscoveryKind::certificates: {
            std::size_t packed = 0;
            return encode_certificates(m.certificates, 0, packed);
        }
        case DiscoveryKind::revocations: {
            std::size_t packed = 0;
            return encode_revocations(m.revocations, 0, packed);
        }
        case DiscoveryKind::revocation_summary:
            return encode_revocation_summary(m.summary, m.summary_flags);
    }
    std::abort();
}

bool same(const DiscoveryMessage& a, const DiscoveryMessage& b) {
    return a.kind == b.kind && a.beacon.flags == b.beacon.flags &&
           a.beacon.address == b.beacon.address && a.beacon.certificate == b.beacon.certificate &&
           a.wants == b.wants && a.certificates == b.certificates && a.revocations == b.revocations &&
           a.summary == b.summary && a.summary_flags == b.summary_flags;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    // Aligned like the plaintext DatagramCrypto hands over (a vector's buffer).
    const std::vector<std::uint8_t> bytes(data, data + size);
    auto decoded = decode_discovery(bytes);
    if (!decoded) return 0;
    auto redecoded = decode_discovery(reencode(*decoded));
    if (!redecoded) std::abort();
    if (decoded->kind == DiscoveryKind::certificates ||
        decoded->kind == DiscoveryKind::revocations) {
        // Re-encoding packs what fits one datagram: a prefix of the original, never empty.
        const bool certificates = decoded->kind == DiscoveryKind::certificates;
        auto& got = certificates ? redecoded->certificates : redecoded->revocations;
        auto& had = certificates ? decoded->certificates : decoded->revocations;
        if (got.empty() || got.size() > had.size() ||
            !std::equal(got.begin(), got.end(), had.begin()))
            std::abort();
        return 0;
    }
    if (!same(*decoded, *redecoded)) std::abort();
    return 0;
}

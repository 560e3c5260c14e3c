// libFuzzer target for decode_certificate (peers send certificates in handshakes and beacons).
// Beyond "no crash": whatever decodes must re-encode to the same bytes (one encoding per
// certificate), and verifying it against an arbitrary owner must not crash either.
// Build: clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -I. -I<build>/generated
//        tools/fuzz/fuzz_certificate.cpp crypto/{certificate,trust_wire,keyring,keys,sodium}.cpp
//        -lsodium
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>

#include "crypto/certificate.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span<const std::uint8_t> bytes(data, size);
    const auto cert = starling::crypto::decode_certificate(bytes);
    if (!cert) return 0;
    const auto again = starling::crypto::encode_certificate(*cert);
    if (!std::equal(again.begin(), again.end(), bytes.begin(), bytes.end())) __builtin_trap();
    const starling::crypto::SignPublicKey owner{};
    (void)starling::crypto::verify_certificate(*cert, owner, cert->cluster, cert->not_before);
    return 0;
}

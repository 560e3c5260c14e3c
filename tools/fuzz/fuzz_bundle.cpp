// libFuzzer target for the two secret files: enrollment bundles and the operator's cluster file
// (the first input byte picks which). Their envelope checksum stops random bytes, but it is not
// authentication, so the payload decoders are fuzzed directly.
// Build: clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -I. -I<build>/generated
//        tools/fuzz/fuzz_bundle.cpp crypto/{cluster_wire,certificate,trust_wire,keyring,keys,
//        sodium}.cpp -lsodium
#include <cstddef>
#include <cstdint>
#include <span>

#include "crypto/cluster.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::span<const std::uint8_t> bytes(data + 1, size - 1);
    if (data[0] & 1)
        (void)starling::crypto::decode_cluster_secrets(bytes);
    else
        (void)starling::crypto::decode_enrollment_bundle(bytes);
    return 0;
}

// libFuzzer target for the two small owner-signed records peers relay: revocations and key-epoch
// announcements (the first input byte picks which). Whatever decodes must re-encode to the
// same bytes, and verifying it must not crash.
// Build: clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -I. -I<build>/generated
//        tools/fuzz/fuzz_revocation.cpp crypto/{certificate,trust_wire,keyring,keys,sodium}.cpp
//        -lsodium
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "crypto/certificate.hpp"

namespace {

using namespace starling::crypto;

template <class Record>
void check_canonical(const Record& record, std::span<const std::uint8_t> bytes,
                     std::vector<std::uint8_t> (*encode)(const Record&)) {
    const auto again = encode(record);
    if (!std::equal(again.begin(), again.end(), bytes.begin(), bytes.end())) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::span<const std::uint8_t> bytes(data + 1, size - 1);
    const SignPublicKey owner{};
    if (data[0] & 1) {
        const auto announcement = decode_key_announcement(bytes);
        if (!announcement) return 0;
        check_canonical(*announcement, bytes, encode_key_announcement);
        (void)verify_key_announcement(*announcement, owner, ClusterId{});
    } else {
        const auto revocation = decode_revocation(bytes);
        if (!revocation) return 0;
        check_canonical(*revocation, bytes, encode_revocation);
        (void)verify_revocation(*revocation, owner, revocation->cluster);
    }
    return 0;
}

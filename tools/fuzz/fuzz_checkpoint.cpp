// libFuzzer target for the checkpoint load path. The checksum stops random bytes at the envelope,
// but it is not authentication, so each input is also sealed to reach the FlatBuffer checks.
// Build: clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -I. -I<build>/generated
//        tools/fuzz/fuzz_checkpoint.cpp node/model/checkpoint.cpp protocol/*.cpp -lsodium
#include <cstddef>
#include <cstdint>
#include <span>

#include "node/model/checkpoint.hpp"
#include "protocol/envelope.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span<const std::uint8_t> bytes(data, size);
    (void)starling::model::decode_checkpoint(bytes, "fuzz");
    const auto sealed = starling::seal_envelope(starling::kCheckpointKind,
                                                starling::model::kCheckpointFormatVersion, bytes);
    (void)starling::model::decode_checkpoint(sealed, "fuzz-sealed");
    return 0;
}

// libFuzzer target for the stream frame decoder (crypto/stream.hpp), with fixed keys.
// The first input byte picks a mode; the rest is either raw wire bytes or plaintext to seal:
//   0: raw bytes fed to an opener, in pieces whose sizes the input also chooses
//   1: plaintext sealed (rekeying often), then opened in pieces: must round-trip exactly
//   2: as 1, then one byte of the wire flipped or the stream cut: must be refused
// Build: clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -I. \
//        tools/fuzz/fuzz_stream_frames.cpp crypto/stream.cpp crypto/noise.cpp crypto/keys.cpp \
//        crypto/sodium.cpp protocol/result.cpp -lsodium
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "crypto/stream.hpp"

namespace {

using starling::crypto::noise::CipherState;

CipherState fixed_cipher() {
    std::array<std::uint8_t, starling::crypto::noise::kKeyBytes> key{};
    key.fill(0x5a);
    return CipherState(key);
}

// Feeds `wire` in pieces of 1..256 bytes (sizes drawn from `sizes`, cycling), then input end.
bool open_in_pieces(std::span<const std::uint8_t> wire, std::span<const std::uint8_t> sizes,
                    starling::crypto::RekeyPolicy policy, std::vector<std::uint8_t>& out) {
    starling::crypto::StreamOpener opener(fixed_cipher(), policy);
    std::size_t turn = 0;
    while (!wire.empty()) {
        const std::size_t piece = sizes.empty() ? wire.size() : 1 + sizes[turn++ % sizes.size()];
        const std::size_t n = std::min(piece, wire.size());
        if (!opener.on_bytes_received(wire.first(n), out)) return false;
        if (opener.buffered_bytes() > starling::crypto::kMaxFrameBytes) std::abort();
        wire = wire.subspan(n);
    }
    return static_cast<bool>(opener.on_end_of_input());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::uint8_t mode = data[0] % 3;
    const std::span<const std::uint8_t> rest(data + 1, size - 1);
    const starling::crypto::RekeyPolicy policy{64, 1'000};  // a rekey every frame or two
    std::vector<std::uint8_t> out;

    if (mode == 0) {
        (void)open_in_pieces(rest, rest.first(rest.size() < 8 ? rest.size() : 8), policy, out);
        return 0;
    }

    // Plaintext in chunks of 1..64 bytes, so small inputs still make many frames and rekeys.
    starling::crypto::StreamSealer sealer(fixed_cipher(), 0, policy);
    std::vector<std::uint8_t> wire;
    std::uint64_t now_ms = 0;
    for (std::size_t at = 0; at < rest.size();) {
        const std::size_t n = std::min<std::size_t>(1 + rest[at] % 64, rest.size() - at);
        if (!sealer.seal(rest.subspan(at, n), now_ms, wire)) std::abort();
        at += n;
        now_ms += 300;
    }
    if (!sealer.finish(now_ms, wire)) std::abort();

    const auto sizes = rest.last(rest.size() < 5 ? rest.size() : 5);
    if (mode == 1) {
        if (!open_in_pieces(wire, sizes, policy, out)) std::abort();
        if (out.size() != rest.size() || !std::equal(out.begin(), out.end(), rest.begin())) {
            std::abort();
        }
        return 0;
    }
    // mode 2: one alteration, chosen by the input, must be caught.
    std::size_t position = 0;
    for (std::uint8_t b : rest) position = position * 31 + b;
    position %= wire.size() + 1;
    std::span<const std::uint8_t> damaged(wire);
    if (position == wire.size()) {
        damaged = damaged.first(wire.size() / 2);  // cut short
    } else {
        wire[position] ^= static_cast<std::uint8_t>(1u << (position % 8));
    }
    if (open_in_pieces(damaged, sizes, policy, out)) std::abort();
    return 0;
}

#pragma once
// Order-independent 64-bit summaries of sets (a membership table, the revocations held) that two
// nodes compare before exchanging the sets themselves: a sum of per-element hashes, the same for
// the same set in any order. Both sides must compute them alike, so they live with the wire.

#include <cstddef>
#include <cstdint>
#include <span>

namespace starling {

// splitmix64's finaliser: a well-mixed 64-bit value from one input word.
constexpr std::uint64_t mix64(std::uint64_t x) noexcept {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

// One element's hash: `seed`, then the bytes as little-endian 64-bit words, each mixed in.
constexpr std::uint64_t element_hash(std::span<const std::uint8_t> bytes,
                                     std::uint64_t seed = 0) noexcept {
    std::uint64_t h = seed;
    for (std::size_t i = 0; i < bytes.size(); i += 8) {
        std::uint64_t word = 0;
        for (std::size_t j = 0; j < 8 && i + j < bytes.size(); ++j)
            word |= std::uint64_t{bytes[i + j]} << (8 * j);
        h = mix64(h ^ word);
    }
    return h;
}

}  // namespace starling

#pragma once
// FlatBuffers reads scalars in place, so a buffer handed to its Verifier must start 8-byte
// aligned; bytes from a socket or a file slice may not: this gives an aligned view, copying only
// when it has to.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

namespace starling {

// A view of `bytes` that starts 8-byte aligned: `bytes` itself, or a copy held in `storage`
// (valid while `storage` is neither changed nor destroyed).
[[nodiscard]] inline std::span<const std::uint8_t> aligned_view(
    std::span<const std::uint8_t> bytes, std::vector<std::uint64_t>& storage) {
    if (reinterpret_cast<std::uintptr_t>(bytes.data()) % alignof(std::uint64_t) == 0) return bytes;
    storage.resize((bytes.size() + sizeof(std::uint64_t) - 1) / sizeof(std::uint64_t));
    std::memcpy(storage.data(), bytes.data(), bytes.size());
    return {reinterpret_cast<const std::uint8_t*>(storage.data()), bytes.size()};
}

}  // namespace starling

#pragma once
// A versioned, checksummed wrapper for every file Starling writes, so a torn, rotted or foreign
// file is refused with the reason and byte offset instead of being parsed.
//
// Layout, little-endian, 56-byte header then payload:
//   0 magic "STARLING" | 8 kind (4 bytes) | 12 u16 version | 14 u16 flags (0) | 16 u64 payload
//   length 24 BLAKE2b-256 of bytes 0..24 followed by the payload | 56 payload
// The checksum catches accidents, not attackers: anyone who can write the file can recompute it.

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "protocol/result.hpp"

namespace starling {

// A four-character tag naming what an envelope holds.
struct FourCC {
    std::array<char, 4> chars{};

    constexpr FourCC(const char (&tag)[5])
        : chars{tag[0], tag[1], tag[2], tag[3]} {}  // implicit: "CKPT" converts
    constexpr std::string_view view() const noexcept { return {chars.data(), chars.size()}; }
    friend constexpr bool operator==(const FourCC&, const FourCC&) = default;
};

// Every kind Starling stores, listed here so two never collide.
inline constexpr FourCC kCheckpointKind{"CKPT"};  // node/model/checkpoint.hpp
inline constexpr FourCC kClusterSecretsKind{"CLUS"};    // crypto/cluster.hpp (mode 0600)
inline constexpr FourCC kEnrollmentBundleKind{"BNDL"};  // crypto/cluster.hpp (mode 0600)
inline constexpr FourCC kRevocationKind{"RVOK"};        // crypto/cluster.hpp
inline constexpr FourCC kKeyAnnouncementKind{"KANN"};   // crypto/cluster.hpp (mode 0600)
inline constexpr FourCC kNodeStateKind{"NODE"};         // node/runtime/state_dir.hpp
inline constexpr FourCC kKnownPeersKind{"PEER"};        // node/runtime/state_dir.hpp

inline constexpr std::size_t kEnvelopeHeaderBytes = 56;
inline constexpr std::size_t kEnvelopeChecksumBytes = 32;

// Header plus payload, checksummed. `version` must be at least 1.
[[nodiscard]] std::vector<std::uint8_t> seal_envelope(FourCC kind, std::uint16_t version,
                                                      std::span<const std::uint8_t> payload);

// The payload inside `file` (a view into it), once size, magic, kind, version 1..max_version,
// flags, length and checksum all hold. Errors name `name_for_errors` and the byte offset:
// truncated, malformed (magic, kind, trailing bytes), unsupported_version, corrupt (checksum).
[[nodiscard]] Result<std::span<const std::uint8_t>> open_envelope(
    std::span<const std::uint8_t> file, FourCC expected_kind, std::uint16_t max_version,
    std::string_view name_for_errors);

}  // namespace starling

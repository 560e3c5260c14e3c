#pragma once
// The cleartext header of every sealed datagram (beacons, membership, small control messages),
// parsed with bounds checks before any key is touched, so noise and foreign clusters cost a memcmp.
//
// Layout, little-endian, 38 bytes, then the AEAD body (crypto/datagram.hpp):
//   0 magic/version (0xD1: magic 0xD_, version _1) | 1 kind (1 to_peer, 2 to_cluster)
//   2 cluster tag (8) | 10 u32 key epoch | 14 sender device id (16) | 30 u64 counter | 38 body
// The whole header is the AEAD's associated data; its last 24 bytes (sender id, counter) are the
// XChaCha20 nonce, unique per sender because the counter never repeats under one key.

#include <array>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <utility>
#include <variant>

namespace starling {

inline constexpr std::uint8_t kDatagramMagic = 0xD0;  // high nibble of byte 0
inline constexpr std::uint8_t kDatagramVersion = 1;   // low nibble of byte 0
inline constexpr std::size_t kDatagramHeaderBytes = 38;
inline constexpr std::size_t kClusterTagBytes = 8;
inline constexpr std::size_t kDatagramNonceOffset = 14;     // sender id || counter, 24 bytes
inline constexpr std::size_t kDatagramSenderBytes = 16;     // == crypto::kDeviceIdBytes
inline constexpr std::size_t kDatagramClusterIdBytes = 16;  // == crypto::kClusterIdBytes

using ClusterTag = std::array<std::uint8_t, kClusterTagBytes>;
// The same types as crypto::DeviceId and crypto::ClusterId, named here so that protocol/ does not
// depend on crypto/ (crypto/ builds on protocol/).
using DatagramSender = std::array<std::uint8_t, kDatagramSenderBytes>;
using DatagramClusterId = std::array<std::uint8_t, kDatagramClusterIdBytes>;

enum class DatagramKind : std::uint8_t {
    to_peer = 1,     // unicast, sealed with the pairwise key of sender and receiver
    to_cluster = 2,  // multicast/broadcast, sealed with the epoch's network key and signed
};

// Why a datagram was dropped: one counter per value in the node's metrics; never sent back.
enum class DatagramDrop : std::uint8_t {
    too_large,            // over limits::kMaxDatagramBytes, refused before parsing
    malformed,            // bad magic or kind, or too short for its header, MAC and signature
    unsupported_version,  // a Starling datagram of another format version
    foreign_cluster,      // cluster tag of another cluster sharing the LAN
    from_self,            // our own multicast looped back (or reflected)
    unknown_epoch,        // no network key held for the epoch (never had it, or retired)
    unknown_sender,       // no certificate known for the sender id
    replayed,             // counter already seen, or too far behind the newest
    bad_mac,              // AEAD authentication failed: noise, tampering, wrong key
    bad_signature,        // to_cluster: not signed by the claimed sender's device key
    over_verify_budget,   // to_cluster: this second's signature checks (per sender or in all) spent
    too_many_senders,     // replay table full of live senders (limits::kMaxReplayWindows)
};

const char* to_string(DatagramDrop drop) noexcept;

struct DatagramHeader {
    DatagramKind kind = DatagramKind::to_peer;
    ClusterTag cluster_tag{};
    std::uint32_t epoch = 0;
    DatagramSender sender{};
    std::uint64_t counter = 0;
};

// A value or the reason the datagram was dropped; no strings, no exceptions on the drop path.
template <class T>
class [[nodiscard]] DatagramResult {
public:
    DatagramResult(T value) : state_(std::move(value)) {}
    DatagramResult(DatagramDrop drop) : state_(drop) {}

    bool ok() const noexcept { return state_.index() == 0; }
    explicit operator bool() const noexcept { return ok(); }
    DatagramDrop drop() const {
        assert(!ok());
        return std::get<1>(state_);
    }
    T& value() & {
        assert(ok());
        return std::get<0>(state_);
    }
    const T& value() const& {
        assert(ok());
        return std::get<0>(state_);
    }
    T&& value() && {
        assert(ok());
        return std::get<0>(std::move(state_));
    }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }

private:
    std::variant<T, DatagramDrop> state_;
};

// First 8 bytes of BLAKE2b-256("starling cluster tag v1" || cluster id): lets several clusters
// share a LAN. Public, not secret: it only routes, the AEAD decides.
ClusterTag cluster_tag(const DatagramClusterId& cluster);

void encode_datagram_header(const DatagramHeader& header,
                            std::span<std::uint8_t, kDatagramHeaderBytes> out) noexcept;

// The header at the start of `datagram`, after the size cap, the magic/version byte and the kind.
[[nodiscard]] DatagramResult<DatagramHeader> parse_datagram_header(
    std::span<const std::uint8_t> datagram) noexcept;

// Counters a sender stamps on its datagrams: boot << 32 | seq, strictly increasing and never
// repeated under one key as long as the node persists `boot` + 1 before every start.
class DatagramCounter {
public:
    explicit DatagramCounter(std::uint32_t boot) noexcept : boot_(boot) {}
    // The next counter, or nullopt after 2^32 in this boot: persist boot + 1 and make a new one.
    [[nodiscard]] std::optional<std::uint64_t> next() noexcept;

private:
    std::uint32_t boot_;
    std::uint64_t next_seq_ = 0;  // 2^32 means exhausted
};

}  // namespace starling

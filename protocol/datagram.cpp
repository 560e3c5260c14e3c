#include "protocol/datagram.hpp"

#include <sodium.h>

#include <algorithm>
#include <cassert>
#include <string_view>

#include "protocol/limits.hpp"

namespace starling {
namespace {

constexpr std::size_t kKindOffset = 1;
constexpr std::size_t kTagOffset = 2;
constexpr std::size_t kEpochOffset = kTagOffset + kClusterTagBytes;
constexpr std::size_t kSenderOffset = kEpochOffset + 4;
constexpr std::size_t kCounterOffset = kSenderOffset + kDatagramSenderBytes;
static_assert(kCounterOffset + 8 == kDatagramHeaderBytes);
static_assert(kDatagramHeaderBytes < limits::kMaxDatagramBytes);

constexpr std::uint8_t kMagicMask = 0xF0;
constexpr std::uint8_t kMagicVersion = kDatagramMagic | kDatagramVersion;
static_assert((kDatagramMagic & ~kMagicMask) == 0 && kDatagramVersion <= 0x0F);

constexpr std::string_view kClusterTagLabel = "starling cluster tag v1";

void put_le(std::span<std::uint8_t> out, std::uint64_t value) noexcept {
    for (auto& byte : out) {
        byte = static_cast<std::uint8_t>(value & 0xffu);
        value >>= 8;
    }
}

std::uint64_t get_le(std::span<const std::uint8_t> in) noexcept {
    std::uint64_t value = 0;
    for (std::size_t i = in.size(); i-- > 0;) value = (value << 8) | in[i];
    return value;
}

// sodium_init picks the fastest BLAKE2b for this CPU; idempotent and thread-safe.
void ensure_sodium() noexcept {
    static const bool ready = sodium_init() >= 0;
    assert(ready && "libsodium failed to initialise");
    (void)ready;
}

}  // namespace

const char* to_string(DatagramDrop drop) noexcept {
    switch (drop) {
        case DatagramDrop::too_large:
            return "too_large";
        case DatagramDrop::malformed:
            return "malformed";
        case DatagramDrop::unsupported_version:
            return "unsupported_version";
        case DatagramDrop::foreign_cluster:
            return "foreign_cluster";
        case DatagramDrop::from_self:
            return "from_self";
        case DatagramDrop::unknown_epoch:
            return "unknown_epoch";
        case DatagramDrop::unknown_sender:
            return "unknown_sender";
        case DatagramDrop::replayed:
            return "replayed";
        case DatagramDrop::bad_mac:
            return "bad_mac";
        case DatagramDrop::bad_signature:
            return "bad_signature";
        case DatagramDrop::over_verify_budget:
            return "over_verify_budget";
        case DatagramDrop::too_many_senders:
            return "too_many_senders";
    }
    return "unknown";
}

ClusterTag cluster_tag(const DatagramClusterId& cluster) {
    // BLAKE2b's output length is a parameter, so "the first 8 bytes of the 32-byte digest" is
    // the definition, not an 8-byte BLAKE2b.
    ensure_sodium();
    std::array<std::uint8_t, crypto_generichash_BYTES> digest{};
    crypto_generichash_state state;
    crypto_generichash_init(&state, nullptr, 0, digest.size());
    crypto_generichash_update(&state,
                              reinterpret_cast<const unsigned char*>(kClusterTagLabel.data()),
                              kClusterTagLabel.size());
    crypto_generichash_update(&state, cluster.data(), cluster.size());
    crypto_generichash_final(&state, digest.data(), digest.size());
    ClusterTag tag{};
    std::copy_n(digest.begin(), tag.size(), tag.begin());
    return tag;
}

void encode_datagram_header(const DatagramHeader& header,
                            std::span<std::uint8_t, kDatagramHeaderBytes> out) noexcept {
    out[0] = kMagicVersion;
    out[kKindOffset] = static_cast<std::uint8_t>(header.kind);
    std::copy(header.cluster_tag.begin(), header.cluster_tag.end(), out.begin() + kTagOffset);
    put_le(out.subspan(kEpochOffset, 4), header.epoch);
    std::copy(header.sender.begin(), header.sender.end(), out.begin() + kSenderOffset);
    put_le(out.subspan(kCounterOffset, 8), header.counter);
}

DatagramResult<DatagramHeader> parse_datagram_header(
    std::span<const std::uint8_t> datagram) noexcept {
    if (datagram.size() > limits::kMaxDatagramBytes) return DatagramDrop::too_large;
    if (datagram.size() < kDatagramHeaderBytes) return DatagramDrop::malformed;
    if ((datagram[0] & kMagicMask) != kDatagramMagic) return DatagramDrop::malformed;
    if (datagram[0] != kMagicVersion) return DatagramDrop::unsupported_version;
    const std::uint8_t kind = datagram[kKindOffset];
    if (kind != static_cast<std::uint8_t>(DatagramKind::to_peer) &&
        kind != static_cast<std::uint8_t>(DatagramKind::to_cluster))
        return DatagramDrop::malformed;

    DatagramHeader header;
    header.kind = static_cast<DatagramKind>(kind);
    std::copy_n(datagram.begin() + kTagOffset, kClusterTagBytes, header.cluster_tag.begin());
    header.epoch = static_cast<std::uint32_t>(get_le(datagram.subspan(kEpochOffset, 4)));
    std::copy_n(datagram.begin() + kSenderOffset, kDatagramSenderBytes, header.sender.begin());
    header.counter = get_le(datagram.subspan(kCounterOffset, 8));
    return header;
}

std::optional<std::uint64_t> DatagramCounter::next() noexcept {
    constexpr std::uint64_t kSeqPerBoot = std::uint64_t{1} << 32;
    if (next_seq_ >= kSeqPerBoot) return std::nullopt;
    return (std::uint64_t{boot_} << 32) | next_seq_++;
}

}  // namespace starling

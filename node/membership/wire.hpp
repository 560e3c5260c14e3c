#pragma once
// Membership messages on the wire (protocol/schemas/membership.fbs): one plain struct for every
// kind, encoded with FlatBuffers and decoded only after the size cap, the Verifier with tight
// limits and every semantic check (enum values, address encodings, entry counts) passed.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "node/membership/types.hpp"

namespace starling::membership::detail {

enum class MessageKind : std::uint8_t { ping = 1, ack = 2, nack = 3, ping_req = 4, gossip = 5, sync = 6 };

// Sync flags: a join (answer with every record), a request for the receiver's digests, and the
// records answering a join (old news to everyone else, so not passed on).
inline constexpr std::uint8_t kSyncJoin = 1;
inline constexpr std::uint8_t kSyncReply = 2;
inline constexpr std::uint8_t kSyncJoinAnswer = 4;
// The periodic anti-entropy opener: only `summary`, a hash of the sender's table; the receiver
// starts a digest exchange only if its own table hashes differently.
inline constexpr std::uint8_t kSyncSummary = 8;
inline constexpr std::uint8_t kSyncKnownFlags = kSyncJoin | kSyncReply | kSyncJoinAnswer | kSyncSummary;

// The kind's wire name ("ping", "ping_req", ...), for logs, traces and the inspector.
[[nodiscard]] const char* to_string(MessageKind kind) noexcept;

struct Message {
    MessageKind kind = MessageKind::gossip;
    std::uint32_t seq = 0;         // ping, ack, nack, ping_req
    DeviceId target{};             // ping, ping_req
    PeerAddress target_address;    // ping_req
    std::uint8_t sync_flags = 0;   // sync
    std::vector<Digest> digests;   // sync
    std::vector<DeviceId> wants;   // sync
    std::uint64_t summary = 0;     // sync with kSyncSummary
    std::vector<SignedRecord> records;      // any kind: piggybacked or answering a sync
    std::vector<Accusation> accusations;    // any kind

    void clear();
    // Bytes the entries take on the wire, without the fixed overhead.
    std::size_t entry_bytes() const noexcept;
};

enum class DecodeStatus : std::uint8_t { ok, oversized, malformed };

class Codec {
public:
    Codec();
    ~Codec();
    Codec(Codec&&) noexcept;
    Codec& operator=(Codec&&) noexcept;

    // Never more than limits::kMaxMessageBytes: the caller keeps entry_bytes() within
    // limits::kPacketPayloadBytes (asserted).
    [[nodiscard]] std::vector<std::uint8_t> encode(const Message& message);
    // `out` is cleared first; its vectors keep their capacity across calls.
    [[nodiscard]] DecodeStatus decode(std::span<const std::uint8_t> bytes, Message& out);

private:
    struct State;
    std::unique_ptr<State> state_;
};

}  // namespace starling::membership::detail

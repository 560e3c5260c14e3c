#pragma once
// Every bound of the membership core, named with its unit, so a reviewer can check what a hostile
// member, a flood of joins or a stalled driver can make a node allocate or send.

#include <cstddef>
#include <cstdint>

#include "crypto/datagram.hpp"
#include "protocol/limits.hpp"

namespace starling::membership::limits {

// Members one node tracks, itself excluded, dead and left ones included until reaped: the
// cluster's own bound on enrolled devices (protocol/limits.hpp), far above the ~100 of a LAN and
// the 1,000 of the largest simulation. A record about a new member past it is dropped and counted.
inline constexpr std::size_t kMaxMembers = starling::limits::kMaxClusterDevices;

// Plaintext of one membership message. A join goes to a seed whose device id is not yet known,
// so the driver seals it to_cluster (with a signature); every message fits that smaller budget.
inline constexpr std::size_t kMaxMessageBytes = crypto::kMaxClusterPlaintextBytes;

// Bytes a sealed datagram adds to a message: header and MAC (to_peer); a to_cluster one adds a
// signature on top. For traffic figures; the budget above already leaves room for both.
inline constexpr std::size_t kSealToPeerOverheadBytes =
    kDatagramHeaderBytes + crypto::kDatagramMacBytes;
inline constexpr std::size_t kSealToClusterOverheadBytes =
    kSealToPeerOverheadBytes + crypto::kSignatureBytes;

// Wire sizes of the repeated structs (protocol/schemas/membership.fbs), and a bound on what a
// packet spends besides them: size prefix, root offset, identifier, vtables, the body table, the
// vector lengths and their alignment padding. wire.cpp checks these against flatc's structs.
inline constexpr std::size_t kSignedRecordWireBytes = 112;
inline constexpr std::size_t kAccusationWireBytes = 48;
inline constexpr std::size_t kDigestWireBytes = 32;
inline constexpr std::size_t kIdWireBytes = 16;
inline constexpr std::size_t kPacketOverheadBytes = 192;
inline constexpr std::size_t kPacketPayloadBytes = kMaxMessageBytes - kPacketOverheadBytes;

// Entries of each kind one message may carry: what fits the budget alone. The decoder refuses
// more, so a peer cannot make a node verify hundreds of signatures for one datagram.
inline constexpr std::size_t kMaxRecordsPerMessage = kPacketPayloadBytes / kSignedRecordWireBytes;
inline constexpr std::size_t kMaxAccusationsPerMessage = kPacketPayloadBytes / kAccusationWireBytes;
inline constexpr std::size_t kMaxDigestsPerMessage = kPacketPayloadBytes / kDigestWireBytes;
inline constexpr std::size_t kMaxWantsPerMessage = kPacketPayloadBytes / kIdWireBytes;

// FlatBuffers tables in one message: the packet and its body. Depth from protocol/limits.hpp.
inline constexpr std::uint32_t kMaxTablesPerMessage = 4;

// Indirect probes (SWIM's k) one probe may ask for: each costs four datagrams.
inline constexpr std::uint32_t kMaxIndirectProbes = 8;

// Ping-reqs this node forwards at once for others; more are refused (each holds one entry for
// a probe timeout). A probe period brings ~k of them on average.
inline constexpr std::size_t kMaxPendingRelays = 64;

// Lifeguard's local health multiplier: probe interval and timeouts stretch up to this factor.
inline constexpr std::uint32_t kMaxHealthMultiplier = 8;

// Independent suspicions of one member remembered (Lifeguard's confirmations C, K <= this - 1).
inline constexpr std::size_t kMaxSuspicionAccusers = 8;

// A node holding a suspicion asks the suspect itself for its record, two probe periods in and
// then every period until the deadline, at most this many times: a refutation that gossip failed
// to bring (at 10% loss a few nodes miss one) is pulled from its source instead of lingering
// into a false failure. One small datagram per period per suspicion held.
inline constexpr std::uint32_t kMaxSuspicionQueries = 32;

// Digest exchanges a node makes right after it joined, besides the periodic ones.
inline constexpr std::uint32_t kEarlySyncs = 5;

// Seed addresses a node retries while it knows no live peer.
inline constexpr std::size_t kMaxSeeds = 16;

// Answers that cost a full table, per second: join answers (every record: ~100 datagrams at
// 1,000 members) and digest replies (every digest: ~30 datagrams at 1,000). An amplification
// bound, sized for a whole LAN of 100 powering up in the same second.
inline constexpr std::uint32_t kMaxJoinAnswersPerSecond = 100;
inline constexpr std::uint32_t kMaxDigestRepliesPerSecond = 100;

// A sender we know nothing about (or hold failed) is asked for its record (or told, so it
// refutes), and a digest request is answered, at most once per this many milliseconds per
// sender; each ring remembers this many senders.
inline constexpr std::uint32_t kRecentSenderCooldownMilliseconds = 1000;
inline constexpr std::size_t kMaxRecentSenders = 16;

// Actions waiting for the driver: past this, sends are dropped and counted (events never are,
// and their number is bounded by the members' state changes).
inline constexpr std::size_t kMaxQueuedSends = 4096;

}  // namespace starling::membership::limits

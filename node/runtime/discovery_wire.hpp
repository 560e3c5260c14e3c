#pragma once
// Discovery messages on the wire (protocol/schemas/discovery.fbs): beacons that carry a node's
// certificate and listen address, and the request/answer that fetches certificates of members
// heard of through gossip. Decoded only after the size cap, the Verifier with tight limits and
// every length check; certificates inside are checked by their own decoder and the owner's key.

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "crypto/datagram.hpp"
#include "crypto/keys.hpp"
#include "node/net/address.hpp"
#include "protocol/result.hpp"

namespace starling::runtime {

enum class DiscoveryKind : std::uint8_t {
    beacon = 1,
    certificate_request = 2,
    certificates = 3,
    revocations = 4,         // owner-signed revocations, passed on by any member
    revocation_summary = 5,  // a hash of the revoked ids the sender holds (anti-entropy)
};

// Beacon flags.
inline constexpr std::uint8_t kBeaconSeeking = 1;   // the sender knows no live member yet
inline constexpr std::uint8_t kBeaconAnswerMe = 2;  // send a beacon straight back
inline constexpr std::uint8_t kBeaconDirect = 4;    // sent to this node alone, not to the LAN
// A message from the sender follows at once (a join, a digest exchange): the beacon only hands
// over its certificate, and asks for nothing, so two introductions never start two exchanges.
inline constexpr std::uint8_t kBeaconIntroduction = 8;
inline constexpr std::uint8_t kBeaconKnownFlags =
    kBeaconSeeking | kBeaconAnswerMe | kBeaconDirect | kBeaconIntroduction;

// Device ids one request may ask for: what a 1,400-byte datagram holds with room to spare.
inline constexpr std::size_t kMaxWantsPerRequest = 64;
// Certificates in one answer: each is ~330 bytes (limits::kMaxCertificateBytes at most), so a
// sealed datagram carries about four; the decoder refuses more than this.
inline constexpr std::size_t kMaxCertificatesPerAnswer = 8;

// Revocations in one message: each is ~190 bytes (limits::kMaxRevocationBytes at most); the
// encoder packs what one to_cluster datagram holds, the decoder refuses more than this.
inline constexpr std::size_t kMaxRevocationsPerMessage = 8;
// Revocation summary flag: this summary answers another one (do not answer it).
inline constexpr std::uint8_t kSummaryAnswer = 1;

struct Beacon {
    std::uint8_t flags = 0;
    net::Ipv4Endpoint address;              // where the sender listens
    std::vector<std::uint8_t> certificate;  // crypto::encode_certificate bytes
    // The sender's signed record as a membership message (empty: none); checked by the core.
    std::vector<std::uint8_t> record;
};
// A beacon's record message: one signed record and the message's framing.
inline constexpr std::size_t kMaxBeaconRecordBytes = 512;

struct DiscoveryMessage {
    DiscoveryKind kind = DiscoveryKind::beacon;
    Beacon beacon;                                        // beacon
    std::vector<crypto::DeviceId> wants;                  // certificate_request
    std::vector<std::vector<std::uint8_t>> certificates;  // certificates
    std::vector<std::vector<std::uint8_t>> revocations;   // revocations
    std::uint64_t summary = 0;                            // revocation_summary
    std::uint8_t summary_flags = 0;                       // revocation_summary
};

// Which protocol a datagram's plaintext speaks, by its FlatBuffers identifier.
enum class Channel : std::uint8_t { membership, discovery, unknown };
[[nodiscard]] Channel channel_of(std::span<const std::uint8_t> plaintext) noexcept;

[[nodiscard]] std::vector<std::uint8_t> encode_beacon(const Beacon& beacon);
[[nodiscard]] std::vector<std::uint8_t> encode_certificate_request(
    std::span<const crypto::DeviceId> wants);  // at most kMaxWantsPerRequest
// Certificates from `certificates` that fit one datagram sealed either way (to_cluster is the
// smaller), in order, starting at `first`;
// `packed` says how many were taken (at least one, unless none are left).
[[nodiscard]] std::vector<std::uint8_t> encode_certificates(
    std::span<const std::vector<std::uint8_t>> certificates, std::size_t first,
    std::size_t& packed);

// Revocations (crypto::encode_revocation bytes) from `revocations` that fit one datagram sealed
// either way, starting at `first`; `packed` says how many were taken (as encode_certificates).
[[nodiscard]] std::vector<std::uint8_t> encode_revocations(
    std::span<const std::vector<std::uint8_t>> revocations, std::size_t first,
    std::size_t& packed);
[[nodiscard]] std::vector<std::uint8_t> encode_revocation_summary(std::uint64_t summary,
                                                                  std::uint8_t flags);

// malformed or too_large (over crypto::kMaxPeerPlaintextBytes) with the reason.
[[nodiscard]] Result<DiscoveryMessage> decode_discovery(std::span<const std::uint8_t> plaintext);

}  // namespace starling::runtime

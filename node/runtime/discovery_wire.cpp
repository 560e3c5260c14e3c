#include "node/runtime/discovery_wire.hpp"

#include <flatbuffers/flatbuffers.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "protocol/discovery_generated.h"
#include "protocol/limits.hpp"

namespace starling::runtime {
namespace {

namespace wire = starling::wire::discovery;

constexpr char kDiscoveryId[] = "SDSC";
constexpr char kMembershipId[] = "SMEM";
constexpr std::size_t kIdentifierOffset = sizeof(flatbuffers::uoffset_t) * 2;  // size, root
// Packet and certificate (or revocation) tables in one message.
constexpr std::uint32_t kMaxTables =
    1 + static_cast<std::uint32_t>(std::max(kMaxCertificatesPerAnswer, kMaxRevocationsPerMessage));
// What a packet spends besides certificate bytes: offsets, vtable, lengths, padding.
constexpr std::size_t kPacketOverheadBytes = 96;
constexpr std::size_t kPerCertificateOverheadBytes = 24;

Error malformed(const std::string& what) {
    return make_error(ErrorCode::malformed, "discovery message: " + what);
}

std::vector<std::uint8_t> finish(flatbuffers::FlatBufferBuilder& fbb,
                                 flatbuffers::Offset<wire::Packet> root) {
    fbb.FinishSizePrefixed(root, kDiscoveryId);
    return {fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize()};
}

std::vector<std::uint8_t> bytes_of(const flatbuffers::Vector<std::uint8_t>* v) {
    if (v == nullptr) return {};
    return {v->begin(), v->end()};
}

Result<DiscoveryMessage> read_beacon(const wire::Packet& p, DiscoveryMessage m) {
    if (p.address() == nullptr || p.address()->size() != 4 || p.port() == 0)
        return malformed("beacon address must be 4 bytes and a port");
    if ((p.flags() & ~kBeaconKnownFlags) != 0) return malformed("unknown beacon flags");
    if (p.certificate() == nullptr || p.certificate()->size() > limits::kMaxCertificateBytes)
        return malformed("beacon certificate missing or too large");
    m.beacon.flags = p.flags();
    std::copy(p.address()->begin(), p.address()->end(), m.beacon.address.ip.begin());
    m.beacon.address.port = p.port();
    m.beacon.certificate = bytes_of(p.certificate());
    if (p.record() != nullptr && p.record()->size() > kMaxBeaconRecordBytes)
        return malformed("beacon record over " + std::to_string(kMaxBeaconRecordBytes) + " bytes");
    m.beacon.record = bytes_of(p.record());
    return m;
}

Result<DiscoveryMessage> read_request(const wire::Packet& p, DiscoveryMessage m) {
    const auto* wants = p.wants();
    if (wants == nullptr || wants->size() == 0 || wants->size() % crypto::kDeviceIdBytes != 0 ||
        wants->size() / crypto::kDeviceIdBytes > kMaxWantsPerRequest)
        return malformed("request wants 1.." + std::to_string(kMaxWantsPerRequest) + " ids");
    m.wants.resize(wants->size() / crypto::kDeviceIdBytes);
    std::memcpy(m.wants.data(), wants->data(), wants->size());
    return m;
}

Result<DiscoveryMessage> read_answer(const wire::Packet& p, DiscoveryMessage m) {
    const auto* certificates = p.certificates();
    if (certificates == nullptr || certificates->size() == 0 ||
        certificates->size() > kMaxCertificatesPerAnswer)
        return malformed("answer carries 1.." + std::to_string(kMaxCertificatesPerAnswer) +
                         " certificates");
    for (const wire::CertificateBytes* c : *certificates) {
        if (c->bytes()->size() > limits::kMaxCertificateBytes)
            return malformed("certificate too large");
        m.certificates.push_back(bytes_of(c->bytes()));
    }
    return m;
}

Result<DiscoveryMessage> read_revocations(const wire::Packet& p, DiscoveryMessage m) {
    const auto* revocations = p.revocations();
    if (revocations == nullptr || revocations->size() == 0 ||
        revocations->size() > kMaxRevocationsPerMessage)
        return malformed("revocations message carries 1.." +
                         std::to_string(kMaxRevocationsPerMessage) + " revocations");
    for (const wire::RevocationBytes* r : *revocations) {
        if (r->bytes()->size() > limits::kMaxRevocationBytes) return malformed("revocation too large");
        m.revocations.push_back(bytes_of(r->bytes()));
    }
    return m;
}

Result<DiscoveryMessage> read_summary(const wire::Packet& p, DiscoveryMessage m) {
    if ((p.flags() & ~kSummaryAnswer) != 0) return malformed("unknown summary flags");
    m.summary = p.summary();
    m.summary_flags = p.flags();
    return m;
}

}  // namespace

Channel channel_of(std::span<const std::uint8_t> plaintext) noexcept {
    if (plaintext.size() < kIdentifierOffset + flatbuffers::kFileIdentifierLength)
        return Channel::unknown;
    const auto* id = reinterpret_cast<const char*>(plaintext.data() + kIdentifierOffset);
    if (std::memcmp(id, kMembershipId, flatbuffers::kFileIdentifierLength) == 0)
        return Channel::membership;
    if (std::memcmp(id, kDiscoveryId, flatbuffers::kFileIdentifierLength) == 0)
        return Channel::discovery;
    return Channel::unknown;
}

std::vector<std::uint8_t> encode_beacon(const Beacon& beacon) {
    flatbuffers::FlatBufferBuilder fbb(512);
    const auto address = fbb.CreateVector(beacon.address.ip.data(), beacon.address.ip.size());
    const auto certificate = fbb.CreateVector(beacon.certificate);
    const auto record = beacon.record.empty() ? 0 : fbb.CreateVector(beacon.record);
    return finish(fbb, wire::CreatePacket(fbb, wire::Kind::beacon, beacon.flags, address,
                                          beacon.address.port, certificate, 0, 0, 0, 0, record));
}

std::vector<std::uint8_t> encode_certificate_request(std::span<const crypto::DeviceId> wants) {
    flatbuffers::FlatBufferBuilder fbb(128);
    const std::size_t n = std::min(wants.size(), kMaxWantsPerRequest);
    const auto ids = fbb.CreateVector(reinterpret_cast<const std::uint8_t*>(wants.data()),
                                      n * crypto::kDeviceIdBytes);
    return finish(fbb, wire::CreatePacket(fbb, wire::Kind::certificate_request, 0, 0, 0, 0, ids));
}

namespace {

// Byte blobs from `items`, starting at `first`, as tables made by `make`, while they fit one
// datagram and `most` of them. The budget is the cluster one: an answer to a device whose
// certificate the answerer lacks goes out to_cluster, signed, and a to_peer-sized answer would
// not fit it (it was then not sent at all).
template <class Table>
flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<Table>>> pack_tables(
    flatbuffers::FlatBufferBuilder& fbb, std::span<const std::vector<std::uint8_t>> items,
    std::size_t first, std::size_t most, std::size_t& packed,
    flatbuffers::Offset<Table> (*make)(flatbuffers::FlatBufferBuilder&,
                                       flatbuffers::Offset<flatbuffers::Vector<std::uint8_t>>)) {
    std::size_t budget = crypto::kMaxClusterPlaintextBytes - kPacketOverheadBytes;
    packed = 0;
    std::vector<flatbuffers::Offset<Table>> tables;
    for (std::size_t i = first; i < items.size() && packed < most; ++i, ++packed) {
        const std::size_t cost = items[i].size() + kPerCertificateOverheadBytes;
        if (cost > budget) break;
        budget -= cost;
        tables.push_back(make(fbb, fbb.CreateVector(items[i])));
    }
    return fbb.CreateVector(tables);
}

}  // namespace

std::vector<std::uint8_t> encode_certificates(
    std::span<const std::vector<std::uint8_t>> certificates, std::size_t first,
    std::size_t& packed) {
    flatbuffers::FlatBufferBuilder fbb(crypto::kMaxPeerPlaintextBytes);
    const auto list = pack_tables(fbb, certificates, first, kMaxCertificatesPerAnswer, packed,
                                  &wire::CreateCertificateBytes);
    return finish(fbb, wire::CreatePacket(fbb, wire::Kind::certificates, 0, 0, 0, 0, 0, list));
}

std::vector<std::uint8_t> encode_revocations(std::span<const std::vector<std::uint8_t>> revocations,
                                             std::size_t first, std::size_t& packed) {
    flatbuffers::FlatBufferBuilder fbb(crypto::kMaxPeerPlaintextBytes);
    const auto list = pack_tables(fbb, revocations, first, kMaxRevocationsPerMessage, packed,
                                  &wire::CreateRevocationBytes);
    return finish(fbb, wire::CreatePacket(fbb, wire::Kind::revocations, 0, 0, 0, 0, 0, 0, list));
}

std::vector<std::uint8_t> encode_revocation_summary(std::uint64_t summary, std::uint8_t flags) {
    flatbuffers::FlatBufferBuilder fbb(64);
    return finish(fbb, wire::CreatePacket(fbb, wire::Kind::revocation_summary, flags, 0, 0, 0, 0,
                                          0, 0, summary));
}

Result<DiscoveryMessage> decode_discovery(std::span<const std::uint8_t> plaintext) {
    if (plaintext.size() > crypto::kMaxPeerPlaintextBytes)
        return make_error(ErrorCode::too_large, "discovery message over its datagram");
    flatbuffers::Verifier::Options options;
    options.max_depth = limits::kFlatbuffersMaxDepth;
    options.max_tables = kMaxTables;
    flatbuffers::Verifier verifier(plaintext.data(), plaintext.size(), options);
    if (!verifier.VerifySizePrefixedBuffer<wire::Packet>(kDiscoveryId))
        return malformed("not a well-formed 'SDSC' FlatBuffer");
    const auto* packet = flatbuffers::GetSizePrefixedRoot<wire::Packet>(plaintext.data());
    DiscoveryMessage m;
    switch (packet->kind()) {
        case wire::Kind::beacon:
            m.kind = DiscoveryKind::beacon;
            return read_beacon(*packet, std::move(m));
        case wire::Kind::certificate_request:
            m.kind = DiscoveryKind::certificate_request;
            return read_request(*packet, std::move(m));
        case wire::Kind::certificates:
            m.kind = DiscoveryKind::certificates;
            return read_answer(*packet, std::move(m));
        case wire::Kind::revocations:
            m.kind = DiscoveryKind::revocations;
            return read_revocations(*packet, std::move(m));
        case wire::Kind::revocation_summary:
            m.kind = DiscoveryKind::revocation_summary;
            return read_summary(*packet, std::move(m));
        default:
            return malformed("unknown kind");
    }
}

}  // namespace starling::runtime

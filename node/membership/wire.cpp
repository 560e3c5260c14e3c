// Encoding and decoding membership messages; the only file that sees the generated code.
#include "node/membership/wire.hpp"

#include <cassert>
#include <cstring>

#include "node/membership/limits.hpp"
#include "protocol/limits.hpp"
#include "protocol/membership_generated.h"

namespace starling::membership::detail {

namespace fbs = starling::wire::membership;

static_assert(sizeof(fbs::SignedRecord) == limits::kSignedRecordWireBytes);
static_assert(sizeof(fbs::Accusation) == limits::kAccusationWireBytes);
static_assert(sizeof(fbs::Digest) == limits::kDigestWireBytes);
static_assert(sizeof(fbs::Id) == limits::kIdWireBytes);
static_assert(static_cast<int>(fbs::Body::Ping) == static_cast<int>(MessageKind::ping));
static_assert(static_cast<int>(fbs::Body::Sync) == static_cast<int>(MessageKind::sync));

namespace {

fbs::Id to_wire(const DeviceId& id) { return fbs::Id(flatbuffers::span<const std::uint8_t, 16>(id)); }

fbs::Address to_wire(const PeerAddress& address) {
    return fbs::Address(flatbuffers::span<const std::uint8_t, 16>(address.bytes()), address.port(),
                        static_cast<std::uint8_t>(address.kind()));
}

DeviceId from_wire(const fbs::Id& id) {
    DeviceId out{};
    std::memcpy(out.data(), id.bytes()->Data(), out.size());
    return out;
}

std::optional<PeerAddress> from_wire(const fbs::Address& address) {
    PeerAddress::Bytes bytes{};
    std::memcpy(bytes.data(), address.bytes()->Data(), bytes.size());
    return PeerAddress::from_wire(address.kind(), bytes, address.port());
}

bool valid_state(std::uint8_t state) { return state <= static_cast<std::uint8_t>(MemberState::left); }

template <class T>
std::size_t length(const flatbuffers::Vector<const T*>* vector) {
    return vector == nullptr ? 0 : vector->size();
}

}  // namespace

const char* to_string(MessageKind kind) noexcept {
    switch (kind) {
        case MessageKind::ping: return "ping";
        case MessageKind::ack: return "ack";
        case MessageKind::nack: return "nack";
        case MessageKind::ping_req: return "ping_req";
        case MessageKind::gossip: return "gossip";
        case MessageKind::sync: return "sync";
    }
    return "?";
}

void Message::clear() {
    kind = MessageKind::gossip;
    seq = 0;
    target = {};
    target_address = {};
    sync_flags = 0;
    summary = 0;
    digests.clear();
    wants.clear();
    records.clear();
    accusations.clear();
}

std::size_t Message::entry_bytes() const noexcept {
    return records.size() * limits::kSignedRecordWireBytes +
           accusations.size() * limits::kAccusationWireBytes +
           digests.size() * limits::kDigestWireBytes + wants.size() * limits::kIdWireBytes;
}

struct Codec::State {
    flatbuffers::FlatBufferBuilder builder{limits::kMaxMessageBytes};
    std::vector<std::uint64_t> aligned;  // received bytes, copied to 8-byte alignment
};

Codec::Codec() : state_(std::make_unique<State>()) {}
Codec::~Codec() = default;
Codec::Codec(Codec&&) noexcept = default;
Codec& Codec::operator=(Codec&&) noexcept = default;

// ---- Encoding. ----

namespace {

template <class Wire, class Plain, class Convert>
flatbuffers::Offset<flatbuffers::Vector<const Wire*>> struct_vector(
    flatbuffers::FlatBufferBuilder& builder, const std::vector<Plain>& items, Convert convert) {
    if (items.empty()) return 0;
    // Not CreateUninitializedVectorOfStructs: FlatBuffers 2.0 (Debian 12) aligns that vector to
    // the struct's size (112 bytes for a record), not its alignment, and the padding pushed full
    // messages past the datagram (kPacketOverheadBytes is the bound that padding broke).
    std::vector<Wire> wire;
    wire.reserve(items.size());
    for (const Plain& item : items) wire.push_back(convert(item));
    return builder.CreateVectorOfStructs(wire.data(), wire.size());
}

flatbuffers::Offset<void> encode_body(flatbuffers::FlatBufferBuilder& b, const Message& m) {
    switch (m.kind) {
        case MessageKind::ping: {
            const fbs::Id target = to_wire(m.target);
            return fbs::CreatePing(b, m.seq, &target).Union();
        }
        case MessageKind::ack: return fbs::CreateAck(b, m.seq).Union();
        case MessageKind::nack: return fbs::CreateNack(b, m.seq).Union();
        case MessageKind::ping_req: {
            const fbs::Id target = to_wire(m.target);
            const fbs::Address address = to_wire(m.target_address);
            return fbs::CreatePingReq(b, m.seq, &target, &address).Union();
        }
        case MessageKind::gossip: return fbs::CreateGossip(b).Union();
        case MessageKind::sync: {
            const auto digests = struct_vector<fbs::Digest>(b, m.digests, [](const Digest& d) {
                return fbs::Digest(d.incarnation, to_wire(d.id), static_cast<std::uint8_t>(d.state));
            });
            const auto wants = struct_vector<fbs::Id>(
                b, m.wants, [](const DeviceId& id) { return to_wire(id); });
            return fbs::CreateSync(b, m.sync_flags, digests, wants, m.summary).Union();
        }
    }
    return 0;
}

}  // namespace

std::vector<std::uint8_t> Codec::encode(const Message& m) {
    assert(m.entry_bytes() <= limits::kPacketPayloadBytes);
    auto& b = state_->builder;
    b.Clear();
    const auto records = struct_vector<fbs::SignedRecord>(b, m.records, [](const SignedRecord& r) {
        return fbs::SignedRecord(r.incarnation, to_wire(r.id), to_wire(r.address),
                                 static_cast<std::uint8_t>(r.state),
                                 flatbuffers::span<const std::uint8_t, 64>(r.signature));
    });
    const auto accusations =
        struct_vector<fbs::Accusation>(b, m.accusations, [](const Accusation& a) {
            return fbs::Accusation(a.incarnation, to_wire(a.id), to_wire(a.accuser),
                                   static_cast<std::uint8_t>(a.state), a.refused ? 1 : 0);
        });
    const auto body = encode_body(b, m);
    const auto packet =
        fbs::CreatePacket(b, static_cast<fbs::Body>(m.kind), body, records, accusations);
    b.FinishSizePrefixed(packet, fbs::PacketIdentifier());
    assert(b.GetSize() <= limits::kMaxMessageBytes);
    return {b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize()};
}

// ---- Decoding untrusted bytes. ----

namespace {

bool decode_entries(const fbs::Packet& p, Message& out) {
    if (length(p.records()) > limits::kMaxRecordsPerMessage ||
        length(p.accusations()) > limits::kMaxAccusationsPerMessage)
        return false;
    if (p.records() != nullptr) {
        for (const fbs::SignedRecord* r : *p.records()) {
            const auto address = from_wire(r->address());
            const auto state = r->state();
            if (!address || (state != static_cast<std::uint8_t>(MemberState::alive) &&
                             state != static_cast<std::uint8_t>(MemberState::left)))
                return false;
            SignedRecord& record = out.records.emplace_back();
            record.id = from_wire(r->id());
            record.incarnation = r->incarnation();
            record.state = static_cast<MemberState>(state);
            record.address = *address;
            std::memcpy(record.signature.data(), r->signature()->Data(), record.signature.size());
        }
    }
    if (p.accusations() != nullptr) {
        for (const fbs::Accusation* a : *p.accusations()) {
            const auto state = a->state();
            if ((state != static_cast<std::uint8_t>(MemberState::suspect) &&
                 state != static_cast<std::uint8_t>(MemberState::dead)) ||
                a->refused() > 1)
                return false;
            out.accusations.push_back(Accusation{from_wire(a->id()), a->incarnation(),
                                                 static_cast<MemberState>(state),
                                                 from_wire(a->accuser()), a->refused() == 1});
        }
    }
    return true;
}

bool decode_sync(const fbs::Sync& s, Message& out) {
    if ((s.flags() & ~kSyncKnownFlags) != 0 || length(s.digests()) > limits::kMaxDigestsPerMessage ||
        length(s.wants()) > limits::kMaxWantsPerMessage)
        return false;
    out.sync_flags = s.flags();
    out.summary = s.summary();
    if (s.digests() != nullptr) {
        for (const fbs::Digest* d : *s.digests()) {
            if (!valid_state(d->state())) return false;
            out.digests.push_back(
                Digest{from_wire(d->id()), d->incarnation(), static_cast<MemberState>(d->state())});
        }
    }
    if (s.wants() != nullptr)
        for (const fbs::Id* id : *s.wants()) out.wants.push_back(from_wire(*id));
    return true;
}

bool decode_body(const fbs::Packet& p, Message& out) {
    switch (p.body_type()) {
        case fbs::Body::Ping:
            out.kind = MessageKind::ping;
            out.seq = p.body_as_Ping()->seq();
            out.target = from_wire(*p.body_as_Ping()->target());
            return true;
        case fbs::Body::Ack:
            out.kind = MessageKind::ack;
            out.seq = p.body_as_Ack()->seq();
            return true;
        case fbs::Body::Nack:
            out.kind = MessageKind::nack;
            out.seq = p.body_as_Nack()->seq();
            return true;
        case fbs::Body::PingReq: {
            const auto* req = p.body_as_PingReq();
            const auto address = from_wire(*req->target_address());
            if (!address) return false;
            out.kind = MessageKind::ping_req;
            out.seq = req->seq();
            out.target = from_wire(*req->target());
            out.target_address = *address;
            return true;
        }
        case fbs::Body::Gossip: out.kind = MessageKind::gossip; return true;
        case fbs::Body::Sync: out.kind = MessageKind::sync; return decode_sync(*p.body_as_Sync(), out);
        default: return false;
    }
}

}  // namespace

DecodeStatus Codec::decode(std::span<const std::uint8_t> bytes, Message& out) {
    out.clear();
    if (bytes.size() > limits::kMaxMessageBytes) return DecodeStatus::oversized;
    if (bytes.size() < 2 * sizeof(flatbuffers::uoffset_t)) return DecodeStatus::malformed;
    // The Verifier checks alignment against the buffer start: give it an 8-aligned copy.
    auto& aligned = state_->aligned;
    aligned.assign((bytes.size() + 7) / 8, 0);
    std::memcpy(aligned.data(), bytes.data(), bytes.size());
    const auto* data = reinterpret_cast<const std::uint8_t*>(aligned.data());

    flatbuffers::Verifier::Options options;
    options.max_depth = starling::limits::kFlatbuffersMaxDepth;
    options.max_tables = limits::kMaxTablesPerMessage;
    flatbuffers::Verifier verifier(data, bytes.size(), options);
    if (!verifier.VerifySizePrefixedBuffer<fbs::Packet>(fbs::PacketIdentifier()))
        return DecodeStatus::malformed;
    // One encoding per message: the size prefix covers every byte that arrived.
    if (flatbuffers::GetPrefixedSize(data) + sizeof(flatbuffers::uoffset_t) != bytes.size())
        return DecodeStatus::malformed;
    const fbs::Packet& packet = *fbs::GetSizePrefixedPacket(data);
    if (!decode_body(packet, out) || !decode_entries(packet, out)) {
        out.clear();
        return DecodeStatus::malformed;
    }
    return DecodeStatus::ok;
}

}  // namespace starling::membership::detail

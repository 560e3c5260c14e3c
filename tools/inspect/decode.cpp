#include "tools/inspect/decode.hpp"

#include <sodium.h>

#include <algorithm>

#include "crypto/datagram.hpp"
#include "crypto/sodium.hpp"
#include "node/membership/wire.hpp"
#include "node/runtime/discovery_wire.hpp"
#include "node/runtime/peer_table.hpp"

namespace starling::inspect {
namespace {

using membership::detail::MessageKind;

// The capture's time, not the host's: certificates and key epochs are judged when sent.
class CaptureClock final : public runtime::Clock {
public:
    membership::Time now() const override { return membership::Time(unix_us); }
    std::uint64_t unix_seconds() const override { return unix_us / 1'000'000; }
    std::uint64_t unix_us = 0;
};

class RingKeys final : public crypto::EpochKeys {
public:
    explicit RingKeys(const crypto::NetworkKeyRing& ring) : ring_(ring) {}
    const crypto::SymmetricKey* network_key(std::uint32_t epoch, std::uint64_t now) const noexcept override {
        const crypto::NetworkKeyEpoch* e = ring_.accept(epoch, now);
        return e == nullptr ? nullptr : &e->key;
    }

private:
    const crypto::NetworkKeyRing& ring_;
};

// The table's peers plus this device itself: what opens datagrams this device sent.
class WithSelf final : public crypto::PeerDirectory {
public:
    WithSelf(const runtime::PeerTable& table, const crypto::Certificate& own) : table_(table), own_(own) {}
    std::optional<crypto::KxPublicKey> kx_key(const crypto::DeviceId& device) const override {
        if (device == own_.device) return own_.kx_key;
        return table_.kx_key(device);
    }
    std::optional<crypto::SignPublicKey> sign_key(const crypto::DeviceId& device,
                                                  std::span<const std::uint8_t> plaintext) const override {
        if (device == own_.device) return own_.sign_key;
        return table_.sign_key(device, plaintext);
    }

private:
    const runtime::PeerTable& table_;
    const crypto::Certificate& own_;
};


std::string endpoint_text(const std::array<std::uint8_t, 4>& ip, std::uint16_t port) {
    return ip_text(ip) + ':' + std::to_string(port);
}

}  // namespace

struct CaptureDecoder::State {
    explicit State(crypto::EnrollmentBundle b)
        : bundle(std::move(b)),
          sign{bundle.certificate.sign_key, std::move(bundle.sign_secret)},
          kx{bundle.certificate.kx_key, std::move(bundle.kx_secret)},
          keys(bundle.network_keys),
          table(bundle.cluster, bundle.owner_key, bundle.certificate, sign, clock),
          with_self(table, bundle.certificate),
          opener(crypto::LocalDevice{bundle.cluster, bundle.certificate.device, &kx, &sign}, keys, table),
          mirror(crypto::LocalDevice{bundle.cluster, mirror_id(bundle.certificate.device), &kx, &sign},
                 keys, with_self) {}

    static crypto::DeviceId mirror_id(crypto::DeviceId id) {
        id[0] ^= 0xFF;  // any id but ours: lets the mirror open what we sealed to the cluster
        return id;
    }

    std::string name_of(const crypto::DeviceId& id) const {
        return id == bundle.certificate.device ? bundle.certificate.name : table.name_of(id);
    }
    std::string name_at(const std::string& address) const {
        auto it = addresses.find(address);
        return it == addresses.end() ? address : name_of(it->second) + " (" + address + ")";
    }

    void open_own_to_peer(std::span<const std::uint8_t> datagram, const DatagramHeader& header,
                          const std::string& to, DecodedDatagram& out);
    void describe(std::span<const std::uint8_t> plaintext, const std::string& from, DecodedDatagram& out);

    crypto::EnrollmentBundle bundle;
    crypto::SignKeyPair sign;
    crypto::KxKeyPair kx;
    CaptureClock clock;
    RingKeys keys;
    runtime::PeerTable table;
    WithSelf with_self;
    crypto::DatagramCrypto opener;  // as this device receives
    crypto::DatagramCrypto mirror;  // this device's own to_cluster datagrams
    std::map<std::string, crypto::DeviceId> addresses;  // learned from beacons and records
    membership::detail::Codec codec;
    membership::detail::Message message;
};

void CaptureDecoder::State::open_own_to_peer(std::span<const std::uint8_t> datagram,
                                             const DatagramHeader& header, const std::string& to,
                                             DecodedDatagram& out) {
    auto peer = addresses.find(to);
    const crypto::SymmetricKey* network_key = keys.network_key(header.epoch, clock.unix_seconds());
    std::optional<crypto::KxPublicKey> peer_kx;
    if (peer != addresses.end()) peer_kx = table.kx_key(peer->second);
    if (!peer_kx || network_key == nullptr) {
        out.outcome = "sealed by this device to " + to + ", peer certificate not seen yet";
        return;
    }
    const crypto::LocalDevice self{bundle.cluster, bundle.certificate.device, &kx, &sign};
    const auto pairwise =
        crypto::derive_pairwise_keys(self, peer->second, *peer_kx, header.epoch, *network_key);
    const auto body = datagram.subspan(kDatagramHeaderBytes);
    if (!pairwise || body.size() < crypto::kDatagramMacBytes) {
        out.outcome = "refused: malformed";
        return;
    }
    std::vector<std::uint8_t> plaintext(body.size() - crypto::kDatagramMacBytes);
    unsigned long long plaintext_size = 0;
    const std::uint8_t* nonce = datagram.data() + kDatagramNonceOffset;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(
            plaintext.data(), &plaintext_size, nullptr, body.data(), body.size(), datagram.data(),
            kDatagramHeaderBytes, nonce, pairwise->send.bytes().data()) != 0) {
        out.outcome = "refused: bad_mac (sealed by this device, not to " + name_at(to) + ")";
        return;
    }
    plaintext.resize(static_cast<std::size_t>(plaintext_size));
    out.opened = true;
    out.outcome = "opened";
    describe(plaintext, out.from, out);
}

void CaptureDecoder::State::describe(std::span<const std::uint8_t> plaintext,
                                     const std::string& from, DecodedDatagram& out) {
    switch (runtime::channel_of(plaintext)) {
        case runtime::Channel::membership: {
            out.channel = "membership";
            if (codec.decode(plaintext, message) != membership::detail::DecodeStatus::ok) {
                out.kind = "malformed";
                return;
            }
            const auto& m = message;
            out.kind = membership::detail::to_string(m.kind);
            if (m.kind == MessageKind::ping || m.kind == MessageKind::ping_req ||
                m.kind == MessageKind::ack || m.kind == MessageKind::nack)
                out.details.push_back("seq " + std::to_string(m.seq));
            if (m.kind == MessageKind::ping || m.kind == MessageKind::ping_req)
                out.details.push_back("target " + name_of(m.target) +
                                      (m.target_address.empty() ? "" : " at " + m.target_address.to_string()));
            if (m.kind == MessageKind::sync) {
                std::string flags;
                if (m.sync_flags & membership::detail::kSyncJoin) flags += " join";
                if (m.sync_flags & membership::detail::kSyncReply) flags += " reply";
                if (m.sync_flags & membership::detail::kSyncJoinAnswer) flags += " join-answer";
                if (m.sync_flags & membership::detail::kSyncSummary)
                    flags += " summary " + std::to_string(m.summary);
                out.details.push_back("sync" + (flags.empty() ? std::string(" -") : flags) + ", " +
                                      std::to_string(m.digests.size()) + " digests, " +
                                      std::to_string(m.wants.size()) + " wants");
            }
            for (const membership::SignedRecord& r : m.records) {
                out.details.push_back("record " + name_of(r.id) + " " + membership::to_string(r.state) +
                                      " incarnation " + std::to_string(r.incarnation) + " at " +
                                      r.address.to_string());
                if (r.address.kind() == membership::PeerAddress::Kind::ipv4) addresses[r.address.to_string()] = r.id;
            }
            for (const membership::Accusation& a : m.accusations)
                out.details.push_back("accusation " + name_of(a.id) + " " + membership::to_string(a.state) +
                                      " incarnation " + std::to_string(a.incarnation) + " by " +
                                      name_of(a.accuser) + (a.refused ? " (refused by host)" : ""));
            return;
        }
        case runtime::Channel::discovery: {
            out.channel = "discovery";
            Result<runtime::DiscoveryMessage> d = runtime::decode_discovery(plaintext);
            if (!d) {
                out.kind = "malformed";
                out.details.push_back(d.error().message);
                return;
            }
            switch (d->kind) {
                case runtime::DiscoveryKind::beacon: {
                    out.kind = "beacon";
                    Result<crypto::Certificate> cert = crypto::decode_certificate(d->beacon.certificate);
                    // This device's own certificate is not a peer's: never "learned", never refused.
                    const bool own = cert && cert->device == bundle.certificate.device;
                    const bool learned =
                        own || table.learn(d->beacon.certificate) != runtime::PeerTable::Learned::refused;
                    std::string flags;
                    if (d->beacon.flags & runtime::kBeaconSeeking) flags += " seeking";
                    if (d->beacon.flags & runtime::kBeaconAnswerMe) flags += " answer-me";
                    if (d->beacon.flags & runtime::kBeaconDirect) flags += " direct";
                    out.details.push_back("listens at " + d->beacon.address.to_string() +
                                          (flags.empty() ? "" : ", flags" + flags));
                    if (cert) {
                        addresses[d->beacon.address.to_string()] = cert->device;
                        out.details.push_back(std::string("certificate ") + cert->name + " role " +
                                              crypto::to_string(cert->role) +
                                              (learned ? "" : " (refused)"));
                    }
                    break;
                }
                case runtime::DiscoveryKind::certificate_request:
                    out.kind = "certificate_request";
                    for (const crypto::DeviceId& id : d->wants) out.details.push_back("wants " + name_of(id));
                    break;
                case runtime::DiscoveryKind::certificates:
                    out.kind = "certificates";
                    for (const auto& bytes : d->certificates) {
                        Result<crypto::Certificate> cert = crypto::decode_certificate(bytes);
                        const bool learned = (cert && cert->device == bundle.certificate.device) ||
                                             table.learn(bytes) != runtime::PeerTable::Learned::refused;
                        out.details.push_back(cert ? "certificate " + cert->name + (learned ? "" : " (refused)")
                                                   : "certificate (malformed)");
                    }
                    break;
                case runtime::DiscoveryKind::revocations:
                    out.kind = "revocations";
                    for (const auto& bytes : d->revocations) {
                        Result<crypto::Revocation> r = crypto::decode_revocation(bytes);
                        const bool valid =
                            r && crypto::verify_revocation(*r, bundle.owner_key, bundle.cluster).ok();
                        out.details.push_back(r ? "revokes " + r->name + (valid ? "" : " (not the owner's)")
                                                : "revocation (malformed)");
                    }
                    break;
                case runtime::DiscoveryKind::revocation_summary:
                    out.kind = "revocation_summary";
                    out.details.push_back("summary " + std::to_string(d->summary) +
                                          ((d->summary_flags & runtime::kSummaryAnswer) != 0 ? " (answer)" : ""));
                    break;
            }
            (void)from;
            return;
        }
        case runtime::Channel::unknown:
            out.channel = "unknown";
            out.kind = "unknown";
            return;
    }
}

CaptureDecoder::CaptureDecoder(std::unique_ptr<State> state) : state_(std::move(state)) {}
CaptureDecoder::~CaptureDecoder() = default;
CaptureDecoder::CaptureDecoder(CaptureDecoder&&) noexcept = default;
CaptureDecoder& CaptureDecoder::operator=(CaptureDecoder&&) noexcept = default;

Result<CaptureDecoder> CaptureDecoder::create(crypto::EnrollmentBundle bundle) {
    crypto::ensure_initialized();
    return CaptureDecoder(std::make_unique<State>(std::move(bundle)));
}

const std::string& CaptureDecoder::self_name() const { return state_->bundle.certificate.name; }

DecodedDatagram CaptureDecoder::decode(const PcapFrame& frame, const UdpDatagram& udp) {
    State& s = *state_;
    s.clock.unix_us = frame.unix_us;
    DecodedDatagram out;
    out.frame = frame.index;
    out.unix_us = frame.unix_us;
    out.from = endpoint_text(udp.source_ip, udp.source_port);
    out.to = endpoint_text(udp.destination_ip, udp.destination_port);
    out.bytes = udp.payload.size();
    DatagramResult<DatagramHeader> header = parse_datagram_header(udp.payload);
    if (!header) {
        out.outcome = std::string("not starling (") + to_string(header.drop()) + ")";
        return out;
    }
    const bool to_cluster = header->kind == DatagramKind::to_cluster;
    out.seal = to_cluster ? "to_cluster" : "to_peer";
    out.sender = s.name_of(header->sender);
    const bool from_self = header->sender == s.bundle.certificate.device;
    if (from_self && !to_cluster) {
        s.open_own_to_peer(udp.payload, header.value(), out.to, out);
        return out;
    }
    DatagramResult<crypto::OpenedDatagram> opened =
        (from_self ? s.mirror : s.opener).open(udp.payload, s.clock.unix_seconds());
    if (!opened) {
        const DatagramDrop drop = opened.drop();
        if (!to_cluster && drop == DatagramDrop::bad_mac)
            out.outcome = "sealed to peer " + s.name_at(out.to) + ", cannot open";
        else if (drop == DatagramDrop::unknown_sender)
            out.outcome = "refused: unknown_sender (no certificate of " + out.sender + " seen yet)";
        else
            out.outcome = std::string("refused: ") + to_string(drop);
        return out;
    }
    out.opened = true;
    out.outcome = "opened";
    s.describe(opened->plaintext, out.from, out);
    out.sender = s.name_of(header->sender);  // a beacon may just have taught its certificate
    // A sender heard from: its address is where it speaks from.
    if (out.channel == "membership") s.addresses.emplace(out.from, header->sender);
    return out;
}

}  // namespace starling::inspect

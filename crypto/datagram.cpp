#include "crypto/datagram.hpp"

#include <sodium.h>

#include <algorithm>
#include <array>
#include <cassert>
#include <initializer_list>
#include <string>
#include <string_view>

#include "crypto/sodium.hpp"

namespace starling::crypto {
namespace {

// Domain labels: each derived key and signature is bound to its one purpose.
constexpr std::string_view kPairKeyLabel = "starling datagram v1 pair key";
constexpr std::string_view kClusterKeyLabel = "starling datagram v1 cluster key";
constexpr std::string_view kSignatureLabel = "starling datagram v1 cluster signature";

constexpr std::size_t kNonceBytes = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
constexpr std::size_t kMaxSignedBytes = kSignatureLabel.size() + limits::kMaxDatagramBytes;
// Cluster keys cached at once: live epochs overlap by one or two; cleared whole when full.
constexpr std::size_t kClusterKeyEpochs = 8;

static_assert(kDatagramNonceOffset + kNonceBytes == kDatagramHeaderBytes);
static_assert(kDatagramMacBytes == crypto_aead_xchacha20poly1305_ietf_ABYTES);
static_assert(kSymmetricKeyBytes == crypto_aead_xchacha20poly1305_ietf_KEYBYTES);
static_assert(kSymmetricKeyBytes == crypto_generichash_BYTES);
static_assert(kSymmetricKeyBytes <= crypto_generichash_KEYBYTES_MAX);
static_assert(kSignatureBytes == crypto_sign_BYTES);
static_assert(kKxSecretKeyBytes == crypto_scalarmult_SCALARBYTES);
static_assert(kDeviceIdBytes == kDatagramSenderBytes && kClusterIdBytes == kDatagramClusterIdBytes);

using Bytes = std::span<const std::uint8_t>;

Bytes as_bytes(std::string_view text) {
    return {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()};
}

std::array<std::uint8_t, 4> le32(std::uint32_t value) {
    return {static_cast<std::uint8_t>(value), static_cast<std::uint8_t>(value >> 8),
            static_cast<std::uint8_t>(value >> 16), static_cast<std::uint8_t>(value >> 24)};
}

// BLAKE2b-256 keyed with `key` over the concatenation of `parts`.
void keyed_hash(std::span<std::uint8_t, kSymmetricKeyBytes> out, const SymmetricKey& key,
                std::initializer_list<Bytes> parts) {
    crypto_generichash_state state;
    crypto_generichash_init(&state, key.bytes().data(), key.size(), out.size());
    for (const Bytes part : parts) crypto_generichash_update(&state, part.data(), part.size());
    crypto_generichash_final(&state, out.data(), out.size());
    sodium_memzero(&state, sizeof state);
}

bool aead_seal(std::span<std::uint8_t> out, Bytes plaintext, Bytes header,
               const SymmetricKey& key) {
    unsigned long long written = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(
        out.data(), &written, plaintext.data(), plaintext.size(), header.data(), header.size(),
        nullptr, header.subspan(kDatagramNonceOffset, kNonceBytes).data(), key.bytes().data());
    return written == out.size();
}

// Plaintext length, or nullopt if the tag does not authenticate body and header under `key`.
std::optional<std::size_t> aead_open(std::span<std::uint8_t> out, Bytes body, Bytes header,
                                     const SymmetricKey& key) {
    unsigned long long written = 0;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(
            out.data(), &written, nullptr, body.data(), body.size(), header.data(), header.size(),
            header.subspan(kDatagramNonceOffset, kNonceBytes).data(), key.bytes().data()) != 0)
        return std::nullopt;
    return static_cast<std::size_t>(written);
}

// What a to_cluster signature covers: label || header || plaintext, in `buffer`.
Bytes signed_message(std::array<std::uint8_t, kMaxSignedBytes>& buffer, Bytes header,
                     Bytes plaintext) {
    auto at = std::copy(kSignatureLabel.begin(), kSignatureLabel.end(), buffer.begin());
    at = std::copy(header.begin(), header.end(), at);
    at = std::copy(plaintext.begin(), plaintext.end(), at);
    return {buffer.data(), static_cast<std::size_t>(at - buffer.begin())};
}

Error plaintext_too_large(std::size_t size, std::size_t max) {
    return make_error(ErrorCode::too_large, "datagram plaintext of " + std::to_string(size) +
                                                " bytes, at most " + std::to_string(max) + " fit");
}

Error no_epoch(std::uint32_t epoch) {
    return make_error(ErrorCode::not_found, "no network key for epoch " + std::to_string(epoch));
}

}  // namespace

std::optional<PairwiseKeys> derive_pairwise_keys(const LocalDevice& self, const DeviceId& peer,
                                                 const KxPublicKey& peer_kx, std::uint32_t epoch,
                                                 const SymmetricKey& network_key) {
    ensure_initialized();
    SymmetricKey shared;
    if (crypto_scalarmult(shared.bytes().data(), self.kx->secret_key.bytes().data(),
                          peer_kx.data()) != 0)
        return std::nullopt;  // low-order point: the "shared" secret would be public
    const auto epoch_le = le32(epoch);
    const auto derive = [&](SymmetricKey& out, const DeviceId& from, const DeviceId& to,
                            const KxPublicKey& from_kx, const KxPublicKey& to_kx) {
        keyed_hash(out.bytes(), network_key,
                   {as_bytes(kPairKeyLabel), self.cluster, epoch_le, from, to, from_kx, to_kx,
                    shared.bytes()});
    };
    PairwiseKeys keys;
    derive(keys.send, self.device, peer, self.kx->public_key, peer_kx);
    derive(keys.receive, peer, self.device, peer_kx, self.kx->public_key);
    return keys;
}

SymmetricKey derive_cluster_datagram_key(const ClusterId& cluster, std::uint32_t epoch,
                                         const SymmetricKey& network_key) {
    ensure_initialized();
    SymmetricKey key;
    keyed_hash(key.bytes(), network_key, {as_bytes(kClusterKeyLabel), cluster, le32(epoch)});
    return key;
}

DatagramCrypto::DatagramCrypto(const LocalDevice& self, const EpochKeys& epochs,
                               const PeerDirectory& peers, VerifyBudget budget)
    : self_(self),
      tag_(cluster_tag(self.cluster)),
      epochs_(epochs),
      peers_(peers),
      replay_(limits::kMaxReplayWindows),
      budget_(budget) {
    ensure_initialized();
}

const PairwiseKeys* DatagramCrypto::pairwise(const DeviceId& peer, const KxPublicKey& peer_kx,
                                             std::uint32_t epoch, const SymmetricKey& network_key) {
    const auto key = std::pair{peer, epoch};
    auto found = pairwise_.find(key);
    if (found != pairwise_.end() && found->second.peer_kx == peer_kx) {
        found->second.last_used = ++pairwise_uses_;
        return &found->second.keys;
    }
    auto derived = derive_pairwise_keys(self_, peer, peer_kx, epoch, network_key);
    if (!derived) return nullptr;
    if (found != pairwise_.end()) {
        pairwise_.erase(found);  // the peer has a new certificate
    } else if (pairwise_.size() >= limits::kMaxPairwiseKeyEntries) {
        pairwise_.erase(std::min_element(
            pairwise_.begin(), pairwise_.end(),
            [](const auto& a, const auto& b) { return a.second.last_used < b.second.last_used; }));
    }
    const auto inserted =
        pairwise_.emplace(key, PairwiseEntry{peer_kx, std::move(*derived), ++pairwise_uses_});
    return &inserted.first->second.keys;
}

const SymmetricKey& DatagramCrypto::cluster_key(std::uint32_t epoch,
                                                const SymmetricKey& network_key) {
    if (const auto found = cluster_keys_.find(epoch); found != cluster_keys_.end())
        return found->second;
    if (cluster_keys_.size() >= kClusterKeyEpochs) cluster_keys_.clear();
    return cluster_keys_
        .emplace(epoch, derive_cluster_datagram_key(self_.cluster, epoch, network_key))
        .first->second;
}

Result<std::vector<std::uint8_t>> DatagramCrypto::seal_to_peer(const DeviceId& peer,
                                                               std::uint32_t epoch,
                                                               std::uint64_t counter,
                                                               Bytes plaintext,
                                                               std::uint64_t now_unix_seconds) {
    if (plaintext.size() > kMaxPeerPlaintextBytes)
        return plaintext_too_large(plaintext.size(), kMaxPeerPlaintextBytes);
    if (peer == self_.device)
        return make_error(ErrorCode::invalid_argument, "a datagram to ourselves");
    const SymmetricKey* network_key = epochs_.network_key(epoch, now_unix_seconds);
    if (network_key == nullptr) return no_epoch(epoch);
    const auto peer_kx = peers_.kx_key(peer);
    if (!peer_kx)
        return make_error(ErrorCode::not_found, "no certificate for peer " + to_hex(peer));
    const PairwiseKeys* keys = pairwise(peer, *peer_kx, epoch, *network_key);
    if (keys == nullptr)
        return make_error(ErrorCode::invalid_argument, "low-order kx key for " + to_hex(peer));

    std::vector<std::uint8_t> datagram(kDatagramHeaderBytes + plaintext.size() + kDatagramMacBytes);
    const auto header = std::span(datagram).first<kDatagramHeaderBytes>();
    encode_datagram_header({DatagramKind::to_peer, tag_, epoch, self_.device, counter}, header);
    const bool sealed =
        aead_seal(std::span(datagram).subspan(kDatagramHeaderBytes), plaintext, header, keys->send);
    assert(sealed);
    (void)sealed;
    return datagram;
}

Result<std::vector<std::uint8_t>> DatagramCrypto::seal_to_cluster(std::uint32_t epoch,
                                                                  std::uint64_t counter,
                                                                  Bytes plaintext,
                                                                  std::uint64_t now_unix_seconds) {
    if (plaintext.size() > kMaxClusterPlaintextBytes)
        return plaintext_too_large(plaintext.size(), kMaxClusterPlaintextBytes);
    const SymmetricKey* network_key = epochs_.network_key(epoch, now_unix_seconds);
    if (network_key == nullptr) return no_epoch(epoch);

    std::vector<std::uint8_t> datagram(kDatagramHeaderBytes + plaintext.size() + kSignatureBytes +
                                       kDatagramMacBytes);
    const auto header = std::span(datagram).first<kDatagramHeaderBytes>();
    encode_datagram_header({DatagramKind::to_cluster, tag_, epoch, self_.device, counter}, header);

    // Inner plaintext: plaintext || Ed25519 signature, so only members see who signed what.
    std::array<std::uint8_t, kMaxSignedBytes> scratch;
    const Bytes message = signed_message(scratch, header, plaintext);
    std::array<std::uint8_t, limits::kMaxDatagramBytes> inner;
    std::copy(plaintext.begin(), plaintext.end(), inner.begin());
    crypto_sign_detached(inner.data() + plaintext.size(), nullptr, message.data(), message.size(),
                         self_.sign->secret_key.bytes().data());
    const bool sealed = aead_seal(std::span(datagram).subspan(kDatagramHeaderBytes),
                                  Bytes(inner).first(plaintext.size() + kSignatureBytes), header,
                                  cluster_key(epoch, *network_key));
    assert(sealed);
    (void)sealed;
    return datagram;
}

DatagramResult<OpenedDatagram> DatagramCrypto::open(Bytes datagram,
                                                    std::uint64_t now_unix_seconds) {
    auto parsed = parse_datagram_header(datagram);  // size cap first, then the fixed fields
    if (!parsed) return parsed.drop();
    const DatagramHeader& header = parsed.value();
    const bool to_cluster = header.kind == DatagramKind::to_cluster;
    const std::size_t min_body = kDatagramMacBytes + (to_cluster ? kSignatureBytes : 0);
    if (datagram.size() < kDatagramHeaderBytes + min_body) return DatagramDrop::malformed;
    if (header.cluster_tag != tag_) return DatagramDrop::foreign_cluster;
    if (header.sender == self_.device) return DatagramDrop::from_self;
    const SymmetricKey* network_key = epochs_.network_key(header.epoch, now_unix_seconds);
    if (network_key == nullptr) return DatagramDrop::unknown_epoch;

    auto verdict = replay_.check(header.sender, header.epoch, header.counter);
    if (verdict == ReplayWindows::Verdict::table_full) {
        replay_.forget_epochs_where([&](std::uint32_t epoch) {
            return epochs_.network_key(epoch, now_unix_seconds) == nullptr;
        });
        verdict = replay_.check(header.sender, header.epoch, header.counter);
    }
    if (verdict == ReplayWindows::Verdict::replayed) return DatagramDrop::replayed;
    if (verdict == ReplayWindows::Verdict::table_full) return DatagramDrop::too_many_senders;

    const Bytes header_bytes = datagram.first(kDatagramHeaderBytes);
    const Bytes body = datagram.subspan(kDatagramHeaderBytes);
    std::array<std::uint8_t, limits::kMaxDatagramBytes> inner;  // no allocation before success
    std::optional<std::size_t> inner_size;
    if (!to_cluster) {
        const auto peer_kx = peers_.kx_key(header.sender);
        if (!peer_kx) return DatagramDrop::unknown_sender;
        const PairwiseKeys* keys = pairwise(header.sender, *peer_kx, header.epoch, *network_key);
        if (keys == nullptr) return DatagramDrop::unknown_sender;  // unusable certificate
        inner_size = aead_open(inner, body, header_bytes, keys->receive);
        if (!inner_size) return DatagramDrop::bad_mac;
    } else {
        inner_size = aead_open(inner, body, header_bytes, cluster_key(header.epoch, *network_key));
        if (!inner_size) return DatagramDrop::bad_mac;
        *inner_size -= kSignatureBytes;  // min_body guaranteed room for it
        if (!spend_verify(header.sender, now_unix_seconds)) return DatagramDrop::over_verify_budget;
        const Bytes plaintext = Bytes(inner).first(*inner_size);
        const auto sign_key = peers_.sign_key(header.sender, plaintext);
        if (!sign_key) return DatagramDrop::unknown_sender;
        std::array<std::uint8_t, kMaxSignedBytes> scratch;
        const Bytes message = signed_message(scratch, header_bytes, plaintext);
        if (crypto_sign_verify_detached(inner.data() + *inner_size, message.data(), message.size(),
                                        sign_key->data()) != 0)
            return DatagramDrop::bad_signature;
    }

    replay_.mark_seen(header.sender, header.epoch, header.counter);
    return OpenedDatagram{header,
                          std::vector<std::uint8_t>(inner.begin(), inner.begin() + *inner_size)};
}

bool DatagramCrypto::spend_verify(const DeviceId& sender, std::uint64_t now_unix_seconds) {
    if (now_unix_seconds != verify_second_) {  // a fixed window: the counts start over
        verify_second_ = now_unix_seconds;
        verifies_ = 0;
        verifies_by_sender_.clear();
    }
    if (verifies_ >= budget_.total) return false;
    std::uint32_t& mine = verifies_by_sender_[sender];
    if (mine >= budget_.per_sender) return false;
    ++mine;
    ++verifies_;
    return true;
}

void DatagramCrypto::forget_epoch(std::uint32_t epoch) {
    std::erase_if(pairwise_, [epoch](const auto& entry) { return entry.first.second == epoch; });
    cluster_keys_.erase(epoch);
    replay_.forget_epochs_where([epoch](std::uint32_t e) { return e == epoch; });
}

const SymmetricKey* EpochKeyList::network_key(std::uint32_t epoch, std::uint64_t) const noexcept {
    const auto found = keys_.find(epoch);
    return found == keys_.end() ? nullptr : &found->second;
}

std::optional<KxPublicKey> PeerList::kx_key(const DeviceId& device) const {
    const auto found = peers_.find(device);
    if (found == peers_.end()) return std::nullopt;
    return found->second.second;
}

std::optional<SignPublicKey> PeerList::sign_key(const DeviceId& device, Bytes) const {
    const auto found = peers_.find(device);
    if (found == peers_.end()) return std::nullopt;
    return found->second.first;
}

}  // namespace starling::crypto

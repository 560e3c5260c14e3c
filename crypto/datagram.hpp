#pragma once
// Sealed datagrams for beacons, membership and small control messages: only cluster members can
// read them, each names its sender truthfully, and none can be replayed. Sans-I/O: bytes, keys
// and counters in, bytes or a drop reason out; no sockets, no clocks, no randomness.
//
// to_peer:    XChaCha20-Poly1305 under a directional pairwise key,
//             BLAKE2b-256(key = network key of the epoch, label || cluster || epoch ||
//                         from id || to id || from kx || to kx || X25519(own kx, peer kx)).
//             A member forging another's sender id fails the MAC: it cannot compute that key.
// to_cluster: XChaCha20-Poly1305 under BLAKE2b-256(key = network key, label || cluster || epoch)
//             over plaintext || Ed25519(device sign key, label || header || plaintext).
//             Outsiders are stopped by the MAC; members posing as another by the signature.
// Both: the header is the associated data, nonce = sender id || counter (unique per sender, so
// ~100 senders may share the network key), body = ciphertext || 16-byte tag.

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "crypto/keys.hpp"
#include "crypto/replay_window.hpp"
#include "protocol/datagram.hpp"
#include "protocol/limits.hpp"
#include "protocol/limits.hpp"
#include "protocol/result.hpp"

namespace starling::crypto {

inline constexpr std::size_t kDatagramMacBytes = 16;  // Poly1305
inline constexpr std::size_t kMaxPeerPlaintextBytes =
    limits::kMaxDatagramBytes - kDatagramHeaderBytes - kDatagramMacBytes;
inline constexpr std::size_t kMaxClusterPlaintextBytes = kMaxPeerPlaintextBytes - kSignatureBytes;

// The network key of each epoch this node accepts at a given time: NetworkKeyRing::accept
// (crypto/keyring.hpp) behind it. An epoch number names one key forever (the ring refuses a
// second key for an epoch), which lets derived keys be cached per epoch.
class EpochKeys {
public:
    virtual ~EpochKeys() = default;
    // The key of `epoch` at `now`, or nullptr if never held, retired or expired.
    virtual const SymmetricKey* network_key(std::uint32_t epoch,
                                            std::uint64_t now_unix_seconds) const noexcept = 0;
};

// Other devices' public keys, taken from certificates verified against the owner key.
class PeerDirectory {
public:
    virtual ~PeerDirectory() = default;
    // `device`'s X25519 key, for to_peer datagrams; nullopt if unknown or revoked.
    virtual std::optional<KxPublicKey> kx_key(const DeviceId& device) const = 0;
    // The Ed25519 key that must have signed a to_cluster datagram claiming `device`; nullopt if
    // unknown or revoked. `plaintext` passed the MAC (some member wrote it, not yet known which):
    // a beacon carrying its own certificate may be answered from it once that verified.
    virtual std::optional<SignPublicKey> sign_key(
        const DeviceId& device, std::span<const std::uint8_t> plaintext) const = 0;
};

// This node: borrowed, must outlive the DatagramCrypto that uses it.
struct LocalDevice {
    ClusterId cluster{};
    DeviceId device{};
    const KxKeyPair* kx = nullptr;
    const SignKeyPair* sign = nullptr;
};

struct OpenedDatagram {
    DatagramHeader header;
    std::vector<std::uint8_t> plaintext;
};

// The directional keys between this device and a peer for one epoch: what the cache holds.
struct PairwiseKeys {
    SymmetricKey send;     // this device → peer
    SymmetricKey receive;  // peer → this device
};
// nullopt if the peer's kx key is a low-order point (X25519 gives all zeros).
[[nodiscard]] std::optional<PairwiseKeys> derive_pairwise_keys(const LocalDevice& self,
                                                               const DeviceId& peer,
                                                               const KxPublicKey& peer_kx,
                                                               std::uint32_t epoch,
                                                               const SymmetricKey& network_key);
SymmetricKey derive_cluster_datagram_key(const ClusterId& cluster, std::uint32_t epoch,
                                         const SymmetricKey& network_key);

// How many to_cluster signature checks one wall-clock second may cost (protocol/limits.hpp).
struct VerifyBudget {
    std::uint32_t per_sender = limits::kMaxSignatureChecksPerSenderPerSecond;
    std::uint32_t total = limits::kMaxSignatureChecksPerSecond;
};

// Seals and opens datagrams for one node; holds the pairwise key cache and the replay windows.
// Not thread-safe: one per receive loop. `epochs` and `peers` must outlive it.
class DatagramCrypto {
public:
    DatagramCrypto(const LocalDevice& self, const EpochKeys& epochs, const PeerDirectory& peers,
                   VerifyBudget budget = {});

    // `counter` must exceed every counter this device used before (DatagramCounter). Errors:
    // too_large (plaintext), not_found (epoch key, peer), invalid_argument (peer is us, or its kx
    // key is a low-order point).
    // `epoch` is the keyring's current one at `now_unix_seconds`.
    [[nodiscard]] Result<std::vector<std::uint8_t>> seal_to_peer(
        const DeviceId& peer, std::uint32_t epoch, std::uint64_t counter,
        std::span<const std::uint8_t> plaintext, std::uint64_t now_unix_seconds);
    [[nodiscard]] Result<std::vector<std::uint8_t>> seal_to_cluster(
        std::uint32_t epoch, std::uint64_t counter, std::span<const std::uint8_t> plaintext,
        std::uint64_t now_unix_seconds);

    // Size cap → header → cluster tag → sender is not us → epoch key → replay check → (to_peer:
    // sender's kx key) → AEAD → (to_cluster: verify budget, sender's sign key, signature) →
    // replay mark.
    // The counter is recorded only for a datagram that passed every check.
    [[nodiscard]] DatagramResult<OpenedDatagram> open(std::span<const std::uint8_t> datagram,
                                                      std::uint64_t now_unix_seconds);

    // Drops the cached keys and replay windows of an epoch the keyring retired.
    void forget_epoch(std::uint32_t epoch);

private:
    struct PairwiseEntry {
        KxPublicKey peer_kx{};  // the key the entry was derived from: a new certificate misses
        PairwiseKeys keys;
        std::uint64_t last_used = 0;
    };
    const PairwiseKeys* pairwise(const DeviceId& peer, const KxPublicKey& peer_kx,
                                 std::uint32_t epoch, const SymmetricKey& network_key);
    const SymmetricKey& cluster_key(std::uint32_t epoch, const SymmetricKey& network_key);
    // Spends one signature check of `sender` in second `now`; false when the budget is gone.
    bool spend_verify(const DeviceId& sender, std::uint64_t now_unix_seconds);

    LocalDevice self_;
    ClusterTag tag_;
    const EpochKeys& epochs_;
    const PeerDirectory& peers_;
    ReplayWindows replay_;
    std::map<std::pair<DeviceId, std::uint32_t>, PairwiseEntry> pairwise_;
    std::uint64_t pairwise_uses_ = 0;  // LRU clock of the cache
    std::map<std::uint32_t, SymmetricKey> cluster_keys_;
    VerifyBudget budget_;
    std::uint64_t verify_second_ = 0;  // the second the counts below belong to
    std::uint32_t verifies_ = 0;
    std::map<DeviceId, std::uint32_t> verifies_by_sender_;  // at most budget_.total entries
};

// A fixed table of epoch keys, valid at any time: tests and tools.
class EpochKeyList final : public EpochKeys {
public:
    void add(std::uint32_t epoch, SymmetricKey key) {
        keys_.insert_or_assign(epoch, std::move(key));
    }
    void retire(std::uint32_t epoch) { keys_.erase(epoch); }
    const SymmetricKey* network_key(std::uint32_t epoch,
                                    std::uint64_t now_unix_seconds) const noexcept override;

private:
    std::map<std::uint32_t, SymmetricKey> keys_;
};

// A fixed table of peers' public keys: tests, tools, and a node until membership lands.
class PeerList final : public PeerDirectory {
public:
    void add(const DeviceId& device, const SignPublicKey& sign, const KxPublicKey& kx) {
        peers_.insert_or_assign(device, std::pair{sign, kx});
    }
    void remove(const DeviceId& device) { peers_.erase(device); }
    std::optional<KxPublicKey> kx_key(const DeviceId& device) const override;
    std::optional<SignPublicKey> sign_key(const DeviceId& device,
                                          std::span<const std::uint8_t> plaintext) const override;

private:
    std::map<DeviceId, std::pair<SignPublicKey, KxPublicKey>> peers_;
};

}  // namespace starling::crypto

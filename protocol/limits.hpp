#pragma once
// Every bound on untrusted input in one place: each a named constant with its unit in the name,
// so a reviewer can check what a hostile peer or a rotted disk can make Starling allocate.

#include <cstddef>
#include <cstdint>

namespace starling::limits {

// Parameters in one model: 4 Mi fp32 weights (16 MiB) is far above an edge MLP (784-256-128-10 is
// ~235 K) and leaves room in a checkpoint for Adam's two state vectors of the same size.
inline constexpr std::size_t kMaxModelParameters = std::size_t{4} << 20;

// Weight layers in one model: deeper nets do not train on the devices we target.
inline constexpr std::size_t kMaxLayers = 64;

// Neurons in one layer (input and output included): bounds in×out before any multiplication.
inline constexpr std::uint32_t kMaxLayerNeurons = std::uint32_t{1} << 20;

// Dimensions of one tensor: matrices and vectors today; batched or convolutional shapes later.
inline constexpr std::size_t kMaxTensorDims = 8;

// A checkpoint file: parameters plus two optimizer state vectors, 4 bytes each, plus slack for
// the envelope and FlatBuffer bookkeeping; read whole into RAM, so it must fit a small device.
inline constexpr std::size_t kMaxCheckpointBytes = std::size_t{64} << 20;
static_assert(3 * kMaxModelParameters * sizeof(float) + (std::size_t{1} << 20) <=
                  kMaxCheckpointBytes,
              "a maximal Adam checkpoint must fit in kMaxCheckpointBytes");

// One model message between peers (node/gossip/model_wire.hpp): a maximal model in fp32 plus
// its widths, int8 scales and FlatBuffer bookkeeping. Checked before parsing; a message is held
// whole in RAM, so it must fit a small device.
inline constexpr std::size_t kMaxModelMessageBytes = std::size_t{17} << 20;
static_assert(kMaxModelParameters * sizeof(float) + (std::size_t{1} << 20) <= kMaxModelMessageBytes,
              "a maximal fp32 model must fit in kMaxModelMessageBytes");

// FlatBuffers Verifier nesting depth (tables and vectors): our schemas nest 3 deep; the library's
// default of 64 only lets a hostile buffer spend more stack.
inline constexpr std::uint32_t kFlatbuffersMaxDepth = 32;

// FlatBuffers tables verified in one buffer (library default 1,000,000): a network message or a
// checkpoint (root, parameters and at most two state tensors) needs a handful.
inline constexpr std::uint32_t kFlatbuffersMaxTables = 1000;

// One sealed datagram (beacon, membership, control), header and MAC included: memberlist's UDP
// size, under a 1,500-byte Ethernet MTU after IPv6 and UDP headers. Checked before parsing.
inline constexpr std::size_t kMaxDatagramBytes = 1400;

// Replay windows held at once, one per (sender, key epoch), each ~1 KiB: 100 devices across two
// or three overlapping epochs, with headroom. Created only after a datagram authenticated.
inline constexpr std::size_t kMaxReplayWindows = 512;

// Ed25519 checks that cluster-wide datagrams may cost a receiver per wall-clock second (~50 us
// each, two for a beacon carrying its certificate): per claimed sender, and in all. Only senders
// holding the network key get this far; the caps keep a flooding member under ~10% of a core,
// two orders of magnitude above what a LAN of 100 beaconing members asks for.
inline constexpr std::uint32_t kMaxSignatureChecksPerSenderPerSecond = 50;
inline constexpr std::uint32_t kMaxSignatureChecksPerSecond = 2048;

// Pairwise datagram keys cached, one entry per (peer, key epoch): same sizing as the replay
// windows. A miss costs one X25519 (~30 µs); eviction only costs a recomputation.
inline constexpr std::size_t kMaxPairwiseKeyEntries = 512;

// ---- Trust records (crypto/certificate.hpp, crypto/keyring.hpp, crypto/cluster.hpp). ----

// Bytes of a device or cluster name: short enough for a u8 length prefix and a file name.
inline constexpr std::size_t kMaxNameBytes = 63;

// One encoded certificate (~330 bytes: ids, two keys, a signature, a name of <= 63 bytes, the
// FlatBuffer's offsets), revocation (~200) or key-epoch announcement (~200); checked first.
inline constexpr std::size_t kMaxCertificateBytes = 1024;
inline constexpr std::size_t kMaxRevocationBytes = 512;
inline constexpr std::size_t kMaxKeyAnnouncementBytes = 512;

// Network-key epochs held at once: the current one, one or two in their overlap window, and
// one announced ahead of use; more means rotations faster than the overlap, which we refuse.
inline constexpr std::size_t kMaxNetworkKeyEpochs = 8;

// Certificates one cluster's records may list, revoked ones included (~100 devices re-enrolled
// many times over). Each is one FlatBuffer table, hence the separate table limit below.
inline constexpr std::size_t kMaxClusterDevices = 4096;
inline constexpr std::uint32_t kClusterSecretsMaxTables = 4096 + 64;
static_assert(kMaxClusterDevices + kMaxNetworkKeyEpochs + 2 <= kClusterSecretsMaxTables);

// An enrollment bundle (one certificate, two secret keys, <= 8 epochs: ~1.5 KiB) and the
// operator's cluster file (~160 bytes per device): both read whole before parsing.
inline constexpr std::size_t kMaxEnrollmentBundleBytes = std::size_t{16} << 10;
inline constexpr std::size_t kMaxClusterSecretsBytes = std::size_t{4} << 20;
static_assert(kMaxClusterDevices * 256 < kMaxClusterSecretsBytes);

// ---- Authenticated streams (crypto/handshake.hpp, crypto/stream.hpp, crypto/rate_limit.hpp) ----

// One Noise handshake message. The largest, XX message 2, is a 32 B ephemeral key, a 48 B sealed
// static key and a sealed certificate (~330 B): ~0.4 KiB. Checked before any DH work.
inline constexpr std::size_t kMaxHandshakeMessageBytes = 2048;

// Handshakes admitted per second from one source address, and the burst above that rate
// (WireGuard's figures): each costs four X25519 and an Ed25519 verification per side.
inline constexpr std::uint32_t kHandshakesPerSecondPerSource = 20;
inline constexpr std::uint32_t kHandshakeBurstPerSource = 5;

// Source addresses the handshake rate limiter tracks: ~100 devices plus churn and spoofed
// addresses. When full, idle entries are swept and new sources refused; the table never grows.
inline constexpr std::size_t kMaxRateLimitedSources = 4096;

// Plaintext in one stream frame: the unit model bytes are sealed in, and with its 4-byte header
// and 16-byte tag the most a stream opener ever buffers.
inline constexpr std::size_t kMaxStreamChunkBytes = std::size_t{64} << 10;

// Plaintext one stream may carry: the largest thing we transfer is a checkpoint.
inline constexpr std::uint64_t kMaxStreamBytes = kMaxCheckpointBytes;

// A stream's sender rekeys (Noise Rekey) after this much plaintext or this long under one key,
// whichever comes first (WireGuard: 120 s); an opener refuses a key used for more bytes.
inline constexpr std::uint64_t kStreamRekeyAfterBytes = std::uint64_t{256} << 20;
inline constexpr std::uint64_t kStreamRekeyAfterMilliseconds = 120'000;

}  // namespace starling::limits

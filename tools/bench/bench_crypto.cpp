// bench_crypto: what Starling's trust layer costs on one core. Sealed datagram latency (seal,
// open, both kinds, small to full-size payloads), the raw AEAD baselines on a 1 MiB buffer (the
// trust issue's target: seal+open of a 1 MB model update at >= 1 GB/s on one core), BLAKE2b on
// the same buffer (model digests), Ed25519 and X25519 rates; AES-256-GCM as a yardstick only.
//
//   bench_crypto [--runs N]      (default 5; each figure is the median run)
//
// GB/s is 10^9 bytes per second. seal+open GB/s is bytes / (seal time + open time), the rate one
// core can both protect and check a model update. Figures are for notes and reports, never test
// assertions. A measuring tool, so it reads std::chrono::steady_clock directly.

#include <sodium.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/datagram.hpp"
#include "crypto/sodium.hpp"
#include "tools/bench/median_time.hpp"

namespace {

namespace c = starling::crypto;
using Clock = std::chrono::steady_clock;

constexpr std::size_t kModelBytes = std::size_t{1} << 20;
constexpr std::uint64_t kNow = 1700000000;
constexpr std::uint32_t kEpoch = 1;

using starling::bench::median_seconds;

// A benchmark whose operation fails measures nothing: say which, and stop.
[[noreturn]] void fail(const char* what) {
    std::fflush(stdout);
    std::fprintf(stderr, "bench_crypto: %s failed\n", what);
    std::abort();
}

struct Node {
    c::DeviceId id{};
    c::KxKeyPair kx = c::KxKeyPair::generate();
    c::SignKeyPair sign = c::SignKeyPair::generate();
    explicit Node(std::uint8_t tag) { id.fill(tag); }
};

void bench_datagrams(int runs) {
    c::ClusterId cluster{};
    cluster.fill(0xc1);
    c::EpochKeyList epochs;
    c::SymmetricKey network_key;
    c::random_bytes(network_key.bytes());
    epochs.add(kEpoch, std::move(network_key));
    const Node a(0xa0), b(0xb0);
    c::PeerList peers;
    peers.add(a.id, a.sign.public_key, a.kx.public_key);
    peers.add(b.id, b.sign.public_key, b.kx.public_key);
    c::DatagramCrypto at_a({cluster, a.id, &a.kx, &a.sign}, epochs, peers);
    // The receiver's cap on signature checks a second (VerifyBudget) would refuse most of a
    // burst of thousands from one sender: this times the checks, so it lifts the cap.
    const c::VerifyBudget unbounded{UINT32_MAX, UINT32_MAX};
    c::DatagramCrypto at_b({cluster, b.id, &b.kx, &b.sign}, epochs, peers, unbounded);

    std::printf("%-11s %8s %9s %10s %10s %14s\n", "datagram", "payload", "datagram", "seal us",
                "open us", "seal+open us");
    std::uint64_t counter = 0;
    for (const auto kind : {starling::DatagramKind::to_peer, starling::DatagramKind::to_cluster}) {
        const bool to_peer = kind == starling::DatagramKind::to_peer;
        const std::size_t full = to_peer ? c::kMaxPeerPlaintextBytes : c::kMaxClusterPlaintextBytes;
        for (const std::size_t size : {std::size_t{64}, std::size_t{512}, full}) {
            const std::vector<std::uint8_t> payload(size, 0x5a);
            const int batch = to_peer ? 4000 : 400;
            std::vector<std::vector<std::uint8_t>> sealed(batch);
            std::vector<double> seal_runs, open_runs;
            for (int run = 0; run <= runs; ++run) {  // run 0 warms up and fills the key cache
                auto start = Clock::now();
                for (auto& datagram : sealed) {
                    auto result = to_peer
                                      ? at_a.seal_to_peer(b.id, kEpoch, ++counter, payload, kNow)
                                      : at_a.seal_to_cluster(kEpoch, ++counter, payload, kNow);
                    if (!result.ok()) fail("sealing a datagram");
                    datagram = std::move(result).value();
                }
                const double seal = std::chrono::duration<double>(Clock::now() - start).count();
                start = Clock::now();
                for (const auto& datagram : sealed)
                    if (!at_b.open(datagram, kNow).ok()) fail("opening a datagram");
                const double open = std::chrono::duration<double>(Clock::now() - start).count();
                if (run == 0) continue;
                seal_runs.push_back(seal / batch * 1e6);
                open_runs.push_back(open / batch * 1e6);
            }
            std::sort(seal_runs.begin(), seal_runs.end());
            std::sort(open_runs.begin(), open_runs.end());
            const double seal_us = seal_runs[seal_runs.size() / 2];
            const double open_us = open_runs[open_runs.size() / 2];
            std::printf("%-11s %8zu %9zu %10.2f %10.2f %14.2f\n",
                        to_peer ? "to_peer" : "to_cluster", size, sealed.front().size(), seal_us,
                        open_us, seal_us + open_us);
        }
    }

    const double derive = median_seconds(runs, 200, [&] {
        auto keys = c::derive_pairwise_keys({cluster, a.id, &a.kx, &a.sign}, b.id, b.kx.public_key,
                                            kEpoch, *epochs.network_key(kEpoch, kNow));
        if (!keys) fail("deriving pairwise keys");
    });
    std::printf("pairwise key derivation (cache miss: X25519 + 2 BLAKE2b): %.1f us\n\n",
                derive * 1e6);
}

using AeadDecryptFn = int (*)(unsigned char*, unsigned long long*, unsigned char*,
                              const unsigned char*, unsigned long long, const unsigned char*,
                              unsigned long long, const unsigned char*, const unsigned char*);
using AeadEncryptFn = int (*)(unsigned char*, unsigned long long*, const unsigned char*,
                              unsigned long long, const unsigned char*, unsigned long long,
                              const unsigned char*, const unsigned char*, const unsigned char*);

void bench_aead(const char* name, AeadEncryptFn encrypt, AeadDecryptFn decrypt, int runs) {
    std::vector<std::uint8_t> model(kModelBytes), sealed(kModelBytes + 16), opened(kModelBytes);
    c::random_bytes(model);
    std::uint8_t key[32] = {1}, nonce[24] = {2}, header[38] = {3};
    unsigned long long length = 0;
    const double seal = median_seconds(runs, 20, [&] {
        encrypt(sealed.data(), &length, model.data(), model.size(), header, sizeof header, nullptr,
                nonce, key);
    });
    const double open = median_seconds(runs, 20, [&] {
        if (decrypt(opened.data(), &length, nullptr, sealed.data(), sealed.size(), header,
                    sizeof header, nonce, key) != 0)
            fail(name);
    });
    std::printf("%-24s %10.2f %10.2f %15.2f\n", name, kModelBytes / seal * 1e-9,
                kModelBytes / open * 1e-9, kModelBytes / (seal + open) * 1e-9);
}

void bench_primitives(int runs) {
    std::printf("%-24s %10s %10s %15s\n", "1 MiB buffer, GB/s", "seal", "open", "seal+open");
    bench_aead("xchacha20-poly1305", crypto_aead_xchacha20poly1305_ietf_encrypt,
               crypto_aead_xchacha20poly1305_ietf_decrypt, runs);
    bench_aead("chacha20-poly1305-ietf", crypto_aead_chacha20poly1305_ietf_encrypt,
               crypto_aead_chacha20poly1305_ietf_decrypt, runs);
    // Not used by Starling: the AES-NI yardstick the stream framing may want where the CPU has it.
    if (crypto_aead_aes256gcm_is_available() != 0) {
        bench_aead("aes256-gcm (AES-NI)", crypto_aead_aes256gcm_encrypt,
                   crypto_aead_aes256gcm_decrypt, runs);
    } else {
        std::printf("%-24s %10s\n", "aes256-gcm", "n/a (no AES-NI/PCLMUL)");
    }
    std::vector<std::uint8_t> model(kModelBytes);
    c::random_bytes(model);
    std::uint8_t digest[32];
    const double hash = median_seconds(runs, 20, [&] {
        crypto_generichash(digest, sizeof digest, model.data(), model.size(), nullptr, 0);
    });
    std::printf("%-24s %10.2f\n\n", "blake2b-256 (hash)", kModelBytes / hash * 1e-9);

    const c::SignKeyPair signer = c::SignKeyPair::generate();
    std::uint8_t message[64] = {4}, signature[64];
    const double sign = median_seconds(runs, 2000, [&] {
        crypto_sign_detached(signature, nullptr, message, sizeof message,
                             signer.secret_key.bytes().data());
    });
    const double verify = median_seconds(runs, 1000, [&] {
        if (crypto_sign_verify_detached(signature, message, sizeof message,
                                        signer.public_key.data()) != 0)
            fail("ed25519 verify");
    });
    const c::KxKeyPair kx = c::KxKeyPair::generate(), peer = c::KxKeyPair::generate();
    std::uint8_t shared[32];
    const double x25519 = median_seconds(runs, 1000, [&] {
        if (crypto_scalarmult(shared, kx.secret_key.bytes().data(), peer.public_key.data()) != 0)
            fail("x25519");
    });
    std::printf("ed25519 sign %.0f/s, verify %.0f/s (64 B message); x25519 %.0f/s\n", 1 / sign,
                1 / verify, 1 / x25519);
}

}  // namespace

int main(int argc, char** argv) {
    int runs = 5;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "--runs" && i + 1 < argc) {
            runs = std::atoi(argv[++i]);
        } else {
            std::fprintf(stderr, "usage: bench_crypto [--runs N]\n");
            return 2;
        }
    }
    if (runs < 1 || runs > 100) {
        std::fprintf(stderr, "bench_crypto: --runs must be 1..100\n");
        return 2;
    }
    starling::crypto::ensure_initialized();
    bench_datagrams(runs);
    bench_primitives(runs);
    return 0;
}

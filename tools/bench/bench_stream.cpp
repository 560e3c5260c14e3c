// bench_stream: what an authenticated model transfer costs on one core.
//   - seal, open and seal+open throughput of a 1 MB model update through the stream framing
//     (crypto/stream.hpp), opened in one piece and in TCP-sized (1,448-byte) pieces;
//   - libsodium's raw ChaCha20-Poly1305-IETF and XChaCha20-Poly1305 on the same megabyte, as
//     the yardstick measured beside it (absolute figures drift on shared machines; ratios hold);
//   - a full Noise XX stream handshake, both sides, certificates checked (crypto/handshake.hpp).
// Each figure is the median of 5 timed runs of about --seconds/5 each.
//
//   bench_stream [--seconds 1.0]
//
// A measuring tool, so it reads std::chrono::steady_clock directly.

#include <sodium.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "crypto/certificate.hpp"
#include "crypto/handshake.hpp"
#include "crypto/stream.hpp"

namespace {

using namespace starling::crypto;
using Clock = std::chrono::steady_clock;
using Bytes = std::vector<std::uint8_t>;

constexpr std::size_t kModelBytes = 1'000'000;
constexpr int kRuns = 5;
constexpr std::size_t kTcpSegmentBytes = 1448;
constexpr std::uint64_t kNow = 1'800'000'000;

// Median seconds per call of `op`, over kRuns runs of about `run_seconds` each.
double median_seconds(const std::function<void()>& op, double run_seconds) {
    op();  // warm up: page in buffers, settle the clock
    std::array<double, kRuns> per_call{};
    for (double& result : per_call) {
        long calls = 0;
        const auto start = Clock::now();
        double elapsed = 0;
        do {
            op();
            ++calls;
            elapsed = std::chrono::duration<double>(Clock::now() - start).count();
        } while (elapsed < run_seconds);
        result = elapsed / static_cast<double>(calls);
    }
    std::sort(per_call.begin(), per_call.end());
    return per_call[kRuns / 2];
}

void report_throughput(const char* what, double seconds) {
    std::printf("%-46s %8.1f us  %6.2f GB/s\n", what, seconds * 1e6,
                static_cast<double>(kModelBytes) / seconds / 1e9);
}

noise::CipherState bench_cipher() {
    std::array<std::uint8_t, noise::kKeyBytes> key{};
    key.fill(0x33);
    return noise::CipherState(key);
}

void check(bool ok, const char* what) {
    if (!ok) {
        std::fprintf(stderr, "bench_stream: %s failed\n", what);
        std::exit(1);
    }
}

void check(const starling::Status& status, const char* what) {
    if (!status) std::fprintf(stderr, "%s\n", status.error().message.c_str());
    check(status.ok(), what);
}

Bytes certificate_for(const KxKeyPair& kx, const SignKeyPair& owner, const ClusterId& cluster,
                      const char* name) {
    Certificate cert;
    cert.cluster = cluster;
    random_bytes(cert.device);
    cert.name = name;
    cert.kx_key = kx.public_key;
    cert.sign_key = SignKeyPair::generate().public_key;
    cert.not_before = kNow - 60;
    cert.not_after = kNow + 60;
    cert.serial = 1;
    sign_certificate(cert, owner.secret_key);
    return encode_certificate(cert);
}

}  // namespace

int main(int argc, char** argv) {
    double seconds = 1.0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (std::string(argv[i]) == "--seconds") {
            seconds = std::clamp(std::atof(argv[i + 1]), 0.05, 60.0);
        }
    }
    const double run_seconds = seconds / kRuns;
    check(sodium_init() >= 0, "sodium_init");

    Bytes model(kModelBytes);
    randombytes_buf(model.data(), model.size());
    std::array<std::uint8_t, 32> key{};
    randombytes_buf(key.data(), key.size());

    std::printf("1 MB model update (%zu bytes), one core, median of %d runs\n", kModelBytes, kRuns);
    Bytes raw(kModelBytes + 16);
    unsigned long long raw_len = 0;
    std::array<std::uint8_t, 12> nonce{};
    report_throughput("raw chacha20poly1305-ietf encrypt (yardstick)",
                      median_seconds(
                          [&] {
                              crypto_aead_chacha20poly1305_ietf_encrypt(
                                  raw.data(), &raw_len, model.data(), model.size(), nullptr, 0,
                                  nullptr, nonce.data(), key.data());
                          },
                          run_seconds));
    std::array<std::uint8_t, 24> xnonce{};
    report_throughput("raw xchacha20poly1305-ietf encrypt (yardstick)",
                      median_seconds(
                          [&] {
                              crypto_aead_xchacha20poly1305_ietf_encrypt(
                                  raw.data(), &raw_len, model.data(), model.size(), nullptr, 0,
                                  nullptr, xnonce.data(), key.data());
                          },
                          run_seconds));

    Bytes wire;
    wire.reserve(kModelBytes + 1024);
    const double seal = median_seconds(
        [&] {
            wire.clear();
            StreamSealer sealer(bench_cipher(), 0);
            check(sealer.seal(model, 0, wire) && sealer.finish(0, wire), "seal");
        },
        run_seconds);
    report_throughput("stream seal (16 frames + end frame)", seal);

    Bytes opened;
    opened.reserve(kModelBytes);
    const double open = median_seconds(
        [&] {
            opened.clear();
            StreamOpener opener(bench_cipher());
            check(opener.on_bytes_received(wire, opened) && opener.on_end_of_input(), "open");
        },
        run_seconds);
    report_throughput("stream open (one piece)", open);
    check(opened == model, "round trip");

    const double open_tcp = median_seconds(
        [&] {
            opened.clear();
            StreamOpener opener(bench_cipher());
            for (std::size_t at = 0; at < wire.size(); at += kTcpSegmentBytes) {
                const std::size_t n = std::min(kTcpSegmentBytes, wire.size() - at);
                check(opener.on_bytes_received(std::span(wire).subspan(at, n), opened),
                      "open piece");
            }
            check(opener.on_end_of_input(), "open end");
        },
        run_seconds);
    report_throughput("stream open (1,448-byte pieces)", open_tcp);
    report_throughput("stream seal+open, one core (sum of the two)", seal + open);

    // Handshake: both sides on this core, three messages, two certificate checks, Split().
    const SignKeyPair owner = SignKeyPair::generate();
    ClusterId cluster{};
    random_bytes(cluster);
    const KxKeyPair a = KxKeyPair::generate();
    const KxKeyPair b = KxKeyPair::generate();
    const Bytes a_cert = certificate_for(a, owner, cluster, "bench-a");
    const Bytes b_cert = certificate_for(b, owner, cluster, "bench-b");
    const TrustAnchor trust{cluster, owner.public_key, {}};
    const double handshake = median_seconds(
        [&] {
            Handshake initiator(noise::Role::initiator, a, a_cert, trust);
            Handshake responder(noise::Role::responder, b, b_cert, trust);
            for (int i = 0; i < 3; ++i) {
                Handshake& writer = i % 2 == 0 ? initiator : responder;
                Handshake& reader = i % 2 == 0 ? responder : initiator;
                auto message = writer.write_message();
                check(message && reader.read_message(*message, kNow), "handshake");
            }
            check(initiator.finish() && responder.finish(), "finish");
        },
        run_seconds);
    std::printf("%-46s %8.1f us  (both sides)\n", "Noise XX stream handshake + certificates",
                handshake * 1e6);
    return 0;
}

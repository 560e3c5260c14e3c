// bench_link: what one model push costs each side's CPU over a model link
// (node/runtime/model_link.hpp), on a link opened for it (the certificate-checked Noise XX
// handshake first) and on a link already open, for a lattice-sized (130 KB) and an fp32-sized
// (940 KB) model. Both sides run in this process and pass bytes by hand, the listener's in the
// pieces a TCP read gives: no sockets, so the figures are the link's own work (framing,
// sealing, opening, the handshake). Each figure is the
// median over --runs runs of the per-transfer time spent inside that side's calls.
//
//   bench_link [--runs N]
//
// A measuring tool, so it reads std::chrono::steady_clock directly.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string_view>
#include <vector>

#include "crypto/certificate.hpp"
#include "crypto/cluster.hpp"
#include "crypto/handshake.hpp"
#include "crypto/sodium.hpp"
#include "node/net/stream_transport.hpp"
#include "node/runtime/model_link.hpp"
#include "tools/bench/median_time.hpp"

namespace {

using namespace starling;
using Clock = std::chrono::steady_clock;
using Bytes = std::vector<std::uint8_t>;

constexpr std::uint64_t kNow = 1'800'000'000;

void check(bool ok, const char* what) {
    if (!ok) {
        std::fprintf(stderr, "bench_link: %s failed\n", what);
        std::exit(1);
    }
}

// A device the cluster's owner enrolls, as `starling cluster enroll` does.
struct Party {
    crypto::KxKeyPair kx;
    crypto::Certificate cert;
    runtime::SessionIdentity identity;
};

Party party(crypto::ClusterSecrets& cluster, const char* name) {
    Result<crypto::EnrollmentBundle> b =
        cluster.issue_device(name, crypto::Role::trainer, kNow, 3600);
    check(b.ok(), "issue_device");
    return {{b->certificate.kx_key, std::move(b->kx_secret)}, b->certificate, {}};
}

// Seconds each side spent in its own calls.
struct Spent {
    double dialer = 0;
    double listener = 0;
};

template <typename F>
void timed(double& into, F&& f) {
    const auto start = Clock::now();
    f();
    into += std::chrono::duration<double>(Clock::now() - start).count();
}

// One push from `a` to `b`, bytes passed until both are quiet.
void push(runtime::ModelLink& a, runtime::ModelLink& b, const runtime::ModelBytes& model,
          Spent& spent) {
    timed(spent.dialer, [&] { check(a.begin(runtime::ModelOp::push, model, 0).ok(), "begin"); });
    for (int round = 0; round < 16; ++round) {
        Bytes from_a;
        Bytes from_b;
        timed(spent.dialer, [&] { from_a = a.take_output(); });
        // In the pieces a TCP read hands over (net::kStreamReadBytes at most).
        for (std::size_t at = 0; at < from_a.size(); at += net::kStreamReadBytes) {
            const auto piece = std::span<const std::uint8_t>(from_a).subspan(
                at, std::min(net::kStreamReadBytes, from_a.size() - at));
            timed(spent.listener, [&] { check(b.on_bytes(piece, 0, kNow).ok(), "listener"); });
        }
        timed(spent.listener, [&] {
            from_b = b.take_output();
            check(b.take_outcomes().size() <= 1, "listener outcome");
        });
        if (!from_b.empty())
            timed(spent.dialer, [&] { check(a.on_bytes(from_b, 0, kNow).ok(), "dialer"); });
        if (from_a.empty() && from_b.empty()) break;
    }
    std::vector<runtime::TransferOutcome> done;
    timed(spent.dialer, [&] { done = a.take_outcomes(); });
    check(done.size() == 1 && !done[0].failure, "the push");
}

Spent median(std::vector<Spent> runs) {
    const auto mid = runs.size() / 2;
    std::nth_element(runs.begin(), runs.begin() + static_cast<std::ptrdiff_t>(mid), runs.end(),
                     [](const Spent& x, const Spent& y) { return x.dialer < y.dialer; });
    const double dialer = runs[mid].dialer;
    std::nth_element(runs.begin(), runs.begin() + static_cast<std::ptrdiff_t>(mid), runs.end(),
                     [](const Spent& x, const Spent& y) { return x.listener < y.listener; });
    return {dialer, runs[mid].listener};
}

}  // namespace

int main(int argc, char** argv) {
    const std::optional<int> given = bench::runs_argument(argc, argv, "bench_link", 7);
    if (!given) return 2;
    const int runs = *given;
    crypto::ensure_initialized();
    Result<crypto::ClusterSecrets> cluster = crypto::ClusterSecrets::create("bench", kNow);
    check(cluster.ok(), "a cluster");
    Party alice = party(*cluster, "alice");
    Party bob = party(*cluster, "bob");
    const crypto::TrustAnchor trust{cluster->cluster, cluster->owner.public_key, {}};
    for (Party* p : {&alice, &bob})
        p->identity = runtime::SessionIdentity{&p->kx, crypto::encode_certificate(p->cert), trust,
                                               std::size_t{4} << 20};
    const runtime::LinkResponder answer{[](runtime::ModelOp) { return std::nullopt; },
                                        [] { return runtime::ModelBytes{}; }};
    constexpr int kTransfers = 40;

    std::printf("bench_link: one push, ms of CPU per side, median of %d runs of %d pushes\n",
                runs, kTransfers);
    std::printf("%-10s %-22s %10s %10s\n", "model", "link", "dialer ms", "listener ms");
    for (const std::size_t bytes : {std::size_t{129'392}, std::size_t{940'584}}) {
        auto model = std::make_shared<Bytes>(bytes);
        crypto::random_bytes(*model);
        const runtime::ModelBytes shared = model;
        for (const bool reuse : {false, true}) {
            std::vector<Spent> per_run;
            for (int r = 0; r < runs; ++r) {
                Spent spent;
                std::unique_ptr<runtime::ModelLink> a;
                std::unique_ptr<runtime::ModelLink> b;
                if (reuse) {
                    a = std::make_unique<runtime::ModelLink>(
                        runtime::ModelLink::dialer(alice.identity, bob.cert.device, answer));
                    b = std::make_unique<runtime::ModelLink>(
                        runtime::ModelLink::listener(bob.identity, answer));
                    Spent warm;  // the handshake and a first push, not counted
                    push(*a, *b, shared, warm);
                }
                for (int t = 0; t < kTransfers; ++t) {
                    if (!reuse) {
                        timed(spent.dialer, [&] {
                            a = std::make_unique<runtime::ModelLink>(
                                runtime::ModelLink::dialer(alice.identity, bob.cert.device,
                                                           answer));
                        });
                        timed(spent.listener, [&] {
                            b = std::make_unique<runtime::ModelLink>(
                                runtime::ModelLink::listener(bob.identity, answer));
                        });
                    }
                    push(*a, *b, shared, spent);
                }
                per_run.push_back({spent.dialer / kTransfers, spent.listener / kTransfers});
            }
            const Spent m = median(per_run);
            std::printf("%-10zu %-22s %10.3f %10.3f\n", bytes,
                        reuse ? "open (no handshake)" : "new (handshake first)", m.dialer * 1e3,
                        m.listener * 1e3);
        }
    }
    return 0;
}

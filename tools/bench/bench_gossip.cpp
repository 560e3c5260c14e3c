// bench_gossip: what a model exchange costs in CPU, per wire encoding (each also with zstd over
// its payload), on one core. For the default MLP (784-256-128-10, 235,146 parameters): the
// message size, the time to encode one (with error feedback, as a learner does) and to decode
// one (the lattice resolving against a receiver whose values are within 0.01 of the sender's,
// as in a cluster that agrees), and the time one merge takes, what handing models between a
// node's training and gossip threads costs, and a received lattice model end to end as the
// gossip thread takes it in (alone, and per model in a wake of four). A link of 1 Gb/s carries
// an int8 model in ~1.9 ms: codec time well under that keeps the link, not the CPU, the limit.
//
//   bench_gossip [--runs N]      (default 7; each figure is the median run)
//
// Figures are for notes and reports, never test assertions.

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "firmware/heap.hpp"
#include "node/gossip/learner.hpp"
#include "node/gossip/merge.hpp"
#include "node/gossip/model_wire.hpp"
#include "node/model/mlp.hpp"
#include "node/model/optimizer.hpp"
#include "node/model/rng.hpp"
#include "tools/bench/median_time.hpp"

namespace {

namespace g = starling::gossip;
namespace m = starling::model;
using starling::bench::median_seconds;

std::vector<float> near(const std::vector<float>& base, double by, std::uint64_t seed) {
    m::Rng rng(seed);
    std::vector<float> out = base;
    for (float& v : out) v += static_cast<float>((2.0 * rng.uniform() - 1.0) * by);
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    // As `starling node` runs: model-sized buffers are reused from the heap, not mapped anew.
    if (!starling::firmware::keep_model_buffers_in_heap())
        std::fprintf(stderr, "bench_gossip: malloc refused the heap thresholds (faults count)\n");
    const std::optional<int> given = starling::bench::runs_argument(argc, argv, "bench_gossip", 7);
    if (!given) return 2;
    const int runs = *given;

    const std::vector<std::uint32_t> widths{784, 256, 128, 10};
    m::Mlp model(widths);
    model.init_he(1);
    g::ModelMessage header;
    header.origin.fill(7);
    header.widths = widths;
    const std::vector<float> sender(model.parameters().begin(), model.parameters().end());
    const std::vector<float> receiver = near(sender, 0.01, 2);
    g::ModelMessage peer = header;
    peer.parameters = near(sender, 0.01, 3);

    std::printf("bench_gossip: %zu parameters, median of %d runs, one core\n", sender.size(),
                runs);
    std::printf("%-12s %10s %8s %11s %11s\n", "encoding", "bytes", "x fp32", "encode ms",
                "decode ms");
    double fp32_bytes = 0.0;
    for (const g::Compression c : {g::Compression::none, g::Compression::zstd})
    for (const g::Encoding e : {g::Encoding::fp32, g::Encoding::fp16, g::Encoding::int8,
                                g::Encoding::int4, g::Encoding::lattice}) {
        std::string name(g::to_string(e));
        if (c != g::Compression::none) name += "+" + std::string(g::to_string(c));
        g::ModelEncoder encoder(e, true, g::kDefaultLatticeMargin, c);
        encoder.observe_peer(sender, peer);  // the lattice's steps; the others ignore it
        std::vector<std::uint8_t> bytes = encoder.encode(header, sender);
        const double encode_s = median_seconds(runs, 20, [&] {
            ++header.version;
            bytes = encoder.encode(header, sender);
        });
        bool ok = true;
        const double decode_s = median_seconds(runs, 20, [&] {
            const g::DecodeResult r = g::decode_model(bytes, widths, receiver);
            ok = ok && std::holds_alternative<g::ModelMessage>(r);
        });
        if (!ok) {
            std::fprintf(stderr, "bench_gossip: %s did not decode\n", name.c_str());
            return 1;
        }
        if (e == g::Encoding::fp32 && c == g::Compression::none)
            fp32_bytes = static_cast<double>(bytes.size());
        std::printf("%-12s %10zu %8.3f %11.3f %11.3f\n", name.c_str(),
                    bytes.size(), static_cast<double>(bytes.size()) / fp32_bytes, encode_s * 1e3,
                    decode_s * 1e3);
    }

    g::Merger merger(g::MergeConfig{});
    std::vector<float> local = receiver;
    g::ModelMessage incoming = peer;
    const double merge_s = median_seconds(runs, 20, [&] {
        ++incoming.version;
        (void)merger.merge(g::LocalModel{local, 1000, 1.0}, incoming);
    });
    std::printf("merge (samples-seen weights, distance and norm checks): %.3f ms\n", merge_s * 1e3);

    // What a node's training thread pays when a gossip thread does the above (simulator:
    // handoff_per_send, handoff_per_receive): a copy of the model for each round, and adding a
    // merge's move; the gossip thread records that move.
    std::vector<float> trained = sender;
    std::vector<float> copy(trained.size());
    std::vector<float> move(trained.size(), 1e-6f);
    const double copy_s = median_seconds(runs, 20, [&] {
        std::copy(trained.begin(), trained.end(), copy.begin());
        trained[0] += 1e-9f;
    });
    const double add_s = median_seconds(runs, 20, [&] { m::add_move(trained, move); });
    const double record_s = median_seconds(runs, 20, [&] {
        m::record_move(move, receiver, copy, /*accumulate=*/true);
    });
    std::printf("hand-offs: a copy of the model %.3f ms, adding a move %.3f ms; recording a move "
                "%.3f ms\n", copy_s * 1e3, add_s * 1e3, record_s * 1e3);

    // A received lattice model end to end on a node's gossip thread, the stream's opening and
    // handshake aside: the copy the move is measured from, the learner's decode, lattice
    // bookkeeping, duplicate check and merge, and the move recorded for the trainer.
    m::Mlp mirror(widths);
    std::copy(receiver.begin(), receiver.end(), mirror.parameters().begin());
    g::LearnerConfig lattice;
    lattice.encoding = g::Encoding::lattice;
    lattice.merge.weighting = g::Weighting::equal;
    g::GossipLearner learner(g::DeviceId{1}, mirror, lattice, 1);
    learner.on_start(g::Time(0), /*catch_up=*/false);
    g::ModelEncoder sending(g::Encoding::lattice);
    sending.observe_peer(sender, peer);
    g::ModelMessage from = header;
    from.origin.fill(9);
    // One message per call, each a new version (the same one twice would be a duplicate).
    std::vector<std::vector<std::uint8_t>> messages;
    for (int i = 0; i < runs * 20 + 1; ++i) {
        ++from.version;
        messages.push_back(sending.encode(from, sender));
    }
    std::vector<float> before;
    std::size_t next = 0;
    std::uint64_t merged = 0;
    const double receive_s = median_seconds(runs, 20, [&] {
        const std::span<const float> w = mirror.parameters();
        before.assign(w.begin(), w.end());
        if (learner.on_model_bytes(from.origin, messages.at(next), g::Time(1000 + next)) ==
            g::Received::merged)
            ++merged;
        ++next;
        m::record_move(move, mirror.parameters(), before, /*accumulate=*/true);
    });
    std::printf("a lattice model received end to end (copy, decode, merge, move; %llu merged): "
                "%.3f ms\n", static_cast<unsigned long long>(merged), receive_s * 1e3);

    // A busy gossip thread's wake, as runtime::LearningLoop takes it: kWake models averaged as
    // one batch, the copy and the move taken once for the wake; the figure is per model.
    constexpr int kWake = 4;
    std::vector<std::vector<std::uint8_t>> wakes;
    for (int i = 0; i < (runs * 20 + 1) * kWake; ++i) {
        ++from.version;
        wakes.push_back(sending.encode(from, sender));
    }
    std::size_t wake_next = 0;
    std::uint64_t wake_merged = 0;
    const double wake_s = median_seconds(runs, 20, [&] {
        const std::span<const float> w = mirror.parameters();
        before.assign(w.begin(), w.end());
        learner.begin_batch();
        for (int k = 0; k < kWake; ++k, ++wake_next)
            if (learner.on_model_bytes(from.origin, wakes.at(wake_next),
                                       g::Time(1'000'000 + wake_next)) == g::Received::merged)
                ++wake_merged;
        learner.end_batch();
        m::record_move(move, mirror.parameters(), before, /*accumulate=*/true);
    });
    std::printf("the same in a wake of %d (one copy, one move; %llu merged): %.3f ms a model\n",
                kWake, static_cast<unsigned long long>(wake_merged), wake_s * 1e3 / kWake);
    return 0;
}

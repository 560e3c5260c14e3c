// The merge (weights, outlier refusal, clipping, trimmed mean, the healed-partition reset) and
// the learner's decisions (rounds, fan-out, link budget, duplicates, catch-up pulls, refusals
// counted), driven event by event without any data.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>
#include <span>
#include <vector>

#include "node/gossip/learner.hpp"
#include "node/gossip/merge.hpp"
#include "node/model/rng.hpp"

using namespace starling;
using namespace starling::gossip;
using namespace std::chrono_literals;

namespace {

const std::vector<std::uint32_t> kWidths{4, 3, 2};  // 4*3 + 3 + 3*2 + 2 = 23 parameters

DeviceId device(std::uint8_t n) {
    DeviceId id{};
    id[0] = n;
    return id;
}

ModelMessage message_from(std::uint8_t origin, std::uint64_t version, std::vector<float> values,
                          std::uint64_t samples = 100) {
    ModelMessage m;
    m.origin = device(origin);
    m.version = version;
    m.samples_seen = samples;
    m.widths = kWidths;
    m.parameters = std::move(values);
    return m;
}

std::vector<float> noisy(float centre, float spread, std::uint64_t seed) {
    model::Rng rng(seed);
    std::vector<float> v(model::parameter_count(kWidths));
    for (float& x : v) x = centre + spread * static_cast<float>(rng.normal());
    return v;
}

}  // namespace

TEST_CASE("merge weights: equal, by samples seen, by push-sum mass") {
    std::vector<float> local(23, 0.0f);
    const auto incoming = message_from(2, 1, std::vector<float>(23, 1.0f), 300);
    SUBCASE("equal") {
        Merger merger({.weighting = Weighting::equal});
        const auto out = merger.merge({local, 100, 1.0}, incoming);
        CHECK(out.accepted);
        CHECK(local[5] == doctest::Approx(0.5));
        CHECK(out.samples_seen == 300);
    }
    SUBCASE("samples seen") {
        Merger merger({.weighting = Weighting::samples_seen});
        const auto out = merger.merge({local, 100, 1.0}, incoming);
        CHECK(local[5] == doctest::Approx(0.75));
        CHECK(out.incoming_weight == doctest::Approx(0.75));
    }
    SUBCASE("push-sum") {
        Merger merger({.weighting = Weighting::push_sum});
        auto m = incoming;
        m.mass = 0.25;
        const auto out = merger.merge({local, 100, 0.75}, m);
        CHECK(local[5] == doctest::Approx(0.25));
        CHECK(out.mass == doctest::Approx(1.0));
    }
}

TEST_CASE("a batch of models is averaged with the local one, each taking an equal share") {
    // Values within the norm check's factor of each other, so every model is accepted.
    std::vector<float> local(23, 1.0f);
    const auto one = message_from(2, 1, std::vector<float>(23, 2.0f), 100);
    const auto two = message_from(3, 1, std::vector<float>(23, 3.0f), 200);
    SUBCASE("equal: the plain mean of the three") {
        Merger merger({.weighting = Weighting::equal});
        const auto first = merger.merge({local, 100, 1.0, 0.0}, one);
        CHECK(first.batch_weight == 1.0);
        CHECK(local[0] == doctest::Approx(1.5));  // a pairwise merge, as without a batch
        const auto second = merger.merge({local, 100, 1.0, first.batch_weight}, two);
        CHECK(second.incoming_weight == doctest::Approx(1.0 / 3.0));
        CHECK(local[7] == doctest::Approx(2.0));  // (1 + 2 + 3) / 3
    }
    SUBCASE("samples seen: the mean weighted by each model's examples") {
        Merger merger({.weighting = Weighting::samples_seen});
        const auto first = merger.merge({local, 100, 1.0, 0.0}, one);
        CHECK(first.batch_weight == 100.0);
        CHECK(local[0] == doctest::Approx(1.5));
        // The local model stands for 200 examples now: 100 of its own, 100 merged.
        (void)merger.merge({local, 100, 1.0, first.batch_weight}, two);
        CHECK(local[7] == doctest::Approx((1.0 * 100 + 2.0 * 100 + 3.0 * 200) / 400.0));
    }
    SUBCASE("without a batch each merge halves what is there") {
        Merger merger({.weighting = Weighting::equal});
        (void)merger.merge({local, 100, 1.0}, one);
        (void)merger.merge({local, 100, 1.0}, two);
        CHECK(local[3] == doctest::Approx(2.25));  // (1.5 + 3) / 2
    }
}

TEST_CASE("the learner averages the models of one batch; the next batch starts afresh") {
    model::Mlp model(kWidths);
    std::ranges::fill(model.parameters(), 1.0f);
    LearnerConfig config;
    config.merge.weighting = Weighting::equal;
    GossipLearner learner(device(1), model, config, 7);
    learner.on_start(Time(0), /*catch_up=*/false);
    const auto merge = [&](std::uint8_t from, float value, std::int64_t at) {
        return learner.on_model(device(from), message_from(from, 1, std::vector<float>(23, value)),
                                Time(at));
    };
    learner.begin_batch();
    CHECK(merge(2, 2.0f, 1) == Received::merged);
    CHECK(merge(3, 3.0f, 2) == Received::merged);
    CHECK(model.parameters()[4] == doctest::Approx(2.0));  // (1 + 2 + 3) / 3
    learner.begin_batch();
    CHECK(merge(4, 4.0f, 3) == Received::merged);
    CHECK(model.parameters()[4] == doctest::Approx(3.0));  // a new batch: (2 + 4) / 2
    CHECK(merge(5, 6.0f, 4) == Received::merged);
    CHECK(model.parameters()[4] == doctest::Approx(4.0));  // (2 + 4 + 6) / 3
    learner.end_batch();
    CHECK(merge(6, 6.0f, 5) == Received::merged);
    CHECK(model.parameters()[4] == doctest::Approx(5.0));  // outside a batch: pairwise
}

TEST_CASE("a far or huge model is refused once history is known; a far one is clipped") {
    MergeConfig config;
    config.weighting = Weighting::equal;
    Merger merger(config);
    std::vector<float> local = noisy(0.0f, 0.1f, 1);
    // History: peers at a typical distance.
    for (std::uint8_t k = 0; k < 6; ++k) {
        auto peer = local;
        const auto jitter = noisy(0.0f, 0.05f, 10 + k);
        for (std::size_t i = 0; i < peer.size(); ++i) peer[i] += jitter[i];
        REQUIRE(merger.merge({local, 100, 1.0}, message_from(k + 2, 1, peer)).accepted);
    }
    const double median = merger.median_distance();
    REQUIRE(median > 0);
    const auto before = local;

    // Huge values: refused, local untouched.
    CHECK_FALSE(merger.merge({local, 100, 1.0}, message_from(50, 1, noisy(0.0f, 1e6f, 3))).accepted);
    // Random garbage at a plausible scale but far away: refused.
    CHECK_FALSE(merger.merge({local, 100, 1.0}, message_from(50, 2, noisy(0.0f, 0.3f, 4))).accepted);
    CHECK(local == before);

    // Between the clip radius and the outlier bound: accepted, pulled back onto the radius.
    auto far = local;
    const auto direction = noisy(0.0f, 1.0f, 5);
    const double len = l2_norm(direction);
    const double want = 3.0 * median;  // clip at 2x, refuse above 4x
    for (std::size_t i = 0; i < far.size(); ++i)
        far[i] += static_cast<float>(direction[i] * want / len);
    const auto out = merger.merge({local, 100, 1.0}, message_from(60, 1, far));
    CHECK(out.accepted);
    CHECK(out.clipped);
    CHECK(l2_distance(local, before) == doctest::Approx(0.5 * 2.0 * median).epsilon(0.01));
}

TEST_CASE("the norm check refuses a model over norm_factor times the local norm, from the first") {
    // Far from the local model yet small (the bound |local| + distance cannot clear it, so the
    // norm itself is measured), near it, and over the factor in either direction.
    const std::vector<float> base = noisy(0.0f, 0.1f, 7);
    const auto scaled = [&](float by) {
        std::vector<float> v = base;
        for (float& x : v) x *= by;
        return v;
    };
    struct Case {
        float by;
        bool accepted;
    };
    for (const Case c : {Case{2.9f, true}, Case{-1.5f, true}, Case{-2.5f, true},
                         Case{3.5f, false}, Case{-3.5f, false}}) {
        CAPTURE(c.by);
        MergeConfig config;  // norm_factor 3, no history yet
        config.weighting = Weighting::equal;
        Merger merger(config);
        std::vector<float> local = base;
        const MergeOutcome out = merger.merge({local, 100, 1.0}, message_from(2, 1, scaled(c.by)));
        CHECK(out.accepted == c.accepted);
        CHECK((local == base) == !c.accepted);
    }
}

namespace {

// Four peers' models just apart from `local`, merged: the history the outlier check judges by.
void learn_history(Merger& merger, std::span<float> local) {
    for (std::uint8_t k = 0; k < 4; ++k) {
        std::vector<float> peer(local.begin(), local.end());
        peer[k] += 0.01f;
        REQUIRE(merger.merge({local, 1, 1.0}, message_from(k + 2, 1, peer)).accepted);
    }
}

}  // namespace

TEST_CASE("refusals from several origins in a row mean this node moved: history resets") {
    Merger merger({.weighting = Weighting::equal});
    std::vector<float> local(23, 1.0f);
    learn_history(merger, local);
    // The rest of the cluster moved on while this node was cut off (same norm scale).
    std::vector<float> moved(23, 1.05f);
    CHECK_FALSE(merger.merge({local, 1, 1.0}, message_from(10, 1, moved)).accepted);
    CHECK_FALSE(merger.merge({local, 1, 1.0}, message_from(10, 2, moved)).accepted);  // same origin
    CHECK_FALSE(merger.merge({local, 1, 1.0}, message_from(11, 1, moved)).accepted);
    CHECK(merger.merge({local, 1, 1.0}, message_from(12, 1, moved)).accepted);  // third origin
    CHECK(merger.known_distances() == 1);
}

TEST_CASE("a pair left behind together resets though it keeps accepting each other's models") {
    Merger merger({.weighting = Weighting::equal});
    std::vector<float> local(23, 1.0f);
    learn_history(merger, local);
    // A 4-device cluster: the partner (device 5) is stuck where this one is, devices 10 and 11
    // moved on. Each refusal is followed by the partner's model, accepted.
    const std::vector<float> moved(23, 1.05f);
    std::uint64_t version = 1;
    const auto partner = [&] {
        auto near = local;
        near[0] += 0.01f;
        return merger.merge({local, 1, 1.0}, message_from(5, version, near)).accepted;
    };
    for (int i = 0; i < 3; ++i) {
        const std::uint8_t far = i % 2 == 0 ? 10 : 11;
        CHECK_FALSE(merger.merge({local, 1, 1.0}, message_from(far, version, moved)).accepted);
        CHECK(partner());
        ++version;
    }
    // The fourth refusal in eight judged models, from two origins: this node is the one behind.
    CHECK(merger.merge({local, 1, 1.0}, message_from(11, version, moved)).accepted);
    CHECK(merger.known_distances() == 1);
}

TEST_CASE("in a larger cluster, refusals between others' accepted models keep the history") {
    Merger merger({.weighting = Weighting::equal});
    std::vector<float> local(23, 1.0f);
    learn_history(merger, local);
    // Two far origins, each refusal followed by a near model from a different device: five
    // origins in the window, so only refusals in a row would mean this node moved.
    const std::vector<float> moved(23, 1.05f);
    std::uint8_t near_origin = 20;
    for (std::uint64_t v = 1; v <= 6; ++v) {
        CHECK_FALSE(merger.merge({local, 1, 1.0}, message_from(v % 2 == 0 ? 10 : 11, v, moved))
                        .accepted);
        auto near = local;
        near[1] += 0.01f;
        CHECK(merger.merge({local, 1, 1.0}, message_from(near_origin++, 1, near)).accepted);
    }
    CHECK_FALSE(merger.merge({local, 1, 1.0}, message_from(10, 9, moved)).accepted);
    CHECK(merger.known_distances() > 1);
}

TEST_CASE("one far origin never resets the history, however often it is refused") {
    Merger merger({.weighting = Weighting::equal});
    std::vector<float> local(23, 1.0f);
    learn_history(merger, local);
    const std::vector<float> moved(23, 1.05f);
    for (std::uint64_t v = 1; v <= 20; ++v)
        CHECK_FALSE(merger.merge({local, 1, 1.0}, message_from(10, v, moved)).accepted);
    CHECK(merger.known_distances() == 4);
}

TEST_CASE("coordinate-wise trimmed mean ignores one extreme coordinate") {
    MergeConfig config;
    config.trimmed_window = 4;
    config.trim_fraction = 0.2;
    config.min_history = 100;  // judge nothing: only the trimmed mean at work
    Merger merger(config);
    std::vector<float> local(23, 1.0f);
    for (std::uint8_t k = 0; k < 3; ++k)
        REQUIRE(merger.merge({local, 1, 1.0}, message_from(k + 2, 1, std::vector<float>(23, 1.0f))).accepted);
    auto spiked = std::vector<float>(23, 1.0f);
    spiked[7] = 10.0f;  // far off, yet within the norm check (norm ~11 vs ~4.8 local)
    REQUIRE(merger.merge({local, 1, 1.0}, message_from(9, 1, spiked)).accepted);
    CHECK(local[7] == doctest::Approx(1.0f));
}

TEST_CASE("a model that went NaN or Inf is neither pushed nor given to a pull, and is counted") {
    model::Mlp model(kWidths);
    model.init_he(1);
    LearnerConfig config;
    config.fanout = 2;
    config.samples_per_round = 10;
    config.encoding = Encoding::int8;  // quantising NaN would be undefined: it must not get there
    GossipLearner learner(device(1), model, config, 7);
    const std::vector<PeerInfo> peers{{device(2), 0}, {device(3), 0}};
    learner.on_peers_changed(peers, 0us);
    learner.on_start(0us, false);
    model.parameters()[5] = std::nanf("");
    learner.on_local_samples(10, 1ms);
    CHECK(learner.take_actions().empty());
    CHECK(learner.stats().sends_skipped_not_finite == 2);
    learner.on_model_requested(device(2), 2ms);
    CHECK(learner.take_actions().empty());
    CHECK(learner.stats().sends_skipped_not_finite == 3);
    CHECK(learner.version() == 0);
    model.parameters()[5] = std::numeric_limits<float>::infinity();
    learner.on_local_samples(10, 3ms);
    CHECK(learner.take_actions().empty());
    model.parameters()[5] = 0.5f;  // finite again: rounds go out
    learner.on_local_samples(10, 4ms);
    CHECK(learner.take_actions().size() == 2);
}

TEST_CASE("rounds go to `fanout` distinct peers within the link budget, version rising") {
    model::Mlp model(kWidths);
    model.init_he(1);
    LearnerConfig config;
    config.fanout = 3;
    config.samples_per_round = 100;
    config.max_concurrent_sends = 4;
    GossipLearner learner(device(1), model, config, 7);
    std::vector<PeerInfo> peers;
    for (std::uint8_t k = 1; k <= 6; ++k) peers.push_back({device(k), 0});  // self included
    learner.on_peers_changed(peers, 0us);
    learner.on_start(0us, false);
    CHECK(learner.ready_to_train());

    learner.on_local_samples(60, 1ms);
    CHECK(learner.take_actions().empty());
    learner.on_local_samples(60, 2ms);
    auto round = learner.take_actions();
    REQUIRE(round.size() == 3);
    std::set<DeviceId> targets;
    for (const Action& a : round) {
        CHECK(a.kind == ActionKind::send_model);
        CHECK(a.peer != device(1));
        CHECK(a.bytes == round[0].bytes);  // one encoding per round
        targets.insert(a.peer);
    }
    CHECK(targets.size() == 3);
    const auto decoded = decode_model(*round[0].bytes, kWidths);
    REQUIRE(std::holds_alternative<ModelMessage>(decoded));
    CHECK(std::get<ModelMessage>(decoded).version == 1);
    CHECK(std::get<ModelMessage>(decoded).samples_seen == 120);

    // Three in flight, budget four: the next round sends one and skips two.
    learner.on_local_samples(100, 3ms);
    CHECK(learner.take_actions().size() == 1);
    CHECK(learner.stats().sends_skipped_budget == 2);
    for (const Action& a : round) learner.on_send_finished(a.transfer, true, 4ms);
    CHECK(learner.stats().sends_completed == 3);
    learner.on_local_samples(100, 5ms);
    CHECK(learner.take_actions().size() == 3);
    CHECK(learner.version() == 3);
}

TEST_CASE("a learner told to compress sends its rounds as zstd frames, counted at both ends") {
    // Trained-like weights (most small, a few large): their int8 levels shrink under zstd.
    const std::vector<std::uint32_t> widths{64, 32, 10};
    model::Mlp sender(widths);
    model::Rng rng(3);
    for (float& v : sender.parameters())
        v = static_cast<float>(rng.normal() * (rng.uniform() < 0.05 ? 0.3 : 0.02));
    model::Mlp receiver(widths);
    std::ranges::copy(sender.parameters(), receiver.parameters().begin());
    receiver.parameters()[0] += 0.01f;
    LearnerConfig config;
    config.fanout = 1;
    config.samples_per_round = 10;
    config.encoding = Encoding::int8;
    config.compression = Compression::zstd;
    GossipLearner a(device(1), sender, config, 7);
    GossipLearner b(device(2), receiver, config, 8);
    const std::vector<PeerInfo> peers{{device(1), 0}, {device(2), 0}};
    a.on_peers_changed(peers, 0us);
    b.on_peers_changed(peers, 0us);
    a.on_start(0us, false);
    b.on_start(0us, false);
    a.on_local_samples(10, 1ms);
    const auto round = a.take_actions();
    REQUIRE(round.size() == 1);
    CHECK(a.stats().messages_compressed == 1);
    CHECK(a.stats().compression_failures == 0);
    CHECK(round[0].bytes->size() <
          ModelEncoder(Encoding::int8, true).encode(a.header(), sender.parameters()).size());
    CHECK(b.on_model_bytes(device(1), *round[0].bytes, 2ms) == Received::merged);
    CHECK(b.stats().models_received_compressed == 1);
    CHECK(b.stats().models_merged == 1);
}

TEST_CASE("wait_for_link: a round due while sends are in flight holds training until they end") {
    model::Mlp model(kWidths);
    model.init_he(1);
    LearnerConfig config;
    config.fanout = 2;
    config.samples_per_round = 100;
    config.wait_for_link = true;
    GossipLearner learner(device(1), model, config, 7);
    std::vector<PeerInfo> peers{{device(2), 0}, {device(3), 0}, {device(4), 0}};
    learner.on_peers_changed(peers, 0us);
    learner.on_start(0us, false);

    learner.on_local_samples(100, 1ms);
    const auto first = learner.take_actions();
    REQUIRE(first.size() == 2);
    CHECK(learner.ready_to_train());  // the next samples train while this round is on the wire

    // The next round comes due with both sends on the wire: nothing sent, nothing skipped,
    // training holds.
    learner.on_local_samples(100, 2ms);
    CHECK(learner.take_actions().empty());
    CHECK_FALSE(learner.ready_to_train());
    CHECK(learner.stats().rounds_waited == 1);
    CHECK(learner.stats().sends_skipped_budget == 0);

    // One send ends (delivered), one fails: the round starts when the last of them ends.
    learner.on_send_finished(first[0].transfer, true, 3ms);
    CHECK(learner.take_actions().empty());
    CHECK_FALSE(learner.ready_to_train());
    learner.on_send_finished(first[1].transfer, false, 4ms);
    const auto second = learner.take_actions();
    CHECK(second.size() == 2);
    CHECK(learner.ready_to_train());
    CHECK(learner.stats().rounds == 2);
    const auto decoded = decode_model(*second[0].bytes, kWidths);
    REQUIRE(std::holds_alternative<ModelMessage>(decoded));
    CHECK(std::get<ModelMessage>(decoded).samples_seen == 200);

    // Without the option the same due round is skipped and training goes on.
    LearnerConfig free_config = config;
    free_config.wait_for_link = false;
    free_config.max_concurrent_sends = 2;
    GossipLearner free_learner(device(1), model, free_config, 7);
    free_learner.on_peers_changed(peers, 0us);
    free_learner.on_start(0us, false);
    free_learner.on_local_samples(100, 1ms);
    CHECK(free_learner.take_actions().size() == 2);
    free_learner.on_local_samples(100, 2ms);
    CHECK(free_learner.take_actions().empty());
    CHECK(free_learner.ready_to_train());
    CHECK(free_learner.stats().sends_skipped_budget == 2);
    CHECK(free_learner.stats().rounds_waited == 0);
}

TEST_CASE("duplicates and garbage are refused and counted; the model is untouched") {
    model::Mlp model(kWidths);
    model.init_he(1);
    GossipLearner learner(device(1), model, LearnerConfig{}, 7);
    learner.on_start(0us, false);
    const auto params = std::vector<float>(model.parameters().begin(), model.parameters().end());

    auto peer_values = params;
    for (float& v : peer_values) v += 0.01f;
    CHECK(learner.stats().consensus_distance == 0.0);
    CHECK(learner.on_model(device(2), message_from(2, 5, peer_values), 1ms) == Received::merged);
    // Every parameter 0.01 apart: the distance reported is the L2 one, 0.01 * sqrt(count).
    CHECK(learner.stats().consensus_distance ==
          doctest::Approx(0.01 * std::sqrt(static_cast<double>(params.size()))).epsilon(1e-3));
    CHECK(learner.on_model(device(2), message_from(2, 5, peer_values), 2ms) == Received::refused);
    CHECK(learner.on_model(device(2), message_from(2, 4, peer_values), 2ms) == Received::refused);
    CHECK(learner.stats().refused[static_cast<std::size_t>(Refusal::duplicate)] == 2);

    const auto merged = std::vector<float>(model.parameters().begin(), model.parameters().end());
    const std::vector<std::uint8_t> junk(100, 0xAB);
    CHECK(learner.on_model_bytes(device(3), junk, 3ms) == Received::refused);
    CHECK(learner.stats().refused[static_cast<std::size_t>(Refusal::malformed)] == 1);
    ModelEncoder encoder(Encoding::fp32);
    auto wrong = message_from(3, 1, std::vector<float>(model::parameter_count(std::vector<std::uint32_t>{4, 3, 3}), 0.0f));
    wrong.widths = {4, 3, 3};
    CHECK(learner.on_model_bytes(device(3), encoder.encode(wrong, wrong.parameters), 3ms) ==
          Received::refused);
    CHECK(learner.stats().refused[static_cast<std::size_t>(Refusal::wrong_widths)] == 1);
    CHECK(std::equal(merged.begin(), merged.end(), model.parameters().begin()));
    CHECK(learner.stats().models_merged == 1);
}

TEST_CASE("a new device pulls the freshest peer's model before training, then tries others") {
    model::Mlp model(kWidths);
    model.init_he(1);
    LearnerConfig config;
    config.pull_timeout = 100ms;
    GossipLearner learner(device(1), model, config, 7);
    learner.on_start(0us, true);
    CHECK_FALSE(learner.ready_to_train());
    CHECK(learner.take_actions().empty());  // nobody known yet

    const std::vector<PeerInfo> peers{{device(2), 500}, {device(3), 9000}, {device(4), 10}};
    learner.on_peers_changed(peers, 1ms);
    auto actions = learner.take_actions();
    REQUIRE(actions.size() == 1);
    CHECK(actions[0].kind == ActionKind::request_model);
    CHECK(actions[0].peer == device(3));

    // No answer in time: the next freshest.
    learner.on_tick(50ms);
    CHECK(learner.take_actions().empty());
    CHECK(learner.next_wakeup() == 101ms);
    learner.on_tick(101ms);
    actions = learner.take_actions();
    REQUIRE(actions.size() == 1);
    CHECK(actions[0].peer == device(2));
    CHECK(learner.stats().pulls_failed == 1);

    // Its answer replaces the local model whole.
    const auto fresh = noisy(0.5f, 0.1f, 9);
    CHECK(learner.on_model(device(2), message_from(2, 3, fresh, 500), 120ms) == Received::adopted);
    CHECK(learner.ready_to_train());
    CHECK(learner.samples_seen() == 500);
    CHECK(std::equal(fresh.begin(), fresh.end(), model.parameters().begin()));
}

TEST_CASE("refused pulls are retried after a wait that doubles, round the peers, then given up") {
    model::Mlp model(kWidths);
    model.init_he(1);
    GossipLearner learner(device(1), model, LearnerConfig{}, 7);
    learner.on_start(0us, true);
    const std::vector<PeerInfo> peers{{device(2), 500}, {device(3), 9000}};
    learner.on_peers_changed(peers, 0us);
    std::vector<DeviceId> asked;
    Time now = 0us;
    Time wait = kPullRetryWait;
    for (std::uint32_t refusal = 0; refusal < kMaxPullRefusals; ++refusal) {
        auto actions = learner.take_actions();
        REQUIRE(actions.size() == 1);
        REQUIRE(actions[0].kind == ActionKind::request_model);
        asked.push_back(actions[0].peer);
        now += 1ms;
        learner.on_request_failed(actions[0].transfer, now);  // busy: refused
        if (refusal + 1 == kMaxPullRefusals) break;
        CHECK_FALSE(learner.ready_to_train());
        CHECK(learner.take_actions().empty());  // not at once
        const Time expected = std::min(wait, LearnerConfig{}.pull_timeout);  // capped
        CHECK(learner.next_wakeup() == now + expected);
        learner.on_tick(now + expected - 1us);
        CHECK(learner.take_actions().empty());
        now += expected;
        learner.on_tick(now);
        wait *= 2;
    }
    // Freshest first, then the other, then round again.
    CHECK(asked[0] == device(3));
    CHECK(asked[1] == device(2));
    CHECK(asked[2] == device(3));
    CHECK(learner.ready_to_train());  // eight refusals: it trains from its own model
    CHECK(learner.stats().pulls_failed == kMaxPullRefusals);
    CHECK(learner.take_actions().empty());
}

TEST_CASE("a lone device stops waiting for a pull after one timeout") {
    model::Mlp model(kWidths);
    model.init_he(1);
    LearnerConfig config;
    config.pull_timeout = 100ms;
    GossipLearner learner(device(1), model, config, 7);
    learner.on_start(0us, true);
    CHECK_FALSE(learner.ready_to_train());
    learner.on_tick(100ms);
    CHECK(learner.ready_to_train());
}

namespace {

LearnerConfig lattice_config() {
    LearnerConfig config;
    config.encoding = Encoding::lattice;
    return config;
}

// Device 1 of a lattice cluster, its model initialised, started without catching up.
struct LatticeDevice {
    model::Mlp model{kWidths};
    GossipLearner learner{device(1), model, lattice_config(), 7};
    LatticeDevice() {
        model.init_he(1);
        learner.on_start(0us, false);
    }
};

}  // namespace

TEST_CASE("a device that can resolve nobody's lattice messages pulls a model whole") {
    LatticeDevice d;
    GossipLearner& learner = d.learner;
    const std::vector<PeerInfo> peers{{device(2), 500}, {device(3), 600}, {device(4), 700}};
    learner.on_peers_changed(peers, 0us);
    learner.take_actions();

    // Peers that agree closely with each other (fine lattice steps), far from this device.
    const auto theirs = noisy(3.0f, 0.1f, 4);
    ModelEncoder peer_encoder(Encoding::lattice);
    peer_encoder.observe_peer(theirs, message_from(9, 1, noisy(3.0f, 0.1f, 5)));
    for (std::uint8_t origin = 2; origin <= 4; ++origin) {
        const auto bytes = peer_encoder.encode(message_from(origin, 1, theirs), theirs);
        CHECK(learner.on_model_bytes(device(origin), bytes, 1ms) == Received::refused);
        CHECK(learner.ready_to_train() == (origin < 4));
    }
    CHECK(learner.stats().refused[static_cast<std::size_t>(Refusal::unresolved)] == 3);
    CHECK(learner.stats().lost_pulls == 1);
    const auto actions = learner.take_actions();
    REQUIRE(actions.size() == 1);
    CHECK(actions[0].kind == ActionKind::request_model);
    CHECK(actions[0].peer == device(4));  // the freshest

    // The answer is whole (fp32), and replaces the model.
    ModelEncoder answer(Encoding::fp32);
    CHECK(learner.on_model_bytes(device(4), answer.encode(message_from(4, 2, theirs, 700), theirs),
                                 2ms) == Received::adopted);
    CHECK(learner.ready_to_train());
    CHECK(std::equal(theirs.begin(), theirs.end(), d.model.parameters().begin()));
}

TEST_CASE("a device with a block no peer's lattice message resolves pulls a model whole") {
    // 414 parameters: four lattice blocks. This device agrees with its peers except in the first
    // block, far beyond the lattice's reach: every message leaves that block unresolved and
    // resolves the rest, so none is refused, and merges keep the block as it is.
    const std::vector<std::uint32_t> widths{100, 4, 2};
    const auto values = [&](std::uint64_t seed) {
        model::Rng rng(seed);
        std::vector<float> v(model::parameter_count(widths));
        for (float& x : v) x = 3.0f + 0.1f * static_cast<float>(rng.normal());
        return v;
    };
    const auto message = [&](std::uint8_t origin, std::uint64_t version, std::vector<float> v) {
        ModelMessage m = message_from(origin, version, std::move(v), 700);
        m.widths = widths;
        return m;
    };
    const auto theirs = values(4);
    ModelEncoder peer_encoder(Encoding::lattice);
    peer_encoder.observe_peer(theirs, message(9, 1, values(5)));
    model::Mlp model(widths);
    GossipLearner learner(device(1), model, lattice_config(), 7);
    learner.on_start(0us, false);
    std::ranges::copy(theirs, model.parameters().begin());
    for (std::size_t i = 0; i < kLatticeBlockValues; ++i) model.parameters()[i] += 50.0f;
    const std::vector<PeerInfo> peers{{device(2), 500}, {device(3), 600}, {device(4), 700}};
    learner.on_peers_changed(peers, 0us);
    learner.take_actions();
    const auto push = [&](std::uint8_t origin, std::uint64_t version) {
        return learner.on_model_bytes(
            device(origin), peer_encoder.encode(message(origin, version, theirs), theirs), 1ms);
    };

    SUBCASE("from one origin only: that peer may be the one off, no pull") {
        for (std::uint32_t n = 1; n <= 2 * kStuckBlockMessages; ++n)
            CHECK(push(2, n) == Received::merged);
        CHECK(learner.stats().lattice_blocks_unresolved == 2 * kStuckBlockMessages);
        CHECK(learner.stats().lost_pulls == 0);
        CHECK(learner.ready_to_train());
    }
    SUBCASE("from several origins: its own block is off, it pulls") {
        for (std::uint32_t n = 1; n <= kStuckBlockMessages; ++n) {
            CHECK(push(static_cast<std::uint8_t>(2 + n % 3), n) == Received::merged);
            CHECK(learner.ready_to_train() == (n < kStuckBlockMessages));
        }
        CHECK(learner.stats().lattice_blocks_unresolved == kStuckBlockMessages);
        CHECK(learner.stats().lost_pulls == 1);
        CHECK(model.parameters()[0] > theirs[0] + 40.0f);  // the merges kept it
        const auto actions = learner.take_actions();
        REQUIRE(actions.size() == 1);
        CHECK(actions[0].kind == ActionKind::request_model);
        ModelEncoder answer(Encoding::fp32);
        const auto whole = answer.encode(message(actions[0].peer[0], 9, theirs), theirs);
        CHECK(learner.on_model_bytes(actions[0].peer, whole, 2ms) == Received::adopted);
        CHECK(learner.ready_to_train());
        CHECK(std::equal(theirs.begin(), theirs.end(), model.parameters().begin()));
    }
}

TEST_CASE("a lattice cluster answers catch-up pulls in fp32") {
    LatticeDevice d;
    d.learner.on_model_requested(device(2), 0us);
    const auto actions = d.learner.take_actions();
    REQUIRE(actions.size() == 1);
    // Decodes with no local model at all: nothing to resolve.
    const DecodeResult r = decode_model(*actions[0].bytes, kWidths);
    REQUIRE(std::holds_alternative<ModelMessage>(r));
    const auto& values = std::get<ModelMessage>(r).parameters;
    CHECK(std::equal(values.begin(), values.end(), d.model.parameters().begin()));
}

TEST_CASE("pull requests are answered within the link budget, queued beyond it") {
    model::Mlp model(kWidths);
    model.init_he(1);
    LearnerConfig config;
    config.max_concurrent_sends = 1;
    GossipLearner learner(device(1), model, config, 7);
    learner.on_start(0us, false);
    learner.on_model_requested(device(2), 0us);
    learner.on_model_requested(device(3), 0us);
    auto first = learner.take_actions();
    REQUIRE(first.size() == 1);
    CHECK(first[0].peer == device(2));
    learner.on_send_finished(first[0].transfer, false, 1ms);
    auto second = learner.take_actions();
    REQUIRE(second.size() == 1);
    CHECK(second[0].peer == device(3));
    CHECK(learner.stats().sends_failed == 1);
}

// Gossip learning in the deterministic training simulator, on a small synthetic problem (Gaussian
// class clusters, a 16-16-4 MLP, 8 devices of 120 examples): learning together beats learning
// alone, waiting for a slow link sends every round, a restarted device catches up by pulling,
// garbage is refused without harm, a healed partition converges, and the same seed gives the
// same run.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <numeric>
#include <string>
#include <vector>

#include "node/model/rng.hpp"
#include "tools/sim/training.hpp"

using namespace starling;
using namespace starling::sim;

namespace {

constexpr std::uint32_t kFeatures = 16;
constexpr std::uint32_t kClasses = 4;

// Class centres at distance ~2.8 from each other, unit noise: a problem a linear model solves to
// ~90%, so every point of accuracy has to be learned.
data::Dataset clusters(std::size_t n, std::uint64_t seed) {
    model::Rng centre_rng(12345);
    std::vector<float> centres(kClasses * kFeatures);
    for (float& c : centres) c = static_cast<float>(centre_rng.normal()) * 0.7f;
    model::Rng rng(seed);
    data::Dataset ds;
    ds.features = kFeatures;
    ds.classes = kClasses;
    ds.byte_scale = 1.0f;
    for (std::size_t i = 0; i < n; ++i) {
        const auto label = static_cast<std::uint8_t>(i % kClasses);
        ds.labels.push_back(label);
        for (std::uint32_t f = 0; f < kFeatures; ++f)
            ds.values.push_back(centres[label * kFeatures + f] + static_cast<float>(rng.normal()));
    }
    return ds;
}

const data::Dataset& train_set() {
    static const data::Dataset ds = clusters(960, 1);
    return ds;
}
const data::Dataset& test_set() {
    static const data::Dataset ds = clusters(800, 2);
    return ds;
}

TrainingScenario small(data::SplitScheme::Kind kind = data::SplitScheme::classes) {
    TrainingScenario sc;
    sc.nodes = 8;
    sc.images_per_node = 120;
    sc.split.kind = kind;
    sc.split.classes_per_node = 1;  // each device sees a single class: alone it learns nothing
    sc.widths = {kFeatures, 16, kClasses};
    sc.epochs = 30;
    sc.batch = 16;
    sc.learning_rate = 0.05f;
    sc.base_samples_per_second = 10000;  // 120 examples: 12 ms per epoch
    sc.learner.fanout = 2;
    sc.learner.samples_per_round = 60;
    sc.learner.pull_timeout = std::chrono::milliseconds(50);
    sc.consensus_rounds = 5;
    sc.eval_every = 0.05;
    sc.eval_subset = 400;
    sc.seed = 3;
    return sc;
}

TrainingReport run(const TrainingScenario& sc, const Adversary& adversary = {}) {
    auto report = simulate_training(sc, train_set(), test_set(), nullptr, adversary);
    REQUIRE(report.ok());
    return std::move(*report);
}

}  // namespace

TEST_CASE("devices that gossip beat devices that train alone") {
    TrainingScenario together = small();
    TrainingScenario alone = small();
    alone.learner.samples_per_round = 1u << 30;  // never a round
    alone.consensus_rounds = 0;
    const TrainingReport g = run(together);
    const TrainingReport a = run(alone);
    MESSAGE("gossip mean " << g.final_full.mean << " min " << g.final_full.min << "; alone mean "
                           << a.final_full.mean);
    CHECK(a.exchanges == 0);
    CHECK(a.final_full.mean < 0.4);  // one class each: ~25%
    CHECK(g.final_full.mean > 0.8);
    CHECK(g.final_full.min > 0.75);
    CHECK(g.merges > 0);
}

TEST_CASE("a run with a deadline reaches its target at the final evaluation, on the same set") {
    TrainingScenario sc = small();
    sc.run_seconds = 0.2;
    sc.consensus_rounds = 0;
    sc.eval_every = 10;  // only the evaluation at the start comes before the deadline
    sc.eval_subset = 800;
    sc.target_accuracy = 0.7;
    const TrainingReport whole = run(sc);
    MESSAGE("final mean " << whole.final_full.mean << " at " << whole.virtual_seconds << " s");
    REQUIRE(whole.final_full.mean >= 0.7);
    CHECK(whole.target_reached_at == doctest::Approx(whole.virtual_seconds));
    CHECK(whole.target_reached_at > 0.1);  // not the evaluation at the start

    // The curve's CSV ends with that evaluation, only when it is on the set the curve is on.
    const auto csv_rows = [](const TrainingReport& r) {
        std::FILE* f = std::tmpfile();
        REQUIRE(f != nullptr);
        write_curve_csv(r, f);
        std::rewind(f);
        std::vector<std::string> rows;
        char line[256];
        while (std::fgets(line, sizeof line, f) != nullptr) rows.emplace_back(line);
        std::fclose(f);
        return rows;
    };
    const std::vector<std::string> rows = csv_rows(whole);
    REQUIRE(whole.curve.size() == 2);  // the start, the end
    REQUIRE(rows.size() == whole.curve.size() + 1);  // and the header
    CHECK(rows.back().starts_with("0.2000,"));

    sc.eval_subset = 400;  // judged along the way on part of the set: the end's whole set differs
    const TrainingReport part = run(sc);
    CHECK(part.target_reached_at < 0);
    REQUIRE(part.curve.size() == 1);  // the start only
    CHECK(csv_rows(part).back().starts_with("0.0000,"));
    sc.eval_subset = 800;
    sc.target_accuracy = std::nextafter(whole.final_full.mean, 1.0);
    CHECK(run(sc).target_reached_at < 0);
}

TEST_CASE("gossip CPU is taken from training: the same epochs take longer") {
    const TrainingReport free_cpu = run(small());
    TrainingScenario charged = small();
    charged.cpu_per_send = 0.001;     // 1 ms per round at speed 1.0 (a 10 ms epoch here)
    charged.cpu_per_receive = 0.002;  // 2 ms per model received
    const TrainingReport slow = run(charged);
    MESSAGE("virtual seconds free " << free_cpu.virtual_seconds << ", charged "
                                    << slow.virtual_seconds);
    CHECK(slow.samples_trained == free_cpu.samples_trained);
    CHECK(slow.virtual_seconds > 1.5 * free_cpu.virtual_seconds);
}

TEST_CASE("a link kept open between two devices pays for its handshake once") {
    TrainingScenario every = small();
    every.gossip_thread = true;
    every.cpu_per_send = 0.0005;
    every.cpu_per_receive = 0.001;
    every.cpu_per_handshake = 0.0005;  // each side's half
    TrainingScenario kept = every;
    kept.link_idle = 10.0;  // longer than the run: a pair's link never closes
    const TrainingReport e = run(every);
    const TrainingReport k = run(kept);
    MESSAGE("links opened " << e.links_opened << " of " << e.transfers << " transfers (busy "
                            << e.gossip_thread_busy << "); kept open: " << k.links_opened << " of "
                            << k.transfers << " (busy " << k.gossip_thread_busy << ")");
    CHECK(e.transfers > 100);
    CHECK(e.links_opened == e.transfers);
    CHECK(k.links_opened <= 8 * 7 / 2);  // once per pair at most, either way
    CHECK(k.links_opened * 4 < k.transfers);
    CHECK(k.gossip_thread_busy < e.gossip_thread_busy);
}

TEST_CASE("a gossip thread takes that CPU off training; one slower than arrivals drops models") {
    const TrainingReport free_cpu = run(small());
    TrainingScenario threaded = small();
    threaded.gossip_thread = true;
    threaded.cpu_per_send = 0.001;  // as above, now on the gossip thread's core
    threaded.cpu_per_receive = 0.002;
    threaded.handoff_per_send = 0.00003;     // a copy of the model
    threaded.handoff_per_receive = 0.0001;  // a merge's move added
    const TrainingReport t = run(threaded);
    TrainingScenario overloaded = threaded;
    overloaded.cpu_per_receive = 0.05;  // 50 ms a model, where one arrives every ~17 ms
    const TrainingReport o = run(overloaded);
    MESSAGE("virtual seconds free " << free_cpu.virtual_seconds << ", gossip thread "
                                    << t.virtual_seconds << " (busy " << t.gossip_thread_busy
                                    << "), overloaded: " << o.models_dropped << " of "
                                    << o.exchanges << " dropped, busy " << o.gossip_thread_busy);
    CHECK(t.samples_trained == free_cpu.samples_trained);
    CHECK(t.virtual_seconds < 1.2 * free_cpu.virtual_seconds);  // charged to training: > 1.5x
    CHECK(t.gossip_thread_busy > 0.2);
    CHECK(t.gossip_thread_busy < 1.0);
    CHECK(t.models_dropped == 0);
    CHECK(t.final_full.mean > 0.8);
    CHECK(o.models_dropped > 0);
    CHECK(o.merges + o.models_dropped <= o.exchanges);
}

TEST_CASE("with a gossip thread the trainer adds the merges' moves once a step, however many") {
    TrainingScenario sc = small();
    sc.consensus_rounds = 0;
    sc.learner.fanout = 7;  // every other device, every step: ~7 models merge per step
    sc.learner.samples_per_round = 16;
    sc.learner.max_concurrent_sends = 8;
    const TrainingReport free_cpu = run(sc);
    sc.gossip_thread = true;
    sc.handoff_per_receive = 0.001;  // 1 ms, where a step trains in 1.6 ms
    const TrainingReport t = run(sc);
    const double steps = sc.epochs * sc.images_per_node / sc.batch;  // per device
    const double added = t.virtual_seconds - free_cpu.virtual_seconds;
    MESSAGE("merges " << t.merges << ", virtual seconds free " << free_cpu.virtual_seconds
                      << ", with hand-offs " << t.virtual_seconds);
    CHECK(t.merges > 8 * steps * 4);  // several models a step
    CHECK(added > 0.5 * steps * sc.handoff_per_receive);
    CHECK(added < 1.1 * steps * sc.handoff_per_receive);  // one per merged model: ~7x
}

TEST_CASE("waiting for the link: every due round is sent, training takes longer") {
    // A link slower than training: a round's two models take longer to send than the next
    // 60 samples take to train.
    TrainingScenario skip = small();
    skip.bandwidth_bytes_per_second = 75'000;
    skip.learner.max_concurrent_sends = 2;
    TrainingScenario wait = skip;
    wait.learner.wait_for_link = true;
    const TrainingReport s = run(skip);
    const TrainingReport w = run(wait);
    MESSAGE("skipping: " << s.exchanges << " exchanges in " << s.virtual_seconds
                         << " s, mean " << s.final_full.mean << "; waiting: " << w.exchanges
                         << " in " << w.virtual_seconds << " s, " << w.rounds_waited
                         << " rounds waited, mean " << w.final_full.mean);
    CHECK(s.rounds_waited == 0);
    CHECK(w.rounds_waited > w.rounds / 2);
    CHECK(w.rounds_waited <= w.rounds);
    CHECK(w.samples_trained == s.samples_trained);
    CHECK(w.exchanges > s.exchanges * 3 / 2);
    CHECK(w.virtual_seconds > s.virtual_seconds * 3 / 2);
    // One class per device: agreeing after every 60 samples is what learning together takes.
    CHECK(w.final_full.mean > s.final_full.mean + 0.1);
    CHECK(w.final_full.min > 0.8);
}

TEST_CASE("a duty cycle stretches training in time, and a slow link carries more rounds") {
    TrainingScenario full = small();
    full.bandwidth_bytes_per_second = 75'000;  // as above: slower than training
    full.learner.max_concurrent_sends = 2;
    TrainingScenario quarter = full;
    quarter.duty = 0.25;
    const TrainingReport f = run(full);
    const TrainingReport q = run(quarter);
    MESSAGE("duty 1: " << f.exchanges << " exchanges in " << f.virtual_seconds
                       << " s; duty 0.25: " << q.exchanges << " in " << q.virtual_seconds << " s");
    CHECK(q.samples_trained == f.samples_trained);
    CHECK(q.virtual_seconds > 3 * f.virtual_seconds);
    CHECK(q.exchanges > 2 * f.exchanges);
}

TEST_CASE("the same seed replays the same run") {
    const TrainingReport a = run(small());
    const TrainingReport b = run(small());
    CHECK(a.final_accuracy == b.final_accuracy);
    CHECK(a.bytes_sent == b.bytes_sent);
    TrainingScenario other = small();
    other.seed = 4;
    CHECK(run(other).final_accuracy != a.final_accuracy);
}

TEST_CASE("a restarted device pulls a fresh model before training and catches up") {
    // Also on the lattice: the restarted device's fresh model is near nobody's, so only the
    // (fp32) pull answer can bring it in.
    for (const gossip::Encoding encoding : {gossip::Encoding::fp32, gossip::Encoding::lattice}) {
    CAPTURE(gossip::to_string(encoding));
    TrainingScenario sc = small();
    sc.learner.encoding = encoding;
    sc.events.push_back({.at = 0.1, .kind = TrainingEvent::crash, .nodes = {3}, .groups = {}});
    sc.events.push_back({.at = 0.2, .kind = TrainingEvent::restart, .nodes = {3}, .groups = {}});
    const TrainingReport r = run(sc);
    MESSAGE("node 3 " << r.final_accuracy[3] << ", mean " << r.final_full.mean);
    CHECK(r.adopted == 1);  // exactly the restarted device's pull answer
    CHECK(r.final_full.live == 8);
    CHECK(r.final_accuracy[3] > 0.75);
    CHECK(std::fabs(r.final_accuracy[3] - r.final_full.mean) < 0.05);
    }
}

TEST_CASE("Adam devices gossip too; a restarted one adopts a model and starts its moments over") {
    TrainingScenario sc = small();
    sc.optimizer = model::OptimizerConfig::Kind::adam;
    sc.learning_rate = 0.01f;
    sc.events.push_back({.at = 0.1, .kind = TrainingEvent::crash, .nodes = {3}, .groups = {}});
    sc.events.push_back({.at = 0.2, .kind = TrainingEvent::restart, .nodes = {3}, .groups = {}});
    const TrainingReport r = run(sc);
    MESSAGE("adam: node 3 " << r.final_accuracy[3] << ", mean " << r.final_full.mean);
    CHECK(r.adopted == 1);
    CHECK(r.final_full.mean > 0.7);  // one class each: alone, ~25%
    CHECK(std::fabs(r.final_accuracy[3] - r.final_full.mean) < 0.05);
}

TEST_CASE("a device sending garbage is refused and counted; the others are unaffected") {
    const TrainingScenario sc = small(data::SplitScheme::iid);
    Adversary adversary;
    adversary.nodes = {0};
    adversary.scale = 100.0f;
    const TrainingReport clean = run(sc);
    const TrainingReport attacked = run(sc, adversary);
    REQUIRE(attacked.garbage_sent > 0);
    const auto outliers = attacked.refused[static_cast<std::size_t>(gossip::Refusal::outlier)];
    MESSAGE("garbage sent " << attacked.garbage_sent << ", refused as outliers " << outliers);
    CHECK(outliers >= attacked.garbage_sent * 9 / 10);  // the rest: budget skips or duplicates
    double worst = 1.0;
    for (std::size_t i = 1; i < attacked.final_accuracy.size(); ++i)
        worst = std::min(worst, attacked.final_accuracy[i]);
    CHECK(worst > clean.final_full.min - 0.03);
}

TEST_CASE("a partitioned half learns only its classes, then converges after the heal") {
    // On the lattice the halves are too far apart to resolve each other's blocks at first:
    // plain int4 blocks, unresolved ones and lost devices' pulls must bring them together.
    for (const gossip::Encoding encoding : {gossip::Encoding::fp32, gossip::Encoding::lattice}) {
    CAPTURE(gossip::to_string(encoding));
    TrainingScenario sc = small();
    sc.learner.encoding = encoding;
    sc.split.classes_per_node = 1;
    sc.epochs = 40;
    // classes:1 deals a shuffled class list round-robin, device n gets entry n % 4: devices
    // {0, 1, 4, 5} hold two classes, {2, 3, 6, 7} the other two.
    sc.events.push_back({.at = 0.0, .kind = TrainingEvent::partition, .nodes = {},
                         .groups = {{0, 1, 4, 5}, {2, 3, 6, 7}}});
    sc.events.push_back({.at = 0.25, .kind = TrainingEvent::heal, .nodes = {}, .groups = {}});
    const TrainingReport r = run(sc);
    double before_heal = 0;
    for (const CurvePoint& p : r.curve)
        if (p.time < 0.25) before_heal = p.mean;
    MESSAGE("mean before heal " << before_heal << ", final mean " << r.final_full.mean << " min "
                                << r.final_full.min);
    CHECK(before_heal < 0.55);  // two classes of four
    CHECK(r.final_full.min > 0.75);
    }
}

TEST_CASE("training scenario files: the shipped ones parse, errors name file and line") {
    const std::filesystem::path dir =
        std::filesystem::path(STARLING_TEST_DATA_DIR) / ".." / ".." / "tools" / "sim" / "scenarios";
    int found = 0;
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
        if (!entry.path().filename().string().starts_with("train-")) continue;
        CAPTURE(entry.path().filename().string());
        CHECK(is_training_scenario(entry.path()));
        const auto sc = load_training_scenario(entry.path());
        CHECK(sc.ok());
        ++found;
    }
    CHECK(found >= 6);
    CHECK_FALSE(is_training_scenario(dir / "join-100.txt"));

    const auto sc = parse_training_scenario(
        "training\nnodes 10\nclass 0-4 celeron\nspeed 5-9 0.5\nsplit classes:2\nencoding int4\n"
        "momentum_policy follow\nserved_average 0.02\nlattice_margin 4\ncpu_per_send 1.5ms\n"
        "duty 0.125\nwait_for_link on\ngossip_thread on\nhandoff_per_receive 100us\n"
        "cpu_per_handshake 370us\nlink_idle 30s\n"
        "at 1s partition 0-4 | 5-9\nat 0.5s crash 3\nat 2s heal\n",
        "t.txt");
    REQUIRE(sc.ok());
    CHECK(sc->speeds[0] == doctest::Approx(0.3));
    CHECK(sc->speeds[9] == doctest::Approx(0.5));
    CHECK(sc->learner.encoding == gossip::Encoding::int4);
    CHECK(sc->momentum_policy == MomentumPolicy::follow);
    CHECK(sc->optimizer == model::OptimizerConfig::Kind::sgd);
    CHECK(sc->served_average == doctest::Approx(0.02f));
    CHECK(sc->learner.lattice_margin == doctest::Approx(4.0f));
    CHECK(sc->cpu_per_send == doctest::Approx(0.0015));
    CHECK(sc->cpu_per_receive == 0.0);
    CHECK(sc->duty == doctest::Approx(0.125));
    CHECK(sc->learner.wait_for_link);
    CHECK(sc->gossip_thread);
    CHECK(sc->handoff_per_receive == doctest::Approx(0.0001));
    CHECK(sc->handoff_per_send == 0.0);
    CHECK(sc->cpu_per_handshake == doctest::Approx(0.00037));
    CHECK(sc->link_idle == doctest::Approx(30.0));
    REQUIRE(sc->events.size() == 3);
    CHECK(sc->events[0].kind == TrainingEvent::crash);  // sorted by time
    CHECK(sc->events[1].groups.size() == 2);

    const auto bad = [](std::string_view text) {
        const auto r = parse_training_scenario(text, "t.txt");
        REQUIRE_FALSE(r.ok());
        return r.error().message;
    };
    CHECK(bad("nodes 10\n").starts_with("t.txt:1:"));
    CHECK(bad("training\nnodes 10\nclass 0-10 i7\n").starts_with("t.txt:3:"));
    CHECK(bad("training\nfanout 0\n").starts_with("t.txt:2:"));
    CHECK(bad("training\nencoding int2\n").starts_with("t.txt:2:"));
    CHECK(bad("training\nmomentum_policy drift\n").starts_with("t.txt:2:"));
    const auto adam = parse_training_scenario("training\noptimizer adam\n", "t.txt");
    REQUIRE(adam.ok());
    CHECK(adam->optimizer == model::OptimizerConfig::Kind::adam);
    CHECK(bad("training\noptimizer lion\n").starts_with("t.txt:2:"));
    CHECK(bad("training\noptimizer adam\nmomentum_policy follow\n").find("needs optimizer sgd") !=
          std::string::npos);
    CHECK_FALSE(sc->nesterov);
    const auto nesterov = parse_training_scenario("training\nnesterov on\n", "t.txt");
    REQUIRE(nesterov.ok());
    CHECK(nesterov->nesterov);
    CHECK(bad("training\nnesterov yes\n").starts_with("t.txt:2:"));
    CHECK(bad("training\nnesterov on\noptimizer adam\n").find("nesterov needs optimizer sgd") !=
          std::string::npos);
    CHECK(bad("training\nnesterov on\nmomentum_policy follow\n").find("needs nesterov off") !=
          std::string::npos);
    CHECK(bad("training\nserved_average 1.5\n").starts_with("t.txt:2:"));
    CHECK(bad("training\nlattice_margin 0\n").starts_with("t.txt:2:"));
    CHECK(bad("training\nduty 1.5\n").starts_with("t.txt:2:"));
    CHECK(bad("training\nwait_for_link maybe\n").starts_with("t.txt:2:"));
    CHECK(bad("training\ngossip_thread yes\n").starts_with("t.txt:2:"));
    CHECK(bad("training\nhandoff_per_send -1ms\n").starts_with("t.txt:2:"));
    CHECK(bad("training\ncpu_per_handshake -1ms\n").starts_with("t.txt:2:"));
    CHECK(bad("training\nlink_idle -1s\n").starts_with("t.txt:2:"));
    CHECK(bad("training\nat 1s explode 3\n").starts_with("t.txt:2:"));
    CHECK(bad("training\nwarp 9\n").starts_with("t.txt:2: unknown setting"));
}

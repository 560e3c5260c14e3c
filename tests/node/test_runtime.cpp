// The node's parts on their own: discovery messages, the beacon schedule, the state directory
// and the certificate table.

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <fstream>
#include <functional>
#include <mutex>
#include <utility>
#include <variant>

#include "crypto/cluster.hpp"
#include "node/runtime/discovery.hpp"
#include "node/runtime/discovery_wire.hpp"
#include "node/gossip/model_wire.hpp"
#include "node/model/checkpoint.hpp"
#include "node/runtime/learning_loop.hpp"
#include "node/runtime/peer_table.hpp"
#include "node/runtime/state_dir.hpp"
#include "tests/node/node_harness.hpp"
#include "tests/protocol/temp_dir.hpp"

using namespace starling;
using namespace starling::runtime;
using namespace starling::runtime::testing;

namespace {

struct Enrolled {
    crypto::ClusterSecrets secrets;
    crypto::EnrollmentBundle a;
    crypto::EnrollmentBundle b;
};

Enrolled enroll_two() {
    auto secrets = crypto::ClusterSecrets::create("home", kUnixStart);
    REQUIRE(secrets.ok());
    auto a = secrets->issue_device("a", crypto::Role::trainer, kUnixStart, 1000);
    auto b = secrets->issue_device("b", crypto::Role::trainer, kUnixStart, 1000);
    REQUIRE((a.ok() && b.ok()));
    return {std::move(secrets).value(), std::move(a).value(), std::move(b).value()};
}

}  // namespace

TEST_CASE("discovery messages round-trip and malformed ones are refused") {
    const Beacon beacon{kBeaconSeeking, {{10, 0, 0, 7}, 7946}, std::vector<std::uint8_t>(300, 5), {}};
    const auto bytes = encode_beacon(beacon);
    CHECK(channel_of(bytes) == Channel::discovery);
    auto m = decode_discovery(bytes);
    REQUIRE(m.ok());
    CHECK(m->kind == DiscoveryKind::beacon);
    CHECK(m->beacon.flags == kBeaconSeeking);
    CHECK(m->beacon.address == beacon.address);
    CHECK(m->beacon.certificate == beacon.certificate);
    CHECK(m->beacon.record.empty());

    Beacon announcing = beacon;
    announcing.record.assign(140, 7);  // the sender's record message rides along
    auto with_record = decode_discovery(encode_beacon(announcing));
    REQUIRE(with_record.ok());
    CHECK(with_record->beacon.record == announcing.record);
    announcing.record.assign(kMaxBeaconRecordBytes + 1, 7);
    CHECK_FALSE(decode_discovery(encode_beacon(announcing)).ok());
    Beacon introducing = beacon;
    introducing.flags = kBeaconIntroduction | kBeaconDirect;
    auto introduction = decode_discovery(encode_beacon(introducing));
    REQUIRE(introduction.ok());
    CHECK(introduction->beacon.flags == (kBeaconIntroduction | kBeaconDirect));

    std::vector<crypto::DeviceId> wants(3);
    wants[1][0] = 9;
    auto request = decode_discovery(encode_certificate_request(wants));
    REQUIRE(request.ok());
    CHECK(request->wants == wants);

    const std::vector<std::vector<std::uint8_t>> certs(10, std::vector<std::uint8_t>(330, 1));
    std::size_t packed = 0;
    const auto answer = encode_certificates(certs, 0, packed);
    CHECK(packed >= 3);
    CHECK(packed < certs.size());
    CHECK(answer.size() <= crypto::kMaxClusterPlaintextBytes);  // fits a to_cluster seal too
    auto decoded = decode_discovery(answer);
    REQUIRE(decoded.ok());
    CHECK(decoded->certificates.size() == packed);

    // Revocations travel in packs that fit a to_cluster datagram; a summary keeps its flags.
    auto secrets = crypto::ClusterSecrets::create("home", kUnixStart);
    REQUIRE(secrets.ok());
    std::vector<std::vector<std::uint8_t>> revocations;
    for (int i = 0; i < 10; ++i) {
        const std::string name = "d" + std::to_string(i);
        REQUIRE(secrets->issue_device(name, crypto::Role::trainer, kUnixStart, 1000).ok());
        auto r = secrets->revoke(name, kUnixStart);
        REQUIRE(r.ok());
        revocations.push_back(crypto::encode_revocation(*r));
    }
    const auto pack = encode_revocations(revocations, 2, packed);
    CHECK(packed >= 4);
    CHECK(packed <= kMaxRevocationsPerMessage);
    CHECK(pack.size() <= crypto::kMaxClusterPlaintextBytes);
    auto unpacked = decode_discovery(pack);
    REQUIRE(unpacked.ok());
    CHECK(unpacked->kind == DiscoveryKind::revocations);
    CHECK(std::equal(unpacked->revocations.begin(), unpacked->revocations.end(), revocations.begin() + 2));
    auto summary = decode_discovery(encode_revocation_summary(0xfeedull, kSummaryAnswer));
    REQUIRE(summary.ok());
    CHECK(summary->kind == DiscoveryKind::revocation_summary);
    CHECK(summary->summary == 0xfeedull);
    CHECK(summary->summary_flags == kSummaryAnswer);
    CHECK_FALSE(decode_discovery(encode_revocation_summary(1, 0x80)).ok());
    const std::vector<std::vector<std::uint8_t>> oversized(1, std::vector<std::uint8_t>(600, 1));
    CHECK_FALSE(decode_discovery(encode_revocations(oversized, 0, packed)).ok());

    auto truncated = bytes;
    truncated.resize(bytes.size() / 2);
    CHECK_FALSE(decode_discovery(truncated).ok());
    CHECK_FALSE(decode_discovery(std::vector<std::uint8_t>(64, 0)).ok());
    CHECK(channel_of(std::vector<std::uint8_t>(4, 0)) == Channel::unknown);
    Beacon odd = beacon;
    odd.flags = 0x80;
    CHECK_FALSE(decode_discovery(encode_beacon(odd)).ok());
}

TEST_CASE("beacons back off while alone; once joined the LAN hears about one per interval") {
    DiscoveryTimers timers;
    model::Rng rng(1);
    BeaconSchedule s(timers, Time{0});
    CHECK(s.on_tick(Time{0}, true, rng).multicast);
    CHECK_FALSE(s.on_tick(Time{0} + timers.alone_interval / 2, true, rng).multicast);
    CHECK(s.on_tick(Time{0} + 1s, true, rng).direct);
    CHECK(s.next_wakeup() == Time{0} + 1s + 2 * timers.alone_interval);  // the interval doubled

    // Joined: the LAN heard our seeking beacons, so joining needs no announcement.
    CHECK_FALSE(s.on_tick(Time{0} + 3s, false, rng).multicast);
    int sent = 0;
    for (Time t = Time{0} + 3s; t < Time{0} + 3s + 10 * timers.joined_interval; t += 100ms)
        sent += s.on_tick(t, false, rng).multicast ? 1 : 0;
    CHECK(sent == 10);

    BeaconSchedule quiet(timers, Time{0});
    CHECK(quiet.on_tick(Time{0}, false, rng).multicast);  // joined without seeking: announced
    quiet.on_beacon_heard();
    for (Time t{0}; t < Time{0} + timers.joined_interval - 1ms; t += 100ms)
        CHECK_FALSE(quiet.on_tick(t, false, rng).multicast);
}

TEST_CASE("once a member answered, seeking beacons pause while the join runs") {
    DiscoveryTimers timers;
    model::Rng rng(2);
    BeaconSchedule s(timers, Time{0});
    REQUIRE(s.on_tick(Time{0}, true, rng).multicast);
    s.on_answer_heard(Time{0} + 10ms);
    // Without the answer the next beacon would go at alone_interval (250 ms).
    for (Time t = Time{0} + 10ms; t < Time{0} + 10ms + timers.joining_wait; t += 50ms)
        CHECK_FALSE(s.on_tick(t, true, rng).multicast);
    CHECK(s.on_tick(Time{0} + 10ms + timers.joining_wait, true, rng).multicast);  // join failed
}

TEST_CASE("every member ranks a newcomer's answerers alike, from the ids alone") {
    std::vector<crypto::DeviceId> members(100);
    for (std::size_t i = 0; i < members.size(); ++i) crypto::random_bytes(members[i]);
    crypto::DeviceId newcomer{};
    crypto::random_bytes(newcomer);
    std::vector<std::uint64_t> keys;
    for (const auto& m : members) keys.push_back(answerer_key(newcomer, m));
    std::sort(keys.begin(), keys.end());
    CHECK(std::adjacent_find(keys.begin(), keys.end()) == keys.end());  // a strict order
    CHECK(answerer_key(newcomer, members[0]) == answerer_key(newcomer, members[0]));
    crypto::DeviceId other = newcomer;
    other[0] ^= 1;
    CHECK(answerer_key(other, members[0]) != answerer_key(newcomer, members[0]));
}

TEST_CASE("the state directory persists boots and incarnations, and holds one node at a time") {
    starling::testing::TempDir dir("state");
    crypto::DeviceId device{};
    device[0] = 1;
    {
        auto state = StateDir::open(dir.path(), device);
        REQUIRE(state.ok());
        CHECK(state->record().boot == 0);
        CHECK(*state->begin_boot() == 1);
        REQUIRE(state->save_incarnation(7).ok());
        CHECK_FALSE(StateDir::open(dir.path(), device).ok());  // locked
        const std::vector<KnownPeer> peers{{{{10, 0, 0, 2}, 7946}, {1, 2, 3}}};
        REQUIRE(state->save_peers(peers).ok());
    }
    auto again = StateDir::open(dir.path(), device);
    REQUIRE(again.ok());
    CHECK(again->record().boot == 1);
    CHECK(again->record().incarnation == 7);
    auto peers = again->load_peers();
    REQUIRE(peers.ok());
    REQUIRE(peers->size() == 1);
    CHECK(peers->front().certificate == std::vector<std::uint8_t>{1, 2, 3});

    crypto::DeviceId other{};
    other[0] = 2;
    starling::testing::TempDir dir2("state2");
    {
        auto state = StateDir::open(dir2.path(), device);
        REQUIRE(state.ok());
        REQUIRE(state->begin_boot().ok());
    }
    auto foreign = StateDir::open(dir2.path(), other);
    REQUIRE_FALSE(foreign.ok());
    CHECK(foreign.error().code == ErrorCode::invalid_argument);
    std::ofstream(dir2 / "node.state", std::ios::trunc) << "garbage";
    CHECK_FALSE(StateDir::open(dir2.path(), device).ok());  // refused, never reset
}

TEST_CASE("the certificate table trusts the owner's certificates and signs and verifies records") {
    Enrolled e = enroll_two();
    FakeClock clock;
    const crypto::SignKeyPair sign{e.a.certificate.sign_key, std::move(e.a.sign_secret)};
    PeerTable table(e.a.cluster, e.a.owner_key, e.a.certificate, sign, clock);
    const crypto::DeviceId b = e.b.certificate.device;
    CHECK(table.find(b) == nullptr);
    CHECK(table.name_of(b).starts_with("device-"));
    CHECK(table.learn(e.b.certificate) == PeerTable::Learned::added);
    CHECK(table.learn(e.b.certificate) == PeerTable::Learned::known);
    CHECK(table.name_of(b) == "b");
    CHECK(table.kx_key(b) == e.b.certificate.kx_key);

    membership::SignedRecordMessage message{};
    message[3] = 42;
    const auto signature = table.sign(message);
    CHECK(table.verify(e.a.certificate.device, message, signature));
    CHECK_FALSE(table.verify(b, message, signature));

    crypto::Certificate forged = e.b.certificate;
    forged.name = "mallory";
    forged.serial += 1;
    CHECK(table.learn(forged) == PeerTable::Learned::refused);

    auto revocation = e.secrets.revoke("b", kUnixStart);
    REQUIRE(revocation.ok());
    REQUIRE(table.revoke(*revocation).ok());
    CHECK(table.find(b) == nullptr);
    CHECK(table.learn(e.b.certificate) == PeerTable::Learned::refused);
}

TEST_CASE("an unknown sender's beacon vouches for it through the certificate it carries") {
    Enrolled e = enroll_two();
    FakeClock clock;
    const crypto::SignKeyPair sign{e.a.certificate.sign_key, std::move(e.a.sign_secret)};
    PeerTable table(e.a.cluster, e.a.owner_key, e.a.certificate, sign, clock);
    const auto beacon = encode_beacon(
        {0, {{10, 0, 0, 2}, 7946}, crypto::encode_certificate(e.b.certificate), {}});
    CHECK(table.sign_key(e.b.certificate.device, beacon) == e.b.certificate.sign_key);
    CHECK_FALSE(table.sign_key(e.a.certificate.device, beacon).has_value());  // not its own
    CHECK_FALSE(table.sign_key(e.b.certificate.device, std::vector<std::uint8_t>(40)).has_value());
}

TEST_CASE("a learning loop whose momentum follows merges needs SGD") {
    data::Dataset train;
    train.features = 4;
    train.classes = 2;
    train.labels = {0, 1, 0, 1};
    train.bytes = std::vector<std::uint8_t>(16, 128);
    FakeClock clock;
    using Kind = model::OptimizerConfig::Kind;
    for (const auto& [kind, nesterov] :
         {std::pair{Kind::sgd, false}, std::pair{Kind::adam, false}, std::pair{Kind::sgd, true}}) {
        LearningOptions options;
        options.widths = {4, 3, 2};
        options.train.batch = 2;
        options.train.optimizer.kind = kind;
        options.train.optimizer.nesterov = nesterov;
        options.momentum_follows_merges = true;
        options.holdout_rows = 0;
        auto loop =
            LearningLoop::create(crypto::DeviceId{1}, train, std::nullopt, options, clock, {}, {});
        if (kind == Kind::sgd && !nesterov) {
            CHECK(loop.ok());
        } else {
            REQUIRE_FALSE(loop.ok());
            CHECK(loop.error().code == ErrorCode::invalid_argument);
            CHECK(loop.error().message.find(nesterov ? "Nesterov" : "SGD") != std::string::npos);
        }
    }
}

namespace {

// A learning loop on a tiny problem with a learning rate too small to move the model, so that
// what the gossip thread merges or adopts is what the trained model holds afterwards. The test
// grants the trainer its steps one by one (before_step waits for a permit): how far the model
// moves on its own is bounded by the steps granted, not by how fast the machine runs.
struct QuietLoop {
    SystemClock clock;
    starling::testing::TempDir dir{"learning-loop"};
    std::mutex mutex;  // guards the fields below; `changed` tells of each step and action
    std::condition_variable changed;
    std::vector<gossip::Action> actions;
    std::uint64_t permits = 0;
    bool gate_open = false;
    std::unique_ptr<LearningLoop> loop;
    const crypto::DeviceId self{1};
    const crypto::DeviceId peer{2};

    explicit QuietLoop(std::chrono::milliseconds pull_timeout, float served_average = 0.0f) {
        data::Dataset train;
        train.features = 4;
        train.classes = 2;
        train.labels = {0, 1, 0, 1, 0, 1, 0, 1};
        for (std::size_t i = 0; i < 32; ++i)
            train.bytes.push_back(static_cast<std::uint8_t>(37 * i % 256));
        LearningOptions options;
        options.widths = {4, 3, 2};
        options.train.batch = 2;
        options.train.optimizer.learning_rate = 1e-8f;
        options.before_step = [this] {
            std::unique_lock lock(mutex);
            changed.wait(lock, [this] { return gate_open || permits > 0; });
            if (!gate_open) --permits;
            changed.notify_all();
        };
        options.holdout_rows = 0;
        options.served_average = served_average;
        options.report_interval = std::chrono::milliseconds(0);
        options.learner.samples_per_round = 4;
        options.learner.fanout = 1;
        options.learner.merge.weighting = gossip::Weighting::equal;
        options.learner.pull_timeout = pull_timeout;
        options.learner.pull_attempts = 1;
        options.checkpoint = dir / "model.ckpt";
        auto created = LearningLoop::create(self, train, std::nullopt, options, clock, {},
                                            [this](gossip::Action a) {
                                                std::lock_guard lock(mutex);
                                                actions.push_back(std::move(a));
                                                changed.notify_all();
                                            });
        REQUIRE(created.ok());
        loop = std::move(*created);
        loop->on_peers({gossip::PeerInfo{peer, 100}});
        loop->start();
    }

    // Grants the trainer one step at a time, at most `steps`, until `done` holds (rechecked at
    // each step and action; a 30 s deadline only so that a broken loop fails the test).
    bool run_until(std::uint64_t steps, const std::function<bool()>& done) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        std::unique_lock lock(mutex);
        for (;;) {
            lock.unlock();
            const bool ok = done();
            lock.lock();
            if (ok) return true;
            if (permits == 0 && steps > 0) {
                ++permits;
                --steps;
                changed.notify_all();
            }
            if (changed.wait_until(lock, deadline) == std::cv_status::timeout) return false;
        }
    }

    std::optional<gossip::Action> first_locked(gossip::ActionKind kind) const {
        for (const gossip::Action& a : actions)
            if (a.kind == kind) return a;
        return std::nullopt;
    }

    // The first action of `kind`, granting up to `steps` steps for it.
    std::optional<gossip::Action> first(gossip::ActionKind kind, std::uint64_t steps) {
        std::optional<gossip::Action> found;
        run_until(steps, [&] {
            std::lock_guard lock(mutex);
            found = first_locked(kind);
            return found.has_value();
        });
        return found;
    }

    bool status_until(std::uint64_t steps, const std::function<bool(const LearningStatus&)>& done) {
        return run_until(steps, [&] { return done(loop->status()); });
    }

    std::vector<std::uint8_t> message_from_peer(std::vector<float> parameters) {
        gossip::ModelMessage header;
        header.origin = peer;
        header.version = 1;
        header.samples_seen = 100;
        header.widths = {4, 3, 2};
        gossip::ModelEncoder encoder(gossip::Encoding::fp32);
        return encoder.encode(header, parameters);
    }

    // Stops the loop and reads back its last checkpoint. The gate opens so that a trainer
    // waiting for a permit sees the stop (a step or two more at most).
    model::Checkpoint stopped() {
        {
            std::lock_guard lock(mutex);
            gate_open = true;
        }
        changed.notify_all();
        loop->stop();
        Result<model::Checkpoint> c = model::load_checkpoint(dir / "model.ckpt");
        REQUIRE(c.ok());
        return std::move(*c);
    }
    std::vector<float> trained() { return stopped().parameters; }
};

std::vector<float> sent_parameters(const gossip::Action& action) {
    const std::vector<std::uint32_t> widths{4, 3, 2};
    gossip::DecodeResult r = gossip::decode_model(*action.bytes, widths);
    REQUIRE(std::holds_alternative<gossip::ModelMessage>(r));
    return std::get<gossip::ModelMessage>(r).parameters;
}

}  // namespace

namespace {

// The loop's first round goes to the peer, which answers with that model moved 0.1 up; once it
// is merged and `steps` more steps have run, returns what the first round sent.
std::vector<float> merge_from_peer(QuietLoop& q, std::uint64_t steps) {
    // A round every 4 samples, 2 a step.
    const std::optional<gossip::Action> round = q.first(gossip::ActionKind::send_model, 100);
    REQUIRE(round.has_value());
    CHECK(round->peer == q.peer);
    const std::vector<float> sent = sent_parameters(*round);
    std::vector<float> theirs = sent;
    for (float& v : theirs) v += 0.1f;
    q.loop->on_model_bytes(q.peer, q.message_from_peer(theirs));
    REQUIRE(q.status_until(200, [](const LearningStatus& s) {
        return s.learner.models_merged == 1;
    }));
    const std::uint64_t merged_at = q.loop->status().steps;
    REQUIRE(q.status_until(100, [&](const LearningStatus& s) {
        return s.steps > merged_at + steps;
    }));
    return sent;
}

}  // namespace

TEST_CASE("the gossip thread's merge reaches the trained model; its rounds carry it") {
    QuietLoop q(std::chrono::milliseconds(20));  // the pull goes unanswered: train alone
    const std::vector<float> sent = merge_from_peer(q, 10);
    const std::vector<float> trained = q.trained();
    REQUIRE(trained.size() == sent.size());
    // Equal weights: half way to theirs; the model's own training is all but nil.
    for (std::size_t i = 0; i < trained.size(); ++i)
        CHECK(std::abs(trained[i] - sent[i] - 0.05f) < 0.005f);
}

TEST_CASE("the served average follows the trained model through a merge") {
    QuietLoop q(std::chrono::milliseconds(20), 0.5f);  // each step halves the distance
    const std::vector<float> sent = merge_from_peer(q, 12);
    const model::Checkpoint c = q.stopped();
    REQUIRE(c.served.size() == c.parameters.size());
    // The merge moved the trained model 0.05; a dozen steps later the average has followed it.
    for (std::size_t i = 0; i < c.parameters.size(); ++i) {
        CHECK(std::abs(c.parameters[i] - sent[i] - 0.05f) < 0.005f);
        CHECK(std::abs(c.served[i] - c.parameters[i]) < 0.001f);
    }
}

TEST_CASE("a model the gossip thread adopts while catching up replaces the trained one") {
    QuietLoop q(std::chrono::seconds(30));  // answered in time: adopted
    // Steps granted all along: none is taken before the pull is answered.
    const std::optional<gossip::Action> pull = q.first(gossip::ActionKind::request_model, 100);
    REQUIRE(pull.has_value());
    CHECK(q.loop->status().catching_up);
    CHECK(q.loop->status().steps == 0);
    std::vector<float> theirs(4 * 3 + 3 + 3 * 2 + 2);
    for (std::size_t i = 0; i < theirs.size(); ++i) theirs[i] = 0.01f * static_cast<float>(i);
    q.loop->on_model_bytes(q.peer, q.message_from_peer(theirs));
    REQUIRE(q.status_until(100, [](const LearningStatus& s) {
        return s.learner.models_adopted == 1;
    }));
    REQUIRE(q.status_until(100, [](const LearningStatus& s) { return s.steps > 10; }));
    const std::vector<float> trained = q.trained();
    REQUIRE(trained.size() == theirs.size());
    for (std::size_t i = 0; i < trained.size(); ++i)
        CHECK(std::abs(trained[i] - theirs[i]) < 0.005f);
}


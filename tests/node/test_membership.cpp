// The membership core against a fake transport and a fake clock: joining, failure detection,
// refutation, Lifeguard's suspicion rules, leaving, address changes, restarts, and refusal of
// forged and malformed input. Virtual time only; nothing here reads a clock or sleeps.
#include <doctest/doctest.h>

#include <algorithm>
#include <variant>

#include "node/membership/limits.hpp"
#include "node/membership/member_table.hpp"
#include "node/membership/suspicion.hpp"
#include "node/membership/wire.hpp"
#include "tests/node/membership_harness.hpp"

using namespace starling::membership;
using namespace starling::membership::testing;
using starling::membership::detail::Codec;
using starling::membership::detail::Message;
using starling::membership::detail::MessageKind;

namespace {

TestCluster converged_cluster(std::size_t n, Timers timers = Timers{}) {
    TestCluster c(timers);
    c.start(0, std::nullopt);
    for (std::size_t i = 1; i < n; ++i) c.start(i, 0);
    c.run_for(3s);
    REQUIRE(c.all_see_all_alive());
    return c;
}

// Runs until every running node other than `subject` holds it in `state`; returns when, or
// nullopt if not by `limit`.
std::optional<Time> run_until_all_see(TestCluster& c, std::size_t subject, MemberState state,
                                      Duration limit) {
    const Time end = c.now() + limit;
    while (c.now() < end) {
        c.run_for(50ms);
        bool all = true;
        for (std::size_t i = 0; i < c.size(); ++i)
            if (i != subject && c.node(i).running && c.view(i, subject) != state) all = false;
        if (all) return c.now();
    }
    return std::nullopt;
}

std::size_t failed_events_about(TestCluster& c, std::size_t subject) {
    std::size_t total = 0;
    for (std::size_t i = 0; i < c.size(); ++i)
        if (i != subject) total += c.count_events(i, PeerEventKind::failed, subject);
    return total;
}

SignedRecord record_of(TestCluster& c, std::size_t index, Incarnation incarnation) {
    SignedRecord r;
    r.id = c.node(index).id;
    r.incarnation = incarnation;
    r.address = c.node(index).address;
    r.signature = FakeAuthenticator::signature_of(r.id, signed_record_message(r));
    return r;
}

std::vector<std::uint8_t> gossip_of(std::vector<SignedRecord> records,
                                    std::vector<Accusation> accusations = {}) {
    Codec codec;
    Message m;
    m.kind = MessageKind::gossip;
    m.records = std::move(records);
    m.accusations = std::move(accusations);
    return codec.encode(m);
}

}  // namespace

TEST_CASE("nodes joining through one seed all see each other alive") {
    TestCluster c;
    c.start(0, std::nullopt);
    for (std::size_t i = 1; i < 8; ++i) c.start(i, 0);
    c.run_for(2s);
    CHECK(c.all_see_all_alive());
    for (std::size_t i = 0; i < 8; ++i) {
        CHECK(c.node(i).membership->live_count() == 7);
        CHECK(c.node(i).persisted == 1);  // started at last_incarnation + 1, reported
        for (std::size_t j = 0; j < 8; ++j)
            if (i != j) CHECK(c.count_events(i, PeerEventKind::up, j) == 1);
    }
}

TEST_CASE("a silent crash is suspected, then failed by every survivor, and nobody else is") {
    TestCluster c = converged_cluster(6);
    const Time crashed_at = c.now();
    c.crash(3);
    const auto detected = run_until_all_see(c, 3, MemberState::dead, 60s);
    REQUIRE(detected);
    // Suspicion begins within a probe period or two, then lasts at least suspicion_min.
    CHECK(*detected - crashed_at >= Timers{}.suspicion_min);
    CHECK(*detected - crashed_at <= Timers{}.suspicion_max + 3s);
    std::size_t suspects = 0;
    for (std::size_t i = 0; i < 6; ++i) suspects += c.count_events(i, PeerEventKind::suspect, 3);
    CHECK(suspects >= 1);
    c.run_for(30s);
    for (std::size_t i = 0; i < 6; ++i)
        if (i != 3) CHECK(failed_events_about(c, i) == 0);
}

TEST_CASE("a probe refused by the host fails the member faster than silence") {
    TestCluster c = converged_cluster(6);
    c.refuse_when_down = true;  // kill -9: the host answers "port unreachable"
    const Time crashed_at = c.now();
    c.crash(2);
    const auto detected = run_until_all_see(c, 2, MemberState::dead, 30s);
    REQUIRE(detected);
    CHECK(*detected - crashed_at < Timers{}.suspicion_min);
    CHECK(*detected - crashed_at <= Timers{}.refused_suspicion_max + 3s);
}

TEST_CASE("a member heard of moments ago is spared suspicion for a silent probe, not a refused one") {
    // Node 3 joins and goes silent at once (it would still be fetching certificates on a real
    // LAN). Within newcomer_grace nobody suspects it; after the grace a silent probe does.
    TestCluster c = converged_cluster(3);
    c.start(3, 0);
    c.run_for(20ms);  // the join is answered; the others hear of node 3 by gossip
    c.crash(3);
    const Time silent_at = c.now();
    c.run_until(silent_at + Timers{}.newcomer_grace - 100ms);
    std::uint64_t spared = 0;
    for (std::size_t i = 0; i < 3; ++i) {
        CHECK(c.count_events(i, PeerEventKind::suspect, 3) == 0);
        spared += c.node(i).membership->counters().newcomer_probes_spared;
    }
    CHECK(spared >= 1);
    const auto failed = run_until_all_see(c, 3, MemberState::dead, 60s);
    REQUIRE(failed);  // after the grace, silence is suspected and the node failed as ever

    TestCluster k = converged_cluster(3);
    k.refuse_when_down = true;
    k.start(3, 0);
    k.run_for(20ms);
    k.crash(3);
    const Time killed_at = k.now();
    const auto refused = run_until_all_see(k, 3, MemberState::dead, 30s);
    REQUIRE(refused);  // "port unreachable" is no slow newcomer: no grace
    CHECK(*refused - killed_at <= Timers{}.refused_suspicion_max + 3s);
}

TEST_CASE("a suspected node refutes by raising its incarnation and is never failed") {
    TestCluster c = converged_cluster(5);
    const PeerAddress victim = c.node(2).address;
    const Incarnation before = c.node(2).membership->incarnation();
    c.drop = [&](std::size_t, const PeerAddress& to) { return to == victim; };
    // Cut off until suspected, far shorter than suspicion_min.
    std::size_t suspects = 0;
    for (int i = 0; i < 80 && suspects == 0; ++i) {
        c.run_for(100ms);
        for (std::size_t j = 0; j < 5; ++j) suspects += c.count_events(j, PeerEventKind::suspect, 2);
    }
    CHECK(suspects >= 1);
    c.drop = nullptr;
    c.run_for(30s);
    CHECK(c.node(2).membership->incarnation() > before);
    CHECK(c.node(2).persisted == c.node(2).membership->incarnation());
    CHECK(failed_events_about(c, 2) == 0);
    CHECK(c.all_see_all_alive());
    for (std::size_t i = 0; i < 5; ++i)
        if (i != 2)
            CHECK(c.node(i).membership->member(c.node(2).id)->incarnation ==
                  c.node(2).membership->incarnation());
}

TEST_CASE("suspicion timeouts shrink from max to min with confirmations") {
    using starling::membership::detail::suspicion_timeout;
    CHECK(suspicion_timeout(2s, 8s, 0, 3) == 8s);
    CHECK(suspicion_timeout(2s, 8s, 1, 3) == 5s);  // log 2 / log 4 = 1/2 of the way
    CHECK(suspicion_timeout(2s, 8s, 3, 3) == 2s);
    CHECK(suspicion_timeout(2s, 8s, 7, 3) == 2s);
    CHECK(suspicion_timeout(2s, 8s, 0, 0) == 2s);  // too few members to expect confirmations
    const Duration two = suspicion_timeout(2s, 8s, 2, 3);
    CHECK((two < 5s && two > 2s));

    // An observer told "3 is suspect" once waits `max`; told by three members, `min`.
    for (const std::size_t accusers : {std::size_t{1}, std::size_t{4}}) {
        Timers timers;
        timers.probe_interval = 1000s;  // the observer stays passive: only what it is told counts
        TestCluster c(timers);
        for (std::size_t i = 0; i < 6; ++i) c.start(i, std::nullopt);
        std::vector<SignedRecord> everyone;
        for (std::size_t i = 1; i < 6; ++i) everyone.push_back(record_of(c, i, 1));
        c.inject(0, 1, gossip_of(everyone));
        REQUIRE(c.node(0).membership->live_count() == 5);
        for (std::size_t i = 1; i < 6; ++i) c.crash(i);
        const Time t0 = c.now();
        std::vector<Accusation> accusations;
        for (std::size_t a = 0; a < accusers; ++a)
            accusations.push_back(Accusation{c.node(3).id, 1, MemberState::suspect,
                                             c.node(a == 2 ? 5 : a + 1).id, false});
        c.inject(0, 1, gossip_of({}, accusations));
        CHECK(c.view(0, 3) == MemberState::suspect);
        const Duration expected = accusers == 1 ? timers.suspicion_max : timers.suspicion_min;
        c.run_until(t0 + expected - 1ms);
        CHECK(c.view(0, 3) == MemberState::suspect);
        c.run_until(t0 + expected);
        CHECK(c.view(0, 3) == MemberState::dead);
        CHECK(c.count_events(0, PeerEventKind::failed, 3) == 1);
    }
}

TEST_CASE("a member that leaves is reported left, never failed") {
    TestCluster c = converged_cluster(5);
    c.node(4).membership->on_leave_requested(c.now());
    CHECK(c.node(4).membership->has_left());
    c.run_for(2s);
    c.crash(4);
    c.run_for(40s);
    for (std::size_t i = 0; i < 4; ++i) {
        CHECK(c.view(i, 4) == MemberState::left);
        CHECK(c.count_events(i, PeerEventKind::left, 4) == 1);
        CHECK(c.count_events(i, PeerEventKind::failed, 4) == 0);
    }
}

TEST_CASE("a new address under a new incarnation replaces the old one everywhere") {
    TestCluster c = converged_cluster(5);
    const Incarnation before = c.node(1).membership->incarnation();
    const PeerAddress moved = PeerAddress::sim(1, 7);
    c.move(1, moved);
    CHECK(c.node(1).membership->incarnation() == before + 1);
    c.run_for(2s);
    for (std::size_t i = 0; i < 5; ++i) {
        if (i == 1) continue;
        CHECK(c.node(i).membership->member(c.node(1).id)->address == moved);
        CHECK(c.count_events(i, PeerEventKind::address_changed, 1) == 1);
    }
    c.run_for(40s);  // probes now go to the new address: nobody suspects it for good
    CHECK(failed_events_about(c, 1) == 0);
    CHECK(c.all_see_all_alive());
}

TEST_CASE("a restarted node comes back under its id with a higher incarnation") {
    TestCluster c = converged_cluster(5);
    c.crash(3);
    REQUIRE(run_until_all_see(c, 3, MemberState::dead, 60s));
    const Incarnation first_life = c.node(3).persisted;

    SUBCASE("the persisted incarnation") { c.start(3, 0); }
    SUBCASE("the incarnation lost with the disk: the cluster's memory is refuted") {
        c.start(3, 0, Incarnation{0});
    }
    c.run_for(3s);
    CHECK(c.all_see_all_alive());
    for (std::size_t i = 0; i < 5; ++i) {
        if (i == 3) continue;
        CHECK(c.node(i).membership->member(c.node(3).id)->incarnation > first_life);
        CHECK(c.count_events(i, PeerEventKind::up, 3) == 2);
    }
}

TEST_CASE("records that do not verify are dropped and counted") {
    TestCluster c = converged_cluster(3);

    SUBCASE("a device without a valid key cannot join") {
        c.start(3, 0, std::nullopt, /*forge=*/true);
        c.run_for(3s);
        CHECK(c.node(0).membership->counters().unverifiable >= 1);
        for (std::size_t i = 0; i < 3; ++i) CHECK_FALSE(c.view(i, 3).has_value());
    }
    SUBCASE("a member cannot move another member's address") {
        SignedRecord hijack = record_of(c, 1, 9);
        hijack.address = c.node(2).address;
        hijack.signature =
            FakeAuthenticator::signature_of(c.node(2).id, signed_record_message(hijack));
        c.inject(0, 2, gossip_of({hijack}));
        CHECK(c.node(0).membership->counters().unverifiable == 1);
        CHECK(c.node(0).membership->member(c.node(1).id)->address == c.node(1).address);
        CHECK(c.node(0).membership->member(c.node(1).id)->incarnation == 1);
    }
    SUBCASE("an unsigned record is refused") {
        SignedRecord unsigned_record = record_of(c, 1, 5);
        unsigned_record.signature = {};
        c.inject(0, 2, gossip_of({unsigned_record}));
        CHECK(c.node(0).membership->counters().unverifiable == 1);
        CHECK(c.node(0).membership->member(c.node(1).id)->incarnation == 1);
    }
}

TEST_CASE("malformed bytes are counted and never answered") {
    TestCluster c;
    c.start(0, std::nullopt);
    c.start(1, std::nullopt);
    Codec codec;
    Message ping;
    ping.kind = MessageKind::ping;
    ping.seq = 7;
    ping.target = c.node(0).id;
    const std::vector<std::uint8_t> valid = codec.encode(ping);

    std::vector<std::vector<std::uint8_t>> bad;
    bad.push_back({});
    bad.push_back({0x01, 0x02, 0x03});
    bad.push_back(std::vector<std::uint8_t>(valid.begin(), valid.end() - 1));
    auto trailing = valid;
    trailing.push_back(0);
    bad.push_back(trailing);
    auto wrong_identifier = valid;
    wrong_identifier[8] ^= 0xFF;  // after the size prefix and root offset
    bad.push_back(wrong_identifier);
    starling::model::Rng rng(3);
    for (int i = 0; i < 50; ++i) {
        std::vector<std::uint8_t> noise(1 + rng.below(300));
        for (auto& b : noise) b = static_cast<std::uint8_t>(rng.next());
        bad.push_back(noise);
    }
    Message bad_state;
    bad_state.kind = MessageKind::gossip;
    bad_state.accusations.push_back(Accusation{c.node(1).id, 1, MemberState::alive, c.node(1).id, false});
    bad.push_back(codec.encode(bad_state));  // an accusation must say suspect or dead

    const std::uint64_t sent_before = c.datagrams_sent();
    for (const auto& bytes : bad) c.inject(0, 1, bytes);
    c.inject(0, 1, std::vector<std::uint8_t>(limits::kMaxMessageBytes + 1, 0));
    const Counters& counters = c.node(0).membership->counters();
    CHECK(counters.malformed == bad.size());
    CHECK(counters.oversized == 1);
    CHECK(c.datagrams_sent() == sent_before);

    c.inject(0, 1, valid);  // and the node still answers a good ping (and asks who 1 is)
    CHECK(c.datagrams_sent() > sent_before);
}

TEST_CASE("idle anti-entropy is one summary when tables agree; a node that missed news catches up") {
    Timers timers;
    timers.sync_interval = 2s;
    TestCluster c = converged_cluster(5, timers);
    const auto matched = [&c] {
        std::uint64_t sum = 0;
        for (std::size_t i = 0; i < c.size(); ++i)
            if (c.node(i).running) sum += c.node(i).membership->counters().summaries_matched;
        return sum;
    };
    const std::uint64_t before = matched();
    c.run_for(20s);
    CHECK(matched() >= before + 5 * 5);  // ~10 summaries offered by each, most of them matched
    // Node 4 hears nothing while node 5 joins and its news is gossiped, then rejoins the LAN.
    const PeerAddress deaf = c.node(4).address;
    c.drop = [deaf](std::size_t, const PeerAddress& to) { return to == deaf; };
    c.start(5, 0);
    c.run_for(3s);
    CHECK_FALSE(c.view(4, 5).has_value());
    c.drop = nullptr;
    c.run_for(20s);
    CHECK(c.all_see_all_alive());
}

TEST_CASE("a full message of any kind fits one sealed datagram and decodes to itself") {
    Codec codec;
    SignedRecord r;
    r.id = device(9);
    r.incarnation = ~Incarnation{0};
    r.address = PeerAddress::ipv6(PeerAddress::Bytes{0xfe, 0x80, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}, 65535);
    r.signature.fill(0xAB);
    const Accusation a{device(3), 42, MemberState::dead, device(4), true};
    for (const MessageKind kind : {MessageKind::ping, MessageKind::ack, MessageKind::nack,
                                   MessageKind::ping_req, MessageKind::gossip, MessageKind::sync}) {
        Message m;
        m.kind = kind;
        m.seq = 0xFFFFFFFF;
        m.target = device(1);
        m.target_address = r.address;
        if (kind == MessageKind::sync) {
            m.sync_flags = detail::kSyncReply | detail::kSyncSummary;
            m.summary = 0x0123456789abcdefull;
            m.digests.assign(limits::kMaxDigestsPerMessage, Digest{device(5), 3, MemberState::suspect});
        } else {
            const std::size_t records = limits::kMaxRecordsPerMessage - 1;
            m.records.assign(records, r);
            const std::size_t left = limits::kPacketPayloadBytes - records * limits::kSignedRecordWireBytes;
            m.accusations.assign(left / limits::kAccusationWireBytes, a);
        }
        REQUIRE(m.entry_bytes() <= limits::kPacketPayloadBytes);
        const auto bytes = codec.encode(m);
        CHECK(bytes.size() <= limits::kMaxMessageBytes);
        CHECK(bytes.size() - m.entry_bytes() <= limits::kPacketOverheadBytes);
        Message back;
        REQUIRE(codec.decode(bytes, back) == detail::DecodeStatus::ok);
        CHECK(back.kind == kind);
        CHECK(back.records.size() == m.records.size());
        CHECK(back.accusations.size() == m.accusations.size());
        CHECK(back.digests.size() == m.digests.size());
        CHECK(back.summary == m.summary);
        CHECK(back.sync_flags == m.sync_flags);
        if (!back.records.empty()) {
            CHECK(back.records.front().address == r.address);
            CHECK(back.records.front().signature == r.signature);
            CHECK(back.records.front().incarnation == r.incarnation);
        }
        if (!back.accusations.empty()) CHECK(back.accusations.front().refused);
    }
}

TEST_CASE("every mix of entries that fits the payload budget fits the message") {
    // FlatBuffers 2.0's uninitialised struct vectors were aligned to the struct's size: a ping
    // with 7 records and 6 accusations came out 46 bytes over and was never sent.
    Codec codec;
    SignedRecord r;
    r.id = device(9);
    r.address = PeerAddress::ipv4({10, 0, 0, 1}, 7946);
    const Accusation a{device(3), 42, MemberState::suspect, device(4), false};
    const std::size_t budget = limits::kPacketPayloadBytes;
    for (const MessageKind kind : {MessageKind::ping, MessageKind::ping_req, MessageKind::sync}) {
        for (std::size_t records = 0; records <= limits::kMaxRecordsPerMessage; ++records) {
            for (std::size_t wants = 0; wants <= 3; ++wants) {
                Message m;
                m.kind = kind;
                m.target = device(1);
                m.target_address = r.address;
                m.records.assign(records, r);
                if (kind == MessageKind::sync) {
                    m.wants.assign(wants, device(6));
                    m.digests.assign(wants, Digest{device(5), 3, MemberState::alive});
                }
                if (m.entry_bytes() > budget) continue;
                m.accusations.assign(std::min(limits::kMaxAccusationsPerMessage,
                                              (budget - m.entry_bytes()) / limits::kAccusationWireBytes),
                                     a);
                const auto bytes = codec.encode(m);
                CAPTURE(records);
                CAPTURE(m.accusations.size());
                CHECK(bytes.size() <= limits::kMaxMessageBytes);
                CHECK(bytes.size() - m.entry_bytes() <= limits::kPacketOverheadBytes);
            }
        }
    }
}

TEST_CASE("a node that hears nothing back loses trust in itself, and regains it") {
    TestCluster c = converged_cluster(5);
    const PeerAddress deaf = c.node(0).address;
    c.drop = [&](std::size_t, const PeerAddress& to) { return to == deaf; };
    c.run_for(4s);
    CHECK(c.node(0).membership->health_multiplier() > 1);
    c.drop = nullptr;
    c.run_for(60s);
    CHECK(c.node(0).membership->health_multiplier() == 1);
}

TEST_CASE("the member table finds every member through adds and removes") {
    starling::membership::detail::MemberTable table;
    starling::model::Rng rng(11);
    std::vector<DeviceId> ids;
    for (int i = 0; i < 300; ++i) {
        DeviceId id{};
        for (auto& b : id) b = static_cast<std::uint8_t>(rng.next());
        id[0] = static_cast<std::uint8_t>(i % 4);  // some shared prefixes
        starling::membership::detail::Member m;
        m.record.id = id;
        table.add(m);
        ids.push_back(id);
    }
    std::vector<DeviceId> removed;
    for (int i = 0; i < 150; ++i) {
        const std::size_t at = rng.below(ids.size());
        table.remove(ids[at]);
        removed.push_back(ids[at]);
        ids.erase(ids.begin() + static_cast<std::ptrdiff_t>(at));
    }
    CHECK(table.size() == ids.size());
    for (const DeviceId& id : ids) {
        REQUIRE(table.find(id) != nullptr);
        CHECK(table.find(id)->id() == id);
    }
    for (const DeviceId& id : removed) CHECK(table.find(id) == nullptr);
}

// libFuzzer target for membership messages: the decoder alone (anything it accepts must encode
// and decode to the same message), then a whole Membership fed the bytes as if they came from
// an authenticated peer, so merge, suspicion and relay logic meet hostile but well-formed input.
// Half the inputs are read as a recipe for a well-formed message (ids from a small set, so they
// collide with this node, the sender and each other), since random bytes rarely pass the
// Verifier. The fake authenticator accepts every signature: forgery is the datagram layer's and the
// authenticator's job; here the state machine itself must hold.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "node/membership/membership.hpp"
#include "node/membership/wire.hpp"

namespace {

using namespace starling::membership;

struct AcceptAll final : RecordAuthenticator {
    Signature sign(const SignedRecordMessage&) override { return {}; }
    bool verify(const DeviceId&, const SignedRecordMessage&, const Signature&) override {
        return true;
    }
};

// Reads fuzz bytes as small numbers; zeros once they run out.
struct Recipe {
    std::span<const std::uint8_t> in;
    std::uint8_t byte() {
        if (in.empty()) return 0;
        const std::uint8_t b = in.front();
        in = in.subspan(1);
        return b;
    }
    DeviceId id() {
        DeviceId d{};
        d[0] = static_cast<std::uint8_t>(byte() % 6);
        return d;
    }
    PeerAddress address() {
        return PeerAddress::ipv4({10, 0, 0, static_cast<std::uint8_t>(byte() % 6)}, 7946);
    }
};

std::vector<std::uint8_t> message_from_recipe(std::span<const std::uint8_t> bytes) {
    Recipe r{bytes};
    detail::Message m;
    m.kind = static_cast<detail::MessageKind>(1 + r.byte() % 6);
    m.seq = r.byte() % 4;
    m.target = r.id();
    m.target_address = r.address();
    m.sync_flags = r.byte() & detail::kSyncKnownFlags;
    m.summary = r.byte();
    for (int n = r.byte() % 4; n > 0; --n)
        m.digests.push_back({r.id(), r.byte() % 5u, static_cast<MemberState>(r.byte() % 4)});
    for (int n = r.byte() % 3; n > 0; --n) m.wants.push_back(r.id());
    for (int n = r.byte() % 4; n > 0; --n) {
        SignedRecord rec;
        rec.id = r.id();
        rec.incarnation = r.byte() % 5u;
        rec.state = (r.byte() & 1) ? MemberState::left : MemberState::alive;
        rec.address = r.address();
        m.records.push_back(rec);
    }
    for (int n = r.byte() % 4; n > 0; --n) {
        Accusation a;
        a.id = r.id();
        a.incarnation = r.byte() % 5u;
        a.state = (r.byte() & 1) ? MemberState::dead : MemberState::suspect;
        a.accuser = r.id();
        a.refused = r.byte() & 1;
        m.accusations.push_back(a);
    }
    detail::Codec codec;
    return codec.encode(m);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span<const std::uint8_t> bytes(data, size);

    detail::Codec codec;
    detail::Message message;
    if (codec.decode(bytes, message) == detail::DecodeStatus::ok) {
        const auto again = codec.encode(message);
        detail::Message twice;
        if (codec.decode(again, twice) != detail::DecodeStatus::ok) __builtin_trap();
    }

    std::vector<std::uint8_t> recipe;
    if (size > 0 && (data[0] & 1)) {
        recipe = message_from_recipe(bytes.subspan(1));
        message.clear();
        if (codec.decode(recipe, message) != detail::DecodeStatus::ok) __builtin_trap();
    }
    const std::span<const std::uint8_t> input = recipe.empty() ? bytes : recipe;

    static AcceptAll auth;
    Config config;
    config.self[0] = 1;
    config.address = PeerAddress::ipv4({10, 0, 0, 1}, 7946);
    Membership m(config, auth, starling::model::Rng(1), Time{0});
    m.on_seed_discovered(Time{0}, PeerAddress::ipv4({10, 0, 0, 2}, 7946));
    DeviceId sender{};
    sender[0] = 2;
    // The same bytes at three moments, with timers in between, as a replaying peer would.
    for (int i = 0; i < 3; ++i) {
        const Time now{i * 700'000};
        m.on_message(now, PeerAddress::ipv4({10, 0, 0, 2}, 7946), sender, input);
        m.on_tick(now);
        (void)m.take_actions();
    }
    return 0;
}

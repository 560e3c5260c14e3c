// The fake transport and clock of the membership tests.
#include "tests/node/membership_harness.hpp"

#include <algorithm>
#include <stdexcept>
#include <variant>

namespace starling::membership::testing {

namespace {
std::uint64_t mix(std::uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}
}  // namespace

Signature FakeAuthenticator::signature_of(const DeviceId& signer, const SignedRecordMessage& message,
                                          std::uint64_t salt) {
    std::uint64_t h = 0xCBF29CE484222325ull ^ salt;
    for (std::uint8_t b : signer) h = (h ^ b) * 0x100000001B3ull;
    for (std::uint8_t b : message) h = (h ^ b) * 0x100000001B3ull;
    Signature s{};
    for (std::size_t i = 0; i < s.size(); ++i) s[i] = static_cast<std::uint8_t>(mix(h + i / 8) >> (8 * (i % 8)));
    return s;
}

Signature FakeAuthenticator::sign(const SignedRecordMessage& message) {
    return signature_of(self_, message, forge_ ? 0xBAD : 0);
}

bool FakeAuthenticator::verify(const DeviceId& signer, const SignedRecordMessage& message,
                               const Signature& signature) {
    return signature == signature_of(signer, message);
}

DeviceId device(std::uint8_t n) {
    DeviceId id{};
    id[0] = n;
    id[15] = 0x5A;
    return id;
}

void TestCluster::start(std::size_t index, std::optional<std::size_t> seed,
                        std::optional<Incarnation> last_incarnation, bool forge) {
    if (index >= nodes_.size()) nodes_.resize(index + 1);
    TestNode& n = nodes_[index];
    n.id = device(static_cast<std::uint8_t>(index + 1));
    if (n.address.empty()) n.address = PeerAddress::sim(static_cast<std::uint32_t>(index), 0);
    n.auth = std::make_unique<FakeAuthenticator>(n.id, forge);
    Config config;
    config.self = n.id;
    config.address = n.address;
    config.last_incarnation = last_incarnation.value_or(n.persisted);
    config.timers = timers_;
    n.membership = std::make_unique<Membership>(config, *n.auth, model::Rng(seed_ * 7919 + index), now_);
    n.running = true;
    if (seed) n.membership->on_seed_discovered(now_, nodes_.at(*seed).address);
    drain(index);
}

void TestCluster::drain(std::size_t index) {
    TestNode& n = nodes_[index];
    for (Action& action : n.membership->take_actions()) {
        if (auto* send = std::get_if<Send>(&action)) {
            ++datagrams_sent_;
            if (drop && drop(index, send->to)) continue;
            in_flight_.emplace(std::pair{now_ + kLatency, order_},
                               InFlight{now_ + kLatency, order_, index, send->to, std::move(send->bytes)});
            ++order_;
        } else if (auto* event = std::get_if<PeerEvent>(&action)) {
            n.events.push_back(*event);
        } else {
            n.persisted = std::get<IncarnationChanged>(action).incarnation;
        }
    }
}

void TestCluster::deliver(const InFlight& d) {
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
        TestNode& n = nodes_[i];
        if (n.address != d.to) continue;
        if (!n.running) {
            TestNode& sender = nodes_[d.from];
            if (refuse_when_down && sender.running) {
                sender.membership->on_unreachable(now_, d.to);
                drain(d.from);
            }
            return;
        }
        n.membership->on_message(now_, nodes_[d.from].address, nodes_[d.from].id, d.bytes);
        drain(i);
        return;
    }
}

void TestCluster::move(std::size_t index, const PeerAddress& to) {
    TestNode& n = nodes_.at(index);
    n.address = to;
    n.membership->on_address_changed(now_, to);
    drain(index);
}

void TestCluster::inject(std::size_t to, std::size_t from_index,
                         const std::vector<std::uint8_t>& bytes) {
    nodes_.at(to).membership->on_message(now_, nodes_.at(from_index).address, nodes_.at(from_index).id,
                                         bytes);
    drain(to);
}

void TestCluster::run_until(Time end) {
    std::size_t steps_at_same_time = 0;
    while (true) {
        Time next = kNever;
        if (!in_flight_.empty()) next = std::min(next, in_flight_.begin()->first.first);
        for (const TestNode& n : nodes_)
            if (n.running) next = std::min(next, std::max(now_, n.membership->next_wakeup()));
        if (next > end) break;
        // A core whose next_wakeup() never moves past now would spin here: a bug, not a hang.
        steps_at_same_time = next == now_ ? steps_at_same_time + 1 : 0;
        if (steps_at_same_time > 100000) throw std::logic_error("membership wakeup does not advance");
        now_ = next;
        while (!in_flight_.empty() && in_flight_.begin()->first.first <= now_) {
            const InFlight d = std::move(in_flight_.begin()->second);
            in_flight_.erase(in_flight_.begin());
            deliver(d);
        }
        for (std::size_t i = 0; i < nodes_.size(); ++i) {
            if (!nodes_[i].running || nodes_[i].membership->next_wakeup() > now_) continue;
            nodes_[i].membership->on_tick(now_);
            drain(i);
        }
    }
    now_ = end;
}

void TestCluster::run_for(Duration d) { run_until(now_ + d); }

std::optional<MemberState> TestCluster::view(std::size_t observer, std::size_t subject) const {
    const auto m = nodes_.at(observer).membership->member(nodes_.at(subject).id);
    if (!m) return std::nullopt;
    return m->state;
}

bool TestCluster::all_see_all_alive() const {
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
        if (!nodes_[i].running) continue;
        for (std::size_t j = 0; j < nodes_.size(); ++j)
            if (i != j && nodes_[j].running && view(i, j) != MemberState::alive) return false;
    }
    return true;
}

std::size_t TestCluster::count_events(std::size_t observer, PeerEventKind kind,
                                      std::size_t subject) const {
    const auto& events = nodes_.at(observer).events;
    return static_cast<std::size_t>(std::count_if(events.begin(), events.end(), [&](const PeerEvent& e) {
        return e.kind == kind && e.peer == nodes_.at(subject).id;
    }));
}

}  // namespace starling::membership::testing

#include "tests/node/node_harness.hpp"

#include <doctest/doctest.h>

#include <algorithm>

namespace starling::runtime::testing {
namespace {

constexpr std::uint64_t kValiditySeconds = 86'400;

std::vector<std::uint8_t> enroll(crypto::ClusterSecrets& secrets, const std::string& name) {
    Result<crypto::EnrollmentBundle> bundle =
        secrets.issue_device(name, crypto::Role::trainer, kUnixStart, kValiditySeconds);
    REQUIRE(bundle.ok());
    return crypto::encode_enrollment_bundle(*bundle);
}

crypto::ClusterSecrets make_cluster(std::string_view name) {
    Result<crypto::ClusterSecrets> s = crypto::ClusterSecrets::create(name, kUnixStart);
    REQUIRE(s.ok());
    return std::move(s).value();
}

}  // namespace

NodeCluster::NodeCluster(std::size_t size, bool lan, std::size_t foreign,
                         std::optional<sim::LinkSettings> link, std::uint64_t seed)
    : lan_(lan), dir_("node-cluster"), secrets_(make_cluster("home")), cluster_size_(size) {
    if (link) simulated = std::make_unique<sim::SimulatedNetwork>(*link, seed);
    crypto::ClusterSecrets other = make_cluster("neighbour");
    for (std::size_t i = 0; i < size + foreign; ++i) {
        NodeSlot slot;
        slot.name = (i < size ? "n" : "x") + std::string(i < 9 ? "00" : "0") + std::to_string(i + 1);
        slot.address = {{10, 0, 0, static_cast<std::uint8_t>(i + 1)}, kDefaultPort};
        slot.bundle = enroll(i < size ? secrets_ : other, slot.name);
        slots_.push_back(std::move(slot));
    }
}

NodeCluster::~NodeCluster() {
    for (NodeSlot& s : slots_) {
        s.node.reset();
        s.transport.reset();
    }
}

const std::filesystem::path NodeCluster::state_dir(std::size_t index) const {
    return dir_ / slots_.at(index).name;
}

void NodeCluster::adopt_identities(const NodeCluster& other) {
    REQUIRE(other.slots_.size() == slots_.size());
    for (std::size_t i = 0; i < slots_.size(); ++i) slots_[i].bundle = other.slots_[i].bundle;
}

void NodeCluster::start_all(std::size_t count) {
    start(0);
    for (std::size_t i = 1; i < count; ++i) start(i, {0});
}

void NodeCluster::start(std::size_t index, const std::vector<std::size_t>& seeds) {
    NodeSlot& s = slots_.at(index);
    Result<crypto::EnrollmentBundle> bundle = crypto::decode_enrollment_bundle(s.bundle);
    REQUIRE(bundle.ok());
    Result<StateDir> state = StateDir::open(state_dir(index), bundle->certificate.device);
    REQUIRE(state.ok());
    const auto group = lan_ ? std::optional(kBeaconGroup) : std::nullopt;
    if (simulated) simulated->set_now(clock.now());
    s.transport = simulated ? simulated->open(s.address, group) : network.open(s.address, group);
    s.alarm = std::make_unique<FakeAlarm>();
    s.left = false;
    NodeOptions options;
    options.advertise = s.address;
    if (lan_) options.beacon_group = kBeaconGroup;
    for (std::size_t seed : seeds) options.seeds.push_back(slots_.at(seed).address);
    options.rng_seed = 1000 + index;
    Result<std::unique_ptr<Node>> node =
        Node::create(std::move(bundle).value(), std::move(state).value(), *s.transport, clock,
                     *s.alarm, options, [&s](std::string_view line) { s.log.emplace_back(line); });
    REQUIRE(node.ok());
    s.node = std::move(node).value();
    s.node->start();
}

void NodeCluster::crash(std::size_t index) {
    NodeSlot& s = slots_.at(index);
    s.node.reset();
    s.transport.reset();
}

void NodeCluster::leave(std::size_t index) {
    NodeSlot& s = slots_.at(index);
    s.node->leave([&s] { s.left = true; });
}

void NodeCluster::run_for(membership::Duration d) {
    const membership::Time end = clock.now() + d;
    for (int step = 0; step < 10'000'000; ++step) {
        if (!simulated)
            for (int round = 0; round < 1000 && network.deliver() > 0; ++round) {
            }
        for (std::size_t i = 0; i < slots_.size(); ++i)
            if (slots_[i].left) crash(i);  // its process exits once the leave has spread
        NodeSlot* next = nullptr;
        for (NodeSlot& s : slots_)
            if (s.node && s.alarm->at() && (next == nullptr || *s.alarm->at() < *next->alarm->at()))
                next = &s;
        const std::optional<membership::Time> arrival =
            simulated ? simulated->next_arrival() : std::nullopt;
        const bool deliver = arrival && (next == nullptr || *arrival <= *next->alarm->at());
        const membership::Time at = deliver ? *arrival : next ? *next->alarm->at() : end;
        if ((!deliver && next == nullptr) || at > end) break;
        clock.advance_to(at);
        if (simulated) simulated->set_now(clock.now());
        if (deliver) {
            simulated->deliver_until(at);
        } else {
            next->alarm->fire();
        }
    }
    clock.advance_to(end);
    if (simulated) simulated->set_now(clock.now());
}

std::size_t NodeCluster::logged(std::size_t index, std::string_view text) const {
    const auto& log = slots_.at(index).log;
    return static_cast<std::size_t>(std::count_if(log.begin(), log.end(), [text](const std::string& l) {
        return l.find(text) != std::string::npos;
    }));
}

std::string NodeCluster::members(std::size_t index) const {
    return slots_.at(index).node->answer("members json");
}

std::string NodeCluster::stats(std::size_t index) const {
    return slots_.at(index).node->answer("stats");
}

bool NodeCluster::all_see_all_alive() const {
    for (std::size_t i = 0; i < cluster_size_; ++i) {
        if (!slots_[i].node) continue;
        const std::string view = members(i);
        for (std::size_t j = 0; j < cluster_size_; ++j) {
            if (i == j || !slots_[j].node) continue;
            const std::string row = "\"name\": \"" + slots_[j].name + "\"";
            const std::size_t at = view.find(row);
            if (at == std::string::npos ||
                view.find("\"state\": \"alive\"", at) != view.find("\"state\": ", at))
                return false;
        }
    }
    return true;
}

}  // namespace starling::runtime::testing

#pragma once
// Training inside `starling node`: the training thread (runtime::LearningLoop) under the
// resource governor's pacer, and the model exchange on the node's event loop, built from the
// node's flags and configuration and kept apart from cmd_node.cpp.

#include <memory>
#include <string>
#include <string_view>

#include "crypto/cluster.hpp"
#include "node/cli/node_service.hpp"
#include "node/net/event_loop.hpp"
#include "node/runtime/clock.hpp"
#include "node/runtime/node.hpp"

namespace starling::cli {

// What the stream handshake needs of the bundle, copied before the bundle moves into the node.
struct StreamCredentials {
    crypto::KxKeyPair kx;
    std::vector<std::uint8_t> certificate;
    crypto::ClusterId cluster{};
    crypto::SignPublicKey owner{};
};
[[nodiscard]] StreamCredentials stream_credentials(const crypto::EnrollmentBundle& bundle);

// The training thread and the exchange; stop() (or destruction) before the node goes.
class NodeTraining {
public:
    struct Parts;  // node_training.cpp
    explicit NodeTraining(std::unique_ptr<Parts> parts);
    ~NodeTraining();
    NodeTraining(const NodeTraining&) = delete;
    NodeTraining& operator=(const NodeTraining&) = delete;

    // Stops the training thread (it writes a last checkpoint) and closes the exchange.
    void stop();
    // "stats" gets the training figures appended; "models json" is answered here.
    [[nodiscard]] std::string answer(const runtime::Node& node, std::string_view request) const;
    // Top-level fields for the node's metrics history (runtime::Node::set_history_fields).
    [[nodiscard]] std::string history_fields() const;

private:
    std::unique_ptr<Parts> parts_;
};

// Starts training when the data directory exists (nullptr, and a log line, when it does not).
// Errors: unreadable data, a model that does not fit it, a TCP port that cannot be bound.
[[nodiscard]] Result<std::unique_ptr<NodeTraining>> start_training(
    const NodeSettings& settings, net::EventLoop& loop, runtime::Node& node,
    const runtime::Clock& clock, StreamCredentials credentials, const LogFn& log);

}  // namespace starling::cli

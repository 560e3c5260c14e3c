#pragma once
// The node's model channel: model transfers (model_session.hpp) over TCP streams on the event
// loop, within a link budget (concurrent transfers each way), a per-transfer deadline, a model
// byte limit and a per-source handshake rate, with every failure counted by its reason.
//
// Threading: the event loop's thread only. Handlers run there, never inside start_transfer().

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>

#include "crypto/rate_limit.hpp"
#include "node/net/event_loop.hpp"
#include "node/net/stream_transport.hpp"
#include "node/runtime/clock.hpp"
#include "node/runtime/model_session.hpp"

namespace starling::runtime {

// A small device's uplink carries this many models at once; more would only slow each down.
inline constexpr std::size_t kDefaultMaxOutgoingTransfers = 2;
inline constexpr std::size_t kDefaultMaxIncomingTransfers = 4;
// A 1 MB model crosses a LAN in milliseconds; this bounds a stalled or trickling peer.
inline constexpr std::chrono::milliseconds kDefaultTransferTimeout{20'000};
inline constexpr std::chrono::milliseconds kDefaultConnectTimeout{3'000};

struct ChannelLimits {
    std::size_t max_outgoing = kDefaultMaxOutgoingTransfers;
    std::size_t max_incoming = kDefaultMaxIncomingTransfers;
    std::chrono::milliseconds transfer_timeout = kDefaultTransferTimeout;
    std::chrono::milliseconds connect_timeout = kDefaultConnectTimeout;
    std::size_t max_model_bytes = std::size_t{8} << 20;
};

struct ChannelCounters {
    std::array<std::uint64_t, kTransferFailureKinds> failed_out{};  // by TransferFailure
    std::array<std::uint64_t, kTransferFailureKinds> failed_in{};
    std::uint64_t started_out = 0;
    std::uint64_t completed_out = 0;
    std::uint64_t completed_in = 0;
    std::uint64_t models_received = 0;
    std::uint64_t models_sent = 0;
    std::uint64_t model_bytes_received = 0;
    std::uint64_t model_bytes_sent = 0;
    std::uint64_t wire_bytes_sent = 0;
    std::uint64_t wire_bytes_received = 0;
};

struct ChannelHandlers {
    // Our current model, encoded; null when there is none yet. Called per transfer that sends.
    std::function<ModelBytes()> current_model;
    // A model arrived from `peer` (it pushed, or we pulled). false: the caller refused it
    // (decoder or merge), counted as model_refused.
    std::function<bool(const crypto::Certificate& peer, std::vector<std::uint8_t> bytes)> received;
    // An outgoing transfer ended: success (nullopt) or why not; `tag` as given to start_transfer.
    std::function<void(std::uint64_t tag, const crypto::DeviceId& peer, ModelOp op,
                       std::optional<TransferFailure> failure)>
        finished;
    // Whether the learner already holds as many models as it takes in: an incoming transfer is
    // then closed before its handshake, which would cost as much CPU as the model is worth
    // (the learner would drop it). The op is not known yet, so a pull is closed too; the puller
    // retries after its backoff, with this peer or another. Unset: never busy.
    std::function<bool()> busy;
};

class ModelChannel {
public:
    // `listener` is owned; `identity.static_key` and `clock` are borrowed and outlive the channel.
    ModelChannel(net::EventLoop& loop, std::unique_ptr<net::StreamListener> listener,
                 SessionIdentity identity, const Clock& clock, ChannelLimits limits,
                 ChannelHandlers handlers);
    ~ModelChannel();
    ModelChannel(const ModelChannel&) = delete;
    ModelChannel& operator=(const ModelChannel&) = delete;

    void start();
    // Dials `peer` at `at` for `op`, sending `model` (null: handlers.current_model()) when the op
    // sends one. false when the outgoing budget is full or there is nothing to send (counted);
    // otherwise `finished` reports the outcome later with `tag`.
    bool start_transfer(ModelOp op, const crypto::DeviceId& peer, const net::Ipv4Endpoint& at,
                        ModelBytes model = nullptr, std::uint64_t tag = 0);
    void close();

    [[nodiscard]] std::size_t outgoing() const noexcept { return outgoing_; }
    [[nodiscard]] std::size_t incoming() const noexcept { return incoming_; }
    [[nodiscard]] bool busy_with(const crypto::DeviceId& peer) const;
    [[nodiscard]] const ChannelCounters& counters() const noexcept { return counters_; }
    [[nodiscard]] const net::ListenerCounters& listener_counters() const;
    [[nodiscard]] std::uint64_t rate_limited() const noexcept { return rate_limited_; }
    [[nodiscard]] net::Ipv4Endpoint local_endpoint() const;

private:
    struct Transfer;
    void on_accept(std::unique_ptr<net::StreamConnection> connection);
    void attach(Transfer& t);
    void pump(Transfer& t);
    void on_received(Transfer& t, std::span<const std::uint8_t> bytes);
    void end(Transfer& t, std::optional<TransferFailure> failure);
    [[nodiscard]] std::uint64_t now_ms() const;

    net::EventLoop& loop_;
    std::unique_ptr<net::StreamListener> listener_;
    SessionIdentity identity_;
    const Clock& clock_;
    ChannelLimits limits_;
    ChannelHandlers handlers_;
    crypto::HandshakeRateLimiter rate_limiter_;
    std::map<std::uint64_t, std::unique_ptr<Transfer>> transfers_;
    std::uint64_t next_id_ = 1;
    std::size_t outgoing_ = 0;
    std::size_t incoming_ = 0;
    std::uint64_t rate_limited_ = 0;
    ChannelCounters counters_;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace starling::runtime

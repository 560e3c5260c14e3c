#pragma once
// The node's model channel: model links (model_link.hpp) over TCP streams on the event loop,
// kept open between peers that exchange often so the handshake is paid once per link, within a
// link budget (concurrent transfers each way), a per-transfer deadline, a cap on open links, an
// idle timeout, a model byte limit and a per-source handshake rate, with every failure counted
// by its reason. A link to a device revoked or expired since its handshake is closed.
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
#include <vector>

#include "crypto/rate_limit.hpp"
#include "node/net/event_loop.hpp"
#include "node/net/stream_transport.hpp"
#include "node/runtime/clock.hpp"
#include "node/runtime/model_link.hpp"

namespace starling::runtime {

// A small device's uplink carries this many models at once; more would only slow each down.
inline constexpr std::size_t kDefaultMaxOutgoingTransfers = 2;
inline constexpr std::size_t kDefaultMaxIncomingTransfers = 4;
// A 1 MB model crosses a LAN in milliseconds; this bounds a stalled or trickling peer.
inline constexpr std::chrono::milliseconds kDefaultTransferTimeout{20'000};
inline constexpr std::chrono::milliseconds kDefaultConnectTimeout{3'000};
// A dialer closes a link idle (no transfer either way) this long; its listener waits twice as
// long, so the dialer's close comes first; a request that still crosses a close goes again on
// a new link.
inline constexpr std::chrono::milliseconds kDefaultLinkIdleTimeout{30'000};
// Links dialed, and links accepted, open at once: with one link per pair of devices (either side
// sends over it), room for every peer of a 100-device cluster. Past it, a new link closes the
// least recently used idle one.
inline constexpr std::size_t kDefaultMaxLinks = 128;
// How often idle, revoked and expired links are looked for.
inline constexpr std::chrono::milliseconds kDefaultLinkSweepInterval{1'000};

// What a link's connection may queue: our model and a pull's answer going out together.
[[nodiscard]] constexpr std::size_t queue_bytes(std::size_t max_model_bytes) noexcept {
    return 2 * max_model_bytes + (std::size_t{1} << 20);
}

struct ChannelLimits {
    std::size_t max_outgoing = kDefaultMaxOutgoingTransfers;
    std::size_t max_incoming = kDefaultMaxIncomingTransfers;
    std::chrono::milliseconds transfer_timeout = kDefaultTransferTimeout;
    std::chrono::milliseconds connect_timeout = kDefaultConnectTimeout;
    std::size_t max_model_bytes = std::size_t{8} << 20;
    std::chrono::milliseconds link_idle_timeout = kDefaultLinkIdleTimeout;
    std::size_t max_links = kDefaultMaxLinks;
    std::chrono::milliseconds link_sweep_interval = kDefaultLinkSweepInterval;
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
    std::uint64_t links_opened_out = 0;
    std::uint64_t links_opened_in = 0;
    std::uint64_t transfers_on_open_links = 0;  // outgoing ones that skipped the handshake
    std::uint64_t transfers_retried = 0;  // a reused link closed under an unanswered request
    std::uint64_t links_closed_idle = 0;
    std::uint64_t links_closed_by_peer = 0;
    std::uint64_t links_closed_untrusted = 0;  // the peer was revoked or its certificate expired
    std::uint64_t links_evicted = 0;           // closed for a new one past max_links
};

// An open link as the control socket shows it.
struct LinkView {
    crypto::DeviceId peer{};
    bool dialed = false;       // we opened it (else the peer did)
    bool established = false;  // the handshake finished
    bool busy = false;         // a transfer under way, either way
    std::uint64_t transfers = 0;
    std::uint64_t idle_ms = 0;  // since its last transfer began or ended
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
    // Whether the learner already holds as many models as it takes in: a push or exchange is
    // then answered busy before its model is sent, and a new link is closed before its
    // handshake, which would cost as much CPU as the model is worth (the learner would drop it;
    // the op is not known yet, so a pull on a new link is closed too; the puller retries after
    // its backoff, with this peer or another). Unset: never busy.
    std::function<bool()> busy;
};

class ModelChannel {
public:
    // `listener` is owned; `identity.static_key` and `clock` are borrowed and outlive the channel.
    // The listener must keep at least `limits.max_links` connections open.
    ModelChannel(net::EventLoop& loop, std::unique_ptr<net::StreamListener> listener,
                 SessionIdentity identity, const Clock& clock, ChannelLimits limits,
                 ChannelHandlers handlers);
    ~ModelChannel();
    ModelChannel(const ModelChannel&) = delete;
    ModelChannel& operator=(const ModelChannel&) = delete;

    void start();
    // Sends `op` to `peer` at `at` over an open link to it (dialed by either side) with no
    // transfer of ours under way, or a new one, sending `model`
    // (null: handlers.current_model()) when the op sends one. false when the outgoing budget is
    // full, there is nothing to send or it is over the model limit (counted); otherwise
    // `finished` reports the outcome later with `tag`.
    bool start_transfer(ModelOp op, const crypto::DeviceId& peer, const net::Ipv4Endpoint& at,
                        ModelBytes model = nullptr, std::uint64_t tag = 0);
    void close();

    // Transfers under way each way, and links open each way.
    [[nodiscard]] std::size_t outgoing() const noexcept { return outgoing_; }
    [[nodiscard]] std::size_t incoming() const noexcept { return incoming_; }
    [[nodiscard]] std::size_t links_out() const noexcept { return links_out_; }
    [[nodiscard]] std::size_t links_in() const noexcept { return links_in_; }
    [[nodiscard]] bool busy_with(const crypto::DeviceId& peer) const;
    [[nodiscard]] std::vector<LinkView> links() const;
    [[nodiscard]] const ChannelCounters& counters() const noexcept { return counters_; }
    [[nodiscard]] const net::ListenerCounters& listener_counters() const;
    [[nodiscard]] std::uint64_t rate_limited() const noexcept { return rate_limited_; }
    [[nodiscard]] net::Ipv4Endpoint local_endpoint() const;

private:
    struct Link;
    struct Request {
        ModelOp op = ModelOp::push;
        crypto::DeviceId peer{};
        net::Ipv4Endpoint at{};
        ModelBytes model;
        std::uint64_t tag = 0;
    };
    [[nodiscard]] Link* idle_link_to(const crypto::DeviceId& peer);
    Link& add_link(bool dials);
    void dial(Request request);
    void begin(Link& l, Request request);
    void on_accept(std::unique_ptr<net::StreamConnection> connection);
    [[nodiscard]] LinkResponder responder_for(Link& l);
    [[nodiscard]] std::optional<TransferFailure> admit(Link& l, ModelOp op);
    void arm_deadline(Link& l);
    void attach(Link& l);
    void on_received(Link& l, std::span<const std::uint8_t> bytes);
    void settle(Link& l);
    void finish_transfer(Link& l, TransferOutcome outcome);
    void pump(Link& l);
    void fail_link(Link& l, TransferFailure failure);
    void close_link(Link& l, std::uint64_t& reason);
    void forget(Link& l);
    [[nodiscard]] bool make_room(bool outgoing);
    [[nodiscard]] bool trusted(const crypto::Certificate& peer) const;
    void sweep();
    [[nodiscard]] std::uint64_t now_ms() const;

    net::EventLoop& loop_;
    std::unique_ptr<net::StreamListener> listener_;
    SessionIdentity identity_;
    const Clock& clock_;
    ChannelLimits limits_;
    ChannelHandlers handlers_;
    crypto::HandshakeRateLimiter rate_limiter_;
    net::Timer sweep_timer_;
    std::map<std::uint64_t, std::unique_ptr<Link>> links_;
    std::uint64_t next_id_ = 1;
    std::size_t outgoing_ = 0;
    std::size_t incoming_ = 0;
    std::size_t links_out_ = 0;
    std::size_t links_in_ = 0;
    std::uint64_t rate_limited_ = 0;
    ChannelCounters counters_;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace starling::runtime

// Model links on the event loop: each one a link state machine, a connection and a deadline for
// the transfer under way; links that end are removed from a posted handler, never from inside
// their own callbacks.

#include "node/runtime/model_channel.hpp"

#include <algorithm>
#include <utility>

namespace starling::runtime {

struct ModelChannel::Link {
    Link(net::EventLoop& loop, std::uint64_t link_id, bool dials)
        : id(link_id), outgoing(dials), deadline(loop) {}
    std::uint64_t id;
    bool outgoing;  // we dialed it (either side may send over it)
    bool ended = false;
    bool mine_active = false;    // a transfer of ours under way, counted in outgoing_
    bool theirs_active = false;  // one of the peer's we took, counted in incoming_
    bool reused = false;         // ours began on an established link
    bool untrusted = false;      // the peer was revoked or expired since the handshake: closing
    crypto::DeviceId peer{};
    std::optional<ModelLink> link;
    std::unique_ptr<net::ConnectAttempt> attempt;
    std::unique_ptr<net::StreamConnection> connection;
    net::Timer deadline;
    Request request;  // our transfer under way (kept to retry it on a new link)
    std::uint64_t last_used_ms = 0;
};

namespace {

crypto::SourceAddress source_of(const net::Ipv4Endpoint& e) {
    crypto::SourceAddress s{};
    s[10] = 0xFF;
    s[11] = 0xFF;
    std::copy(e.ip.begin(), e.ip.end(), s.begin() + 12);
    return s;
}

void count(std::array<std::uint64_t, kTransferFailureKinds>& counters, TransferFailure why) {
    ++counters[static_cast<std::size_t>(why)];
}

}  // namespace

ModelChannel::ModelChannel(net::EventLoop& loop, std::unique_ptr<net::StreamListener> listener,
                           SessionIdentity identity, const Clock& clock, ChannelLimits limits,
                           ChannelHandlers handlers)
    : loop_(loop),
      listener_(std::move(listener)),
      identity_(std::move(identity)),
      clock_(clock),
      limits_(limits),
      handlers_(std::move(handlers)),
      sweep_timer_(loop) {
    identity_.max_model_bytes = std::min(identity_.max_model_bytes, limits_.max_model_bytes);
}

ModelChannel::~ModelChannel() {
    *alive_ = false;
    close();
}

void ModelChannel::start() {
    listener_->start([this](std::unique_ptr<net::StreamConnection> c) { on_accept(std::move(c)); });
    sweep_timer_.expire_after(limits_.link_sweep_interval, [this] { sweep(); });
}

void ModelChannel::close() {
    listener_->close();
    sweep_timer_.cancel();
    for (auto& [id, l] : links_) {
        l->ended = true;
        l->deadline.cancel();
        if (l->connection) l->connection->close();
    }
    links_.clear();
    outgoing_ = incoming_ = links_out_ = links_in_ = 0;
}

std::uint64_t ModelChannel::now_ms() const {
    return static_cast<std::uint64_t>(clock_.now().count() / 1000);
}

net::Ipv4Endpoint ModelChannel::local_endpoint() const { return listener_->local_endpoint(); }

const net::ListenerCounters& ModelChannel::listener_counters() const {
    return listener_->counters();
}

bool ModelChannel::busy_with(const crypto::DeviceId& peer) const {
    return std::any_of(links_.begin(), links_.end(), [&](const auto& e) {
        return e.second->mine_active && e.second->peer == peer;
    });
}

std::vector<LinkView> ModelChannel::links() const {
    std::vector<LinkView> out;
    const std::uint64_t now = now_ms();
    for (const auto& [id, l] : links_) {
        if (l->ended) continue;
        out.push_back({l->peer, l->outgoing, l->link->established(),
                       l->mine_active || l->theirs_active, l->link->transfers(),
                       now - std::min(now, l->last_used_ms)});
    }
    return out;
}

bool ModelChannel::trusted(const crypto::Certificate& peer) const {
    if (identity_.trust.is_revoked && identity_.trust.is_revoked(peer.device)) return false;
    return clock_.unix_seconds() <= peer.not_after;
}

// An open link to `peer`, whichever side dialed it, with no transfer of ours under way.
ModelChannel::Link* ModelChannel::idle_link_to(const crypto::DeviceId& peer) {
    for (auto& [id, l] : links_)
        if (!l->ended && l->peer == peer && l->link->established() && l->link->can_begin())
            return l.get();
    return nullptr;
}

LinkResponder ModelChannel::responder_for(Link& l) {
    return {[this, &l](ModelOp op) { return admit(l, op); }, handlers_.current_model};
}

bool ModelChannel::start_transfer(ModelOp op, const crypto::DeviceId& peer,
                                  const net::Ipv4Endpoint& at, ModelBytes model,
                                  std::uint64_t tag) {
    if (outgoing_ >= limits_.max_outgoing) {
        count(counters_.failed_out, TransferFailure::link_busy);
        return false;
    }
    if (!sends_model(op)) model = nullptr;
    else if (!model && handlers_.current_model) model = handlers_.current_model();
    if (sends_model(op) && (!model || model->empty())) {
        count(counters_.failed_out, TransferFailure::no_model);
        return false;
    }
    if (model && model->size() > identity_.max_model_bytes) {
        count(counters_.failed_out, TransferFailure::too_large);
        return false;
    }
    ++outgoing_;
    ++counters_.started_out;
    Request request{op, peer, at, std::move(model), tag};
    Link* open = idle_link_to(peer);
    if (open && !trusted(*open->link->peer())) {
        close_link(*open, counters_.links_closed_untrusted);
        open = nullptr;
    }
    if (open == nullptr) {
        dial(std::move(request));
        return true;
    }
    ++counters_.transfers_on_open_links;
    open->reused = true;
    begin(*open, std::move(request));
    pump(*open);
    return true;
}

// A new link for `request`, counted in outgoing_ already; the handshake carries its first message.
void ModelChannel::dial(Request request) {
    if (links_out_ >= limits_.max_links) (void)make_room(true);
    Link& l = add_link(true);
    l.peer = request.peer;
    l.link.emplace(ModelLink::dialer(identity_, request.peer, responder_for(l)));
    const net::Ipv4Endpoint at = request.at;
    begin(l, std::move(request));
    net::StreamOptions options;
    options.max_queued_bytes = queue_bytes(identity_.max_model_bytes);
    l.attempt = net::connect_stream(
        loop_, at, limits_.connect_timeout, options,
        [this, &l](Result<std::unique_ptr<net::StreamConnection>> c) {
            if (l.ended) return;
            if (!c) return fail_link(l, TransferFailure::connect);
            l.connection = std::move(*c);
            attach(l);
        });
}

// A new link, counted among those dialed or accepted.
ModelChannel::Link& ModelChannel::add_link(bool dials) {
    const std::uint64_t id = next_id_++;
    auto owned = std::make_unique<Link>(loop_, id, dials);
    Link& l = *owned;
    links_.emplace(id, std::move(owned));
    ++(dials ? links_out_ : links_in_);
    ++(dials ? counters_.links_opened_out : counters_.links_opened_in);
    l.last_used_ms = now_ms();
    return l;
}

void ModelChannel::begin(Link& l, Request request) {
    l.mine_active = true;
    l.last_used_ms = now_ms();
    // The model was checked against the limit: begin() refuses nothing on a link that can begin.
    (void)l.link->begin(request.op, request.model, l.last_used_ms);
    l.request = std::move(request);
    arm_deadline(l);
}

// A link with a transfer under way either way fails if the newest one is not done in time.
void ModelChannel::arm_deadline(Link& l) {
    if (!l.mine_active && !l.theirs_active) return l.deadline.cancel();
    l.deadline.expire_after(limits_.transfer_timeout,
                            [this, &l] { fail_link(l, TransferFailure::timeout); });
}

void ModelChannel::on_accept(std::unique_ptr<net::StreamConnection> connection) {
    if (!rate_limiter_.admit(source_of(connection->remote_endpoint()), now_ms())) {
        ++rate_limited_;
        count(counters_.failed_in, TransferFailure::rate_limited);
        return connection->close();
    }
    if (incoming_ >= limits_.max_incoming) {
        count(counters_.failed_in, TransferFailure::link_busy);
        return connection->close();
    }
    if (handlers_.busy && handlers_.busy()) {
        count(counters_.failed_in, TransferFailure::learner_busy);
        return connection->close();
    }
    // Only a newcomer that will be served makes an idle link give way.
    if (links_in_ >= limits_.max_links && !make_room(false)) {
        count(counters_.failed_in, TransferFailure::link_busy);
        return connection->close();
    }
    Link& l = add_link(false);
    l.link.emplace(ModelLink::listener(identity_, responder_for(l)));
    l.connection = std::move(connection);
    // A handshake that never finishes is bounded like a transfer.
    l.deadline.expire_after(limits_.transfer_timeout, [this, &l] {
        if (!l.link->established()) fail_link(l, TransferFailure::timeout);
    });
    attach(l);
}

std::optional<TransferFailure> ModelChannel::admit(Link& l, ModelOp op) {
    if (!trusted(*l.link->peer())) {
        l.untrusted = true;
        return TransferFailure::handshake;
    }
    if (incoming_ >= limits_.max_incoming) return TransferFailure::link_busy;
    if (sends_model(op) && handlers_.busy && handlers_.busy()) return TransferFailure::learner_busy;
    l.theirs_active = true;
    l.last_used_ms = now_ms();
    ++incoming_;
    arm_deadline(l);
    return std::nullopt;
}

void ModelChannel::attach(Link& l) {
    l.connection->start(
        {[this, &l](std::span<const std::uint8_t> bytes) { on_received(l, bytes); },
         [this, &l](const Error* error) {
             if (l.ended) return;
             if (error != nullptr) return fail_link(l, TransferFailure::connect);
             if (Status s = l.link->on_end_of_input(); !s)
                 return fail_link(l, l.link->failure().value_or(TransferFailure::truncated));
             settle(l);
         }});
    pump(l);
}

void ModelChannel::on_received(Link& l, std::span<const std::uint8_t> bytes) {
    if (l.ended) return;
    counters_.wire_bytes_received += bytes.size();
    (void)l.link->on_bytes(bytes, now_ms(), clock_.unix_seconds());  // failure() says why
    settle(l);
}

// After input: transfers that ended are reported, answers sent, and a link that failed, was
// closed by its peer or lost its trust is closed.
void ModelChannel::settle(Link& l) {
    for (TransferOutcome& outcome : l.link->take_outcomes()) finish_transfer(l, std::move(outcome));
    if (l.ended) return;
    if (const ModelLink& m = *l.link; m.failed())
        return fail_link(l, *m.failure());
    if (l.link->peer() != nullptr) l.peer = l.link->peer()->device;
    pump(l);
    // A peer that lost our trust may have our own transfer under way on this link: it fails.
    if (l.untrusted && (l.mine_active || l.theirs_active))
        return fail_link(l, TransferFailure::handshake);
    if (l.untrusted) close_link(l, counters_.links_closed_untrusted);
    else if (l.link->peer_closed()) close_link(l, counters_.links_closed_by_peer);
}

void ModelChannel::finish_transfer(Link& l, TransferOutcome outcome) {
    const bool ours = outcome.ours;
    const bool was_active = std::exchange(ours ? l.mine_active : l.theirs_active, false);
    if (ours) l.reused = false;
    arm_deadline(l);
    l.last_used_ms = now_ms();
    std::optional<TransferFailure> failure = outcome.failure;
    const crypto::Certificate* peer = l.link->peer();
    if (!failure && !outcome.model.empty() && peer != nullptr) {
        counters_.model_bytes_received += outcome.model.size();
        ++counters_.models_received;
        if (!handlers_.received || !handlers_.received(*peer, std::move(outcome.model)))
            failure = TransferFailure::model_refused;
    }
    if (!failure && outcome.model_bytes_sent > 0) {
        ++counters_.models_sent;
        counters_.model_bytes_sent += outcome.model_bytes_sent;
    }
    if (failure) count(ours ? counters_.failed_out : counters_.failed_in, *failure);
    else ++(ours ? counters_.completed_out : counters_.completed_in);
    if (ours) {
        --outgoing_;
        const Request request = std::exchange(l.request, {});
        if (handlers_.finished) handlers_.finished(request.tag, request.peer, outcome.op, failure);
    } else if (was_active) {
        --incoming_;
    }
}

void ModelChannel::pump(Link& l) {
    if (!l.connection) return;  // still connecting: the output waits in the link
    std::vector<std::uint8_t> out = l.link->take_output();
    if (out.empty()) return;
    if (Status s = l.connection->send(out); !s)
        return fail_link(l, s.error().code == ErrorCode::too_large ? TransferFailure::too_large
                                                                   : TransferFailure::connect);
    counters_.wire_bytes_sent += out.size();
}

// The link is dead: its transfers under way fail, except a request of ours on a reused link that
// the peer closed (or reset) before answering, which goes again on a new link.
void ModelChannel::fail_link(Link& l, TransferFailure failure) {
    if (l.ended) return;
    const bool active = l.mine_active || l.theirs_active;
    const bool cut = failure == TransferFailure::truncated || failure == TransferFailure::connect;
    const bool retry = l.mine_active && l.reused && l.link->awaiting_answer() && cut;
    if (retry) {
        ++counters_.transfers_retried;
        l.mine_active = false;
        dial(std::exchange(l.request, {}));  // still counted in outgoing_
    } else if (l.mine_active) {
        finish_transfer(l, TransferOutcome{true, l.request.op, failure, {}, 0});
    }
    if (l.theirs_active) finish_transfer(l, TransferOutcome{false, ModelOp::push, failure, {}, 0});
    // With no transfer under way the failure is the link's own (counted by who dialed), unless
    // it was a reset between transfers, where nothing was lost.
    if (!active && l.link->transfers() > 0 && failure == TransferFailure::connect)
        ++counters_.links_closed_by_peer;
    else if (!active)
        count(l.outgoing ? counters_.failed_out : counters_.failed_in, failure);
    if (l.connection) l.connection->close();
    forget(l);
}

// A clean close between transfers: our end frame goes out (unless the peer ended first), then
// the connection drains.
void ModelChannel::close_link(Link& l, std::uint64_t& reason) {
    if (l.ended) return;
    ++reason;
    if (!l.link->peer_closed()) {
        l.link->close(now_ms());
        pump(l);
        if (l.ended) return;
        if (l.connection) l.connection->finish_sending();
    }
    forget(l);
}

void ModelChannel::forget(Link& l) {
    l.ended = true;
    l.deadline.cancel();
    l.attempt.reset();
    l.connection.reset();  // after finish_sending() its queued bytes still go out
    --(l.outgoing ? links_out_ : links_in_);
    loop_.post([this, id = l.id, alive = alive_] {
        if (*alive) links_.erase(id);
    });
}

// Closes the least recently used idle link of that direction; false when every one is busy.
bool ModelChannel::make_room(bool outgoing) {
    Link* oldest = nullptr;
    for (auto& [id, l] : links_)
        if (l->outgoing == outgoing && !l->ended && !l->mine_active && !l->theirs_active &&
            (oldest == nullptr || l->last_used_ms < oldest->last_used_ms))
            oldest = l.get();
    if (oldest == nullptr) return false;
    close_link(*oldest, counters_.links_evicted);
    return true;
}

void ModelChannel::sweep() {
    const std::uint64_t now = now_ms();
    const auto idle_ms = static_cast<std::uint64_t>(limits_.link_idle_timeout.count());
    for (auto& [id, l] : links_) {
        if (l->ended || l->mine_active || l->theirs_active || !l->link->established()) continue;
        const std::uint64_t limit = l->outgoing ? idle_ms : 2 * idle_ms;
        if (now - std::min(now, l->last_used_ms) >= limit)
            close_link(*l, counters_.links_closed_idle);
        else if (!trusted(*l->link->peer()))
            close_link(*l, counters_.links_closed_untrusted);
    }
    sweep_timer_.expire_after(limits_.link_sweep_interval, [this] { sweep(); });
}

}  // namespace starling::runtime

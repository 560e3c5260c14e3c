// Model transfers on the event loop: each one a session, a connection and a deadline; finished
// transfers are removed from a posted handler, never from inside their own callbacks.

#include "node/runtime/model_channel.hpp"

#include <algorithm>
#include <utility>

namespace starling::runtime {

struct ModelChannel::Transfer {
    Transfer(net::EventLoop& loop, std::uint64_t transfer_id) : id(transfer_id), deadline(loop) {}
    std::uint64_t id;
    std::uint64_t tag = 0;
    bool outgoing = false;
    bool ended = false;
    crypto::DeviceId peer{};
    std::unique_ptr<ModelSession> session;
    std::unique_ptr<net::ConnectAttempt> attempt;
    std::unique_ptr<net::StreamConnection> connection;
    net::Timer deadline;
    bool half_closed = false;
};

namespace {

crypto::SourceAddress source_of(const net::Ipv4Endpoint& e) {
    crypto::SourceAddress s{};
    s[10] = 0xFF;
    s[11] = 0xFF;
    std::copy(e.ip.begin(), e.ip.end(), s.begin() + 12);
    return s;
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
      handlers_(std::move(handlers)) {
    identity_.max_model_bytes = std::min(identity_.max_model_bytes, limits_.max_model_bytes);
}

ModelChannel::~ModelChannel() {
    *alive_ = false;
    close();
}

void ModelChannel::start() {
    listener_->start([this](std::unique_ptr<net::StreamConnection> c) { on_accept(std::move(c)); });
}

void ModelChannel::close() {
    listener_->close();
    for (auto& [id, t] : transfers_) {
        t->ended = true;
        t->deadline.cancel();
        if (t->connection) t->connection->close();
    }
    transfers_.clear();
    outgoing_ = incoming_ = 0;
}

std::uint64_t ModelChannel::now_ms() const {
    return static_cast<std::uint64_t>(clock_.now().count() / 1000);
}

net::Ipv4Endpoint ModelChannel::local_endpoint() const { return listener_->local_endpoint(); }

const net::ListenerCounters& ModelChannel::listener_counters() const {
    return listener_->counters();
}

bool ModelChannel::busy_with(const crypto::DeviceId& peer) const {
    return std::any_of(transfers_.begin(), transfers_.end(),
                       [&](const auto& e) { return e.second->outgoing && e.second->peer == peer; });
}

bool ModelChannel::start_transfer(ModelOp op, const crypto::DeviceId& peer,
                                  const net::Ipv4Endpoint& at, ModelBytes model,
                                  std::uint64_t tag) {
    if (outgoing_ >= limits_.max_outgoing) {
        ++counters_.failed_out[static_cast<std::size_t>(TransferFailure::link_busy)];
        return false;
    }
    if (!sends_model(op)) model = nullptr;
    else if (!model && handlers_.current_model) model = handlers_.current_model();
    if (sends_model(op) && (!model || model->empty())) {
        ++counters_.failed_out[static_cast<std::size_t>(TransferFailure::no_model)];
        return false;
    }
    const std::uint64_t id = next_id_++;
    auto t = std::make_unique<Transfer>(loop_, id);
    t->outgoing = true;
    t->peer = peer;
    t->tag = tag;
    t->session = std::make_unique<ModelSession>(
        ModelSession::initiator(identity_, op, peer, std::move(model), now_ms()));
    Transfer& ref = *t;
    transfers_.emplace(id, std::move(t));
    ++outgoing_;
    ++counters_.started_out;
    if (ref.session->failed()) {
        loop_.post([this, id, alive = alive_] {
            if (!*alive) return;
            if (auto it = transfers_.find(id); it != transfers_.end())
                end(*it->second, it->second->session->failure());
        });
        return true;
    }
    ref.deadline.expire_after(limits_.transfer_timeout, [this, &ref] { end(ref, TransferFailure::timeout); });
    net::StreamOptions options;
    options.max_queued_bytes = identity_.max_model_bytes + (std::size_t{1} << 20);
    ref.attempt = net::connect_stream(
        loop_, at, limits_.connect_timeout, options,
        [this, &ref](Result<std::unique_ptr<net::StreamConnection>> c) {
            if (ref.ended) return;
            if (!c) return end(ref, TransferFailure::connect);
            ref.connection = std::move(*c);
            attach(ref);
        });
    return true;
}

void ModelChannel::on_accept(std::unique_ptr<net::StreamConnection> connection) {
    if (!rate_limiter_.admit(source_of(connection->remote_endpoint()), now_ms())) {
        ++rate_limited_;
        ++counters_.failed_in[static_cast<std::size_t>(TransferFailure::rate_limited)];
        return connection->close();
    }
    if (incoming_ >= limits_.max_incoming) {
        ++counters_.failed_in[static_cast<std::size_t>(TransferFailure::link_busy)];
        return connection->close();
    }
    if (handlers_.busy && handlers_.busy()) {
        ++counters_.failed_in[static_cast<std::size_t>(TransferFailure::learner_busy)];
        return connection->close();
    }
    const std::uint64_t id = next_id_++;
    auto t = std::make_unique<Transfer>(loop_, id);
    t->session = std::make_unique<ModelSession>(
        ModelSession::responder(identity_, handlers_.current_model));
    t->connection = std::move(connection);
    Transfer& ref = *t;
    transfers_.emplace(id, std::move(t));
    ++incoming_;
    ref.deadline.expire_after(limits_.transfer_timeout, [this, &ref] { end(ref, TransferFailure::timeout); });
    attach(ref);
}

void ModelChannel::attach(Transfer& t) {
    t.connection->start(
        {[this, &t](std::span<const std::uint8_t> bytes) { on_received(t, bytes); },
         [this, &t](const Error* error) {
             if (t.ended) return;
             if (error != nullptr) return end(t, TransferFailure::connect);
             if (Status s = t.session->on_end_of_input(); !s)
                 return end(t, t.session->failure().value_or(TransferFailure::truncated));
             if (t.session->done()) end(t, std::nullopt);
         }});
    pump(t);
}

void ModelChannel::pump(Transfer& t) {
    std::vector<std::uint8_t> out = t.session->take_output();
    if (!out.empty()) {
        if (Status s = t.connection->send(out); !s) return end(t, TransferFailure::too_large);
        counters_.wire_bytes_sent += out.size();
    }
    if (t.session->output_finished() && !t.half_closed) {
        t.half_closed = true;
        t.connection->finish_sending();
    }
}

void ModelChannel::on_received(Transfer& t, std::span<const std::uint8_t> bytes) {
    if (t.ended) return;
    counters_.wire_bytes_received += bytes.size();
    if (Status s = t.session->on_bytes(bytes, now_ms(), clock_.unix_seconds()); !s)
        return end(t, t.session->failure().value_or(TransferFailure::malformed));
    pump(t);
    // The initiator is done once the reply's end frame opened; the responder once its reply is
    // queued, and it waits for the peer to close so the reply is not cut off.
    if (t.session->done() && t.outgoing) end(t, std::nullopt);
}

void ModelChannel::end(Transfer& t, std::optional<TransferFailure> failure) {
    if (t.ended) return;
    t.ended = true;
    t.deadline.cancel();
    t.attempt.reset();
    auto& failed = t.outgoing ? counters_.failed_out : counters_.failed_in;
    ModelSession& s = *t.session;
    if (!failure && !s.received_model().empty() && s.peer() != nullptr) {
        counters_.model_bytes_received += s.received_model().size();
        ++counters_.models_received;
        const bool accepted = handlers_.received && handlers_.received(*s.peer(), std::move(s.received_model()));
        if (!accepted) failure = TransferFailure::model_refused;
    }
    if (!failure && s.model_bytes_sent() > 0) {
        ++counters_.models_sent;
        counters_.model_bytes_sent += s.model_bytes_sent();
    }
    if (failure) ++failed[static_cast<std::size_t>(*failure)];
    else ++(t.outgoing ? counters_.completed_out : counters_.completed_in);
    // A responder's reply may still be queued: dropping the finished connection lets it drain.
    if (t.connection && (failure || t.outgoing)) t.connection->close();
    t.connection.reset();
    if (t.outgoing) {
        --outgoing_;
        if (handlers_.finished) handlers_.finished(t.tag, t.peer, s.op(), failure);
    } else {
        --incoming_;
    }
    loop_.post([this, id = t.id, alive = alive_] {
        if (*alive) transfers_.erase(id);
    });
}

}  // namespace starling::runtime

// The model link state machine: length-prefixed handshake messages, then sealed streams each
// way carrying one transfer after another, every byte checked before it is believed.

#include "node/runtime/model_link.hpp"

#include <algorithm>
#include <limits>
#include <string>
#include <utility>

namespace starling::runtime {
namespace {

// The buffer capacity a reader keeps between messages (a model's is given back to the heap).
constexpr std::size_t kKeepReaderBytes = 4 * limits::kMaxStreamChunkBytes;

TransferFailure failure_of(ErrorCode code) {
    switch (code) {
        case ErrorCode::truncated: return TransferFailure::truncated;
        case ErrorCode::too_large: return TransferFailure::too_large;
        case ErrorCode::corrupt: return TransferFailure::corrupt;
        default: return TransferFailure::malformed;
    }
}

bool known_kind(std::uint8_t kind) {
    return kind >= static_cast<std::uint8_t>(LinkMessage::push) &&
           kind <= static_cast<std::uint8_t>(LinkMessage::reply_model);
}

bool has_body(LinkMessage kind) {
    return kind == LinkMessage::model || kind == LinkMessage::reply_model;
}

}  // namespace

const char* to_string(TransferFailure failure) noexcept {
    switch (failure) {
        case TransferFailure::link_busy: return "link_busy";
        case TransferFailure::rate_limited: return "rate_limited";
        case TransferFailure::learner_busy: return "learner_busy";
        case TransferFailure::peer_busy: return "peer_busy";
        case TransferFailure::connect: return "connect";
        case TransferFailure::handshake: return "handshake";
        case TransferFailure::wrong_peer: return "wrong_peer";
        case TransferFailure::truncated: return "truncated";
        case TransferFailure::too_large: return "too_large";
        case TransferFailure::malformed: return "malformed";
        case TransferFailure::corrupt: return "corrupt";
        case TransferFailure::timeout: return "timeout";
        case TransferFailure::no_model: return "no_model";
        case TransferFailure::model_refused: return "model_refused";
    }
    return "unknown";
}

std::array<std::uint8_t, kLinkHeaderBytes> link_header(LinkMessage kind, std::size_t body_bytes) {
    const auto n = static_cast<std::uint32_t>(body_bytes);
    return {static_cast<std::uint8_t>(kind), static_cast<std::uint8_t>(n >> 24),
            static_cast<std::uint8_t>(n >> 16), static_cast<std::uint8_t>(n >> 8),
            static_cast<std::uint8_t>(n)};
}

Result<std::optional<LinkReader::Message>> LinkReader::next() {
    if (!kind_) {
        if (unread() < kLinkHeaderBytes) return std::optional<Message>{};
        const std::uint8_t* h = buffer_.data() + at_;
        const std::size_t n = (std::size_t{h[1]} << 24) | (std::size_t{h[2]} << 16) |
                              (std::size_t{h[3]} << 8) | std::size_t{h[4]};
        if (!known_kind(h[0]))
            return make_error(ErrorCode::malformed, "model link: an unknown message");
        const auto kind = static_cast<LinkMessage>(h[0]);
        if (has_body(kind) && n == 0)
            return make_error(ErrorCode::malformed, "model link: an empty model");
        if (has_body(kind) && n > max_model_bytes_)
            return make_error(ErrorCode::too_large, "model link: a model over the model limit");
        if (!has_body(kind) && n != 0)
            return make_error(ErrorCode::malformed,
                              "model link: a body on a message that has none");
        kind_ = kind;
        body_bytes_ = n;
        at_ += kLinkHeaderBytes;
        if (n > unread()) {
            // The body arrives in pieces: it starts the buffer, which has room for all of it,
            // so it is appended without a copy and handed over whole.
            buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(at_));
            at_ = 0;
            buffer_.reserve(n);
        }
    }
    if (unread() < body_bytes_) return std::optional<Message>{};
    Message m{*std::exchange(kind_, std::nullopt), {}};
    if (at_ == 0 && buffer_.size() == body_bytes_) {
        m.body = std::exchange(buffer_, {});
        return std::optional<Message>(std::move(m));
    }
    m.body.assign(buffer_.begin() + static_cast<std::ptrdiff_t>(at_),
                  buffer_.begin() + static_cast<std::ptrdiff_t>(at_ + body_bytes_));
    at_ += body_bytes_;
    if (at_ == buffer_.size()) {
        if (buffer_.capacity() > kKeepReaderBytes) buffer_ = {};
        buffer_.clear();
        at_ = 0;
    } else if (at_ >= limits::kMaxStreamChunkBytes) {
        buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(at_));
        at_ = 0;
    }
    return std::optional<Message>(std::move(m));
}

ModelLink::ModelLink(const SessionIdentity& identity, bool dialer, LinkResponder responder)
    : max_model_bytes_(std::min(identity.max_model_bytes, kMaxTransferModelBytes)),
      dialer_(dialer),
      responder_(std::move(responder)),
      handshake_(std::make_unique<crypto::Handshake>(
          dialer ? crypto::noise::Role::initiator : crypto::noise::Role::responder,
          *identity.static_key, identity.certificate, identity.trust)) {}

ModelLink::~ModelLink() = default;
ModelLink::ModelLink(ModelLink&&) noexcept = default;
ModelLink& ModelLink::operator=(ModelLink&&) noexcept = default;

ModelLink ModelLink::dialer(const SessionIdentity& identity, const crypto::DeviceId& expected_peer,
                            LinkResponder responder) {
    ModelLink link(identity, true, std::move(responder));
    link.expected_peer_ = expected_peer;
    link.write_handshake();  // message 1
    return link;
}

ModelLink ModelLink::listener(const SessionIdentity& identity, LinkResponder responder) {
    return ModelLink(identity, false, std::move(responder));
}

Error ModelLink::fail(TransferFailure why, Error error) {
    if (!failure_) failure_ = why;
    return error;
}

Error ModelLink::fail(TransferFailure why, const char* what) {
    const ErrorCode code = why == TransferFailure::too_large   ? ErrorCode::too_large
                           : why == TransferFailure::truncated ? ErrorCode::truncated
                           : why == TransferFailure::handshake || why == TransferFailure::wrong_peer
                               ? ErrorCode::insecure
                               : ErrorCode::malformed;
    return fail(why, make_error(code, std::string("model link: ") + what));
}

void ModelLink::write_handshake() {
    Result<std::vector<std::uint8_t>> message = handshake_->write_message();
    if (!message) {
        (void)fail(TransferFailure::handshake, message.error());
        return;
    }
    const std::size_t n = message->size();
    output_.push_back(static_cast<std::uint8_t>(n >> 8));
    output_.push_back(static_cast<std::uint8_t>(n & 0xFF));
    output_.insert(output_.end(), message->begin(), message->end());
}

Status ModelLink::begin(ModelOp op, ModelBytes model, std::uint64_t now_ms) {
    if (!can_begin())
        return make_error(ErrorCode::invalid_argument, "model link: not ready for a transfer");
    if (!sends_model(op)) model = nullptr;
    else if (!model || model->empty() || model->size() > max_model_bytes_)
        return make_error(ErrorCode::invalid_argument, "model link: no model, or over the limit");
    my_op_ = op;
    model_ = std::move(model);
    mine_ = Step::asked;
    if (!established()) {
        pending_ = true;  // sent right after the handshake's last message
        return Ok{};
    }
    return send(static_cast<LinkMessage>(op), nullptr, now_ms);
}

Status ModelLink::on_bytes(std::span<const std::uint8_t> bytes, std::uint64_t now_ms,
                           std::uint64_t now_unix_seconds) {
    if (failure_) return make_error(ErrorCode::invalid_argument, "model link already failed");
    if (closed_) return Ok{};  // our end frame is out: what crosses it is not answered
    if (opener_) return stream_bytes(bytes, now_ms);
    input_.insert(input_.end(), bytes.begin(), bytes.end());
    if (Status s = handshake_bytes(now_ms, now_unix_seconds); !s) return s;
    // What waits for the rest of a handshake message is less than one message: the length
    // prefix was checked, so more can only be a peer talking out of turn.
    if (!opener_ && input_.size() > 2 * (kHandshakeLengthBytes + limits::kMaxHandshakeMessageBytes))
        return fail(TransferFailure::malformed, "bytes out of turn during the handshake");
    return Ok{};
}

Status ModelLink::handshake_bytes(std::uint64_t now_ms, std::uint64_t now_unix_seconds) {
    std::size_t used = 0;
    while (!handshake_->complete() && !handshake_->is_my_turn()) {
        if (input_.size() - used < kHandshakeLengthBytes) break;
        const std::size_t n = (std::size_t{input_[used]} << 8) | input_[used + 1];
        if (n == 0 || n > limits::kMaxHandshakeMessageBytes)
            return fail(TransferFailure::malformed, "handshake message length out of range");
        if (input_.size() - used - kHandshakeLengthBytes < n) break;
        const auto message =
            std::span<const std::uint8_t>(input_).subspan(used + kHandshakeLengthBytes, n);
        if (Status s = handshake_->read_message(message, now_unix_seconds); !s)
            return fail(TransferFailure::handshake, s.error());
        used += kHandshakeLengthBytes + n;
        if (!handshake_->complete()) write_handshake();
        if (failure_) return make_error(ErrorCode::insecure, "handshake failed");
    }
    input_.erase(input_.begin(), input_.begin() + static_cast<std::ptrdiff_t>(used));
    if (!handshake_->complete()) return Ok{};
    if (Status s = after_handshake(now_ms); !s) return s;
    std::vector<std::uint8_t> rest = std::exchange(input_, {});
    return rest.empty() ? Status(Ok{}) : stream_bytes(rest, now_ms);
}

Status ModelLink::after_handshake(std::uint64_t now_ms) {
    Result<crypto::EstablishedSession> session = handshake_->finish();
    if (!session) return fail(TransferFailure::handshake, session.error());
    handshake_.reset();
    if (dialer_ && session->peer.device != expected_peer_)
        return fail(TransferFailure::wrong_peer, "another device answered");
    peer_ = std::move(session->peer);
    // A link carries transfers for as long as it lives: the bound is per message (the reader's)
    // and per key (the rekey policy), not per stream.
    sealer_.emplace(std::move(session->ciphers.send), now_ms);
    opener_.emplace(std::move(session->ciphers.receive), crypto::RekeyPolicy{},
                    std::numeric_limits<std::uint64_t>::max());
    reader_.emplace(max_model_bytes_);
    if (!std::exchange(pending_, false)) return Ok{};
    return send(static_cast<LinkMessage>(my_op_), nullptr, now_ms);
}

Status ModelLink::send(LinkMessage kind, const ModelBytes& model, std::uint64_t now_ms) {
    const std::size_t n = model ? model->size() : 0;
    const auto header = link_header(kind, n);
    if (Status s = sealer_->seal(header, now_ms, output_); !s)
        return fail(TransferFailure::malformed, s.error());
    if (model) {
        if (Status s = sealer_->seal(*model, now_ms, output_); !s)
            return fail(TransferFailure::too_large, s.error());
        if (kind == LinkMessage::model) model_bytes_sent_ += n;
    }
    return Ok{};
}

Status ModelLink::stream_bytes(std::span<const std::uint8_t> bytes, std::uint64_t now_ms) {
    if (Status s = opener_->on_bytes_received(bytes, reader_->input()); !s)
        return fail(failure_of(s.error().code), s.error());
    for (;;) {
        Result<std::optional<LinkReader::Message>> m = reader_->next();
        if (!m) return fail(failure_of(m.error().code), m.error());
        if (!*m) break;
        LinkReader::Message message = std::move(**m);
        const bool request = is_request_side(message.kind);
        if (Status s = request ? on_request(std::move(message), now_ms)
                               : on_answer(std::move(message), now_ms);
            !s)
            return s;
    }
    if (!opener_->finished()) return Ok{};
    if (reader_->buffered() > 0)
        return fail(TransferFailure::truncated, "a message cut by the end");
    if (!idle()) return fail(TransferFailure::truncated, "the peer closed during a transfer");
    peer_closed_ = true;
    return Ok{};
}

// Answers to our transfer under way.
Status ModelLink::on_answer(LinkReader::Message m, std::uint64_t now_ms) {
    using enum LinkMessage;
    const LinkMessage k = m.kind;
    if (mine_ == Step::asked && k == ready && sends_model(my_op_)) {
        mine_ = Step::sent;
        return send(model, model_, now_ms);
    }
    const bool fetched = k == reply_model || k == no_model;
    const bool answer =
        (mine_ == Step::asked && (k == busy || (my_op_ == ModelOp::pull && fetched))) ||
        (mine_ == Step::sent && (my_op_ == ModelOp::push ? k == ok : fetched));
    if (!answer) return fail(TransferFailure::malformed, "an answer out of turn");
    if (k == busy) end_mine(TransferFailure::peer_busy);
    else if (k == no_model) end_mine(TransferFailure::no_model);
    else end_mine(std::nullopt, std::move(m.body));
    return Ok{};
}

// The peer's transfer: its request, and the model of a request we said ready to.
Status ModelLink::on_request(LinkReader::Message m, std::uint64_t now_ms) {
    if (theirs_ == Step::idle && m.kind != LinkMessage::model) {
        their_op_ = static_cast<ModelOp>(m.kind);
        if (const auto refused = responder_.admit ? responder_.admit(their_op_) : std::nullopt) {
            if (Status s = send(LinkMessage::busy, nullptr, now_ms); !s) return s;
            end_theirs(*refused, {}, 0);
            return Ok{};
        }
        if (sends_model(their_op_)) {
            theirs_ = Step::awaiting_model;
            return send(LinkMessage::ready, nullptr, now_ms);
        }
        m.body.clear();
    } else if (theirs_ == Step::awaiting_model && m.kind == LinkMessage::model) {
        if (!fetches_model(their_op_)) {
            if (Status s = send(LinkMessage::ok, nullptr, now_ms); !s) return s;
            end_theirs(std::nullopt, std::move(m.body), 0);
            return Ok{};
        }
    } else {
        return fail(TransferFailure::malformed, "a request out of turn");
    }
    // The request fetches our model: it goes back, or word that there is none yet.
    ModelBytes mine = responder_.current_model ? responder_.current_model() : nullptr;
    const bool have = mine && !mine->empty() && mine->size() <= max_model_bytes_;
    if (Status s = send(have ? LinkMessage::reply_model : LinkMessage::no_model,
                        have ? mine : nullptr, now_ms);
        !s)
        return s;
    end_theirs(std::nullopt, std::move(m.body), have ? mine->size() : 0);
    return Ok{};
}

void ModelLink::end_mine(std::optional<TransferFailure> failure, std::vector<std::uint8_t> model) {
    outcomes_.push_back(
        TransferOutcome{true, my_op_, failure, std::move(model), model_bytes_sent_});
    model_bytes_sent_ = 0;
    model_.reset();
    mine_ = Step::idle;
    ++transfers_;
}

void ModelLink::end_theirs(std::optional<TransferFailure> failure, std::vector<std::uint8_t> model,
                           std::uint64_t bytes_sent) {
    outcomes_.push_back(TransferOutcome{false, their_op_, failure, std::move(model), bytes_sent});
    theirs_ = Step::idle;
    ++transfers_;
}

Status ModelLink::on_end_of_input() {
    if (failure_) return make_error(ErrorCode::invalid_argument, "model link already failed");
    if (closed_) return Ok{};
    if (!established()) return fail(TransferFailure::truncated, "the peer ended the handshake");
    if (!idle())
        return fail(TransferFailure::truncated, "the peer ended the link during a transfer");
    peer_closed_ = true;
    return Ok{};
}

void ModelLink::close(std::uint64_t now_ms) {
    if (closed_) return;
    closed_ = true;
    if (sealer_ && !failure_ && !sealer_->finished()) (void)sealer_->finish(now_ms, output_);
}

std::vector<std::uint8_t> ModelLink::take_output() { return std::exchange(output_, {}); }

std::vector<TransferOutcome> ModelLink::take_outcomes() { return std::exchange(outcomes_, {}); }

}  // namespace starling::runtime

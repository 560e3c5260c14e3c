// The model transfer state machine: length-prefixed handshake messages, then one sealed stream
// each way, every byte checked before it is believed.

#include "node/runtime/model_session.hpp"

#include <algorithm>
#include <string>
#include <utility>

namespace starling::runtime {
namespace {

constexpr std::size_t kStatusBytes = 1;  // the op byte of a request, the status byte of a reply

TransferFailure failure_of(ErrorCode code) {
    switch (code) {
        case ErrorCode::truncated: return TransferFailure::truncated;
        case ErrorCode::too_large: return TransferFailure::too_large;
        case ErrorCode::corrupt: return TransferFailure::corrupt;
        default: return TransferFailure::malformed;
    }
}

bool known_op(std::uint8_t op) {
    return op >= static_cast<std::uint8_t>(ModelOp::push) &&
           op <= static_cast<std::uint8_t>(ModelOp::exchange);
}

}  // namespace

const char* to_string(TransferFailure failure) noexcept {
    switch (failure) {
        case TransferFailure::link_busy: return "link_busy";
        case TransferFailure::rate_limited: return "rate_limited";
        case TransferFailure::learner_busy: return "learner_busy";
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

ModelSession::ModelSession(const SessionIdentity& identity, bool initiator)
    : max_model_bytes_(std::min(identity.max_model_bytes, kMaxTransferModelBytes)),
      initiator_(initiator),
      handshake_(std::make_unique<crypto::Handshake>(
          initiator ? crypto::noise::Role::initiator : crypto::noise::Role::responder,
          *identity.static_key, identity.certificate, identity.trust)) {}

ModelSession ModelSession::initiator(const SessionIdentity& identity, ModelOp op,
                                     const crypto::DeviceId& expected_peer, ModelBytes model,
                                     std::uint64_t now_ms) {
    ModelSession s(identity, true);
    s.op_ = op;
    s.expected_peer_ = expected_peer;
    s.model_ = std::move(model);
    if (sends_model(op) && (!s.model_ || s.model_->empty() || s.model_->size() > s.max_model_bytes_))
        (void)s.fail(TransferFailure::too_large, "no model to send, or over the model limit");
    else
        s.write_handshake(now_ms);  // message 1
    return s;
}

ModelSession ModelSession::responder(const SessionIdentity& identity,
                                     std::function<ModelBytes()> current_model) {
    ModelSession s(identity, false);
    s.current_model_ = std::move(current_model);
    return s;
}

Error ModelSession::fail(TransferFailure why, Error error) {
    if (!failure_) failure_ = why;
    return error;
}

Error ModelSession::fail(TransferFailure why, const char* what) {
    const ErrorCode code = why == TransferFailure::too_large   ? ErrorCode::too_large
                           : why == TransferFailure::truncated ? ErrorCode::truncated
                           : why == TransferFailure::handshake || why == TransferFailure::wrong_peer
                               ? ErrorCode::insecure
                               : ErrorCode::malformed;
    return fail(why, make_error(code, std::string("model transfer: ") + what));
}

void ModelSession::write_handshake(std::uint64_t now_ms) {
    Result<std::vector<std::uint8_t>> message = handshake_->write_message();
    if (!message) {
        (void)fail(TransferFailure::handshake, message.error());
        return;
    }
    const std::size_t n = message->size();
    output_.push_back(static_cast<std::uint8_t>(n >> 8));
    output_.push_back(static_cast<std::uint8_t>(n & 0xFF));
    output_.insert(output_.end(), message->begin(), message->end());
    (void)now_ms;
}

Status ModelSession::on_bytes(std::span<const std::uint8_t> bytes, std::uint64_t now_ms,
                              std::uint64_t now_unix_seconds) {
    if (failure_) return make_error(ErrorCode::invalid_argument, "model transfer already failed");
    if (done_) {
        if (bytes.empty()) return Ok{};
        return fail(TransferFailure::malformed, "bytes after the transfer finished");
    }
    if (opener_) return stream_bytes(bytes, now_ms);
    input_.insert(input_.end(), bytes.begin(), bytes.end());
    if (Status s = handshake_bytes(now_ms, now_unix_seconds); !s) return s;
    // What waits for the rest of a handshake message is less than one message: the length
    // prefix was checked, so more can only be a peer talking out of turn.
    if (!opener_ && input_.size() > 2 * (kHandshakeLengthBytes + limits::kMaxHandshakeMessageBytes))
        return fail(TransferFailure::malformed, "bytes out of turn during the handshake");
    return Ok{};
}

Status ModelSession::handshake_bytes(std::uint64_t now_ms, std::uint64_t now_unix_seconds) {
    std::size_t used = 0;
    while (!handshake_->complete() && !handshake_->is_my_turn()) {
        if (input_.size() - used < kHandshakeLengthBytes) break;
        const std::size_t n = (std::size_t{input_[used]} << 8) | input_[used + 1];
        if (n == 0 || n > limits::kMaxHandshakeMessageBytes)
            return fail(TransferFailure::malformed, "handshake message length out of range");
        if (input_.size() - used - kHandshakeLengthBytes < n) break;
        const auto message = std::span<const std::uint8_t>(input_).subspan(used + kHandshakeLengthBytes, n);
        if (Status s = handshake_->read_message(message, now_unix_seconds); !s)
            return fail(TransferFailure::handshake, s.error());
        used += kHandshakeLengthBytes + n;
        if (!handshake_->complete()) write_handshake(now_ms);
        if (failure_) return make_error(ErrorCode::insecure, "handshake failed");
    }
    input_.erase(input_.begin(), input_.begin() + static_cast<std::ptrdiff_t>(used));
    if (!handshake_->complete()) return Ok{};
    if (Status s = after_handshake(now_ms); !s) return s;
    std::vector<std::uint8_t> rest = std::move(input_);
    input_.clear();
    return rest.empty() ? Status(Ok{}) : stream_bytes(rest, now_ms);
}

Status ModelSession::after_handshake(std::uint64_t now_ms) {
    Result<crypto::EstablishedSession> session = handshake_->finish();
    if (!session) return fail(TransferFailure::handshake, session.error());
    handshake_.reset();
    if (initiator_ && session->peer.device != expected_peer_)
        return fail(TransferFailure::wrong_peer, "another device answered");
    peer_ = std::move(session->peer);
    const std::uint64_t cap = kStatusBytes + max_model_bytes_;
    sealer_.emplace(std::move(session->ciphers.send), now_ms);
    opener_.emplace(std::move(session->ciphers.receive), crypto::RekeyPolicy{}, cap);
    if (initiator_) return send_stream(static_cast<std::uint8_t>(op_), sends_model(op_) ? model_ : nullptr, now_ms);
    return Ok{};
}

Status ModelSession::send_stream(std::uint8_t first, const ModelBytes& model, std::uint64_t now_ms) {
    const std::uint8_t head[kStatusBytes] = {first};
    if (Status s = sealer_->seal(head, now_ms, output_); !s) return fail(TransferFailure::malformed, s.error());
    if (model) {
        if (Status s = sealer_->seal(*model, now_ms, output_); !s)
            return fail(TransferFailure::too_large, s.error());
        model_bytes_sent_ += model->size();
    }
    if (Status s = sealer_->finish(now_ms, output_); !s) return fail(TransferFailure::malformed, s.error());
    output_finished_ = true;
    return Ok{};
}

Status ModelSession::stream_bytes(std::span<const std::uint8_t> bytes, std::uint64_t now_ms) {
    if (Status s = opener_->on_bytes_received(bytes, opened_); !s)
        return fail(failure_of(s.error().code), s.error());
    if (!opened_.empty()) {
        const std::uint8_t head = opened_.front();
        if (!initiator_ && !known_op(head)) return fail(TransferFailure::malformed, "unknown op");
        if (initiator_ && head != static_cast<std::uint8_t>(ReplyStatus::ok) &&
            head != static_cast<std::uint8_t>(ReplyStatus::no_model))
            return fail(TransferFailure::malformed, "unknown reply status");
    }
    return opener_->finished() ? on_stream_end(now_ms) : Status(Ok{});
}

Status ModelSession::on_stream_end(std::uint64_t now_ms) {
    if (opened_.empty()) return fail(TransferFailure::malformed, "an empty stream");
    const std::uint8_t head = opened_.front();
    const std::size_t body = opened_.size() - kStatusBytes;
    if (!initiator_) {
        op_ = static_cast<ModelOp>(head);
        if (sends_model(op_) == (body == 0))
            return fail(TransferFailure::malformed, "the request's model does not match its op");
        received_.assign(opened_.begin() + kStatusBytes, opened_.end());
        opened_.clear();
        ModelBytes mine = fetches_model(op_) && current_model_ ? current_model_() : nullptr;
        const bool have = mine && !mine->empty() && mine->size() <= max_model_bytes_;
        const auto status = have || !fetches_model(op_) ? ReplyStatus::ok : ReplyStatus::no_model;
        if (Status s = send_stream(static_cast<std::uint8_t>(status),
                                   status == ReplyStatus::ok && fetches_model(op_) ? mine : nullptr,
                                   now_ms);
            !s)
            return s;
        done_ = true;
        return Ok{};
    }
    if (head == static_cast<std::uint8_t>(ReplyStatus::no_model)) {
        if (body != 0) return fail(TransferFailure::malformed, "a model after 'no model'");
        done_ = true;
        if (fetches_model(op_)) return fail(TransferFailure::no_model, "the peer has no model yet");
        return Ok{};
    }
    if (fetches_model(op_) == (body == 0))
        return fail(TransferFailure::malformed, "the reply's model does not match the op");
    received_.assign(opened_.begin() + kStatusBytes, opened_.end());
    opened_.clear();
    done_ = true;
    return Ok{};
}

Status ModelSession::on_end_of_input() {
    if (failure_) return make_error(ErrorCode::invalid_argument, "model transfer already failed");
    if (done_) return Ok{};
    if (opener_) {
        if (Status s = opener_->on_end_of_input(); !s) return fail(TransferFailure::truncated, s.error());
    }
    return fail(TransferFailure::truncated, "the peer ended the stream early");
}

std::vector<std::uint8_t> ModelSession::take_output() { return std::exchange(output_, {}); }

}  // namespace starling::runtime

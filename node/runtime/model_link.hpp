#pragma once
// A model link between two devices, sans-I/O: the certificate-checked Noise XX handshake
// (crypto/handshake.hpp), then one sealed stream each way (crypto/stream.hpp) that stays open for
// many transfers either way, so two devices that exchange often pay for one handshake between
// them, and model bytes are only ever sent to and accepted from a current, unrevoked device of
// this cluster.
//
//   dialer                                         listener
//   u16 len || XX message 1                    ->
//                                              <-  u16 len || XX message 2
//   u16 len || XX message 3                    ->
// then transfers as messages inside the sealed streams, from either side (the requester):
//   push      [push]      ->   <- [ready] or [busy]    [model] ->   <- [ok]
//   pull      [pull]      ->   <- [reply_model], [no_model] or [busy]
//   exchange  [exchange]  ->   <- [ready] or [busy]    [model] ->   <- [reply_model] or [no_model]
// A message is a kind byte and a u32 big-endian body length, then the body; only [model] and
// [reply_model] have one. Each side has at most one transfer of its own under way and answers
// at most one of the peer's, so the kind says which of the two a message belongs to. [ready]
// first: a busy device never receives (nor opens) a model it would drop. Either side ends the
// link, with no transfer under way, by its stream's end frame. A link cut short during a
// transfer, altered, oversized, or with a message out of turn is dead. The model bytes are
// opaque here: the caller decodes and checks them (shape, dtype, finite values) before any use.

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "crypto/handshake.hpp"
#include "crypto/stream.hpp"
#include "protocol/result.hpp"

namespace starling::runtime {

// Handshake messages travel with a u16 big-endian length before each.
inline constexpr std::size_t kHandshakeLengthBytes = 2;
// The largest model a transfer carries unless configured lower: a checkpoint's bound.
inline constexpr std::size_t kMaxTransferModelBytes = limits::kMaxCheckpointBytes;

enum class ModelOp : std::uint8_t {
    push = 1,      // I send my model; the answer is a status
    pull = 2,      // I ask for the peer's model
    exchange = 3,  // both: push-pull in one transfer
};
[[nodiscard]] constexpr bool sends_model(ModelOp op) noexcept { return op != ModelOp::pull; }
[[nodiscard]] constexpr bool fetches_model(ModelOp op) noexcept { return op != ModelOp::push; }

// Why a transfer failed: one counter per value in the node's stats.
enum class TransferFailure : std::uint8_t {
    link_busy,      // the link budget (concurrent transfers) was full: not started or answered busy
    rate_limited,   // too many handshakes from that source: refused unanswered
    learner_busy,   // the receiver's learner had a full inbox: refused before the model was sent
    peer_busy,      // the peer answered busy (its learner or its link budget was full)
    connect,        // the TCP connection failed or was reset
    handshake,      // Noise or certificate checks failed (wrong cluster, revoked, expired...)
    wrong_peer,     // a valid device answered, but not the one we meant to reach
    truncated,      // the link ended during a transfer
    too_large,      // over the model byte limit or a frame limit
    malformed,      // bad length, message kind, or a message out of turn
    corrupt,        // a frame failed authentication
    timeout,        // the transfer did not finish within its time
    no_model,       // the peer had no model to give
    model_refused,  // the bytes arrived but the decoder or the merge refused them
};
inline constexpr std::size_t kTransferFailureKinds =
    static_cast<std::size_t>(TransferFailure::model_refused) + 1;
[[nodiscard]] const char* to_string(TransferFailure failure) noexcept;

using ModelBytes = std::shared_ptr<const std::vector<std::uint8_t>>;

struct SessionIdentity {
    const crypto::KxKeyPair* static_key = nullptr;  // borrowed; its public key is in certificate
    std::vector<std::uint8_t> certificate;          // our own, encoded
    crypto::TrustAnchor trust;
    std::size_t max_model_bytes = kMaxTransferModelBytes;
};

// ---- The messages inside a link's sealed streams. ----

enum class LinkMessage : std::uint8_t {
    push = 1, pull = 2, exchange = 3,  // requests: the ModelOp values
    model = 4,                         // a push's or an exchange's model, after [ready]
    ok = 5, no_model = 6, ready = 7, busy = 8,  // answers
    reply_model = 9,                   // the answer to a pull or an exchange
};
inline constexpr std::size_t kLinkHeaderBytes = 5;

[[nodiscard]] std::array<std::uint8_t, kLinkHeaderBytes> link_header(LinkMessage kind,
                                                                     std::size_t body_bytes);
// A message of the peer's own transfer (true), or an answer to ours (false).
[[nodiscard]] constexpr bool is_request_side(LinkMessage kind) noexcept {
    return kind <= LinkMessage::model;
}

// Splits one direction's plaintext into messages. Each header is checked as soon as it is
// whole, before the rest of its body is waited for: an unknown kind, a body on a message that
// has none, or a model over the limit is refused.
class LinkReader {
public:
    struct Message {
        LinkMessage kind{};
        std::vector<std::uint8_t> body;
    };
    explicit LinkReader(std::size_t max_model_bytes) noexcept : max_model_bytes_(max_model_bytes) {}

    // Where new plaintext is appended.
    [[nodiscard]] std::vector<std::uint8_t>& input() noexcept { return buffer_; }
    // The next whole message, nullopt while it is incomplete; malformed or too_large (final).
    [[nodiscard]] Result<std::optional<Message>> next();
    // Bytes held that no returned message took: a checked header's body so far, and more.
    [[nodiscard]] std::size_t buffered() const noexcept {
        return buffer_.size() - at_ + (kind_ ? kLinkHeaderBytes : 0);
    }

private:
    [[nodiscard]] std::size_t unread() const noexcept { return buffer_.size() - at_; }

    std::size_t max_model_bytes_;
    std::vector<std::uint8_t> buffer_;
    std::size_t at_ = 0;               // the first byte not yet taken
    std::optional<LinkMessage> kind_;  // a header taken, its body not yet whole
    std::size_t body_bytes_ = 0;
};

// ---- The link. ----

struct LinkResponder {
    // Whether the peer's request for `op` is taken now: nullopt, or why not (answered busy).
    std::function<std::optional<TransferFailure>(ModelOp op)> admit;
    // Our current model, encoded; null when there is none yet. Asked when a request fetches one.
    std::function<ModelBytes()> current_model;
};

// One transfer's end: ours (we asked) or the peer's (we answered).
struct TransferOutcome {
    bool ours = true;
    ModelOp op = ModelOp::push;
    std::optional<TransferFailure> failure;  // nullopt: completed
    std::vector<std::uint8_t> model;         // what the peer sent, when it sent one
    std::uint64_t model_bytes_sent = 0;
};

class ModelLink {
public:
    // `expected_peer`: the device we dial; another one answering fails the link. `responder`
    // answers the peer's transfers.
    static ModelLink dialer(const SessionIdentity& identity, const crypto::DeviceId& expected_peer,
                            LinkResponder responder);
    static ModelLink listener(const SessionIdentity& identity, LinkResponder responder);
    ~ModelLink();
    ModelLink(ModelLink&&) noexcept;
    ModelLink& operator=(ModelLink&&) noexcept;

    // Starts a transfer of ours while can_begin(); a dialer's first is sent once the handshake
    // is done. `model` must be non-empty and within the model limit when the op sends one:
    // invalid_argument.
    [[nodiscard]] Status begin(ModelOp op, ModelBytes model, std::uint64_t now_ms);
    // Bytes from the peer, in any pieces. On error the link is dead: failure() says why.
    [[nodiscard]] Status on_bytes(std::span<const std::uint8_t> bytes, std::uint64_t now_ms,
                                  std::uint64_t now_unix_seconds);
    // The peer's end of input: fine with no transfer under way, truncated during one.
    [[nodiscard]] Status on_end_of_input();
    // Ends our stream with its end frame; nothing is sent or taken after it.
    void close(std::uint64_t now_ms);
    // Bytes to send now, in order (empty when nothing is due).
    [[nodiscard]] std::vector<std::uint8_t> take_output();
    // Transfers that ended since the last call, either way, in order.
    [[nodiscard]] std::vector<TransferOutcome> take_outcomes();

    bool is_dialer() const noexcept { return dialer_; }
    // The handshake finished and the peer's certificate checked.
    bool established() const noexcept { return sealer_.has_value(); }
    // No transfer of ours under way, and the link open: one may begin (a listener's only once
    // established).
    bool can_begin() const noexcept {
        return mine_ == Step::idle && !failed() && !closed_ && !peer_closed_ &&
               (dialer_ || established());
    }
    // No transfer under way either way.
    bool idle() const noexcept { return mine_ == Step::idle && theirs_ == Step::idle; }
    // Our request went out and nothing answered it yet: nothing of it was taken.
    bool awaiting_answer() const noexcept { return mine_ == Step::asked; }
    // The peer ended its stream (with its end frame, or the connection) with nothing under way.
    bool peer_closed() const noexcept { return peer_closed_; }
    bool closed() const noexcept { return closed_; }
    bool failed() const noexcept { return failure_.has_value(); }
    std::optional<TransferFailure> failure() const noexcept { return failure_; }
    // Once the handshake finished: the verified peer.
    const crypto::Certificate* peer() const noexcept { return peer_ ? &*peer_ : nullptr; }
    // Transfers that ended on this link, either way.
    std::uint64_t transfers() const noexcept { return transfers_; }

private:
    enum class Step : std::uint8_t { idle, asked, sent, awaiting_model };
    ModelLink(const SessionIdentity& identity, bool dialer, LinkResponder responder);

    [[nodiscard]] Status handshake_bytes(std::uint64_t now_ms, std::uint64_t now_unix_seconds);
    [[nodiscard]] Status after_handshake(std::uint64_t now_ms);
    [[nodiscard]] Status stream_bytes(std::span<const std::uint8_t> bytes, std::uint64_t now_ms);
    [[nodiscard]] Status on_answer(LinkReader::Message m, std::uint64_t now_ms);
    [[nodiscard]] Status on_request(LinkReader::Message m, std::uint64_t now_ms);
    [[nodiscard]] Status send(LinkMessage kind, const ModelBytes& model, std::uint64_t now_ms);
    void end_mine(std::optional<TransferFailure> failure, std::vector<std::uint8_t> model = {});
    void end_theirs(std::optional<TransferFailure> failure, std::vector<std::uint8_t> model,
                    std::uint64_t bytes_sent);
    void write_handshake();
    Error fail(TransferFailure why, Error error);
    Error fail(TransferFailure why, const char* what);

    std::size_t max_model_bytes_;
    bool dialer_;
    Step mine_ = Step::idle;    // our transfer: idle, asked, sent
    Step theirs_ = Step::idle;  // the peer's: idle, awaiting_model
    ModelOp my_op_ = ModelOp::push;
    ModelOp their_op_ = ModelOp::push;
    bool pending_ = false;  // a dialer's transfer begun before the handshake finished
    crypto::DeviceId expected_peer_{};
    ModelBytes model_;  // ours, until [ready]
    std::uint64_t model_bytes_sent_ = 0;  // in our transfer under way
    LinkResponder responder_;
    std::unique_ptr<crypto::Handshake> handshake_;
    std::optional<crypto::Certificate> peer_;
    std::optional<crypto::StreamSealer> sealer_;
    std::optional<crypto::StreamOpener> opener_;
    std::optional<LinkReader> reader_;
    std::vector<std::uint8_t> input_;   // handshake bytes not yet consumed
    std::vector<std::uint8_t> output_;  // bytes for the peer
    std::vector<TransferOutcome> outcomes_;
    std::uint64_t transfers_ = 0;
    std::optional<TransferFailure> failure_;
    bool peer_closed_ = false;
    bool closed_ = false;
};

}  // namespace starling::runtime

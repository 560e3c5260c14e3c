#pragma once
// One model transfer between two devices, sans-I/O: the certificate-checked Noise XX handshake
// (crypto/handshake.hpp), then one sealed stream each way (crypto/stream.hpp), so model bytes are
// only ever sent to and accepted from a current, unrevoked device of this cluster.
//
//   initiator                                          responder
//   u16 len || XX message 1                        ->
//                                                  <-  u16 len || XX message 2
//   u16 len || XX message 3, then sealed request   ->  (request: op byte || model if pushing)
//                                                  <-  sealed reply (status byte || model if pulled)
// Each sealed stream ends with its end frame; a stream cut short, altered, oversized or with an
// unknown op or status is refused and the session is dead. The model bytes are opaque here: the
// caller decodes and checks them (shape, dtype, finite values) before any use.

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
    push = 1,      // I send my model; the reply is a status
    pull = 2,      // I ask for the peer's model
    exchange = 3,  // both: push-pull in one connection
};
[[nodiscard]] constexpr bool sends_model(ModelOp op) noexcept { return op != ModelOp::pull; }
[[nodiscard]] constexpr bool fetches_model(ModelOp op) noexcept { return op != ModelOp::push; }

enum class ReplyStatus : std::uint8_t { ok = 0, no_model = 1 };

// Why a transfer failed: one counter per value in the node's stats.
enum class TransferFailure : std::uint8_t {
    link_busy,      // the link budget (concurrent transfers) was full: not started
    rate_limited,   // too many handshakes from that source: refused unanswered
    learner_busy,   // the receiver's learner had a full inbox: closed before the handshake
    connect,        // the TCP connection failed or was reset
    handshake,      // Noise or certificate checks failed (wrong cluster, revoked, expired...)
    wrong_peer,     // a valid device answered, but not the one we meant to reach
    truncated,      // the stream ended before its end frame
    too_large,      // over the model byte limit or a frame limit
    malformed,      // bad length, op, status or data after the end
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

class ModelSession {
public:
    // `model` must be non-empty when the op sends one. `expected_peer`: the device we dial.
    static ModelSession initiator(const SessionIdentity& identity, ModelOp op,
                                  const crypto::DeviceId& expected_peer, ModelBytes model,
                                  std::uint64_t now_ms);
    // `current_model` is asked once, when a request that fetches a model has arrived whole.
    static ModelSession responder(const SessionIdentity& identity,
                                  std::function<ModelBytes()> current_model);

    // Bytes from the peer, in any pieces. On error the session is dead: failure() says why.
    [[nodiscard]] Status on_bytes(std::span<const std::uint8_t> bytes, std::uint64_t now_ms,
                                  std::uint64_t now_unix_seconds);
    // The peer's end of input: fine only once done().
    [[nodiscard]] Status on_end_of_input();
    // Bytes to send now, in order (empty when nothing is due).
    [[nodiscard]] std::vector<std::uint8_t> take_output();

    // Our last byte is in take_output()'s results: the caller may half-close.
    bool output_finished() const noexcept { return output_finished_; }
    // The transfer is complete for this side (its whole input opened and checked).
    bool done() const noexcept { return done_; }
    bool failed() const noexcept { return failure_.has_value(); }
    std::optional<TransferFailure> failure() const noexcept { return failure_; }

    ModelOp op() const noexcept { return op_; }
    bool is_initiator() const noexcept { return initiator_; }
    // Once the handshake finished: the verified peer.
    const crypto::Certificate* peer() const noexcept { return peer_ ? &*peer_ : nullptr; }
    // What the peer sent, once done(): its model when it pushed or was pulled, else empty.
    std::vector<std::uint8_t>& received_model() noexcept { return received_; }
    std::uint64_t model_bytes_sent() const noexcept { return model_bytes_sent_; }

private:
    ModelSession(const SessionIdentity& identity, bool initiator);

    [[nodiscard]] Status handshake_bytes(std::uint64_t now_ms, std::uint64_t now_unix_seconds);
    [[nodiscard]] Status after_handshake(std::uint64_t now_ms);
    [[nodiscard]] Status stream_bytes(std::span<const std::uint8_t> bytes, std::uint64_t now_ms);
    [[nodiscard]] Status on_stream_end(std::uint64_t now_ms);
    [[nodiscard]] Status send_stream(std::uint8_t first, const ModelBytes& model,
                                     std::uint64_t now_ms);
    void write_handshake(std::uint64_t now_ms);
    Error fail(TransferFailure why, Error error);
    Error fail(TransferFailure why, const char* what);

    std::size_t max_model_bytes_;
    bool initiator_;
    ModelOp op_ = ModelOp::push;
    crypto::DeviceId expected_peer_{};
    ModelBytes model_;
    std::function<ModelBytes()> current_model_;
    std::unique_ptr<crypto::Handshake> handshake_;
    std::optional<crypto::Certificate> peer_;
    std::optional<crypto::StreamSealer> sealer_;
    std::optional<crypto::StreamOpener> opener_;
    std::vector<std::uint8_t> input_;     // handshake bytes not yet consumed
    std::vector<std::uint8_t> output_;    // bytes for the peer
    std::vector<std::uint8_t> opened_;    // the peer's stream plaintext so far
    std::vector<std::uint8_t> received_;  // the model in it, once done
    std::uint64_t model_bytes_sent_ = 0;
    std::optional<TransferFailure> failure_;
    bool output_finished_ = false;
    bool done_ = false;
};

}  // namespace starling::runtime

#pragma once
// The network side of gossip learning: model announcements beside membership (small sealed
// datagrams: version, samples seen, size, accuracy), the learner's sends and pulls carried by
// the model channel, and what arrives handed to the training thread. Peers that never announced
// are not trained with; a newcomer pulls from the freshest announcer.
//
// Threading: the event loop's thread only; the learner's actions arrive through post().

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "node/gossip/learner.hpp"
#include "node/net/event_loop.hpp"
#include "node/runtime/learning_loop.hpp"
#include "node/runtime/model_channel.hpp"
#include "node/runtime/node.hpp"

namespace starling::runtime {

// Announcements: every interval, to every live member not yet told (at most kMaxNewAnnounces per
// tick) and to kAnnounceFanout random others, so a newcomer hears of everyone within seconds.
inline constexpr std::chrono::milliseconds kAnnounceInterval{1000};
inline constexpr std::size_t kAnnounceFanout = 2;
inline constexpr std::size_t kMaxNewAnnounces = 16;
// Accuracy fields are sent as permille; this value means "not measured".
inline constexpr std::uint16_t kNoAccuracy = 65535;

struct ModelAnnounce {
    std::uint64_t version = 0;
    std::uint64_t samples_seen = 0;
    std::uint32_t model_bytes = 0;
    std::uint16_t holdout_permille = kNoAccuracy;
    std::uint16_t test_permille = kNoAccuracy;
    bool catching_up = false;
};

[[nodiscard]] std::vector<std::uint8_t> encode_announce(const ModelAnnounce& announce);
// malformed when not a well-formed "SANN" buffer or a value out of range; too_large over a
// datagram's plaintext.
[[nodiscard]] Result<ModelAnnounce> decode_announce(std::span<const std::uint8_t> plaintext);
// Whether a plaintext is an announcement (by its identifier), before decoding.
[[nodiscard]] bool is_announce(std::span<const std::uint8_t> plaintext) noexcept;

class ModelExchange {
public:
    // `node`, `learning` and `clock` are borrowed and outlive the exchange.
    ModelExchange(net::EventLoop& loop, Node& node, std::unique_ptr<net::StreamListener> listener,
                  SessionIdentity identity, const Clock& clock, ChannelLimits limits,
                  LearningLoop& learning);
    ~ModelExchange();
    ModelExchange(const ModelExchange&) = delete;
    ModelExchange& operator=(const ModelExchange&) = delete;

    void start();
    void close();
    // A learner action, on the loop's thread (posted from the training thread).
    void on_action(gossip::Action action);
    // A datagram of a channel the node does not speak: true when it was an announcement.
    bool on_datagram(const crypto::DeviceId& sender, std::span<const std::uint8_t> plaintext);

    // Lines appended to the node's "stats" answer, and the "models json" answer.
    [[nodiscard]] std::string stats_text() const;
    // Fields for the metrics history line: the consensus distance once a model was merged.
    [[nodiscard]] std::string history_fields() const;
    [[nodiscard]] std::string models_json() const;
    // The node's "members json" (one object per line) with each training member's model fields
    // added: model_version, model_age (seconds since heard), samples, accuracy, loss (own only),
    // and the model link open to it: link ("out": we dialed, "in"), link_transfers, link_idle (s).
    [[nodiscard]] std::string annotate_members_json(const std::string& members) const;

private:
    struct Heard {
        ModelAnnounce announce;
        membership::Time at{};
    };
    void tick();
    void announce_round(const std::vector<LiveMember>& live);
    void update_peers(const std::vector<LiveMember>& live);
    [[nodiscard]] std::optional<net::Ipv4Endpoint> address_of(const crypto::DeviceId& id) const;

    Node& node_;
    const Clock& clock_;
    LearningLoop& learning_;
    ModelChannel channel_;
    net::Timer timer_;
    model::Rng rng_;
    std::map<crypto::DeviceId, Heard> heard_;
    std::map<crypto::DeviceId, bool> told_;  // live members we announced to at least once
    std::vector<LiveMember> live_;
    std::vector<crypto::DeviceId> last_peers_;
    std::uint64_t announces_sent_ = 0;
    std::uint64_t announces_received_ = 0;
    std::uint64_t announces_malformed_ = 0;
    std::uint64_t actions_unroutable_ = 0;  // the learner named a peer with no known address
};

}  // namespace starling::runtime

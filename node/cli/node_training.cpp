// Building the node's training: data and test split, the learner's configuration, the pacer on
// the training thread, the TCP listener beside the node's UDP port, and the exchange.

#include "node/cli/node_training.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <utility>

#include "firmware/config.hpp"
#include "firmware/hardware.hpp"
#include "firmware/pacer.hpp"
#include "node/data/dataset.hpp"
#include "node/gossip/model_wire.hpp"
#include "node/model/mlp.hpp"
#include "node/net/stream_transport.hpp"
#include "node/runtime/learning_loop.hpp"
#include "node/runtime/model_exchange.hpp"
#include "node/time.hpp"

namespace starling::cli {
namespace {

namespace fs = std::filesystem;

// Training never ends, so the node's learning rate (--lr, 0.05 at momentum 0.9) settles: a
// cosine down to a tenth over the first kSettleEpochs passes over the local shard, then held.
// Averaging adds the devices' steps up, so a local epoch moves the cluster about as far as an
// epoch of large-batch training on all the data does: tens of them, not hundreds, are needed.
constexpr std::uint32_t kSettleEpochs = 40;

// The same initial weights on every device of a cluster: the first merges average like with like.
std::uint64_t init_seed_of(const crypto::ClusterId& cluster) {
    std::uint64_t seed = 0;
    for (std::size_t i = 0; i < 8; ++i) seed = (seed << 8) | cluster[i];
    return seed | 1;
}

Result<std::optional<data::Dataset>> load_test(const NodeArgs& a) {
    const std::string& dir = a.test.empty() ? a.data : a.test;
    Result<data::Dataset> test = data::load_dir(dir, data::Split::test);
    if (test) return std::optional<data::Dataset>(std::move(*test));
    if (test.error().code == ErrorCode::not_found && a.test.empty())
        return std::optional<data::Dataset>{};
    return test.error();
}

}  // namespace

struct NodeTraining::Parts {
    std::unique_ptr<runtime::LearningLoop> learning;
    std::unique_ptr<runtime::ModelExchange> exchange;
    std::unique_ptr<firmware::Pacer> pacer;  // built on, and used by, the training thread
    StreamCredentials credentials;
    std::shared_ptr<bool> alive = std::make_shared<bool>(true);
};

NodeTraining::NodeTraining(std::unique_ptr<Parts> parts) : parts_(std::move(parts)) {}

NodeTraining::~NodeTraining() { stop(); }

void NodeTraining::stop() {
    if (!parts_) return;
    *parts_->alive = false;
    if (parts_->pacer) parts_->pacer->request_stop();
    if (parts_->learning) parts_->learning->stop();
    if (parts_->exchange) parts_->exchange->close();
}

std::string NodeTraining::answer(const runtime::Node& node, std::string_view request) const {
    if (request == "models json") return parts_->exchange->models_json();
    std::string reply = node.answer(request);
    if (request == "stats") reply += parts_->exchange->stats_text();
    if (request == "members json") reply = parts_->exchange->annotate_members_json(reply);
    return reply;
}

std::string NodeTraining::history_fields() const { return parts_->exchange->history_fields(); }

StreamCredentials stream_credentials(const crypto::EnrollmentBundle& bundle) {
    StreamCredentials c;
    c.kx.public_key = bundle.certificate.kx_key;
    std::copy(bundle.kx_secret.bytes().begin(), bundle.kx_secret.bytes().end(),
              c.kx.secret_key.bytes().begin());
    c.certificate = crypto::encode_certificate(bundle.certificate);
    c.cluster = bundle.cluster;
    c.owner = bundle.owner_key;
    return c;
}

Result<std::unique_ptr<NodeTraining>> start_training(const NodeSettings& settings,
                                                     net::EventLoop& loop, runtime::Node& node,
                                                     const runtime::Clock& clock,
                                                     StreamCredentials credentials,
                                                     const LogFn& log) {
    const NodeArgs& a = settings.args;
    std::error_code ec;
    if (a.data.empty() || !fs::is_directory(a.data, ec)) {
        log("no data directory" + (a.data.empty() ? std::string() : " '" + a.data + "'") +
            ": not training");
        return std::unique_ptr<NodeTraining>{};
    }
    Result<std::vector<std::uint32_t>> widths = model::parse_architecture(a.model);
    if (!widths) return widths.error();
    gossip::Encoding encoding{};
    if (!gossip::parse_encoding(a.encoding, encoding))
        return make_error(ErrorCode::invalid_argument,
                          "--encoding '" + a.encoding +
                              "': expected fp32, fp16, int8, int4 or lattice");
    gossip::Compression compression{};
    if (!gossip::parse_compression(a.compress, compression))
        return make_error(ErrorCode::invalid_argument,
                          "--compress '" + a.compress + "': expected none or zstd");
    Result<data::Dataset> train = data::load_dir(a.data, data::Split::train);
    if (!train) return train.error();
    Result<std::optional<data::Dataset>> test = load_test(a);
    if (!test) return test.error();

    auto parts = std::make_unique<NodeTraining::Parts>();
    parts->credentials = std::move(credentials);
    NodeTraining::Parts& p = *parts;

    runtime::LearningOptions options;
    options.widths = *widths;
    options.train.batch = static_cast<int>(settings.config.config.batch);
    options.train.seed = init_seed_of(p.credentials.cluster) ^ node.certificate().serial;
    options.train.optimizer.learning_rate = a.learning_rate;
    options.train.optimizer.momentum = a.momentum;
    options.train.optimizer.nesterov = a.nesterov;
    options.train.schedule = model::Schedule::settle;
    options.train.epochs = kSettleEpochs;
    options.train.epoch_examples = train->size();
    options.init_seed = init_seed_of(p.credentials.cluster);
    options.learner.encoding = encoding;
    options.learner.compression = compression;
    options.learner.fanout = a.fanout;
    options.learner.samples_per_round = a.round_samples;
    options.report_interval = std::chrono::milliseconds(a.round_interval_ms);
    options.learner.wait_for_link = a.wait_for_link;
    options.momentum_follows_merges = a.merge_momentum == "follow";
    options.learner.max_concurrent_sends = static_cast<std::uint32_t>(runtime::kDefaultMaxOutgoingTransfers);
    options.checkpoint = fs::path(a.state) / runtime::kModelCheckpointName;
    options.checkpoint_interval = std::chrono::seconds(a.checkpoint_interval_s);
    options.eval_interval = std::chrono::seconds(a.eval_interval_s);
    const firmware::GovernorLimits limits =
        firmware::governor_limits(settings.config.config, firmware::detect_hardware().logical_cores);
    options.on_thread_start = [&p, limits] {
        p.pacer = std::make_unique<firmware::Pacer>(
            limits, [] { return firmware::Micros{monotonic_microseconds()}; });
    };
    options.before_step = [&p] { p.pacer->before_step(); };

    // Lines from the training thread are logged by the loop's thread, so they never interleave.
    auto alive = p.alive;
    auto training_log = [&loop, &clock, log, alive](std::string line) {
        std::array<char, 32> stamp{};
        std::snprintf(stamp.data(), stamp.size(), "%.6f ",
                      static_cast<double>(clock.now().count()) / 1e6);
        loop.post([log, alive, text = stamp.data() + line] {
            if (*alive) log(text);
        });
    };
    // The learner's actions go to the exchange on the loop's thread; `p` lives as long as the
    // NodeTraining, and `alive` says whether it still does.
    auto actions = [&loop, alive, parts_at = &p](gossip::Action action) {
        loop.post([alive, parts_at, action = std::move(action)]() mutable {
            if (*alive && parts_at->exchange) parts_at->exchange->on_action(std::move(action));
        });
    };
    Result<std::unique_ptr<runtime::LearningLoop>> learning = runtime::LearningLoop::create(
        node.certificate().device, std::move(*train), std::move(*test), std::move(options), clock,
        training_log, actions);
    if (!learning) return learning.error();
    p.learning = std::move(*learning);

    net::ListenOptions listen;
    listen.bind = node.advertised();
    listen.stream.max_queued_bytes = runtime::queue_bytes(runtime::ChannelLimits{}.max_model_bytes);
    // Every open link holds a connection, and links being closed still hold theirs a moment.
    listen.max_connections = 2 * runtime::ChannelLimits{}.max_links;
    Result<std::unique_ptr<net::StreamListener>> listener = net::open_stream_listener(loop, listen);
    if (!listener) return listener.error();
    runtime::SessionIdentity identity{
        &p.credentials.kx, p.credentials.certificate,
        crypto::TrustAnchor{p.credentials.cluster, p.credentials.owner,
                            [&node](const crypto::DeviceId& d) { return node.is_revoked(d); }},
        runtime::ChannelLimits{}.max_model_bytes};
    p.exchange = std::make_unique<runtime::ModelExchange>(loop, node, std::move(*listener),
                                                          std::move(identity), clock,
                                                          runtime::ChannelLimits{}, *p.learning);
    node.on_other_channel([ex = p.exchange.get()](const crypto::DeviceId& sender,
                                                  std::span<const std::uint8_t> plaintext) {
        return ex->on_datagram(sender, plaintext);
    });
    p.exchange->start();
    p.learning->start();
    std::array<char, 64> sgd{};
    std::snprintf(sgd.data(), sgd.size(), "lr %g, momentum %g%s", a.learning_rate, a.momentum,
                  a.nesterov ? " (Nesterov)" : "");
    log("training on " + a.data + " (" + a.model + ", " + a.encoding +
        (compression == gossip::Compression::none ? "" : "+" + a.compress) + " on the wire, " +
        sgd.data() + ", merge-momentum " + a.merge_momentum +
        (a.wait_for_link ? ", waits for the link" : "") + "), models over TCP " +
        listen.bind.to_string());
    return std::make_unique<NodeTraining>(std::move(parts));
}

}  // namespace starling::cli

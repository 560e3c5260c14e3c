// `starling node` runs a node until SIGTERM/SIGINT (a graceful leave) and `starling members`
// asks a running one for its member table over the control socket in its state directory.

#include <iostream>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "crypto/cluster.hpp"
#include "firmware/heap.hpp"
#include "node/cli/cli.hpp"
#include "node/cli/commands.hpp"
#include "node/cli/node_service.hpp"
#include "node/cli/node_training.hpp"
#include "node/membership/limits.hpp"
#include "node/net/control.hpp"
#include "node/net/event_loop.hpp"
#include "node/net/interfaces.hpp"
#include "node/net/udp_transport.hpp"
#include "node/runtime/metrics_endpoint.hpp"
#include "node/runtime/node.hpp"
#include "node/runtime/state_dir.hpp"

namespace starling::cli {
namespace {

using namespace std::chrono_literals;

constexpr std::string_view kNoDiscovery = "none";
constexpr std::string_view kRevokeRequest = "revoke ";

// `revoke HEX` over the control socket: the operator's revocation, handed to the node.
std::string answer_revoke(runtime::Node& n, std::string_view hex) {
    const std::optional<std::vector<std::uint8_t>> bytes = crypto::from_hex(hex);
    if (!bytes) return "error: a revocation in hex\n";
    Result<bool> added = n.revoke(*bytes);
    if (!added) return "error: " + added.error().message + "\n";
    return *added ? "revoked: kept and spreading to every member\n" : "already revoked\n";
}

struct Network {
    net::Ipv4Endpoint listen;     // bound and advertised
    std::optional<net::MulticastOptions> discovery;
};

Error usage(const std::string& message) {
    return make_error(ErrorCode::invalid_argument, message);
}

void log_line(std::string_view line) {
    std::cout << line << std::endl;  // flushed: the log is read while the node runs
}

// --interface (or the default route's) names the LAN; --listen overrides the address.
Result<Network> resolve_network(const NodeArgs& a) {
    Network network;
    std::optional<net::Ipv4Address> interface_ip;
    if (a.interface != kNoDiscovery) {
        Result<std::string> name = a.interface.empty() ? net::default_route_interface()
                                                       : Result<std::string>(a.interface);
        if (!name) return name.error();
        Result<net::Ipv4Address> ip = net::interface_ipv4(*name);
        if (!ip) return ip.error();
        interface_ip = *ip;
        network.discovery = net::MulticastOptions{runtime::kBeaconGroup, *ip};
    }
    if (!a.listen.empty()) {
        Result<net::Ipv4Endpoint> listen = net::parse_endpoint(a.listen, runtime::kDefaultPort);
        if (!listen) return listen.error();
        network.listen = *listen;
    } else if (interface_ip) {
        network.listen = {*interface_ip, runtime::kDefaultPort};
    } else {
        return usage("--interface none needs --listen ADDR:PORT");
    }
    if (network.listen.is_unspecified()) {
        if (!interface_ip) return usage("--listen 0.0.0.0 needs an interface to advertise");
        network.listen.ip = *interface_ip;  // peers need an address they can reach
    }
    return network;
}

Result<std::vector<net::Ipv4Endpoint>> parse_seeds(const std::vector<std::string>& seeds) {
    if (seeds.size() > membership::limits::kMaxSeeds)
        return usage("at most " + std::to_string(membership::limits::kMaxSeeds) + " --seed");
    std::vector<net::Ipv4Endpoint> parsed;
    for (const std::string& s : seeds) {
        Result<net::Ipv4Endpoint> e = net::parse_endpoint(s, runtime::kDefaultPort);
        if (!e) return e.error();
        parsed.push_back(*e);
    }
    return parsed;
}

Result<std::unique_ptr<net::Transport>> open_transport(net::EventLoop& loop, Network& network,
                                                       const NodeArgs& a) {
    net::UdpOptions options{network.listen, network.discovery,
                            {a.test_drop_rate, std::chrono::milliseconds(a.test_delay_ms),
                             a.test_fault_seed}};
    Result<std::unique_ptr<net::Transport>> transport = net::open_udp_transport(loop, options);
    if (transport || !network.discovery) return transport;
    log_line("no LAN discovery (" + transport.error().message + "); seeds and known peers only");
    network.discovery.reset();
    options.multicast.reset();
    return net::open_udp_transport(loop, options);
}

// One request to the node running with state directory `state`, over its control socket.
Result<std::string> ask_node(const std::string& state, const std::string& request) {
    Result<std::string> reply = net::query_control(runtime::control_socket_path(state), request);
    if (!reply && reply.error().code == ErrorCode::not_found)
        return make_error(ErrorCode::not_found,
                          "no node is running with state directory '" + state + "'");
    return reply;
}

}  // namespace

int run_node(const NodeArgs& given) {
    if (given.test_drop_rate < 0.0 || given.test_drop_rate > 1.0 ||
        given.test_delay_ms > kMaxTestDelayMs)
        return report(usage("--test-drop-rate must be 0..1 and --test-delay-ms 0..10000"));
    // The configuration file under the flags, then the bundle (first boot: found and installed).
    Result<NodeSettings> settings = resolve_node_settings(given, firmware::detect_hardware());
    if (!settings) return report(settings.error());
    const NodeArgs& a = settings->args;
    if (!firmware::keep_model_buffers_in_heap())
        log_line("malloc refused the model-buffer thresholds: each model buffer is mapped anew");
    net::EventLoop loop;
    ServiceNotifier service(loop, log_line);
    std::optional<crypto::EnrollmentBundle> bundle = wait_for_bundle(loop, *settings, service,
                                                                     log_line);
    if (!bundle) return kExitOk;  // stopped while waiting for one
    Result<Network> network = resolve_network(a);
    if (!network) return report(network.error());
    Result<std::vector<net::Ipv4Endpoint>> seeds = parse_seeds(a.seeds);
    if (!seeds) return report(seeds.error());
    Result<runtime::StateDir> state =
        runtime::StateDir::open(a.state, bundle->certificate.device);
    if (!state) return report(state.error());

    Result<std::unique_ptr<net::Transport>> transport = open_transport(loop, *network, a);
    if (!transport) return report(transport.error());
    const runtime::SystemClock clock;
    runtime::LoopAlarm alarm(loop, clock);
    runtime::NodeOptions options;
    options.advertise = (*transport)->local_endpoint();
    const net::Ipv4Endpoint listening = options.advertise;
    const std::string device_name = bundle->certificate.name;
    if (network->discovery) options.beacon_group = network->discovery->group;
    options.seeds = std::move(*seeds);
    StreamCredentials credentials = stream_credentials(*bundle);
    options.history_interval = std::chrono::seconds(a.history_interval_s);
    Result<std::unique_ptr<runtime::Node>> node =
        runtime::Node::create(std::move(*bundle), std::move(*state), **transport, clock, alarm,
                              std::move(options), log_line);
    if (!node) return report(node.error());
    runtime::Node& n = **node;
    std::unique_ptr<NodeTraining> training;  // with --data: the training thread and the exchange
    Result<std::unique_ptr<net::ControlServer>> control = net::ControlServer::open(
        loop, runtime::control_socket_path(a.state), [&n, &training](std::string_view request) {
            if (request.starts_with(kRevokeRequest))
                return answer_revoke(n, request.substr(kRevokeRequest.size()));
            return training ? training->answer(n, request) : n.answer(request);
        });
    if (!control) return report(control.error());
    // An observer (its certificate's role) runs membership only: it never trains and never
    // serves, pulls or sends a model.
    const bool observer = n.certificate().role == crypto::Role::observer;
    if (observer) log_line("observer: membership only, no training and no model exchange");
    Result<std::unique_ptr<NodeTraining>> started =
        observer ? Result<std::unique_ptr<NodeTraining>>(nullptr)
                 : start_training(*settings, loop, n, clock, std::move(credentials), log_line);
    if (!started) return report(started.error());
    training = std::move(*started);
    if (training) {  // the history keeps what training adds (accuracy, loss, consensus distance)
        n.set_history_members([&n, &training] {
            return training ? training->answer(n, "members json") : n.answer("members json");
        });
        n.set_history_fields([&training] { return training ? training->history_fields() : ""; });
    }
    std::unique_ptr<net::HttpServer> metrics;
    if (!a.metrics.empty()) {
        Result<std::unique_ptr<net::HttpServer>> served = runtime::serve_metrics(
            loop, a.metrics, n,
            [&n, &training] { return training ? training->answer(n, "stats") : std::string(); });
        if (!served) return report(served.error());
        metrics = std::move(*served);
        log_line("metrics at http://" + metrics->endpoint().to_string() + "/metrics");
    }

    int exit_code = kExitOk;
    n.on_fatal([&](const std::string&) {
        exit_code = kExitFailure;
        loop.stop();
    });
    net::ShutdownSignals signals(loop, [&](int) {
        service.stopping();
        service.status("leaving the cluster");
        n.leave([&loop] { loop.stop(); });
    });
    n.start();
    service.ready("listening on " + listening.to_string() + " as " + device_name);
    loop.run();
    if (training) training->stop();
    return exit_code;
}

int run_revoke_node(const RevokeNodeArgs& a) {
    Result<crypto::Revocation> revocation = crypto::load_revocation(a.file);
    if (!revocation) return report(revocation.error());
    const std::string request =
        std::string(kRevokeRequest) + crypto::to_hex(crypto::encode_revocation(*revocation));
    Result<std::string> reply = ask_node(a.state, request);
    if (!reply) return report(reply.error());
    std::cout << *reply;
    return reply->starts_with("error:") ? kExitFailure : kExitOk;
}

int run_members(const MembersArgs& a) {
    const char* request = a.stats ? "stats" : a.json ? "members json" : "members";
    Result<std::string> reply = ask_node(a.state, request);
    if (!reply) return report(reply.error());
    std::cout << *reply;
    return kExitOk;
}

}  // namespace starling::cli

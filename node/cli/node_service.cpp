#include "node/cli/node_service.hpp"

#include <unistd.h>

#include <system_error>
#include <utility>
#include <vector>

#include "firmware/sd_notify.hpp"

namespace starling::cli {
namespace {

namespace fs = std::filesystem;

// systemd's start timeout is extended by the wait before the next attempt plus this margin.
constexpr std::chrono::microseconds kStartTimeoutMargin = std::chrono::seconds(30);
constexpr std::size_t kMaxHostnameBytes = 64;

std::string hostname() {
    char name[kMaxHostnameBytes + 1] = {};
    if (::gethostname(name, kMaxHostnameBytes) != 0) return {};
    return name;
}

// The flags given explicitly, as configuration keys: the typed ones of NodeArgs, then the rest.
std::vector<firmware::FlagValues> given_flags(const NodeArgs& a) {
    std::vector<firmware::FlagValues> flags;
    const auto add = [&](std::string_view key, const std::string& value) {
        if (!value.empty()) flags.push_back({std::string(key), {value}});
    };
    add("node.bundle", a.bundle);
    add("node.state_dir", a.state);
    add("node.data_dir", a.data);
    add("node.listen", a.listen);
    add("node.interface", a.interface);
    if (!a.seeds.empty()) flags.push_back({"node.seeds", a.seeds});
    for (const auto& [key, values] : a.settings)
        if (!values.empty()) flags.push_back({key, values});
    return flags;
}

}  // namespace

Result<NodeSettings> resolve_node_settings(const NodeArgs& given,
                                           const firmware::HardwareProfile& hw) {
    NodeSettings s;
    s.config = firmware::default_config(hw);
    std::error_code ec;
    if (!given.config.empty()) {
        s.config_file = given.config;
    } else if (fs::exists(firmware::kDefaultConfigPath, ec)) {
        s.config_file = std::string(firmware::kDefaultConfigPath);
    }
    if (!s.config_file.empty()) {
        Result<firmware::LoadedConfig> file =
            firmware::load_config_file(s.config_file, std::move(s.config));
        if (!file) return file.error();
        s.config = std::move(*file);
    }
    const std::vector<firmware::FlagValues> flags = given_flags(given);
    Result<firmware::LoadedConfig> merged = firmware::apply_flags(std::move(s.config), flags);
    if (!merged) return merged.error();
    s.config = std::move(*merged);

    const firmware::Config& c = s.config.config;
    s.args = given;
    s.args.bundle = c.bundle;
    s.args.state = c.state_dir;
    s.args.listen = c.listen;
    s.args.interface = c.interface;
    s.args.seeds = c.seeds;
    // The data directory joins training when named, or when the default one exists.
    const bool named = s.config.sources["node.data_dir"].origin != firmware::Origin::default_value;
    s.args.data = named || fs::is_directory(c.data_dir, ec) ? c.data_dir : std::string();
    return s;
}

ServiceNotifier::ServiceNotifier(net::EventLoop& loop, LogFn log)
    : timer_(loop), interval_(firmware::watchdog_ping_interval()), log_(std::move(log)) {
    if (interval_) ping();
}

void ServiceNotifier::send(Status sent) {
    if (sent) return;
    if (failed_++ == 0) log_("sd_notify failed (later failures are counted): " + sent.error().message);
}

void ServiceNotifier::ping() {
    send(firmware::sd_notify(firmware::kNotifyWatchdog));
    timer_.expire_after(*interval_, [this] { ping(); });
}

void ServiceNotifier::ready(std::string_view text) {
    send(firmware::sd_notify(firmware::kNotifyReady));
    status(text);
}

void ServiceNotifier::status(std::string_view text) { send(firmware::sd_notify_status(text)); }

void ServiceNotifier::stopping() { send(firmware::sd_notify(firmware::kNotifyStopping)); }

void ServiceNotifier::extend_start(std::chrono::microseconds more) {
    send(firmware::sd_notify(std::string(firmware::kNotifyExtendTimeoutPrefix) +
                             std::to_string(more.count())));
}

std::optional<crypto::EnrollmentBundle> wait_for_bundle(net::EventLoop& loop,
                                                        const NodeSettings& s,
                                                        ServiceNotifier& service,
                                                        const LogFn& log) {
    firmware::BundleSearch search;
    search.state_dir = s.args.state;
    search.media_roots.assign(s.config.config.provisioning.begin(),
                              s.config.config.provisioning.end());
    search.hostname = hostname();
    const std::string explicit_bundle = s.args.bundle;

    std::optional<crypto::EnrollmentBundle> found;
    bool stopped = false;
    std::string last_reason;
    firmware::RetryBackoff backoff;
    net::Timer retry(loop);
    const auto try_once = [&]() -> Result<crypto::EnrollmentBundle> {
        if (!explicit_bundle.empty()) return crypto::load_enrollment_bundle(explicit_bundle);
        Result<firmware::InstalledBundle> b = firmware::find_and_install_bundle(search);
        if (!b) return b.error();
        if (b->installed_now)
            log("installed the enrollment bundle from " + b->source.string() + " as " +
                b->path.string());
        return std::move(b->bundle);
    };
    std::function<void()> attempt = [&] {
        Result<crypto::EnrollmentBundle> b = try_once();
        if (b) {
            found = std::move(*b);
            loop.stop();
            return;
        }
        if (b.error().message != last_reason) log(b.error().message + "; retrying with backoff");
        last_reason = b.error().message;
        const std::chrono::microseconds wait = backoff.next();
        service.status("waiting for an enrollment bundle: " + last_reason);
        service.extend_start(wait + kStartTimeoutMargin);
        retry.expire_after(wait, attempt);
    };
    net::ShutdownSignals signals(loop, [&](int) {
        stopped = true;
        loop.stop();
    });
    attempt();
    if (!found) loop.run();
    retry.cancel();
    if (stopped) {  // even with a bundle in hand: SIGTERM was for this process
        service.stopping();
        return std::nullopt;
    }
    return found;
}

}  // namespace starling::cli

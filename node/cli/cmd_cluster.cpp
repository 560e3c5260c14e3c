// `starling cluster init|enroll|revoke` and `starling keys rotate|list`: the operator's side of
// trust, run on the one machine that holds the owner's key (crypto/cluster.hpp). Every file
// these write is refused if it exists, unless --force; every secret file is mode 0600.

#include <sodium.h>
#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <string>
#include <system_error>
#include <vector>

#include "crypto/cluster.hpp"
#include "node/cli/cli.hpp"
#include "node/cli/commands.hpp"
#include "protocol/limits.hpp"
#include "protocol/result.hpp"

namespace starling::cli {
namespace {

namespace fs = std::filesystem;
using namespace starling::crypto;

constexpr std::string_view kClusterFileName = "cluster.secrets";
constexpr std::uint64_t kSecondsPerDay = 86'400;
constexpr std::uint64_t kSecondsPerHour = 3'600;
constexpr std::size_t kMinIndexDigits = 3;

// Certificates are stamped with the wall clock; operator commands are its only readers here.
std::uint64_t unix_now() {
    const auto since_epoch = std::chrono::system_clock::now().time_since_epoch();
    return static_cast<std::uint64_t>(std::max<std::int64_t>(
        0, std::chrono::duration_cast<std::chrono::seconds>(since_epoch).count()));
}

// "2033-11-14T22:13:20Z", or "never" for an open-ended window.
std::string utc(std::uint64_t unix_seconds) {
    if (unix_seconds == kNoExpiry) return "never";
    const auto t = static_cast<std::time_t>(unix_seconds);
    std::tm parts{};
    std::array<char, 32> text{};
    if (unix_seconds > 253'402'300'799 || gmtime_r(&t, &parts) == nullptr ||
        std::strftime(text.data(), text.size(), "%Y-%m-%dT%H:%M:%SZ", &parts) == 0)
        return std::to_string(unix_seconds) + " (unix seconds)";
    return text.data();
}

// 8 bytes of an unkeyed BLAKE2b of the key: names a network key in listings without showing it.
std::string fingerprint(const NetworkKeyEpoch& epoch) {
    std::array<std::uint8_t, 8> digest{};
    crypto_generichash(digest.data(), digest.size(), epoch.key.bytes().data(),
                       epoch.key.bytes().size(), nullptr, 0);
    return to_hex(digest);
}

Error usage(const std::string& message) {
    return make_error(ErrorCode::invalid_argument, message);
}

// An existing file is only replaced when --force says so.
Status check_writable(const fs::path& file, bool force) {
    std::error_code ec;
    if (force || !fs::exists(fs::symlink_status(file, ec))) return Ok{};
    return usage("'" + file.string() + "' already exists; pass --force to replace it");
}

// Creates `dir` (mode 0700) unless it is there already.
Status make_private_dir(const fs::path& dir) {
    std::error_code ec;
    if (fs::is_directory(dir, ec)) return Ok{};
    if (!fs::create_directories(dir, ec) && ec)
        return make_error(ErrorCode::io, "cannot create '" + dir.string() + "': " + ec.message());
    fs::permissions(dir, fs::perms::owner_all, fs::perm_options::replace, ec);
    if (ec)
        return make_error(ErrorCode::io,
                          "cannot chmod 700 '" + dir.string() + "': " + ec.message());
    return Ok{};
}

Result<Role> parse_role(const std::string& text) {
    if (text == "trainer") return Role::trainer;
    if (text == "observer") return Role::observer;
    return usage("--role must be trainer or observer, got '" + text + "'");
}

fs::path cluster_file(const std::string& dir) {
    return fs::path(dir) / kClusterFileName;
}

void print_epochs(const NetworkKeyRing& ring, std::uint64_t now) {
    const NetworkKeyEpoch* current = ring.current(now);
    for (const NetworkKeyEpoch& e : ring.epochs()) {
        const char* state = &e == current                          ? "  [sending]"
                            : ring.accept(e.epoch, now) == nullptr ? "  [expired]"
                            : e.not_before > now                   ? "  [installed]"
                                                                   : "  [accepted]";
        std::cout << "  epoch " << e.epoch << "  key " << fingerprint(e) << "  send from "
                  << utc(e.not_before) << "  accept until " << utc(e.not_after) << state << '\n';
    }
}

// nuc-001 .. nuc-100: zero-padded so names sort in order.
std::string numbered(const std::string& prefix, std::uint32_t index, std::uint32_t count) {
    const std::string digits = std::to_string(index);
    const std::size_t width = std::max(kMinIndexDigits, std::to_string(count).size());
    return prefix + std::string(width - std::min(width, digits.size()), '0') + digits;
}

struct PlannedBundle {
    std::string name;
    fs::path file;
};

Result<std::vector<PlannedBundle>> plan_enrollment(const EnrollArgs& a) {
    const bool single = !a.name.empty() || !a.out.empty();
    const bool bulk = a.count != 0 || !a.out_dir.empty();
    if (single == bulk)
        return usage("give either --name and --out (one device) or --count and --out-dir (many)");
    std::vector<PlannedBundle> plan;
    if (single) {
        if (a.name.empty() || a.out.empty()) return usage("--name and --out go together");
        plan.push_back({a.name, a.out});
    } else {
        if (a.count == 0 || a.out_dir.empty()) return usage("--count and --out-dir go together");
        if (a.count > limits::kMaxClusterDevices)
            return usage("--count must be 1.." + std::to_string(limits::kMaxClusterDevices));
        for (std::uint32_t i = 1; i <= a.count; ++i) {
            std::string name = numbered(a.prefix, i, a.count);
            plan.push_back({name, fs::path(a.out_dir) / (name + ".bundle")});
        }
    }
    for (const PlannedBundle& p : plan) {
        if (Status s = check_name(p.name, "device name '" + p.name + "'"); !s) return s.error();
        if (Status s = check_writable(p.file, a.force); !s) return s.error();
    }
    return plan;
}

}  // namespace

int run_cluster_init(const ClusterInitArgs& a) {
    const fs::path file = cluster_file(a.dir);
    if (Status s = check_name(a.name, "--name"); !s) return report(s.error());
    if (Status s = check_writable(file, a.force); !s)
        return report(usage(s.error().message +
                            " (the owner key in it signed every certificate of that cluster)"));
    if (Status s = make_private_dir(a.dir); !s) return report(s.error());
    const std::uint64_t now = unix_now();
    auto secrets = ClusterSecrets::create(a.name, now);
    if (!secrets) return report(secrets.error());
    if (Status s = save_cluster_secrets(*secrets, file, {.overwrite = a.force}); !s)
        return report(s.error());
    std::cout << "cluster '" << secrets->name << "' (id " << to_hex(secrets->cluster)
              << ") created in " << file.string() << " (mode 0600)\n"
              << "owner key " << to_hex(secrets->owner.public_key) << '\n';
    print_epochs(secrets->network_keys, now);
    std::cout << "next: starling cluster enroll --cluster " << a.dir
              << " --name NAME --out NAME.bundle\n";
    return kExitOk;
}

int run_enroll(const EnrollArgs& a) {
    const auto role = parse_role(a.role);
    if (!role) return report(role.error());
    if (a.days == 0 || a.days > kMaxCertificateDays)
        return report(usage("--days must be 1.." + std::to_string(kMaxCertificateDays)));
    const auto plan = plan_enrollment(a);
    if (!plan) return report(plan.error());
    auto secrets = load_cluster_secrets(cluster_file(a.cluster));
    if (!secrets) return report(secrets.error());
    if (!a.out_dir.empty())
        if (Status s = make_private_dir(a.out_dir); !s) return report(s.error());

    const std::uint64_t now = unix_now();
    std::vector<EnrollmentBundle> bundles;
    for (const PlannedBundle& p : *plan) {
        auto bundle = secrets->issue_device(p.name, *role, now, a.days * kSecondsPerDay);
        if (!bundle) return report(bundle.error());  // nothing saved yet: all or nothing
        bundles.push_back(std::move(*bundle));
    }
    // Records first: a bundle the records lack could never be revoked by name.
    if (Status s = save_cluster_secrets(*secrets, cluster_file(a.cluster), {.overwrite = true}); !s)
        return report(s.error());
    for (std::size_t i = 0; i < bundles.size(); ++i) {
        const Certificate& cert = bundles[i].certificate;
        if (Status s = save_enrollment_bundle(bundles[i], (*plan)[i].file, {.overwrite = a.force});
            !s) {
            std::cerr << "starling: '" << cert.name << "' and the " << (bundles.size() - i - 1)
                      << " device(s) after it are recorded but their bundles are not written: "
                         "revoke them, then enroll again\n";
            return report(s.error());
        }
        std::cout << cert.name << ": " << to_string(cert.role) << ", serial " << cert.serial
                  << ", device " << to_hex(cert.device) << ", valid until " << utc(cert.not_after)
                  << " -> " << (*plan)[i].file.string() << '\n';
    }
    std::cout << bundles.size() << " bundle(s) written (mode 0600): copy each to its device only\n";
    return kExitOk;
}

int run_revoke(const RevokeArgs& a) {
    if (Status s = check_writable(a.out, a.force); !s) return report(s.error());
    auto secrets = load_cluster_secrets(cluster_file(a.cluster));
    if (!secrets) return report(secrets.error());
    auto revocation = secrets->revoke(a.name, unix_now());
    if (!revocation) return report(revocation.error());
    if (Status s = save_cluster_secrets(*secrets, cluster_file(a.cluster), {.overwrite = true}); !s)
        return report(s.error());
    if (Status s = save_revocation(*revocation, a.out, {.overwrite = a.force}); !s)
        return report(s.error());
    std::cout << "revoked '" << revocation->name << "' (device " << to_hex(revocation->device)
              << ") at " << utc(revocation->revoked_at) << " -> " << a.out << '\n'
              << "it still holds the network key: rotate it with starling keys rotate --cluster "
              << a.cluster << '\n';
    return kExitOk;
}

int run_keys_rotate(const KeysRotateArgs& a) {
    if (a.overlap_hours > kMaxOverlapHours)
        return report(usage("--overlap-hours must be 0.." + std::to_string(kMaxOverlapHours)));
    auto secrets = load_cluster_secrets(cluster_file(a.cluster));
    if (!secrets) return report(secrets.error());
    const std::uint64_t now = unix_now();
    auto announcement = secrets->rotate_network_key(now, a.overlap_hours * kSecondsPerHour);
    if (!announcement) return report(announcement.error());
    const std::uint32_t epoch = announcement->key.epoch;
    const fs::path out =
        a.out.empty() ? fs::path(a.cluster) / ("epoch-" + std::to_string(epoch) + ".announce")
                      : fs::path(a.out);
    if (Status s = check_writable(out, a.force); !s) return report(s.error());
    if (Status s = save_cluster_secrets(*secrets, cluster_file(a.cluster), {.overwrite = true}); !s)
        return report(s.error());
    if (Status s = save_key_announcement(*announcement, out, {.overwrite = a.force}); !s)
        return report(s.error());
    std::cout << "network key epoch " << epoch << " installed; sent with from "
              << utc(announcement->key.not_before) << "; older epochs accepted until "
              << utc(announcement->retire_older_at) << '\n';
    print_epochs(secrets->network_keys, now);
    std::cout << "signed announcement (holds the new key, mode 0600) -> " << out.string() << '\n';
    return kExitOk;
}

int run_keys_list(const KeysListArgs& a) {
    if (a.cluster.empty() == a.bundle.empty())
        return report(usage("give exactly one of --cluster DIR or --bundle FILE"));
    const std::uint64_t now = unix_now();
    if (!a.bundle.empty()) {
        auto bundle = load_enrollment_bundle(a.bundle);
        if (!bundle) return report(bundle.error());
        const Certificate& cert = bundle->certificate;
        std::cout << "bundle for '" << cert.name << "' (" << to_string(cert.role) << ", serial "
                  << cert.serial << ", device " << to_hex(cert.device) << ") of cluster '"
                  << bundle->cluster_name << "' (id " << to_hex(bundle->cluster) << ")\n"
                  << "certificate valid " << utc(cert.not_before) << " .. " << utc(cert.not_after)
                  << (now > cert.not_after ? "  [expired]" : "") << '\n';
        print_epochs(bundle->network_keys, now);
        return kExitOk;
    }
    auto secrets = load_cluster_secrets(cluster_file(a.cluster));
    if (!secrets) return report(secrets.error());
    const auto revoked = std::count_if(secrets->devices.begin(), secrets->devices.end(),
                                       [](const IssuedDevice& d) { return d.revoked_at != 0; });
    std::cout << "cluster '" << secrets->name << "' (id " << to_hex(secrets->cluster) << "), "
              << secrets->devices.size() - static_cast<std::size_t>(revoked) << " trusted and "
              << revoked << " revoked device(s)\n";
    print_epochs(secrets->network_keys, now);
    return kExitOk;
}

}  // namespace starling::cli

#include "crypto/cluster.hpp"

#include <algorithm>
#include <limits>
#include <utility>

#include "protocol/limits.hpp"

namespace starling::crypto {
namespace {

std::uint64_t saturating_add(std::uint64_t a, std::uint64_t b) noexcept {
    return a > kNoExpiry - b ? kNoExpiry : a + b;
}

NetworkKeyEpoch fresh_epoch(std::uint32_t number, std::uint64_t not_before) {
    NetworkKeyEpoch epoch;
    epoch.epoch = number;
    random_bytes(epoch.key.bytes());
    epoch.not_before = not_before;
    epoch.not_after = kNoExpiry;
    return epoch;
}

Status check_can_issue(const ClusterSecrets& secrets, std::string_view device_name,
                       std::uint64_t validity_seconds) {
    if (Status s = check_name(device_name, "device name"); !s) return s;
    if (const IssuedDevice* held = secrets.find_trusted(device_name))
        return make_error(ErrorCode::invalid_argument,
                          "device '" + held->name + "' already holds certificate serial " +
                              std::to_string(held->serial) + " in cluster '" + secrets.name +
                              "'; revoke it first or pick another name");
    if (secrets.devices.size() >= limits::kMaxClusterDevices)
        return make_error(ErrorCode::too_large, "cluster '" + secrets.name + "' has issued " +
                                                    std::to_string(secrets.devices.size()) +
                                                    " certificates, the limit is " +
                                                    std::to_string(limits::kMaxClusterDevices));
    if (validity_seconds == 0)
        return make_error(ErrorCode::invalid_argument, "a certificate must be valid for some time");
    return Ok{};
}

Revocation signed_revocation(const ClusterSecrets& secrets, const IssuedDevice& device) {
    Revocation revocation;
    revocation.cluster = secrets.cluster;
    revocation.device = device.device;
    revocation.name = device.name;
    revocation.revoked_at = device.revoked_at;
    sign_revocation(revocation, secrets.owner.secret_key);
    return revocation;
}

}  // namespace

Result<ClusterSecrets> ClusterSecrets::create(std::string_view name, std::uint64_t now) {
    if (Status s = check_name(name, "cluster name"); !s) return s.error();
    ClusterSecrets secrets;
    secrets.owner = SignKeyPair::generate();
    random_bytes(secrets.cluster);
    secrets.name = std::string(name);
    if (Status s = secrets.network_keys.install(fresh_epoch(1, now)); !s) return s.error();
    return secrets;
}

const IssuedDevice* ClusterSecrets::find_trusted(std::string_view device_name) const {
    const auto it = std::find_if(devices.begin(), devices.end(), [&](const IssuedDevice& d) {
        return d.revoked_at == 0 && d.name == device_name;
    });
    return it == devices.end() ? nullptr : &*it;
}

Result<EnrollmentBundle> ClusterSecrets::issue_device(std::string_view device_name, Role role,
                                                      std::uint64_t now,
                                                      std::uint64_t validity_seconds) {
    if (Status s = check_can_issue(*this, device_name, validity_seconds); !s) return s.error();
    SignKeyPair sign = SignKeyPair::generate();
    KxKeyPair kx = KxKeyPair::generate();

    EnrollmentBundle bundle;
    bundle.cluster = cluster;
    bundle.cluster_name = name;
    bundle.owner_key = owner.public_key;
    Certificate& cert = bundle.certificate;
    cert.cluster = cluster;
    random_bytes(cert.device);
    cert.name = std::string(device_name);
    cert.role = role;
    cert.sign_key = sign.public_key;
    cert.kx_key = kx.public_key;
    cert.not_before = now;
    cert.not_after = saturating_add(now, validity_seconds);
    cert.serial = next_serial++;
    sign_certificate(cert, owner.secret_key);
    bundle.sign_secret = std::move(sign.secret_key);
    bundle.kx_secret = std::move(kx.secret_key);
    bundle.network_keys = network_keys.clone();

    devices.push_back(IssuedDevice{cert.name, cert.device, role, cert.serial, cert.not_before,
                                   cert.not_after, 0});
    return bundle;
}

Result<Revocation> ClusterSecrets::revoke(std::string_view device_name, std::uint64_t now) {
    for (auto it = devices.rbegin(); it != devices.rend(); ++it) {
        if (it->name != device_name) continue;
        if (it->revoked_at == 0) it->revoked_at = std::max<std::uint64_t>(now, 1);
        return signed_revocation(*this, *it);
    }
    return make_error(
        ErrorCode::not_found,
        "cluster '" + name + "' never issued a certificate to '" + std::string(device_name) + "'");
}

Result<KeyEpochAnnouncement> ClusterSecrets::rotate_network_key(std::uint64_t now,
                                                                std::uint64_t overlap_seconds) {
    network_keys.forget_expired(now);
    std::uint32_t next = network_keys.retired_below();  // the lowest number install() takes
    if (!network_keys.epochs().empty()) {
        const std::uint32_t newest = network_keys.epochs().back().epoch;
        if (newest == std::numeric_limits<std::uint32_t>::max())
            return make_error(ErrorCode::too_large, "no network key epoch numbers left");
        next = std::max(next, newest + 1);
    }
    const std::uint64_t retire_at = saturating_add(now, overlap_seconds);
    NetworkKeyEpoch epoch = fresh_epoch(next, saturating_add(now, overlap_seconds / 2));

    KeyEpochAnnouncement announcement;
    announcement.key = epoch.clone();
    announcement.retire_older_at = retire_at;
    sign_key_announcement(announcement, owner.secret_key, cluster);

    if (Status s = network_keys.install(std::move(epoch)); !s) return s.error();
    network_keys.retire_older(next, retire_at);
    return announcement;
}

}  // namespace starling::crypto

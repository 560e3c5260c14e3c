#pragma once
// The operator's side of trust: the owner's root key and the cluster's records (one file, mode
// 0600, on the operator's machine only), and the enrollment bundles it hands to each device.
// Times are inputs (unix seconds): the CLI passes the wall clock, tests pass what they like.

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/certificate.hpp"
#include "crypto/keyring.hpp"
#include "crypto/keys.hpp"
#include "protocol/result.hpp"

namespace starling::crypto {

inline constexpr std::uint16_t kClusterSecretsFormatVersion = 1;
inline constexpr std::uint16_t kEnrollmentBundleFormatVersion = 1;

// Everything one device needs to join its cluster, secrets included.
struct EnrollmentBundle {
    ClusterId cluster{};
    std::string cluster_name;
    SignPublicKey owner_key{};
    Certificate certificate;
    SignSecretKey sign_secret;  // matches certificate.sign_key
    KxSecretKey kx_secret;      // matches certificate.kx_key
    NetworkKeyRing network_keys;
};

// A certificate the owner issued, as the operator's records keep it.
struct IssuedDevice {
    std::string name;
    DeviceId device{};
    Role role = Role::trainer;
    std::uint64_t serial = 0;
    std::uint64_t not_before = 0;
    std::uint64_t not_after = 0;
    std::uint64_t revoked_at = 0;  // 0 while the device is trusted
};

struct ClusterSecrets {
    SignKeyPair owner;
    ClusterId cluster{};
    std::string name;
    std::uint64_t next_serial = 1;
    NetworkKeyRing network_keys;
    std::vector<IssuedDevice> devices;  // in issue order, revoked ones included

    // A new cluster: fresh owner key and id, network key epoch 1 in use from `now`.
    [[nodiscard]] static Result<ClusterSecrets> create(std::string_view name, std::uint64_t now);

    // A certificate and fresh keys for a new device, valid [now, now + validity_seconds].
    // Refused: a bad name, a name held by a device not revoked, kMaxClusterDevices reached.
    [[nodiscard]] Result<EnrollmentBundle> issue_device(std::string_view device_name, Role role,
                                                        std::uint64_t now,
                                                        std::uint64_t validity_seconds);

    // Records the revocation of the trusted device called `device_name` and returns it signed;
    // for a device already revoked, returns its original revocation again. not_found otherwise.
    [[nodiscard]] Result<Revocation> revoke(std::string_view device_name, std::uint64_t now);

    // install → use → remove: installs a new epoch used for sending from now + overlap / 2 and
    // caps every older epoch at now + overlap. Returns the signed announcement for the devices.
    [[nodiscard]] Result<KeyEpochAnnouncement> rotate_network_key(std::uint64_t now,
                                                                  std::uint64_t overlap_seconds);

    // The device called `device_name` that is not revoked, or nullptr.
    [[nodiscard]] const IssuedDevice* find_trusted(std::string_view device_name) const;
};

// The FlatBuffer payloads (inside envelopes in files): decoders check everything, including
// that the secret keys match the public ones. Encoded buffers hold secrets: wipe them.
[[nodiscard]] std::vector<std::uint8_t> encode_enrollment_bundle(const EnrollmentBundle& bundle);
[[nodiscard]] Result<EnrollmentBundle> decode_enrollment_bundle(
    std::span<const std::uint8_t> bytes);
[[nodiscard]] std::vector<std::uint8_t> encode_cluster_secrets(const ClusterSecrets& secrets);
[[nodiscard]] Result<ClusterSecrets> decode_cluster_secrets(std::span<const std::uint8_t> bytes);

// Files. Secret files are written durably with mode 0600, and loading one whose mode lets the
// group or others in is refused (insecure, with the chmod that fixes it). Saving never replaces
// an existing file unless `overwrite`; the cluster file keeps its previous copy as ".prev".
struct SaveOptions {
    bool overwrite = false;
};
[[nodiscard]] Status save_cluster_secrets(const ClusterSecrets& secrets,
                                          const std::filesystem::path& file, SaveOptions opts = {});
[[nodiscard]] Result<ClusterSecrets> load_cluster_secrets(const std::filesystem::path& file);
[[nodiscard]] Status save_enrollment_bundle(const EnrollmentBundle& bundle,
                                            const std::filesystem::path& file,
                                            SaveOptions opts = {});
[[nodiscard]] Result<EnrollmentBundle> load_enrollment_bundle(const std::filesystem::path& file);
// A bundle handed over on a provisioning medium or in /etc: read without the mode check (vfat
// media carry no Unix modes), for installing at once as a 0600 copy in the state directory.
[[nodiscard]] Result<EnrollmentBundle> read_bundle_to_install(const std::filesystem::path& file);
[[nodiscard]] Status save_revocation(const Revocation& revocation,
                                     const std::filesystem::path& file, SaveOptions opts = {});
[[nodiscard]] Result<Revocation> load_revocation(const std::filesystem::path& file);
[[nodiscard]] Status save_key_announcement(const KeyEpochAnnouncement& announcement,
                                           const std::filesystem::path& file,
                                           SaveOptions opts = {});
[[nodiscard]] Result<KeyEpochAnnouncement> load_key_announcement(const std::filesystem::path& file);

// Refuses (insecure) a secret file that the group or others may read or write.
[[nodiscard]] Status check_secret_file_mode(const std::filesystem::path& file);

}  // namespace starling::crypto

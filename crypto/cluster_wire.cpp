// FlatBuffer payloads of the enrollment bundle and the operator's cluster file
// (protocol/schemas/trust.fbs). Both carry secret keys: builders wipe their buffers, and the
// decoders prove each secret key matches its public half before handing it out.
#include <sodium.h>

#include <algorithm>
#include <string>
#include <utility>

#include "crypto/cluster.hpp"
#include "crypto/sodium.hpp"
#include "crypto/trust_wire.hpp"
#include "protocol/limits.hpp"

namespace starling::crypto {
namespace {

namespace tw = trust_wire;
namespace wire = starling::wire;

using EpochVector = flatbuffers::Vector<flatbuffers::Offset<wire::NetworkKeyEpoch>>;

constexpr std::string_view kBundleRecord = "enrollment bundle";
constexpr std::string_view kSecretsRecord = "cluster file";

std::vector<std::uint8_t> finish(flatbuffers::FlatBufferBuilder& fbb) {
    const auto span = fbb.GetBufferSpan();
    return {span.begin(), span.end()};
}

flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<wire::NetworkKeyEpoch>>> build_epochs(
    flatbuffers::FlatBufferBuilder& fbb, const NetworkKeyRing& ring) {
    std::vector<flatbuffers::Offset<wire::NetworkKeyEpoch>> epochs;
    for (const NetworkKeyEpoch& e : ring.epochs()) epochs.push_back(tw::build_epoch(fbb, e));
    return fbb.CreateVector(epochs);
}

// 1..kMaxNetworkKeyEpochs epochs in strictly ascending order, each well-formed.
Result<NetworkKeyRing> read_epochs(const EpochVector& epochs, std::string_view record) {
    if (epochs.size() == 0 || epochs.size() > limits::kMaxNetworkKeyEpochs)
        return tw::malformed(record, std::to_string(epochs.size()) +
                                         " network key epochs, expected 1.." +
                                         std::to_string(limits::kMaxNetworkKeyEpochs));
    NetworkKeyRing ring;
    std::uint32_t previous = 0;
    for (const wire::NetworkKeyEpoch* table : epochs) {
        Result<NetworkKeyEpoch> epoch = tw::read_epoch(*table, record);
        if (!epoch) return epoch.error();
        if (epoch->epoch <= previous)
            return tw::malformed(record, "network key epochs are not in ascending order");
        previous = epoch->epoch;
        if (Status s = ring.install(std::move(*epoch)); !s) return s.error();
    }
    return ring;
}

Status check_version(std::uint16_t found, std::uint16_t supported, std::string_view record) {
    if (found == supported) return Ok{};
    return make_error(ErrorCode::unsupported_version,
                      std::string(record) + ": format version " + std::to_string(found) +
                          ", this build reads " + std::to_string(supported));
}

// An Ed25519 secret key is seed || public key; re-deriving both from the seed proves it whole.
Status check_sign_pair(const SignSecretKey& secret, const SignPublicKey& expected,
                       std::string_view record) {
    ensure_initialized();
    SignPublicKey derived{};
    SignSecretKey rederived;
    crypto_sign_seed_keypair(derived.data(), rederived.bytes().data(), secret.bytes().data());
    if (equal_constant_time(derived, expected) &&
        equal_constant_time(rederived.bytes(), secret.bytes()))
        return Ok{};
    return make_error(
        ErrorCode::corrupt,
        std::string(record) + ": the signing secret key does not match its public key");
}

Status check_kx_pair(const KxSecretKey& secret, const KxPublicKey& expected,
                     std::string_view record) {
    ensure_initialized();
    KxPublicKey derived{};
    if (crypto_scalarmult_base(derived.data(), secret.bytes().data()) == 0 &&
        equal_constant_time(derived, expected))
        return Ok{};
    return make_error(ErrorCode::corrupt, std::string(record) +
                                              ": the key-exchange secret key does not match its "
                                              "public key");
}

Result<std::string> read_name(const flatbuffers::String* text, std::string_view what) {
    const std::string_view name(text->c_str(), text->size());
    if (Status s = check_name(name, what); !s) return s.error();
    return std::string(name);
}

Result<IssuedDevice> read_device(const wire::IssuedDevice& table) {
    IssuedDevice device;
    Result<std::string> name = read_name(table.name(), "cluster file: device name");
    if (!name) return name.error();
    device.name = std::move(*name);
    const std::string where = std::string(kSecretsRecord) + ": device '" + device.name + "'";
    if (Status s = tw::read_exact(table.device(), device.device, "device id", where); !s)
        return s.error();
    const auto role = static_cast<std::uint8_t>(table.role());
    if (role > static_cast<std::uint8_t>(Role::observer))
        return tw::malformed(where, "unknown role " + std::to_string(role));
    device.role = static_cast<Role>(role);
    device.serial = table.serial();
    device.not_before = table.not_before();
    device.not_after = table.not_after();
    device.revoked_at = table.revoked_at();
    if (device.not_before > device.not_after)
        return tw::malformed(where, "not_before is after not_after");
    return device;
}

// Devices in issue order: serials strictly ascending and below next_serial.
Status read_devices(const wire::ClusterSecrets& table, ClusterSecrets& secrets) {
    if (table.devices() == nullptr) return Ok{};
    if (table.devices()->size() > limits::kMaxClusterDevices)
        return tw::malformed(kSecretsRecord, std::to_string(table.devices()->size()) +
                                                 " devices, the limit is " +
                                                 std::to_string(limits::kMaxClusterDevices));
    std::uint64_t previous = 0;
    for (const wire::IssuedDevice* entry : *table.devices()) {
        Result<IssuedDevice> device = read_device(*entry);
        if (!device) return device.error();
        if (device->serial <= previous || device->serial >= secrets.next_serial)
            return tw::malformed(kSecretsRecord, "device '" + device->name + "' has serial " +
                                                     std::to_string(device->serial) +
                                                     " out of issue order");
        previous = device->serial;
        secrets.devices.push_back(std::move(*device));
    }
    return Ok{};
}

}  // namespace

std::vector<std::uint8_t> encode_enrollment_bundle(const EnrollmentBundle& bundle) {
    tw::WipingAllocator allocator;
    flatbuffers::FlatBufferBuilder fbb(2048, &allocator);
    const auto cluster = tw::bytes_field(fbb, bundle.cluster);
    const auto cluster_name = fbb.CreateString(bundle.cluster_name);
    const auto owner_key = tw::bytes_field(fbb, bundle.owner_key);
    const auto certificate = tw::build_certificate(fbb, bundle.certificate);
    const auto sign_secret = tw::bytes_field(fbb, bundle.sign_secret.bytes());
    const auto kx_secret = tw::bytes_field(fbb, bundle.kx_secret.bytes());
    const auto epochs = build_epochs(fbb, bundle.network_keys);
    fbb.FinishSizePrefixed(
        wire::CreateEnrollmentBundle(fbb, kEnrollmentBundleFormatVersion, cluster, cluster_name,
                                     owner_key, certificate, sign_secret, kx_secret, epochs),
        tw::kBundleId);
    return finish(fbb);
}

Result<EnrollmentBundle> decode_enrollment_bundle(std::span<const std::uint8_t> bytes) {
    if (bytes.size() > limits::kMaxEnrollmentBundleBytes)
        return make_error(ErrorCode::too_large, std::string(kBundleRecord) + ": " +
                                                    std::to_string(bytes.size()) + " bytes");
    const tw::AlignedBytes aligned(bytes);
    const auto root = tw::verified_root<wire::EnrollmentBundle>(
        aligned.view(), tw::kBundleId, limits::kFlatbuffersMaxTables, kBundleRecord);
    if (!root) return root.error();
    const wire::EnrollmentBundle& table = **root;
    if (Status s =
            check_version(table.format_version(), kEnrollmentBundleFormatVersion, kBundleRecord);
        !s)
        return s.error();

    EnrollmentBundle bundle;
    Result<std::string> name = read_name(table.cluster_name(), "enrollment bundle: cluster name");
    if (!name) return name.error();
    bundle.cluster_name = std::move(*name);
    for (Status s :
         {tw::read_exact(table.cluster(), bundle.cluster, "cluster id", kBundleRecord),
          tw::read_exact(table.owner_key(), bundle.owner_key, "owner key", kBundleRecord),
          tw::read_exact(table.device_sign_secret(), bundle.sign_secret.bytes(),
                         "signing secret key", kBundleRecord),
          tw::read_exact(table.device_kx_secret(), bundle.kx_secret.bytes(),
                         "key-exchange secret key", kBundleRecord)})
        if (!s) return s.error();
    Result<Certificate> cert = tw::read_certificate(*table.certificate(), kBundleRecord);
    if (!cert) return cert.error();
    bundle.certificate = std::move(*cert);
    const Certificate& c = bundle.certificate;
    for (Status s : {verify_certificate_signature(c, bundle.owner_key, bundle.cluster),
                     check_sign_pair(bundle.sign_secret, c.sign_key, kBundleRecord),
                     check_kx_pair(bundle.kx_secret, c.kx_key, kBundleRecord)})
        if (!s) return s.error();
    Result<NetworkKeyRing> ring = read_epochs(*table.network_keys(), kBundleRecord);
    if (!ring) return ring.error();
    bundle.network_keys = std::move(*ring);
    return bundle;
}

std::vector<std::uint8_t> encode_cluster_secrets(const ClusterSecrets& secrets) {
    tw::WipingAllocator allocator;
    flatbuffers::FlatBufferBuilder fbb(4096 + secrets.devices.size() * 160, &allocator);
    const auto owner = tw::bytes_field(fbb, secrets.owner.secret_key.bytes());
    const auto cluster = tw::bytes_field(fbb, secrets.cluster);
    const auto name = fbb.CreateString(secrets.name);
    const auto epochs = build_epochs(fbb, secrets.network_keys);
    std::vector<flatbuffers::Offset<wire::IssuedDevice>> devices;
    for (const IssuedDevice& d : secrets.devices)
        devices.push_back(wire::CreateIssuedDevice(fbb, fbb.CreateString(d.name),
                                                   tw::bytes_field(fbb, d.device),
                                                   static_cast<wire::DeviceRole>(d.role), d.serial,
                                                   d.not_before, d.not_after, d.revoked_at));
    const auto device_vector = fbb.CreateVector(devices);
    fbb.FinishSizePrefixed(
        wire::CreateClusterSecrets(fbb, kClusterSecretsFormatVersion, owner, cluster, name,
                                   secrets.next_serial, epochs, device_vector),
        tw::kClusterSecretsId);
    return finish(fbb);
}

Result<ClusterSecrets> decode_cluster_secrets(std::span<const std::uint8_t> bytes) {
    if (bytes.size() > limits::kMaxClusterSecretsBytes)
        return make_error(ErrorCode::too_large, std::string(kSecretsRecord) + ": " +
                                                    std::to_string(bytes.size()) + " bytes");
    const tw::AlignedBytes aligned(bytes);
    const auto root = tw::verified_root<wire::ClusterSecrets>(
        aligned.view(), tw::kClusterSecretsId, limits::kClusterSecretsMaxTables, kSecretsRecord);
    if (!root) return root.error();
    const wire::ClusterSecrets& table = **root;
    if (Status s =
            check_version(table.format_version(), kClusterSecretsFormatVersion, kSecretsRecord);
        !s)
        return s.error();

    ClusterSecrets secrets;
    Result<std::string> name = read_name(table.cluster_name(), "cluster file: cluster name");
    if (!name) return name.error();
    secrets.name = std::move(*name);
    for (Status s : {tw::read_exact(table.cluster(), secrets.cluster, "cluster id", kSecretsRecord),
                     tw::read_exact(table.owner_sign_secret(), secrets.owner.secret_key.bytes(),
                                    "owner secret key", kSecretsRecord)})
        if (!s) return s.error();
    // The public half is the secret key's last 32 bytes; check_sign_pair proves they agree.
    const auto owner_secret = secrets.owner.secret_key.bytes();
    std::copy(owner_secret.end() - kSignPublicKeyBytes, owner_secret.end(),
              secrets.owner.public_key.begin());
    if (Status s =
            check_sign_pair(secrets.owner.secret_key, secrets.owner.public_key, kSecretsRecord);
        !s)
        return s.error();
    secrets.next_serial = table.next_serial();
    if (secrets.next_serial == 0) return tw::malformed(kSecretsRecord, "next serial is 0");
    Result<NetworkKeyRing> ring = read_epochs(*table.network_keys(), kSecretsRecord);
    if (!ring) return ring.error();
    secrets.network_keys = std::move(*ring);
    if (Status s = read_devices(table, secrets); !s) return s.error();
    return secrets;
}

}  // namespace starling::crypto

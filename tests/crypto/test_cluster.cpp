// The operator's records and the device bundles: issue, revoke, save and load; secret files are
// written 0600 and refused once their mode lets others in. Tests run as root, so the mode bits
// are checked, not whether an open would fail.
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <filesystem>
#include <vector>

#include "crypto/cluster.hpp"
#include "protocol/durable_file.hpp"
#include "protocol/envelope.hpp"
#include "protocol/limits.hpp"
#include "tests/crypto/identity_fixture.hpp"
#include "tests/protocol/temp_dir.hpp"

using namespace starling;
using namespace starling::crypto;
using starling::testing::kDay;
using starling::testing::kNow;
using starling::testing::read_raw;
using starling::testing::TempDir;
using starling::testing::why;
using starling::testing::write_raw;

namespace {

unsigned mode_of(const std::filesystem::path& file) {
    struct stat st {};
    REQUIRE(::stat(file.c_str(), &st) == 0);
    return st.st_mode & 0777u;
}

ClusterSecrets new_cluster() {
    auto created = ClusterSecrets::create("home-lab", kNow);
    REQUIRE_MESSAGE(created.ok(), why(created));
    return std::move(*created);
}

void check_bundle(const EnrollmentBundle& b, const ClusterSecrets& c, const std::string& name) {
    CHECK(b.cluster == c.cluster);
    CHECK(b.cluster_name == c.name);
    CHECK(b.owner_key == c.owner.public_key);
    CHECK(b.certificate.name == name);
    CHECK(verify_certificate(b.certificate, c.owner.public_key, c.cluster, kNow).ok());
    CHECK(b.network_keys.current(kNow) != nullptr);
}

}  // namespace

TEST_CASE("issued bundles verify; names are unique among trusted devices") {
    ClusterSecrets cluster = new_cluster();
    auto a = cluster.issue_device("nuc-001", Role::trainer, kNow, 365 * kDay);
    REQUIRE_MESSAGE(a.ok(), why(a));
    check_bundle(*a, cluster, "nuc-001");
    auto b = cluster.issue_device("nuc-002", Role::observer, kNow, kDay);
    REQUIRE(b.ok());
    CHECK(b->certificate.role == Role::observer);
    CHECK(b->certificate.serial > a->certificate.serial);
    CHECK(b->certificate.device != a->certificate.device);
    CHECK(b->certificate.not_after == kNow + kDay);

    CHECK(cluster.issue_device("nuc-001", Role::trainer, kNow, kDay).error().code ==
          ErrorCode::invalid_argument);
    CHECK(cluster.issue_device("Bad Name", Role::trainer, kNow, kDay).error().code ==
          ErrorCode::malformed);
    CHECK(cluster.issue_device("nuc-003", Role::trainer, kNow, 0).error().code ==
          ErrorCode::invalid_argument);
}

TEST_CASE("revoking records the device, signs the revocation, and frees the name") {
    ClusterSecrets cluster = new_cluster();
    auto bundle = cluster.issue_device("nuc-007", Role::trainer, kNow, kDay);
    REQUIRE(bundle.ok());
    auto revoked = cluster.revoke("nuc-007", kNow + 5);
    REQUIRE_MESSAGE(revoked.ok(), why(revoked));
    CHECK(revoked->device == bundle->certificate.device);
    CHECK(revoked->revoked_at == kNow + 5);
    CHECK(verify_revocation(*revoked, cluster.owner.public_key, cluster.cluster).ok());
    CHECK(cluster.find_trusted("nuc-007") == nullptr);

    auto again = cluster.revoke("nuc-007", kNow + 99);  // the same revocation, re-issued
    REQUIRE(again.ok());
    CHECK(again->revoked_at == kNow + 5);
    CHECK(cluster.revoke("nuc-404", kNow).error().code == ErrorCode::not_found);

    auto replacement = cluster.issue_device("nuc-007", Role::trainer, kNow + 10, kDay);
    REQUIRE(replacement.ok());
    CHECK(replacement->certificate.device != bundle->certificate.device);
}

TEST_CASE("the cluster file round-trips, is 0600, keeps .prev, and is refused at 0644") {
    TempDir dir("cluster");
    const auto file = dir / "cluster.secrets";
    ClusterSecrets cluster = new_cluster();
    REQUIRE(cluster.issue_device("nuc-001", Role::trainer, kNow, kDay).ok());
    REQUIRE(cluster.revoke("nuc-001", kNow + 1).ok());
    REQUIRE(cluster.issue_device("nuc-002", Role::observer, kNow, kDay).ok());
    REQUIRE(cluster.rotate_network_key(kNow + 2, kDay).ok());
    REQUIRE(save_cluster_secrets(cluster, file).ok());
    CHECK(mode_of(file) == 0600u);

    auto loaded = load_cluster_secrets(file);
    REQUIRE_MESSAGE(loaded.ok(), why(loaded));
    CHECK(loaded->cluster == cluster.cluster);
    CHECK(loaded->name == "home-lab");
    CHECK(loaded->owner.public_key == cluster.owner.public_key);
    CHECK(equal_constant_time(loaded->owner.secret_key.bytes(), cluster.owner.secret_key.bytes()));
    CHECK(loaded->next_serial == cluster.next_serial);
    REQUIRE(loaded->devices.size() == 2);
    CHECK(loaded->devices[0].revoked_at == kNow + 1);
    CHECK(loaded->devices[1].role == Role::observer);
    REQUIRE(loaded->network_keys.epochs().size() == 2);
    CHECK(loaded->network_keys.epochs()[0].not_after == kNow + 2 + kDay);

    CHECK(save_cluster_secrets(cluster, file).error().code == ErrorCode::invalid_argument);
    REQUIRE(save_cluster_secrets(cluster, file, {.overwrite = true}).ok());
    CHECK(mode_of(previous_copy_path(file)) == 0600u);

    REQUIRE(::chmod(file.c_str(), 0644) == 0);
    const auto refused = load_cluster_secrets(file);
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.error().code == ErrorCode::insecure);
    CHECK(refused.error().message.find("chmod 600") != std::string::npos);
    REQUIRE(::chmod(file.c_str(), 0600) == 0);
    CHECK(load_cluster_secrets(file).ok());
}

TEST_CASE("a bundle round-trips through its file, 0600, and is refused at 0640") {
    TempDir dir("bundle");
    const auto file = dir / "nuc-001.bundle";
    ClusterSecrets cluster = new_cluster();
    auto bundle = cluster.issue_device("nuc-001", Role::trainer, kNow, kDay);
    REQUIRE(bundle.ok());
    REQUIRE(save_enrollment_bundle(*bundle, file).ok());
    CHECK(mode_of(file) == 0600u);
    auto loaded = load_enrollment_bundle(file);
    REQUIRE_MESSAGE(loaded.ok(), why(loaded));
    check_bundle(*loaded, cluster, "nuc-001");
    CHECK(equal_constant_time(loaded->sign_secret.bytes(), bundle->sign_secret.bytes()));
    CHECK(equal_constant_time(loaded->kx_secret.bytes(), bundle->kx_secret.bytes()));

    REQUIRE(::chmod(file.c_str(), 0640) == 0);
    CHECK(load_enrollment_bundle(file).error().code == ErrorCode::insecure);
    CHECK(load_enrollment_bundle(dir / "missing.bundle").error().code == ErrorCode::not_found);
}

TEST_CASE("a damaged or foreign file is refused with the reason") {
    TempDir dir("damaged");
    const auto file = dir / "nuc-001.bundle";
    ClusterSecrets cluster = new_cluster();
    auto bundle = cluster.issue_device("nuc-001", Role::trainer, kNow, kDay);
    REQUIRE(bundle.ok());
    REQUIRE(save_enrollment_bundle(*bundle, file).ok());
    auto bytes = read_raw(file);
    bytes[bytes.size() / 2] ^= 1;
    write_raw(file, bytes);
    REQUIRE(::chmod(file.c_str(), 0600) == 0);
    CHECK(load_enrollment_bundle(file).error().code == ErrorCode::corrupt);

    const auto secrets = dir / "cluster.secrets";
    REQUIRE(save_cluster_secrets(cluster, secrets).ok());
    CHECK(load_enrollment_bundle(secrets).error().code == ErrorCode::malformed);  // wrong kind
}

TEST_CASE("a bundle whose secret keys do not match its certificate is refused") {
    ClusterSecrets cluster = new_cluster();
    auto bundle = cluster.issue_device("nuc-001", Role::trainer, kNow, kDay);
    REQUIRE(bundle.ok());
    KxKeyPair stranger = KxKeyPair::generate();
    bundle->kx_secret = std::move(stranger.secret_key);
    auto payload = encode_enrollment_bundle(*bundle);
    CHECK(decode_enrollment_bundle(payload).error().code == ErrorCode::corrupt);

    auto other = cluster.issue_device("nuc-002", Role::trainer, kNow, kDay);
    REQUIRE(other.ok());
    other->sign_secret = SignKeyPair::generate().secret_key;
    payload = encode_enrollment_bundle(*other);
    CHECK(decode_enrollment_bundle(payload).error().code == ErrorCode::corrupt);
}

TEST_CASE("bundle and cluster decoders refuse truncated and oversized payloads") {
    ClusterSecrets cluster = new_cluster();
    auto bundle = cluster.issue_device("nuc-001", Role::trainer, kNow, kDay);
    REQUIRE(bundle.ok());
    const auto good_bundle = encode_enrollment_bundle(*bundle);
    const auto good_cluster = encode_cluster_secrets(cluster);
    REQUIRE(decode_enrollment_bundle(good_bundle).ok());
    REQUIRE(decode_cluster_secrets(good_cluster).ok());
    for (std::size_t n = 0; n < good_bundle.size(); n += 7)
        CHECK_FALSE(decode_enrollment_bundle(std::span(good_bundle).first(n)).ok());
    for (std::size_t n = 0; n < good_cluster.size(); n += 7)
        CHECK_FALSE(decode_cluster_secrets(std::span(good_cluster).first(n)).ok());
    std::vector<std::uint8_t> huge(limits::kMaxEnrollmentBundleBytes + 1);
    CHECK(decode_enrollment_bundle(huge).error().code == ErrorCode::too_large);
}

TEST_CASE("revocation and announcement files round-trip; the announcement file is secret") {
    TempDir dir("records");
    ClusterSecrets cluster = new_cluster();
    REQUIRE(cluster.issue_device("nuc-001", Role::trainer, kNow, kDay).ok());
    auto revoked = cluster.revoke("nuc-001", kNow);
    REQUIRE(revoked.ok());
    REQUIRE(save_revocation(*revoked, dir / "nuc-001.revoked").ok());
    auto loaded = load_revocation(dir / "nuc-001.revoked");
    REQUIRE_MESSAGE(loaded.ok(), why(loaded));
    CHECK(verify_revocation(*loaded, cluster.owner.public_key, cluster.cluster).ok());

    auto announced = cluster.rotate_network_key(kNow, kDay);
    REQUIRE(announced.ok());
    REQUIRE(save_key_announcement(*announced, dir / "epoch-2.key").ok());
    CHECK(mode_of(dir / "epoch-2.key") == 0600u);
    auto back = load_key_announcement(dir / "epoch-2.key");
    REQUIRE_MESSAGE(back.ok(), why(back));
    CHECK(verify_key_announcement(*back, cluster.owner.public_key, cluster.cluster).ok());
}

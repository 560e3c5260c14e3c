#include <doctest/doctest.h>

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "crypto/cluster.hpp"
#include "firmware/provisioning.hpp"
#include "tests/protocol/temp_dir.hpp"

using namespace starling;
using namespace starling::firmware;
namespace fs = std::filesystem;

namespace {

constexpr std::uint64_t kNow = 1'700'000'000;
constexpr std::uint64_t kYear = 365 * 86'400;

// A real cluster and one enrolled device's bundle, written like an operator's medium holds it.
struct Operator {
    crypto::ClusterSecrets cluster = crypto::ClusterSecrets::create("fleet", kNow).value();

    crypto::EnrollmentBundle enroll(const std::string& name, const fs::path& file) {
        auto bundle = cluster.issue_device(name, crypto::Role::trainer, kNow, kYear);
        REQUIRE(bundle.ok());
        fs::create_directories(file.parent_path());
        REQUIRE(crypto::save_enrollment_bundle(*bundle, file).ok());
        // Removable media carry no Unix modes: every file looks world-readable there.
        fs::permissions(file, fs::perms(0644));
        return std::move(*bundle);
    }
};

void write_text(const fs::path& file, const std::string& text) {
    fs::create_directories(file.parent_path());
    std::ofstream(file) << text;
}

unsigned mode_of(const fs::path& file) {
    struct stat st {};
    REQUIRE(::stat(file.c_str(), &st) == 0);
    return st.st_mode & 0777u;
}

BundleSearch search_in(const testing::TempDir& root) {
    BundleSearch s;
    s.state_dir = root / "state";
    s.config_dir = root / "etc";
    s.media_roots = {root / "media", root / "run-media"};
    s.hostname = "till-07";
    return s;
}

}  // namespace

TEST_CASE("first boot with no bundle anywhere: not_found, naming every place searched") {
    testing::TempDir root("prov-missing");
    const BundleSearch s = search_in(root);
    CHECK(bundle_candidates(s).empty());
    auto found = find_and_install_bundle(s);
    REQUIRE_FALSE(found.ok());
    CHECK(found.error().code == ErrorCode::not_found);
    const std::string& m = found.error().message;
    CHECK(m.find((root / "state/node.bundle").string()) != std::string::npos);
    CHECK(m.find((root / "etc").string()) != std::string::npos);
    CHECK(m.find((root / "media").string()) != std::string::npos);
    CHECK(m.find("till-07.bundle") != std::string::npos);
    CHECK(m.find('\n') == std::string::npos);  // one log line
    CHECK_FALSE(fs::exists(root / "state"));
}

TEST_CASE("a bundle on a mounted medium is installed 0600 into the state directory") {
    testing::TempDir root("prov-medium");
    Operator op;
    const auto bundle = op.enroll("till-07", root / "media/usb0/starling/node.bundle");
    const BundleSearch s = search_in(root);

    auto first = find_and_install_bundle(s);
    REQUIRE_MESSAGE(first.ok(), (first.ok() ? "" : first.error().message));
    CHECK(first->installed_now);
    CHECK(first->source == root / "media/usb0/starling/node.bundle");
    CHECK(first->path == root / "state/node.bundle");
    CHECK(first->bundle.certificate.device == bundle.certificate.device);
    CHECK(mode_of(root / "state") == 0700u);
    CHECK(mode_of(root / "state/node.bundle") == 0600u);
    // The installed copy passes the strict loader the node uses afterwards.
    REQUIRE(crypto::load_enrollment_bundle(root / "state/node.bundle").ok());

    // Next boot, medium removed: the installed copy is used as it is.
    fs::remove_all(root / "media");
    auto second = find_and_install_bundle(s);
    REQUIRE(second.ok());
    CHECK_FALSE(second->installed_now);
    CHECK(second->source == root / "state/node.bundle");
}

TEST_CASE("search order: installed, then /etc, then media; HOSTNAME.bundle before node.bundle") {
    testing::TempDir root("prov-order");
    Operator op;
    op.enroll("other", root / "run-media/admin/STICK/starling/node.bundle");
    const auto mine = op.enroll("till-07", root / "run-media/admin/STICK/starling/till-07.bundle");
    const BundleSearch s = search_in(root);
    const auto candidates = bundle_candidates(s);
    REQUIRE(candidates.size() == 2);
    CHECK(candidates[0].filename() == "till-07.bundle");
    auto found = find_and_install_bundle(s);
    REQUIRE(found.ok());
    CHECK(found->bundle.certificate.device == mine.certificate.device);

    op.enroll("from-etc", root / "etc/node.bundle");
    fs::remove(root / "state/node.bundle");
    const auto again = bundle_candidates(s);
    REQUIRE(again.size() == 3);
    CHECK(again[0] == root / "etc/node.bundle");
}

TEST_CASE("a corrupt bundle is refused with its path and reason; a valid one later is taken") {
    testing::TempDir root("prov-corrupt");
    write_text(root / "media/usb0/starling/node.bundle", "not a bundle at all");
    const BundleSearch s = search_in(root);
    auto refused = find_and_install_bundle(s);
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.error().code == ErrorCode::invalid_argument);
    CHECK(refused.error().message.find("media/usb0/starling/node.bundle") != std::string::npos);
    CHECK(refused.error().message.find('\n') == std::string::npos);
    CHECK_FALSE(fs::exists(root / "state/node.bundle"));

    // The operator plugs in a second stick: the search on the next retry finds it.
    Operator op;
    op.enroll("till-07", root / "media/usb1/starling/node.bundle");
    auto found = find_and_install_bundle(s);
    REQUIRE(found.ok());
    CHECK(found->source == root / "media/usb1/starling/node.bundle");
    CHECK(mode_of(root / "state/node.bundle") == 0600u);
}

TEST_CASE("a corrupt installed bundle is replaced by a valid one from a medium") {
    testing::TempDir root("prov-replace");
    write_text(root / "state/node.bundle", "torn");
    fs::permissions(root / "state/node.bundle", fs::perms(0600));
    Operator op;
    op.enroll("till-07", root / "media/usb0/starling/till-07.bundle");
    auto found = find_and_install_bundle(search_in(root));
    REQUIRE(found.ok());
    CHECK(found->installed_now);
    REQUIRE(crypto::load_enrollment_bundle(root / "state/node.bundle").ok());
}

TEST_CASE("retries back off from 2 s, doubling, to at most a minute") {
    RetryBackoff b;
    CHECK(b.next() == kFirstBundleRetry);
    CHECK(b.next() == 2 * kFirstBundleRetry);
    Micros last{0};
    for (int i = 0; i < 20; ++i) last = b.next();
    CHECK(last == kMaxBundleRetry);
    b.reset();
    CHECK(b.next() == kFirstBundleRetry);
}

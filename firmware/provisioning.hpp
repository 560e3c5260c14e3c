#pragma once
// First boot: where `starling node` finds its enrollment bundle when none is named, and how a
// found one is installed into the state directory (mode 0600, owned by the node's user), so an
// operator can image 100 devices and hand each its identity on a USB stick or in /etc.

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/cluster.hpp"
#include "firmware/governor.hpp"
#include "protocol/result.hpp"

namespace starling::firmware {

inline constexpr std::string_view kInstalledBundleName = "node.bundle";
inline constexpr std::string_view kBundleSuffix = ".bundle";
inline constexpr std::string_view kMediaDirName = "starling";
inline constexpr std::string_view kDefaultConfigDir = "/etc/starling";
// While no valid bundle is found the node retries after 2 s, doubling up to a minute.
inline constexpr Micros kFirstBundleRetry = std::chrono::seconds(2);
inline constexpr Micros kMaxBundleRetry = std::chrono::seconds(60);
// A bound on the scan of a provisioning root: directories looked into under each.
inline constexpr std::size_t kMaxMediaDirsPerRoot = 64;

struct BundleSearch {
    std::filesystem::path state_dir;
    std::filesystem::path config_dir{kDefaultConfigDir};
    std::vector<std::filesystem::path> media_roots;  // config node.provisioning
    std::string hostname;  // one medium may carry every device's bundle, named HOSTNAME.bundle
};

// The existing files to try, in order: STATE/node.bundle (installed on an earlier boot), then in
// CONFIG_DIR and in each medium directory ROOT/starling, ROOT/*/starling, ROOT/*/*/starling
// (mount points like /media/usb0 and /run/media/USER/LABEL): HOSTNAME.bundle, then node.bundle.
[[nodiscard]] std::vector<std::filesystem::path> bundle_candidates(const BundleSearch& search);

struct InstalledBundle {
    crypto::EnrollmentBundle bundle;
    std::filesystem::path path;    // STATE/node.bundle: where the node reads it from now on
    std::filesystem::path source;  // where it was found
    bool installed_now = false;    // copied from source on this call
};

// Takes the first candidate that holds a valid bundle and, unless it is the installed one,
// installs it as STATE/node.bundle (0600, durably; chowned to the state directory's owner when
// run as root). Errors: not_found naming every place searched when no candidate exists, else
// the reason each candidate was refused, on one line.
[[nodiscard]] Result<InstalledBundle> find_and_install_bundle(const BundleSearch& search);

// A one-line summary of where the search looks, for logs and `starling node --help`.
[[nodiscard]] std::string describe_search(const BundleSearch& search);

// The wait between attempts: kFirstBundleRetry, doubling up to kMaxBundleRetry.
class RetryBackoff {
  public:
    [[nodiscard]] Micros next() noexcept;
    void reset() noexcept { last_ = Micros{0}; }

  private:
    Micros last_{0};
};

}  // namespace starling::firmware

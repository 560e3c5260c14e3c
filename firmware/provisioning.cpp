#include "firmware/provisioning.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>

namespace starling::firmware {
namespace {

namespace fs = std::filesystem;

bool is_file(const fs::path& p) {
    std::error_code ec;
    return fs::is_regular_file(p, ec);
}

// Sub-directories of `dir` in name order, at most kMaxMediaDirsPerRoot; none when unreadable.
std::vector<fs::path> subdirectories(const fs::path& dir) {
    std::vector<fs::path> dirs;
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        std::error_code type_ec;
        if (it->is_directory(type_ec)) dirs.push_back(it->path());
        if (dirs.size() == kMaxMediaDirsPerRoot) break;
    }
    std::sort(dirs.begin(), dirs.end());
    return dirs;
}

// ROOT/starling, ROOT/*/starling, ROOT/*/*/starling.
std::vector<fs::path> media_dirs(const fs::path& root) {
    std::vector<fs::path> found{root / kMediaDirName};
    for (const fs::path& mount : subdirectories(root)) {
        found.push_back(mount / kMediaDirName);
        for (const fs::path& inner : subdirectories(mount)) found.push_back(inner / kMediaDirName);
    }
    return found;
}

void add_bundles_in(const fs::path& dir, const std::string& hostname,
                    std::vector<fs::path>& out) {
    if (!hostname.empty()) {
        fs::path named = dir / (hostname + std::string(kBundleSuffix));
        if (is_file(named)) out.push_back(std::move(named));
    }
    fs::path generic = dir / kInstalledBundleName;
    if (is_file(generic)) out.push_back(std::move(generic));
}

// Root installs for the node's user: the copy belongs to whoever owns the state directory.
Status give_to_state_dir_owner(const fs::path& file, const fs::path& state_dir) {
    if (::geteuid() != 0) return Ok{};
    struct stat st {};
    if (::stat(state_dir.c_str(), &st) != 0 || st.st_uid == 0) return Ok{};
    if (::chown(file.c_str(), st.st_uid, st.st_gid) != 0)
        return make_error(ErrorCode::io, "chown '" + file.string() + "': " + std::strerror(errno));
    return Ok{};
}

Status ensure_state_dir(const fs::path& dir) {
    std::error_code ec;
    if (fs::is_directory(dir, ec)) return Ok{};
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
        return make_error(ErrorCode::io,
                          "cannot create state directory '" + dir.string() + "': " +
                              std::strerror(errno));
    return Ok{};
}

}  // namespace

std::vector<fs::path> bundle_candidates(const BundleSearch& search) {
    std::vector<fs::path> out;
    const fs::path installed = search.state_dir / kInstalledBundleName;
    if (is_file(installed)) out.push_back(installed);
    add_bundles_in(search.config_dir, search.hostname, out);
    for (const fs::path& root : search.media_roots)
        for (const fs::path& dir : media_dirs(root)) add_bundles_in(dir, search.hostname, out);
    return out;
}

std::string describe_search(const BundleSearch& search) {
    std::string names = search.hostname.empty()
                            ? std::string(kInstalledBundleName)
                            : "{" + search.hostname + std::string(kBundleSuffix) + "," +
                                  std::string(kInstalledBundleName) + "}";
    std::string text = (search.state_dir / kInstalledBundleName).string() + ", " +
                       (search.config_dir / names).string();
    for (const fs::path& root : search.media_roots)
        text += ", " + (root / "[*/[*/]]" / kMediaDirName / names).string();
    return text;
}

Result<InstalledBundle> find_and_install_bundle(const BundleSearch& search) {
    const std::vector<fs::path> candidates = bundle_candidates(search);
    if (candidates.empty())
        return make_error(ErrorCode::not_found,
                          "no enrollment bundle found; searched " + describe_search(search));
    const fs::path installed = search.state_dir / kInstalledBundleName;
    std::string refused;
    for (const fs::path& source : candidates) {
        const bool already = source == installed;
        Result<crypto::EnrollmentBundle> bundle = already
                                                      ? crypto::load_enrollment_bundle(source)
                                                      : crypto::read_bundle_to_install(source);
        if (!bundle) {
            refused += (refused.empty() ? "" : "; ") + bundle.error().message;
            continue;
        }
        InstalledBundle out{std::move(*bundle), installed, source, !already};
        if (already) return out;
        if (Status s = ensure_state_dir(search.state_dir); !s) return s.error();
        if (Status s = crypto::save_enrollment_bundle(out.bundle, installed, {.overwrite = true});
            !s)
            return s.error();
        if (Status s = give_to_state_dir_owner(installed, search.state_dir); !s) return s.error();
        return out;
    }
    return make_error(ErrorCode::invalid_argument, "no valid enrollment bundle: " + refused);
}

Micros RetryBackoff::next() noexcept {
    last_ = last_ == Micros{0} ? kFirstBundleRetry : std::min(last_ * 2, kMaxBundleRetry);
    return last_;
}

}  // namespace starling::firmware

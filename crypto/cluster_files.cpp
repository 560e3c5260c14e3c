// Trust records on disk: each payload sealed in an envelope (protocol/envelope.hpp) and written
// durably; secret files with mode 0600, refused on load when the group or others may read them.
#include <sodium.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <string>
#include <system_error>
#include <vector>

#include "crypto/cluster.hpp"
#include "protocol/durable_file.hpp"
#include "protocol/envelope.hpp"
#include "protocol/limits.hpp"

namespace starling::crypto {
namespace {

namespace fs = std::filesystem;

constexpr std::uint16_t kRecordFileVersion = 1;  // revocation and announcement files
constexpr std::uint32_t kSecretFileMode = 0600;
constexpr std::uint32_t kPublicFileMode = 0644;

// Wipes a buffer that held secret bytes when the scope ends, on every path.
class WipeOnExit {
  public:
    explicit WipeOnExit(std::vector<std::uint8_t>& bytes) : bytes_(bytes) {}
    ~WipeOnExit() { sodium_memzero(bytes_.data(), bytes_.size()); }
    WipeOnExit(const WipeOnExit&) = delete;
    WipeOnExit& operator=(const WipeOnExit&) = delete;

  private:
    std::vector<std::uint8_t>& bytes_;
};

std::string octal(unsigned mode) {
    char text[8];
    std::snprintf(text, sizeof text, "0%03o", mode & 0777u);
    return text;
}

struct FileKind {
    FourCC kind;
    std::uint16_t version;
    std::size_t max_payload_bytes;
    bool secret;
};

constexpr FileKind kClusterFile{kClusterSecretsKind, kClusterSecretsFormatVersion,
                                limits::kMaxClusterSecretsBytes, true};
constexpr FileKind kBundleFile{kEnrollmentBundleKind, kEnrollmentBundleFormatVersion,
                               limits::kMaxEnrollmentBundleBytes, true};
constexpr FileKind kRevocationFile{kRevocationKind, kRecordFileVersion, limits::kMaxRevocationBytes,
                                   false};
constexpr FileKind kAnnouncementFile{kKeyAnnouncementKind, kRecordFileVersion,
                                     limits::kMaxKeyAnnouncementBytes, true};

// Seals `payload` (wiped afterwards) and writes it; refuses to replace a file unless asked.
Status save(const FileKind& kind, std::vector<std::uint8_t> payload, const fs::path& file,
            SaveOptions opts, bool keep_previous) {
    WipeOnExit wipe_payload(payload);
    std::error_code ec;
    if (!opts.overwrite && fs::exists(fs::symlink_status(file, ec)))
        return make_error(ErrorCode::invalid_argument,
                          "'" + file.string() + "' already exists; not replacing it");
    std::vector<std::uint8_t> sealed = seal_envelope(kind.kind, kind.version, payload);
    WipeOnExit wipe_sealed(sealed);
    DurableOptions durable;
    durable.mode = kind.secret ? kSecretFileMode : kPublicFileMode;
    durable.keep_previous = keep_previous;
    return write_file_durably(file, sealed, durable);
}

// Reads and opens the envelope, then hands the payload to `decode`; the file bytes are wiped.
template <class Decode>
auto load(const FileKind& kind, const fs::path& file, Decode decode)
    -> decltype(decode(std::span<const std::uint8_t>{})) {
    if (kind.secret)
        if (Status s = check_secret_file_mode(file); !s) return s.error();
    Result<std::vector<std::uint8_t>> bytes =
        read_file_bounded(file, kEnvelopeHeaderBytes + kind.max_payload_bytes);
    if (!bytes) return bytes.error();
    WipeOnExit wipe(*bytes);
    const auto payload = open_envelope(*bytes, kind.kind, kind.version, file.string());
    if (!payload) return payload.error();
    auto decoded = decode(*payload);
    if (!decoded)
        return make_error(decoded.error().code,
                          "'" + file.string() + "': " + decoded.error().message);
    return decoded;
}

}  // namespace

Status check_secret_file_mode(const fs::path& file) {
    struct stat st {};
    if (::stat(file.c_str(), &st) != 0) {
        const int err = errno;
        return make_error(err == ENOENT ? ErrorCode::not_found : ErrorCode::io,
                          "'" + file.string() + "': " + std::generic_category().message(err));
    }
    if (!S_ISREG(st.st_mode))
        return make_error(ErrorCode::invalid_argument,
                          "'" + file.string() + "' is not a regular file");
    if ((st.st_mode & 077u) != 0)
        return make_error(ErrorCode::insecure,
                          "'" + file.string() + "' has mode " + octal(st.st_mode) +
                              ": the group or others can reach the secret keys in it; run "
                              "'chmod 600 " +
                              file.string() + "' (and consider the keys exposed)");
    return Ok{};
}

Status save_cluster_secrets(const ClusterSecrets& secrets, const fs::path& file, SaveOptions opts) {
    return save(kClusterFile, encode_cluster_secrets(secrets), file, opts, true);
}

Result<ClusterSecrets> load_cluster_secrets(const fs::path& file) {
    return load(kClusterFile, file, decode_cluster_secrets);
}

Status save_enrollment_bundle(const EnrollmentBundle& bundle, const fs::path& file,
                              SaveOptions opts) {
    return save(kBundleFile, encode_enrollment_bundle(bundle), file, opts, false);
}

Result<EnrollmentBundle> load_enrollment_bundle(const fs::path& file) {
    return load(kBundleFile, file, decode_enrollment_bundle);
}

Result<EnrollmentBundle> read_bundle_to_install(const fs::path& file) {
    FileKind unchecked_mode = kBundleFile;
    unchecked_mode.secret = false;
    return load(unchecked_mode, file, decode_enrollment_bundle);
}

Status save_revocation(const Revocation& revocation, const fs::path& file, SaveOptions opts) {
    return save(kRevocationFile, encode_revocation(revocation), file, opts, false);
}

Result<Revocation> load_revocation(const fs::path& file) {
    return load(kRevocationFile, file, decode_revocation);
}

Status save_key_announcement(const KeyEpochAnnouncement& announcement, const fs::path& file,
                             SaveOptions opts) {
    return save(kAnnouncementFile, encode_key_announcement(announcement), file, opts, false);
}

Result<KeyEpochAnnouncement> load_key_announcement(const fs::path& file) {
    return load(kAnnouncementFile, file, decode_key_announcement);
}

}  // namespace starling::crypto

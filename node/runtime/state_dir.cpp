#include "node/runtime/state_dir.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <system_error>
#include <utility>

#include "crypto/cluster.hpp"
#include "protocol/durable_file.hpp"
#include "protocol/envelope.hpp"
#include "protocol/limits.hpp"

namespace starling::runtime {
namespace {

namespace fs = std::filesystem;

constexpr std::uint16_t kNodeStateVersion = 1;
constexpr std::uint16_t kKnownPeersVersion = 1;
constexpr const char* kNodeStateFile = "node.state";
constexpr const char* kKnownPeersFile = "peers.state";
constexpr const char* kLockFile = "lock";
constexpr const char* kRevocationExtension = ".revoked";
// device 16 | u64 incarnation | u32 boot
constexpr std::size_t kNodeStateBytes = crypto::kDeviceIdBytes + 8 + 4;
// u16 count | count x { ip 4 | u16 port | u16 length | certificate }
constexpr std::size_t kPeerHeaderBytes = 4 + 2 + 2;
constexpr std::size_t kMaxKnownPeersBytes =
    kEnvelopeHeaderBytes + 2 + kMaxKnownPeers * (kPeerHeaderBytes + limits::kMaxCertificateBytes);

void put_le(std::vector<std::uint8_t>& out, std::uint64_t v, std::size_t width) {
    for (std::size_t i = 0; i < width; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}

// Reads fixed-width fields; once short, every later read fails too.
class Reader {
public:
    explicit Reader(std::span<const std::uint8_t> bytes) : bytes_(bytes) {}
    bool le(std::size_t width, std::uint64_t& v) {
        if (bytes_.size() < width) return false;
        v = 0;
        for (std::size_t i = 0; i < width; ++i) v |= std::uint64_t{bytes_[i]} << (8 * i);
        bytes_ = bytes_.subspan(width);
        return true;
    }
    bool raw(std::span<std::uint8_t> out) {
        if (bytes_.size() < out.size()) return false;
        std::copy_n(bytes_.begin(), out.size(), out.begin());
        bytes_ = bytes_.subspan(out.size());
        return true;
    }
    bool done() const { return bytes_.empty(); }

private:
    std::span<const std::uint8_t> bytes_;
};

Error corrupt(const fs::path& file, const std::string& what) {
    return make_error(ErrorCode::corrupt, "'" + file.string() + "': " + what);
}

Result<int> lock_directory(const fs::path& dir) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) {
        if (!fs::create_directories(dir, ec) && ec)
            return make_error(ErrorCode::io, "cannot create '" + dir.string() + "': " + ec.message());
        fs::permissions(dir, fs::perms::owner_all, fs::perm_options::replace, ec);
    }
    const fs::path lock = dir / kLockFile;
    const int fd = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return make_error(ErrorCode::io, "cannot open '" + lock.string() + "': " + std::strerror(errno));
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
        ::close(fd);
        return make_error(ErrorCode::io,
                          "another node is running with state directory '" + dir.string() + "'");
    }
    return fd;
}

Result<NodeRecord> read_record(const fs::path& file, const crypto::DeviceId& device) {
    Result<std::vector<std::uint8_t>> bytes =
        read_file_bounded(file, kEnvelopeHeaderBytes + kNodeStateBytes);
    if (!bytes && bytes.error().code == ErrorCode::not_found) return NodeRecord{device, 0, 0};
    if (!bytes) return bytes.error();
    Result<std::span<const std::uint8_t>> payload =
        open_envelope(*bytes, kNodeStateKind, kNodeStateVersion, file.string());
    if (!payload) return payload.error();
    NodeRecord record;
    Reader r(*payload);
    std::uint64_t incarnation = 0, boot = 0;
    if (!r.raw(record.device) || !r.le(8, incarnation) || !r.le(4, boot) || !r.done())
        return corrupt(file, "node state must be " + std::to_string(kNodeStateBytes) + " bytes");
    if (record.device != device)
        return make_error(ErrorCode::invalid_argument,
                          "'" + file.string() + "' belongs to device " +
                              crypto::to_hex(record.device) + ", not to this bundle's");
    record.incarnation = incarnation;
    record.boot = static_cast<std::uint32_t>(boot);
    return record;
}

}  // namespace

StateDir::StateDir(fs::path dir, int lock_fd, NodeRecord record)
    : dir_(std::move(dir)), lock_fd_(lock_fd), record_(record) {}

StateDir::StateDir(StateDir&& other) noexcept
    : dir_(std::move(other.dir_)), lock_fd_(std::exchange(other.lock_fd_, -1)),
      record_(other.record_) {}

StateDir::~StateDir() {
    if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the lock
}

Result<StateDir> StateDir::open(const fs::path& dir, const crypto::DeviceId& device) {
    Result<int> fd = lock_directory(dir);
    if (!fd) return fd.error();
    Result<NodeRecord> record = read_record(dir / kNodeStateFile, device);
    if (!record) {
        ::close(*fd);
        return record.error();
    }
    return StateDir(dir, *fd, *record);
}

Status StateDir::save_record(const NodeRecord& record) {
    std::vector<std::uint8_t> payload(record.device.begin(), record.device.end());
    put_le(payload, record.incarnation, 8);
    put_le(payload, record.boot, 4);
    const auto file = seal_envelope(kNodeStateKind, kNodeStateVersion, payload);
    if (Status s = write_file_durably(dir_ / kNodeStateFile, file, {0600, false}); !s) return s;
    record_ = record;
    return Ok{};
}

Result<std::uint32_t> StateDir::begin_boot() {
    NodeRecord next = record_;
    if (next.boot == UINT32_MAX)
        return make_error(ErrorCode::too_large, "boot counter exhausted: re-enroll this device");
    ++next.boot;
    if (Status s = save_record(next); !s) return s.error();
    return next.boot;
}

Status StateDir::save_incarnation(std::uint64_t incarnation) {
    NodeRecord next = record_;
    next.incarnation = incarnation;
    return save_record(next);
}

Result<std::vector<KnownPeer>> StateDir::load_peers() const {
    const fs::path file = dir_ / kKnownPeersFile;
    Result<std::vector<std::uint8_t>> bytes = read_file_bounded(file, kMaxKnownPeersBytes);
    if (!bytes && bytes.error().code == ErrorCode::not_found) return std::vector<KnownPeer>{};
    if (!bytes) return bytes.error();
    Result<std::span<const std::uint8_t>> payload =
        open_envelope(*bytes, kKnownPeersKind, kKnownPeersVersion, file.string());
    if (!payload) return payload.error();
    Reader r(*payload);
    std::uint64_t count = 0;
    if (!r.le(2, count) || count > kMaxKnownPeers) return corrupt(file, "peer count");
    std::vector<KnownPeer> peers(count);
    for (KnownPeer& p : peers) {
        std::uint64_t port = 0, length = 0;
        if (!r.raw(p.address.ip) || !r.le(2, port) || !r.le(2, length) ||
            length > limits::kMaxCertificateBytes)
            return corrupt(file, "peer entry");
        p.address.port = static_cast<std::uint16_t>(port);
        p.certificate.resize(length);
        if (!r.raw(p.certificate)) return corrupt(file, "peer certificate");
    }
    if (!r.done()) return corrupt(file, "trailing bytes");
    return peers;
}

Status StateDir::save_peers(std::span<const KnownPeer> peers) const {
    const std::size_t n = std::min(peers.size(), kMaxKnownPeers);
    std::vector<std::uint8_t> payload;
    put_le(payload, n, 2);
    for (const KnownPeer& p : peers.first(n)) {
        payload.insert(payload.end(), p.address.ip.begin(), p.address.ip.end());
        put_le(payload, p.address.port, 2);
        put_le(payload, p.certificate.size(), 2);
        payload.insert(payload.end(), p.certificate.begin(), p.certificate.end());
    }
    const auto file = seal_envelope(kKnownPeersKind, kKnownPeersVersion, payload);
    return write_file_durably(dir_ / kKnownPeersFile, file, {0600, false});
}

std::vector<crypto::Revocation> StateDir::load_revocations(const crypto::SignPublicKey& owner,
                                                           const crypto::ClusterId& cluster,
                                                           std::vector<std::string>& refused) const {
    std::vector<crypto::Revocation> revocations;
    std::error_code ec;
    std::size_t seen = 0;
    for (const fs::directory_entry& entry : fs::directory_iterator(dir_, ec)) {
        if (entry.path().extension() != kRevocationExtension || ++seen > kMaxRevocationFiles)
            continue;
        Result<crypto::Revocation> r = crypto::load_revocation(entry.path());
        if (r && !crypto::verify_revocation(*r, owner, cluster)) {
            refused.push_back("'" + entry.path().string() + "': not signed by this cluster's owner");
            continue;
        }
        if (!r) {
            refused.push_back(r.error().message);
            continue;
        }
        revocations.push_back(std::move(*r));
    }
    return revocations;
}

fs::path StateDir::control_socket() const { return control_socket_path(dir_); }

fs::path control_socket_path(const fs::path& state_dir) { return state_dir / "control.sock"; }

}  // namespace starling::runtime

#pragma once
// What a node keeps across restarts in its state directory (mode 0700, one node at a time): its
// incarnation and boot counter, each persisted before it is used, so a restart never reuses a
// datagram counter nor starts below an incarnation peers have seen; the last known peers; and
// revocations the operator dropped in (any *.revoked file, as `starling cluster revoke` writes).

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <vector>

#include "crypto/certificate.hpp"
#include "crypto/keys.hpp"
#include "node/net/address.hpp"
#include "protocol/result.hpp"

namespace starling::runtime {

// Peers remembered for the next start: enough to rejoin through any of them.
inline constexpr std::size_t kMaxKnownPeers = 64;
// Revocation files read at start; each is under limits::kMaxRevocationBytes.
inline constexpr std::size_t kMaxRevocationFiles = 4096;

struct NodeRecord {
    crypto::DeviceId device{};
    std::uint64_t incarnation = 0;  // the last one announced
    std::uint32_t boot = 0;         // the last boot's datagram counter prefix
};

struct KnownPeer {
    net::Ipv4Endpoint address;
    std::vector<std::uint8_t> certificate;  // crypto::encode_certificate bytes
};

class StateDir {
public:
    // Creates `dir` (0700) if needed and locks it; busy (io) when another node holds it;
    // invalid_argument when it belongs to another device; corrupt files are refused, never reset.
    [[nodiscard]] static Result<StateDir> open(const std::filesystem::path& dir,
                                               const crypto::DeviceId& device);
    StateDir(StateDir&& other) noexcept;
    StateDir& operator=(StateDir&&) = delete;
    ~StateDir();

    [[nodiscard]] const NodeRecord& record() const noexcept { return record_; }
    // Persists boot + 1 and returns it: call before sealing anything in this boot.
    [[nodiscard]] Result<std::uint32_t> begin_boot();
    [[nodiscard]] Status save_incarnation(std::uint64_t incarnation);

    // Missing file: none. At most kMaxKnownPeers.
    [[nodiscard]] Result<std::vector<KnownPeer>> load_peers() const;
    [[nodiscard]] Status save_peers(std::span<const KnownPeer> peers) const;

    // Every *.revoked file whose owner signature verifies; others are reported in `refused`.
    [[nodiscard]] std::vector<crypto::Revocation> load_revocations(
        const crypto::SignPublicKey& owner, const crypto::ClusterId& cluster,
        std::vector<std::string>& refused) const;

    [[nodiscard]] std::filesystem::path control_socket() const;
    [[nodiscard]] const std::filesystem::path& path() const noexcept { return dir_; }

private:
    StateDir(std::filesystem::path dir, int lock_fd, NodeRecord record);
    [[nodiscard]] Status save_record(const NodeRecord& record);

    std::filesystem::path dir_;
    int lock_fd_;
    NodeRecord record_;
};

// Where a state directory's control socket is, for `starling members`.
[[nodiscard]] std::filesystem::path control_socket_path(const std::filesystem::path& state_dir);

}  // namespace starling::runtime

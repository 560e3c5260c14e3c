#pragma once
// Refuses a datagram counter seen before or too far behind the newest (RFC 6479 sliding bitmap,
// WireGuard's sizes), so a captured datagram cannot be played back to a node.

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <utility>

#include "crypto/keys.hpp"

namespace starling::crypto {

// One sender's counters under one key epoch. Check before decrypting (cheap, changes nothing);
// mark only after the datagram authenticated, or forged counters would move the window.
class ReplayWindow {
public:
    static constexpr std::size_t kBlockBits = 64;
    static constexpr std::size_t kBlocks = 128;
    // Counters up to this many behind the newest are still judged one by one; one block of the
    // ring is always being recycled, hence 127 × 64 = 8,128 (WireGuard's window).
    static constexpr std::uint64_t kWindowDatagrams = (kBlocks - 1) * kBlockBits;

    // True if `counter` was never marked and is within the window (or newer than all).
    [[nodiscard]] bool is_fresh(std::uint64_t counter) const noexcept;
    // Records an authenticated counter; `is_fresh(counter)` must have held.
    void mark_seen(std::uint64_t counter) noexcept;

private:
    std::uint64_t newest_ = 0;
    std::array<std::uint64_t, kBlocks> bitmap_{};  // ring of blocks, block b at b % kBlocks
};

// The windows of every (sender, epoch) that authenticated, at most `max_windows` of them. Full
// means refusal, never eviction: an evicted window would let its sender's old datagrams replay.
// Windows of retired epochs are dropped by the owner (forget_epochs_where).
class ReplayWindows {
public:
    enum class Verdict : std::uint8_t { fresh, replayed, table_full };

    explicit ReplayWindows(std::size_t max_windows) noexcept : max_windows_(max_windows) {}

    [[nodiscard]] Verdict check(const DeviceId& sender, std::uint32_t epoch,
                                std::uint64_t counter) const noexcept;
    // Records an authenticated counter; check() must have said fresh since the last change.
    void mark_seen(const DeviceId& sender, std::uint32_t epoch, std::uint64_t counter);

    // Drops the windows of every epoch for which `retired(epoch)` is true; returns how many.
    std::size_t forget_epochs_where(const std::function<bool(std::uint32_t)>& retired);
    std::size_t size() const noexcept { return windows_.size(); }

private:
    using Key = std::pair<DeviceId, std::uint32_t>;
    std::size_t max_windows_;
    std::map<Key, ReplayWindow> windows_;  // keys come only from authenticated datagrams
};

}  // namespace starling::crypto

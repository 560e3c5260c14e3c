#include "crypto/replay_window.hpp"

#include <algorithm>
#include <cassert>

namespace starling::crypto {

bool ReplayWindow::is_fresh(std::uint64_t counter) const noexcept {
    if (counter > newest_) return true;
    if (newest_ - counter > kWindowDatagrams) return false;
    const std::uint64_t block = (counter / kBlockBits) % kBlocks;
    const std::uint64_t bit = std::uint64_t{1} << (counter % kBlockBits);
    return (bitmap_[block] & bit) == 0;
}

void ReplayWindow::mark_seen(std::uint64_t counter) noexcept {
    assert(is_fresh(counter));
    if (counter > newest_) {
        // Clear the blocks the window slides over: at most the whole ring.
        const std::uint64_t newest_block = newest_ / kBlockBits;
        const std::uint64_t steps =
            std::min<std::uint64_t>(counter / kBlockBits - newest_block, kBlocks);
        for (std::uint64_t i = 1; i <= steps; ++i) bitmap_[(newest_block + i) % kBlocks] = 0;
        newest_ = counter;
    }
    bitmap_[(counter / kBlockBits) % kBlocks] |= std::uint64_t{1} << (counter % kBlockBits);
}

ReplayWindows::Verdict ReplayWindows::check(const DeviceId& sender, std::uint32_t epoch,
                                            std::uint64_t counter) const noexcept {
    const auto found = windows_.find(Key{sender, epoch});
    if (found == windows_.end())
        return windows_.size() < max_windows_ ? Verdict::fresh : Verdict::table_full;
    return found->second.is_fresh(counter) ? Verdict::fresh : Verdict::replayed;
}

void ReplayWindows::mark_seen(const DeviceId& sender, std::uint32_t epoch, std::uint64_t counter) {
    assert(check(sender, epoch, counter) == Verdict::fresh);
    auto found = windows_.find(Key{sender, epoch});
    if (found == windows_.end()) found = windows_.emplace(Key{sender, epoch}, ReplayWindow{}).first;
    found->second.mark_seen(counter);
}

std::size_t ReplayWindows::forget_epochs_where(const std::function<bool(std::uint32_t)>& retired) {
    return std::erase_if(windows_, [&](const auto& entry) { return retired(entry.first.second); });
}

}  // namespace starling::crypto

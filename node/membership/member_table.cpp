// The member table.
#include "node/membership/member_table.hpp"

#include <cassert>
#include <utility>

namespace starling::membership::detail {

Member* MemberTable::find(const DeviceId& id) {
    const auto it = index_.find(id);
    return it == index_.end() ? nullptr : &members_[it->second];
}

const Member* MemberTable::find(const DeviceId& id) const {
    const auto it = index_.find(id);
    return it == index_.end() ? nullptr : &members_[it->second];
}

Member& MemberTable::add(Member member) {
    const auto [it, inserted] =
        index_.emplace(member.id(), static_cast<std::uint32_t>(members_.size()));
    assert(inserted);
    (void)it;
    (void)inserted;
    members_.push_back(std::move(member));
    return members_.back();
}

void MemberTable::remove(const DeviceId& id) {
    const auto it = index_.find(id);
    if (it == index_.end()) return;
    const std::uint32_t slot = it->second;
    index_.erase(it);
    if (slot + 1 != members_.size()) {
        members_[slot] = std::move(members_.back());
        index_[members_[slot].id()] = slot;
    }
    members_.pop_back();
}

}  // namespace starling::membership::detail

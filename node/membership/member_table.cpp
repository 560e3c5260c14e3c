// The member table.
#include "node/membership/member_table.hpp"

#include <algorithm>
#include <cassert>
#include <utility>

namespace starling::membership::detail {

std::size_t MemberTable::slot_of(const DeviceId& id) const {
    const std::size_t mask = slots_.size() - 1;
    std::size_t slot = DeviceIdHash{}(id) & mask;
    while (slots_[slot] != kEmpty && !DeviceIdEqual{}(members_[slots_[slot]].id(), id))
        slot = (slot + 1) & mask;
    return slot;
}

Member* MemberTable::find(const DeviceId& id) {
    if (slots_.empty()) return nullptr;
    const std::uint32_t at = slots_[slot_of(id)];
    return at == kEmpty ? nullptr : &members_[at];
}

const Member* MemberTable::find(const DeviceId& id) const {
    if (slots_.empty()) return nullptr;
    const std::uint32_t at = slots_[slot_of(id)];
    return at == kEmpty ? nullptr : &members_[at];
}

void MemberTable::grow() {
    slots_.assign(std::max<std::size_t>(16, slots_.size() * 2), kEmpty);
    for (std::uint32_t i = 0; i < members_.size(); ++i) slots_[slot_of(members_[i].id())] = i;
}

Member& MemberTable::add(Member member) {
    assert(find(member.id()) == nullptr);
    if (2 * (members_.size() + 1) > slots_.size()) grow();
    const std::size_t slot = slot_of(member.id());
    slots_[slot] = static_cast<std::uint32_t>(members_.size());
    members_.push_back(std::move(member));
    return members_.back();
}

void MemberTable::remove(const DeviceId& id) {
    if (slots_.empty()) return;
    std::size_t hole = slot_of(id);
    const std::uint32_t at = slots_[hole];
    if (at == kEmpty) return;
    // Backward-shift deletion: later entries of the probe run move into the hole.
    const std::size_t mask = slots_.size() - 1;
    slots_[hole] = kEmpty;
    for (std::size_t next = (hole + 1) & mask; slots_[next] != kEmpty; next = (next + 1) & mask) {
        const std::size_t home = DeviceIdHash{}(members_[slots_[next]].id()) & mask;
        // Move it if its home is not in the cyclic range (hole, next].
        if (((next - home) & mask) >= ((next - hole) & mask)) {
            slots_[hole] = slots_[next];
            slots_[next] = kEmpty;
            hole = next;
        }
    }
    // Keep members_ dense: the last member takes the removed one's place.
    const auto last = static_cast<std::uint32_t>(members_.size() - 1);
    if (at != last) {
        slots_[slot_of(members_[last].id())] = at;
        members_[at] = std::move(members_[last]);
    }
    members_.pop_back();
}

}  // namespace starling::membership::detail

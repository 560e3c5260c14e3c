#pragma once
// The members one node knows (itself excluded): a dense vector for scans and random picks, and an
// index by device id, never by address (addresses change; identity does not).

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "node/membership/types.hpp"

namespace starling::membership::detail {

struct Member {
    SignedRecord record;               // the newest verified statement of its own (alive or left)
    Incarnation incarnation = 0;       // believed: >= record.incarnation once accused at a newer one
    MemberState state = MemberState::alive;
    Time since{};                      // when `state` began
    DeviceId accuser{};                // suspect or dead: the first accuser, passed on with it
    bool refused = false;
    Time deadline = kNever;            // while suspect: when it is declared failed (the
                                       // Suspicion itself lives in Engine::suspicions)

    const DeviceId& id() const noexcept { return record.id; }
    bool live() const noexcept {
        return state == MemberState::alive || state == MemberState::suspect;
    }
    Digest digest() const noexcept { return Digest{record.id, incarnation, state}; }
};

class MemberTable {
public:
    Member* find(const DeviceId& id);
    const Member* find(const DeviceId& id) const;
    Member& add(Member member);  // the id must be new
    void remove(const DeviceId& id);

    std::size_t size() const noexcept { return members_.size(); }
    Member& at(std::size_t index) { return members_[index]; }
    const Member& at(std::size_t index) const { return members_[index]; }
    auto begin() { return members_.begin(); }
    auto end() { return members_.end(); }
    auto begin() const { return members_.begin(); }
    auto end() const { return members_.end(); }

private:
    // Open addressing with linear probing over a power-of-two table at most half full: one
    // cache line per lookup, where a node-based map chases pointers (the simulator runs a
    // thousand of these tables).
    static constexpr std::uint32_t kEmpty = ~std::uint32_t{0};
    std::size_t slot_of(const DeviceId& id) const;
    void grow();

    std::vector<Member> members_;
    std::vector<std::uint32_t> slots_;  // index into members_, or kEmpty
};

}  // namespace starling::membership::detail

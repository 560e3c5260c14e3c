#pragma once
// Dissemination: news about members waiting to be piggybacked, one entry per member (newer news
// replaces older), least-sent first, each retired after a bounded number of transmissions.

#include <cstddef>
#include <cstdint>
#include <set>
#include <tuple>
#include <unordered_map>
#include <variant>
#include <vector>

#include "node/membership/types.hpp"

namespace starling::membership::detail {

class BroadcastQueue {
public:
    void push(const SignedRecord& record) { push(record.id, record); }
    void push(const Accusation& accusation) { push(accusation.id, accusation); }
    void forget(const DeviceId& id);

    bool empty() const noexcept { return entries_.empty(); }
    std::size_t size() const noexcept { return entries_.size(); }

    // Appends the least-sent updates that fit `budget_bytes` (records and accusations at their
    // wire sizes, at most limits::kMax*PerMessage of each); each counts one transmission and is
    // retired once sent `transmit_limit` times.
    void take(std::size_t budget_bytes, std::uint32_t transmit_limit,
              std::vector<SignedRecord>& records, std::vector<Accusation>& accusations);

private:
    using Update = std::variant<SignedRecord, Accusation>;
    // Fewest transmissions first, then newest first.
    using Key = std::tuple<std::uint32_t, std::uint64_t, DeviceId>;
    struct Entry {
        Update update;
        std::uint32_t transmits = 0;
        std::uint64_t age = 0;  // decreasing stamp: smaller is newer
    };
    void push(const DeviceId& id, Update update);

    std::unordered_map<DeviceId, Entry, DeviceIdHash> entries_;
    std::set<Key> order_;
    std::uint64_t next_age_ = ~std::uint64_t{0};
};

}  // namespace starling::membership::detail

#pragma once
// Dissemination: news about members waiting to be piggybacked, one entry per member (newer news
// replaces older), least-sent first, each retired after a bounded number of transmissions.

#include <cstddef>
#include <cstdint>
#include <map>
#include <utility>
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
    struct Entry {
        Update update;
        std::uint32_t transmits = 0;
        std::uint64_t age = 0;  // decreasing stamp: smaller is newer
    };
    // Fewest transmissions first, then newest first; records and accusations apart, so picking
    // what fits never walks past what does not.
    using Key = std::pair<std::uint32_t, std::uint64_t>;
    using Order = std::map<Key, DeviceId>;
    void push(const DeviceId& id, Update update);
    Order& order_of(const Entry& entry) {
        return std::holds_alternative<SignedRecord>(entry.update) ? records_ : accusations_;
    }

    DeviceIdMap<Entry> entries_;
    Order records_;
    Order accusations_;
    std::uint64_t next_age_ = ~std::uint64_t{0};
    std::vector<DeviceId> taken_;  // scratch of take()
};

}  // namespace starling::membership::detail

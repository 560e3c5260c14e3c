// The piggyback queue.
#include "node/membership/broadcasts.hpp"

#include "node/membership/limits.hpp"

namespace starling::membership::detail {

void BroadcastQueue::push(const DeviceId& id, Update update) {
    auto [it, inserted] = entries_.try_emplace(id);
    if (!inserted) order_.erase(Key{it->second.transmits, it->second.age, id});
    it->second = Entry{std::move(update), 0, next_age_--};
    order_.insert(Key{0, it->second.age, id});
}

void BroadcastQueue::forget(const DeviceId& id) {
    const auto it = entries_.find(id);
    if (it == entries_.end()) return;
    order_.erase(Key{it->second.transmits, it->second.age, id});
    entries_.erase(it);
}

void BroadcastQueue::take(std::size_t budget_bytes, std::uint32_t transmit_limit,
                          std::vector<SignedRecord>& records,
                          std::vector<Accusation>& accusations) {
    // Looks at a bounded prefix of the order: a full packet needs far fewer.
    constexpr std::size_t kMaxExamined = 64;
    std::vector<Key> taken;
    std::size_t examined = 0;
    for (auto it = order_.begin(); it != order_.end() && examined < kMaxExamined &&
                                   budget_bytes >= limits::kAccusationWireBytes;
         ++it, ++examined) {
        const Entry& entry = entries_.at(std::get<2>(*it));
        if (const auto* record = std::get_if<SignedRecord>(&entry.update)) {
            if (budget_bytes < limits::kSignedRecordWireBytes ||
                records.size() >= limits::kMaxRecordsPerMessage)
                continue;
            records.push_back(*record);
            budget_bytes -= limits::kSignedRecordWireBytes;
        } else {
            if (accusations.size() >= limits::kMaxAccusationsPerMessage) continue;
            accusations.push_back(std::get<Accusation>(entry.update));
            budget_bytes -= limits::kAccusationWireBytes;
        }
        taken.push_back(*it);
    }
    for (const Key& key : taken) {
        order_.erase(key);
        const DeviceId& id = std::get<2>(key);
        Entry& entry = entries_.at(id);
        if (++entry.transmits >= transmit_limit) {
            entries_.erase(id);
        } else {
            order_.insert(Key{entry.transmits, entry.age, id});
        }
    }
}

}  // namespace starling::membership::detail

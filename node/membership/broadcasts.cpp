// The piggyback queue.
#include "node/membership/broadcasts.hpp"

#include "node/membership/limits.hpp"

namespace starling::membership::detail {

void BroadcastQueue::push(const DeviceId& id, Update update) {
    auto [it, inserted] = entries_.try_emplace(id);
    if (!inserted) order_of(it->second).erase(Key{it->second.transmits, it->second.age});
    it->second = Entry{std::move(update), 0, next_age_--};
    order_of(it->second).emplace(Key{0, it->second.age}, id);
}

void BroadcastQueue::forget(const DeviceId& id) {
    const auto it = entries_.find(id);
    if (it == entries_.end()) return;
    order_of(it->second).erase(Key{it->second.transmits, it->second.age});
    entries_.erase(it);
}

void BroadcastQueue::take(std::size_t budget_bytes, std::uint32_t transmit_limit,
                          std::vector<SignedRecord>& records,
                          std::vector<Accusation>& accusations) {
    taken_.clear();
    auto next_record = records_.begin();
    auto next_accusation = accusations_.begin();
    while (true) {
        const bool record_fits = next_record != records_.end() &&
                                 budget_bytes >= limits::kSignedRecordWireBytes &&
                                 records.size() < limits::kMaxRecordsPerMessage;
        const bool accusation_fits = next_accusation != accusations_.end() &&
                                     budget_bytes >= limits::kAccusationWireBytes &&
                                     accusations.size() < limits::kMaxAccusationsPerMessage;
        if (!record_fits && !accusation_fits) break;
        // The less sent of the two heads goes first.
        if (record_fits && (!accusation_fits || next_record->first < next_accusation->first)) {
            records.push_back(std::get<SignedRecord>(entries_.at(next_record->second).update));
            budget_bytes -= limits::kSignedRecordWireBytes;
            taken_.push_back((next_record++)->second);
        } else {
            accusations.push_back(std::get<Accusation>(entries_.at(next_accusation->second).update));
            budget_bytes -= limits::kAccusationWireBytes;
            taken_.push_back((next_accusation++)->second);
        }
    }
    for (const DeviceId& id : taken_) {
        Entry& entry = entries_.at(id);
        Order& order = order_of(entry);
        order.erase(Key{entry.transmits, entry.age});
        if (++entry.transmits >= transmit_limit) {
            entries_.erase(id);
        } else {
            order.emplace(Key{entry.transmits, entry.age}, id);
        }
    }
}

}  // namespace starling::membership::detail

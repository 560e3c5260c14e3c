#pragma once
// Lifeguard's dynamic suspicion: a suspicion starts with a long timeout that shrinks as
// independent members confirm it, so one node's bad network cannot fail a healthy peer quickly
// while a real failure, seen by many, is declared fast.

#include <array>
#include <cstddef>
#include <cstdint>

#include "node/membership/limits.hpp"
#include "node/membership/types.hpp"

namespace starling::membership::detail {

// max(min, max - (max - min) * log(C + 1) / log(K + 1)): C confirmations of K expected.
[[nodiscard]] Duration suspicion_timeout(Duration min, Duration max, std::uint32_t confirmations,
                                         std::uint32_t expected) noexcept;

// One open suspicion: when it began, who accused (the first accuser and up to
// kMaxSuspicionAccusers - 1 confirmations), and whether a host refused a probe.
class Suspicion {
public:
    Suspicion(Time started, const DeviceId& first_accuser, bool refused);

    Time started() const noexcept { return started_; }
    bool refused() const noexcept { return refused_; }
    std::uint32_t confirmations() const noexcept { return count_ - 1; }

    // True if `accuser` is news (a new confirmation, or the first refused probe): the caller
    // recomputes the deadline and passes the accusation on.
    [[nodiscard]] bool on_accused(const DeviceId& accuser, bool refused);

    // The pull before the deadline (limits::kMaxSuspicionQueries): how many were sent, and when
    // the next one is due (kNever: none scheduled).
    std::uint32_t queries_sent = 0;
    Time next_query = kNever;

private:
    Time started_;
    std::array<DeviceId, limits::kMaxSuspicionAccusers> accusers_{};
    std::uint32_t count_ = 0;
    bool refused_ = false;
};

}  // namespace starling::membership::detail

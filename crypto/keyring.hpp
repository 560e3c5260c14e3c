#pragma once
// The cluster-wide datagram keys a node holds, by epoch, so the owner can rotate them with
// install → use → remove and no node ever drops traffic from a peer a rotation step behind.
// Sans-I/O: every time is an input (unix seconds); nothing here reads a clock or a file.
//
// An epoch is accepted for receiving from the moment it is installed until `not_after` (plus the
// ring's clock-skew allowance), and used for sending from `not_before`. A rotation installs the
// new epoch ahead of its `not_before` and caps every older epoch's `not_after` at the end of the
// overlap window (retire_older), so senders switch only once receivers can already read it.
// Windows only ever narrow: replaying an old announcement cannot reopen a retired key.

#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "crypto/keys.hpp"
#include "protocol/result.hpp"

namespace starling::crypto {

// `not_after` of an epoch no rotation has retired yet.
inline constexpr std::uint64_t kNoExpiry = std::numeric_limits<std::uint64_t>::max();

// How far a receiver's clock may run ahead of the owner's before a just-retired epoch is
// refused: edge devices without a real-time clock drift by minutes between NTP syncs.
inline constexpr std::uint64_t kDefaultKeyClockSkewSeconds = 300;

struct NetworkKeyEpoch {
    std::uint32_t epoch = 0;  // 1, 2, ...
    SymmetricKey key;
    std::uint64_t not_before = 0;         // unix seconds: senders use it from here
    std::uint64_t not_after = kNoExpiry;  // unix seconds, inclusive: accepted until here

    // An independent copy (secrets are move-only; copying one is always deliberate).
    [[nodiscard]] NetworkKeyEpoch clone() const;
};

class NetworkKeyRing {
  public:
    explicit NetworkKeyRing(std::uint64_t clock_skew_seconds = kDefaultKeyClockSkewSeconds)
        : skew_seconds_(clock_skew_seconds) {}

    // Adds an epoch the owner announced (the caller has checked the owner's signature).
    // Installing a known epoch again with the same key narrows its window to the intersection;
    // with a different key it is refused (corrupt). Refused too: epoch 0, not_before > not_after,
    // an epoch below one already retired or forgotten (invalid_argument), and, when the ring
    // holds limits::kMaxNetworkKeyEpochs, an epoch older than all of them (too_large); otherwise
    // a full ring forgets its oldest epoch.
    [[nodiscard]] Status install(NetworkKeyEpoch epoch);

    // Every epoch below `epoch` is accepted until `not_after` at the latest, and epochs below it
    // that are not held are never installed again.
    void retire_older(std::uint32_t epoch, std::uint64_t not_after);

    // Drops epochs whose window (plus skew) ended before `now`; they are never installed again.
    void forget_expired(std::uint64_t now);

    // The key to seal with at `now`: the highest epoch with not_before <= now <= not_after;
    // nullptr when none is usable (not enrolled yet, or every key expired: re-enroll).
    [[nodiscard]] const NetworkKeyEpoch* current(std::uint64_t now) const;

    // The key to open a datagram sealed under `epoch` at `now`; nullptr when that epoch is
    // unknown or its window (plus skew) has ended.
    [[nodiscard]] const NetworkKeyEpoch* accept(std::uint32_t epoch, std::uint64_t now) const;

    // Held epochs, ascending.
    [[nodiscard]] const std::vector<NetworkKeyEpoch>& epochs() const noexcept { return epochs_; }
    [[nodiscard]] std::uint64_t clock_skew_seconds() const noexcept { return skew_seconds_; }
    // Epochs below this were retired or forgotten and are refused by install().
    [[nodiscard]] std::uint32_t retired_below() const noexcept { return retired_below_; }

    [[nodiscard]] NetworkKeyRing clone() const;

  private:
    NetworkKeyEpoch* find(std::uint32_t epoch);

    std::vector<NetworkKeyEpoch> epochs_;
    std::uint64_t skew_seconds_;
    std::uint32_t retired_below_ = 1;
};

}  // namespace starling::crypto

#pragma once
// Handshakes cost DH and signature work before anyone is authenticated, so each source address
// gets a token bucket (WireGuard's 20 per second, burst of 5) in a table of bounded size.
// Sans-I/O: monotonic milliseconds are passed in. Threading: one thread per object.

#include <array>
#include <cstddef>
#include <cstdint>
#include <unordered_map>

#include "protocol/limits.hpp"

namespace starling::crypto {

// An IPv6 address, or an IPv4 one mapped into IPv6 (::ffff:a.b.c.d). Ports are not part of it:
// a host must not earn more handshakes by opening more sockets.
using SourceAddress = std::array<std::uint8_t, 16>;

class HandshakeRateLimiter {
public:
    explicit HandshakeRateLimiter(std::size_t max_sources = limits::kMaxRateLimitedSources,
                                  std::uint32_t per_second = limits::kHandshakesPerSecondPerSource,
                                  std::uint32_t burst = limits::kHandshakeBurstPerSource);

    // A handshake message arrived from `source`: true if it may be processed now, false if it
    // must be dropped unanswered (over the rate, or a new source while the table is full).
    [[nodiscard]] bool admit(const SourceAddress& source, std::uint64_t now_ms);

    std::size_t tracked_sources() const noexcept { return buckets_.size(); }

private:
    struct Bucket {
        std::uint64_t budget_us;  // credit, as microseconds of refill; one token costs cost_us_
        std::uint64_t last_ms;
    };
    // Keyed SipHash (crypto_shorthash): sources are attacker-chosen, so the table must not be.
    struct KeyedHash {
        std::array<std::uint8_t, 16> key;
        static KeyedHash random();
        std::size_t operator()(const SourceAddress& source) const noexcept;
    };

    // Drops buckets that have refilled completely: they hold no state a fresh one would not.
    void sweep(std::uint64_t now_ms);

    std::size_t max_sources_;
    std::uint64_t cost_us_;      // refill time of one token
    std::uint64_t capacity_us_;  // refill time of a full bucket
    std::uint64_t last_sweep_ms_ = 0;
    bool swept_once_ = false;
    std::unordered_map<SourceAddress, Bucket, KeyedHash> buckets_;
};

}  // namespace starling::crypto

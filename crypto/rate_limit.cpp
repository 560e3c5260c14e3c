#include "crypto/rate_limit.hpp"

#include <sodium.h>

#include <algorithm>
#include <cassert>
#include <cstring>

#include "crypto/keys.hpp"

namespace starling::crypto {
namespace {

constexpr std::uint64_t kMicrosPerSecond = 1'000'000;
constexpr std::uint64_t kMicrosPerMilli = 1'000;

std::uint64_t elapsed_us(std::uint64_t since_ms, std::uint64_t now_ms) noexcept {
    return now_ms > since_ms ? (now_ms - since_ms) * kMicrosPerMilli : 0;  // never backwards
}

}  // namespace

HandshakeRateLimiter::KeyedHash HandshakeRateLimiter::KeyedHash::random() {
    KeyedHash hash{};
    random_bytes(hash.key);
    return hash;
}

std::size_t HandshakeRateLimiter::KeyedHash::operator()(
    const SourceAddress& source) const noexcept {
    static_assert(crypto_shorthash_KEYBYTES == 16 && crypto_shorthash_BYTES == 8);
    std::array<std::uint8_t, crypto_shorthash_BYTES> digest{};
    crypto_shorthash(digest.data(), source.data(), source.size(), key.data());
    std::uint64_t value = 0;
    std::memcpy(&value, digest.data(), sizeof value);
    return static_cast<std::size_t>(value);
}

HandshakeRateLimiter::HandshakeRateLimiter(std::size_t max_sources, std::uint32_t per_second,
                                           std::uint32_t burst)
    : max_sources_(max_sources),
      cost_us_(kMicrosPerSecond / std::max<std::uint32_t>(per_second, 1)),
      capacity_us_(cost_us_ * std::max<std::uint32_t>(burst, 1)),
      buckets_(0, KeyedHash::random()) {
    assert(max_sources > 0);
    buckets_.reserve(max_sources_);
}

void HandshakeRateLimiter::sweep(std::uint64_t now_ms) {
    std::erase_if(buckets_, [&](const auto& entry) {
        return entry.second.budget_us + elapsed_us(entry.second.last_ms, now_ms) >= capacity_us_;
    });
    last_sweep_ms_ = now_ms;
    swept_once_ = true;
}

bool HandshakeRateLimiter::admit(const SourceAddress& source, std::uint64_t now_ms) {
    auto it = buckets_.find(source);
    if (it == buckets_.end()) {
        if (buckets_.size() >= max_sources_) {
            // Sweeping is O(table): at most once per bucket refill time, so a flood of new
            // (spoofed) sources cannot turn every packet into a full scan.
            const bool may_sweep =
                !swept_once_ || elapsed_us(last_sweep_ms_, now_ms) >= capacity_us_;
            if (may_sweep) sweep(now_ms);
            if (buckets_.size() >= max_sources_) return false;
        }
        buckets_.emplace(source, Bucket{capacity_us_ - cost_us_, now_ms});
        return true;
    }
    Bucket& bucket = it->second;
    bucket.budget_us =
        std::min(capacity_us_, bucket.budget_us + elapsed_us(bucket.last_ms, now_ms));
    bucket.last_ms = std::max(bucket.last_ms, now_ms);
    if (bucket.budget_us < cost_us_) return false;
    bucket.budget_us -= cost_us_;
    return true;
}

}  // namespace starling::crypto

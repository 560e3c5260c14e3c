#include "crypto/keyring.hpp"

#include <algorithm>
#include <string>
#include <utility>

#include "protocol/limits.hpp"

namespace starling::crypto {
namespace {

std::uint64_t saturating_add(std::uint64_t a, std::uint64_t b) noexcept {
    return a > kNoExpiry - b ? kNoExpiry : a + b;
}

Error refuse(ErrorCode code, std::uint32_t epoch, const std::string& why) {
    return make_error(code, "network key epoch " + std::to_string(epoch) + ": " + why);
}

}  // namespace

NetworkKeyEpoch NetworkKeyEpoch::clone() const {
    NetworkKeyEpoch copy;
    copy.epoch = epoch;
    std::copy(key.bytes().begin(), key.bytes().end(), copy.key.bytes().begin());
    copy.not_before = not_before;
    copy.not_after = not_after;
    return copy;
}

NetworkKeyEpoch* NetworkKeyRing::find(std::uint32_t epoch) {
    const auto it = std::find_if(epochs_.begin(), epochs_.end(),
                                 [epoch](const NetworkKeyEpoch& e) { return e.epoch == epoch; });
    return it == epochs_.end() ? nullptr : &*it;
}

Status NetworkKeyRing::install(NetworkKeyEpoch epoch) {
    if (epoch.epoch == 0) return refuse(ErrorCode::invalid_argument, 0, "epochs start at 1");
    if (epoch.not_before > epoch.not_after)
        return refuse(ErrorCode::invalid_argument, epoch.epoch, "not_before is after not_after");
    if (NetworkKeyEpoch* held = find(epoch.epoch)) {
        if (!equal_constant_time(held->key.bytes(), epoch.key.bytes()))
            return refuse(ErrorCode::corrupt, epoch.epoch, "already installed with another key");
        held->not_before = std::max(held->not_before, epoch.not_before);
        held->not_after = std::min(held->not_after, epoch.not_after);
        return Ok{};
    }
    if (epoch.epoch < retired_below_)
        return refuse(
            ErrorCode::invalid_argument, epoch.epoch,
            "already retired (epochs below " + std::to_string(retired_below_) + " are refused)");
    if (epochs_.size() >= limits::kMaxNetworkKeyEpochs) {
        if (epoch.epoch < epochs_.front().epoch)
            return refuse(ErrorCode::too_large, epoch.epoch,
                          "older than every epoch of a full ring");
        retired_below_ = epochs_.front().epoch + 1;
        epochs_.erase(epochs_.begin());
    }
    const auto at = std::upper_bound(
        epochs_.begin(), epochs_.end(), epoch.epoch,
        [](std::uint32_t number, const NetworkKeyEpoch& e) { return number < e.epoch; });
    epochs_.insert(at, std::move(epoch));
    return Ok{};
}

void NetworkKeyRing::retire_older(std::uint32_t epoch, std::uint64_t not_after) {
    for (NetworkKeyEpoch& e : epochs_)
        if (e.epoch < epoch) e.not_after = std::min(e.not_after, not_after);
    retired_below_ = std::max(retired_below_, epoch);
}

void NetworkKeyRing::forget_expired(std::uint64_t now) {
    const auto expired = [&](const NetworkKeyEpoch& e) {
        return saturating_add(e.not_after, skew_seconds_) < now;
    };
    for (const NetworkKeyEpoch& e : epochs_)
        if (expired(e)) retired_below_ = std::max(retired_below_, e.epoch + 1);
    std::erase_if(epochs_, expired);
}

const NetworkKeyEpoch* NetworkKeyRing::current(std::uint64_t now) const {
    for (auto it = epochs_.rbegin(); it != epochs_.rend(); ++it)
        if (it->not_before <= now && now <= it->not_after) return &*it;
    return nullptr;
}

const NetworkKeyEpoch* NetworkKeyRing::accept(std::uint32_t epoch, std::uint64_t now) const {
    for (const NetworkKeyEpoch& e : epochs_)
        if (e.epoch == epoch)
            return now <= saturating_add(e.not_after, skew_seconds_) ? &e : nullptr;
    return nullptr;
}

NetworkKeyRing NetworkKeyRing::clone() const {
    NetworkKeyRing copy(skew_seconds_);
    copy.retired_below_ = retired_below_;
    copy.epochs_.reserve(epochs_.size());
    for (const NetworkKeyEpoch& e : epochs_) copy.epochs_.push_back(e.clone());
    return copy;
}

}  // namespace starling::crypto

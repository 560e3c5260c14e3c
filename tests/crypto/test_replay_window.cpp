// The replay window against a plain model (a set of every counter seen), at its exact edges and
// across jumps larger than the ring; and the bounded table of windows.
#include <doctest/doctest.h>

#include <cstdint>
#include <random>
#include <set>

#include "crypto/replay_window.hpp"

using starling::crypto::DeviceId;
using starling::crypto::ReplayWindow;
using starling::crypto::ReplayWindows;

namespace {

constexpr std::uint64_t kWindow = ReplayWindow::kWindowDatagrams;

// What the window must answer, without bitmaps: unseen and at most kWindow behind the newest.
struct ModelWindow {
    std::set<std::uint64_t> seen;
    bool is_fresh(std::uint64_t counter) const {
        if (seen.count(counter) != 0) return false;
        return seen.empty() || counter > *seen.rbegin() || *seen.rbegin() - counter <= kWindow;
    }
};

bool accept(ReplayWindow& window, std::uint64_t counter) {
    if (!window.is_fresh(counter)) return false;
    window.mark_seen(counter);
    return true;
}

}  // namespace

TEST_CASE("window size is WireGuard's 8,128") {
    CHECK(kWindow == 8128);
}

TEST_CASE("in-order counters pass once; 0 is a valid first counter") {
    ReplayWindow window;
    for (std::uint64_t c = 0; c < 300; ++c) CHECK(accept(window, c));
    for (std::uint64_t c = 0; c < 300; ++c) CHECK_FALSE(window.is_fresh(c));
}

TEST_CASE("reordered within the window passes once; the edge is exact") {
    ReplayWindow window;
    const std::uint64_t newest = 100000;
    CHECK(accept(window, newest));
    CHECK(accept(window, newest - 1));
    CHECK(accept(window, newest - kWindow));
    CHECK_FALSE(accept(window, newest - kWindow));
    CHECK_FALSE(window.is_fresh(newest - kWindow - 1));
    CHECK_FALSE(window.is_fresh(0));
    CHECK(accept(window, newest - 5000));
    CHECK_FALSE(accept(window, newest - 5000));
}

TEST_CASE("is_fresh changes nothing; only mark_seen moves the window") {
    ReplayWindow window;
    CHECK(window.is_fresh(1000000));
    CHECK(accept(window, 10));  // the peek above did not slide the window past 10
}

TEST_CASE("sliding by more than the ring clears stale bits") {
    ReplayWindow window;
    for (std::uint64_t c = 0; c < 64; ++c) CHECK(accept(window, c));  // block 0 full
    CHECK(accept(window, 127 * 64 + 10));  // block 127: counters >= 10 still in the window
    CHECK_FALSE(window.is_fresh(10));
    CHECK(accept(window, 128 * 64));  // block 128 reuses block 0's slot: cleared, and 0..63 old
    CHECK(accept(window, 64));        // exactly kWindow behind: block 1 was never marked
    for (std::uint64_t c = 0; c < 64; ++c) CHECK_FALSE(window.is_fresh(c));
    CHECK(accept(window, std::uint64_t{5} << 40));  // far jump: whole ring cleared
    CHECK(accept(window, (std::uint64_t{5} << 40) - kWindow));
    CHECK_FALSE(window.is_fresh(128 * 64));
}

TEST_CASE("agrees with the model on random traffic around a moving head") {
    for (const std::uint64_t seed : {1u, 2u, 3u}) {
        CAPTURE(seed);
        std::mt19937_64 rng(seed);
        ReplayWindow window;
        ModelWindow model;
        std::uint64_t head = 0;
        for (int step = 0; step < 50000; ++step) {
            const auto r = rng() % 100;
            std::uint64_t counter = 0;
            if (r < 40)
                counter = head + rng() % 70;  // mostly forward
            else if (r < 45)
                counter = head + rng() % 20000;  // jumps
            else
                counter = head > 0 ? head - rng() % std::min<std::uint64_t>(head, 9000) : 0;
            const bool fresh = model.is_fresh(counter);
            REQUIRE(window.is_fresh(counter) == fresh);
            if (fresh && rng() % 4 != 0) {  // some fresh datagrams fail authentication
                window.mark_seen(counter);
                model.seen.insert(counter);
                head = std::max(head, counter);
            }
        }
    }
}

TEST_CASE("the table keeps one window per sender and epoch, and a hard bound") {
    ReplayWindows table(2);
    DeviceId a{}, b{};
    b[0] = 1;
    using V = ReplayWindows::Verdict;
    REQUIRE(table.check(a, 1, 5) == V::fresh);
    table.mark_seen(a, 1, 5);
    CHECK(table.check(a, 1, 5) == V::replayed);
    CHECK(table.check(a, 2, 5) == V::fresh);  // another epoch: another window
    CHECK(table.check(b, 1, 5) == V::fresh);
    table.mark_seen(b, 1, 5);
    CHECK(table.size() == 2);
    CHECK(table.check(a, 2, 5) == V::table_full);
    CHECK(table.check(a, 1, 6) == V::fresh);  // known windows keep working when full
    CHECK(table.forget_epochs_where([](std::uint32_t epoch) { return epoch == 1; }) == 2);
    CHECK(table.check(a, 2, 5) == V::fresh);
    CHECK(table.check(a, 1, 5) == V::fresh);  // forgotten: a retired epoch must refuse upstream
}

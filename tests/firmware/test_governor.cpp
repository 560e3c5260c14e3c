#include <doctest/doctest.h>

#include <chrono>

#include "firmware/governor.hpp"

using namespace starling::firmware;
using namespace std::chrono_literals;

namespace {

// A trainer on a fake clock: each step takes `step` of wall time on `threads` cores.
struct FakeTrainer {
    Readings host;
    Micros step = 10ms;
    int threads = 4;

    void run_step() {
        host.now += step;
        host.own_cpu_time += step * threads;
    }
    void sleep(Micros d) { host.now += d; }
};

GovernorLimits four_cores(unsigned budget) {
    GovernorLimits l;
    l.logical_cores = 4;
    l.cpu_budget_percent = budget;
    return l;
}

// Runs the trainer for `wall` of fake time under a DutyCycle; returns the last decision.
Decision run_for(FakeTrainer& t, DutyCycle& duty, Micros wall) {
    const Micros end = t.host.now + wall;
    while (t.host.now < end) {
        const Micros wait = duty.between_steps();
        if (wait == 0us)
            t.run_step();
        else
            t.sleep(wait);
    }
    return duty.last_decision();
}

}  // namespace

TEST_CASE("duty cycling keeps a 4-thread trainer within a 25% budget over a minute") {
    FakeTrainer t;
    DutyCycle duty(four_cores(25), [&] { return t.host; });
    run_for(t, duty, 60s);
    CHECK(duty.governor().cpu_share() == doctest::Approx(0.25).epsilon(0.03 / 0.25));
}

TEST_CASE("the budget scales: 50% of 4 cores with one thread is never limited") {
    FakeTrainer t;
    t.threads = 1;
    DutyCycle duty(four_cores(50), [&] { return t.host; });
    run_for(t, duty, 10s);
    CHECK(duty.governor().cpu_share() == doctest::Approx(0.25).epsilon(0.02));
}

TEST_CASE("CPU pressure pauses training; it resumes only after staying calm, with hysteresis") {
    FakeTrainer t;
    t.threads = 1;
    Governor g(four_cores(100));
    CHECK(g.on_sample(t.host).run);

    t.host.now += 1s;
    t.host.pressure.cpu = 55.0;  // above 40
    Decision d = g.on_sample(t.host);
    CHECK_FALSE(d.run);
    CHECK(d.reason == PauseReason::cpu_pressure);
    CHECK(d.wait == kPausedRecheck);

    t.host.now += 1s;
    t.host.pressure.cpu = 30.0;  // under the threshold, above the resume level (20)
    CHECK_FALSE(g.on_sample(t.host).run);

    t.host.pressure.cpu = 5.0;
    for (int i = 0; i < 10; ++i) {
        t.host.now += 1s;
        d = g.on_sample(t.host);
        CHECK_FALSE(d.run);  // held for kResumeHold
    }
    t.host.now += 1s;
    CHECK(g.on_sample(t.host).run);
}

TEST_CASE("heat, memory and IO pressure each pause training") {
    FakeTrainer t;
    t.host.mem_available_bytes = std::uint64_t{1} << 30;
    Governor g(four_cores(100));
    CHECK(g.on_sample(t.host).run);

    t.host.now += 1s;
    t.host.hottest_celsius = 85.0;
    CHECK(g.on_sample(t.host).reason == PauseReason::thermal);
    t.host.now += 20s;
    t.host.hottest_celsius = 77.0;  // under 80 but not 5 degrees under: still paused
    CHECK(g.on_sample(t.host).reason == PauseReason::thermal);
    t.host.hottest_celsius = 60.0;
    t.host.now += 1s;
    CHECK_FALSE(g.on_sample(t.host).run);
    t.host.now += kResumeHold;
    CHECK(g.on_sample(t.host).run);

    t.host.now += 1s;
    t.host.mem_available_bytes = 100u << 20;
    CHECK(g.on_sample(t.host).reason == PauseReason::low_memory);

    t.host.mem_available_bytes = std::uint64_t{1} << 30;
    t.host.pressure.io = 31.0;
    t.host.now += 1s;
    CHECK(g.on_sample(t.host).reason == PauseReason::io_pressure);
    t.host.pressure.memory = 11.0;
    t.host.now += 1s;
    CHECK(g.on_sample(t.host).reason == PauseReason::memory_pressure);
    CHECK(to_string(PauseReason::memory_pressure) == "memory pressure");
}

TEST_CASE("idle time banks at most kMaxBankedWall of budget") {
    FakeTrainer t;
    Governor g(four_cores(25));
    CHECK(g.on_sample(t.host).run);
    t.host.now += 1h;  // an hour idle
    CHECK(g.on_sample(t.host).run);
    // 4 threads spend 4 core-seconds per wall second against 1 of budget: the bank (2 s of
    // budget = 2 core-seconds) lasts under a second of wall time.
    int steps = 0;
    while (g.on_sample(t.host).run && steps < 1000) {
        t.run_step();
        ++steps;
    }
    CHECK(steps < 100);
}

TEST_CASE("other processes keeping the machine busy pause training, which resumes once calm") {
    FakeTrainer t;
    t.threads = 1;
    GovernorLimits limits = four_cores(100);
    limits.busy_cpu_percent = 75;
    // The device's own work: `others` cores busy besides the trainer, seen in /proc/stat.
    double others = 0.5;
    Micros busy{1'000'000};
    Micros last = t.host.now;
    DutyCycle duty(limits, [&] {
        busy += Micros{static_cast<Micros::rep>((t.host.now - last).count() * others)};
        last = t.host.now;
        t.host.load = {t.host.now, busy + t.host.own_cpu_time, t.host.own_cpu_time};
        return t.host;
    });
    CHECK(run_for(t, duty, 5s).run);
    CHECK(duty.governor().others_share() == doctest::Approx(0.125).epsilon(0.05));

    others = 3.5;  // 87.5% of 4 cores
    const Decision busy_now = run_for(t, duty, 3s);
    CHECK_FALSE(busy_now.run);
    CHECK(busy_now.reason == PauseReason::busy);
    CHECK(to_string(busy_now.reason) == "device busy");

    others = 1.0;  // 25%: under half the threshold, but only after kResumeHold of calm
    CHECK_FALSE(run_for(t, duty, kResumeHold - 2s).run);
    CHECK(run_for(t, duty, 5s).run);
}

TEST_CASE("without /proc/stat readings, load never pauses training") {
    FakeTrainer t;
    t.threads = 1;
    DutyCycle duty(four_cores(100), [&] { return t.host; });
    CHECK(run_for(t, duty, 5s).run);
    CHECK(duty.governor().others_share() == 0.0);
}

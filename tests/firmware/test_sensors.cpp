#include <doctest/doctest.h>

#include <sched.h>
#include <sys/resource.h>

#include <filesystem>
#include <fstream>
#include <string_view>

#include "firmware/priority.hpp"
#include "firmware/sensors.hpp"
#include "tests/protocol/temp_dir.hpp"

using namespace starling::firmware;

namespace {

void write_text(const std::filesystem::path& file, std::string_view text) {
    std::filesystem::create_directories(file.parent_path());
    std::ofstream(file) << text;
}

}  // namespace

TEST_CASE("PSI 'some avg10' is parsed, and only from a 'some' line") {
    CHECK(parse_psi_some_avg10("some avg10=1.25 avg60=0.50 avg300=0.10 total=123\n"
                               "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n") ==
          doctest::Approx(1.25));
    CHECK(parse_psi_some_avg10("full avg10=9.00 avg60=0.00\nsome avg10=2.50 avg60=0.00\n") ==
          doctest::Approx(2.5));
    CHECK_FALSE(parse_psi_some_avg10("xsome avg10=3.0").has_value());
    CHECK_FALSE(parse_psi_some_avg10("some avg10=").has_value());
    CHECK_FALSE(parse_psi_some_avg10("").has_value());
}

TEST_CASE("readers take an injectable /proc and /sys root") {
    starling::testing::TempDir root("sensors");
    write_text(root / "proc/pressure/cpu", "some avg10=42.00 avg60=1 avg300=1 total=1\n");
    write_text(root / "proc/pressure/io", "some avg10=3.50 avg60=1 avg300=1 total=1\n"
                                          "full avg10=1.00 avg60=1 avg300=1 total=1\n");
    write_text(root / "proc/meminfo",
               "MemTotal: 4000000 kB\nMemFree: 10 kB\nMemAvailable:  300000 kB\n");
    write_text(root / "sys/class/thermal/thermal_zone0/temp", "66000\n");

    const Pressure p = read_pressure(root / "proc");
    CHECK(p.cpu == doctest::Approx(42.0));
    CHECK(p.memory == 0.0);  // missing file: neutral
    CHECK(p.io == doctest::Approx(3.5));
    CHECK(read_mem_available_bytes(root / "proc") == 300000ull * 1024);

    const Readings r = sample_host(std::chrono::seconds(5), root / "proc", root / "sys");
    CHECK(r.now == std::chrono::seconds(5));
    CHECK(r.hottest_celsius == doctest::Approx(66.0));
    CHECK(r.mem_available_bytes == 300000ull * 1024);
    CHECK(r.own_cpu_time > Micros{0});
}

TEST_CASE("training priority: SCHED_IDLE or nice 19, and the idle I/O class") {
    auto cpu = lower_cpu_priority();
    REQUIRE(cpu.ok());
    if (*cpu == CpuPriority::sched_idle)
        CHECK(sched_getscheduler(0) == SCHED_IDLE);
    else
        CHECK(getpriority(PRIO_PROCESS, 0) == 19);
    CHECK(to_string(*cpu).size() > 0);
    // Containers may refuse ioprio_set; where the kernel allows it, it must succeed.
    const auto io = lower_io_priority();
    if (!io.ok()) MESSAGE("ioprio_set refused here: " << io.error().message);
}

TEST_CASE("/proc/stat's cpu line gives all cores' busy time") {
    // user nice system idle iowait irq softirq steal guest guest_nice, at 100 ticks/s
    const auto busy = parse_proc_stat_busy(
        "cpu  1000 200 300 5000 70 10 20 5 0 0\ncpu0 500 100 150 2500 35 5 10 2 0 0\n", 100);
    REQUIRE(busy.has_value());
    CHECK(*busy == Micros{(1000 + 200 + 300 + 10 + 20 + 5) * 10'000});
    CHECK(parse_proc_stat_busy("cpu  1 2 3 4\n", 100) == Micros{60'000});  // old kernels
    CHECK_FALSE(parse_proc_stat_busy("cpu0 1 2 3 4\n", 100).has_value());
    CHECK_FALSE(parse_proc_stat_busy("cpu  1 2\n", 100).has_value());
    CHECK_FALSE(parse_proc_stat_busy("", 100).has_value());
}

TEST_CASE("the host sampler reads the files at most every kHostRefresh") {
    starling::testing::TempDir root("sampler");
    write_text(root / "proc/stat", "cpu  100 0 0 900 0 0 0 0 0 0\n");
    write_text(root / "proc/pressure/cpu", "some avg10=5.00 avg60=1 avg300=1 total=1\n");
    Micros now{1'000'000};
    HostSampler sample([&] { return now; }, root / "proc", root / "sys");
    const Readings first = sample();
    CHECK(first.pressure.cpu == doctest::Approx(5.0));
    CHECK(first.load.at == now);
    CHECK(first.load.busy > Micros{0});

    write_text(root / "proc/pressure/cpu", "some avg10=50.00 avg60=1 avg300=1 total=1\n");
    now += kHostRefresh / 2;
    const Readings cached = sample();
    CHECK(cached.now == now);
    CHECK(cached.pressure.cpu == doctest::Approx(5.0));  // not read again yet
    CHECK(cached.load.at == first.load.at);

    now += kHostRefresh;
    CHECK(sample().pressure.cpu == doctest::Approx(50.0));
}

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

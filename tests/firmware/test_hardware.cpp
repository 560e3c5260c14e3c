#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <string_view>

#include "firmware/hardware.hpp"
#include "tests/protocol/temp_dir.hpp"

using namespace starling::firmware;

TEST_CASE("device classes come from the CPU brand string") {
    CHECK(classify_cpu("Intel(R) Celeron(R) J4125 CPU @ 2.00GHz") == DeviceClass::celeron);
    CHECK(classify_cpu("Intel(R) Core(TM) i3-10110U CPU @ 2.10GHz") == DeviceClass::core_i3);
    CHECK(classify_cpu("11th Gen Intel(R) Core(TM) i5-1135G7 @ 2.40GHz") == DeviceClass::core_i5);
    CHECK(classify_cpu("Intel(R) Core(TM) i7-8559U CPU @ 2.70GHz") == DeviceClass::core_i7);
    CHECK(classify_cpu("Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz") == DeviceClass::xeon);
    CHECK(classify_cpu("AMD EPYC 7B13") == DeviceClass::epyc);
    CHECK(classify_cpu("AMD EPYC") == DeviceClass::epyc);
    CHECK(classify_cpu("") == DeviceClass::other);
    CHECK(to_string(DeviceClass::core_i5) == "i5");
}

TEST_CASE("the hardware profile of this machine is self-consistent") {
    const HardwareProfile p = detect_hardware();
    CHECK(p.logical_cores >= 1);
    CHECK(p.memory_bytes > 0);
    CHECK(p.features.sse2);  // every x86-64 CPU
    if (p.features.avx2) CHECK(p.features.avx);
    if (p.features.avx512f) CHECK(p.features.avx2);
}

namespace {

void write_text(const std::filesystem::path& file, std::string_view text) {
    std::filesystem::create_directories(file.parent_path());
    std::ofstream(file) << text;
}

}  // namespace

TEST_CASE("thermal zones and memory are read from injectable /sys and /proc roots") {
    starling::testing::TempDir root("hw");
    write_text(root / "sys/class/thermal/thermal_zone0/temp", "45000\n");
    write_text(root / "sys/class/thermal/thermal_zone0/type", "acpitz\n");
    write_text(root / "sys/class/thermal/thermal_zone1/temp", "71500\n");
    write_text(root / "sys/class/thermal/thermal_zone1/type", "x86_pkg_temp\n");
    write_text(root / "sys/class/thermal/thermal_zone2/temp", "");  // a failing sensor
    write_text(root / "sys/class/thermal/cooling_device0/type", "Fan\n");
    write_text(root / "proc/meminfo", "MemTotal:        8000000 kB\nMemFree: 1 kB\n");

    const auto zones = read_thermal_zones(root / "sys");
    REQUIRE(zones.size() == 2);
    CHECK(zones[0].type == "acpitz");
    CHECK(zones[1].celsius == doctest::Approx(71.5));
    CHECK(hottest_celsius(zones) == doctest::Approx(71.5));
    CHECK(read_mem_total_bytes(root / "proc") == 8000000ull * 1024);
    CHECK(read_thermal_zones(root / "nothing").empty());
    CHECK(read_mem_total_bytes(root / "nothing") == 0);
}

TEST_CASE("profile defaults follow the CPU class, cores, memory and SIMD level") {
    HardwareProfile p;
    p.device_class = DeviceClass::celeron;
    p.logical_cores = 4;
    p.memory_bytes = std::uint64_t{1} << 30;
    p.features.sse2 = p.features.sse4_2 = true;
    ProfileDefaults d = profile_defaults(p);
    CHECK(d.cpu_budget_percent == 25);
    CHECK(d.threads == 1);
    CHECK(d.batch == 32);
    CHECK(d.kernel == "sse4.2");
    CHECK_FALSE(d.why.empty());

    p.device_class = DeviceClass::core_i3;
    CHECK(profile_defaults(p).cpu_budget_percent == 35);

    p.device_class = DeviceClass::core_i7;
    p.logical_cores = 8;
    p.memory_bytes = std::uint64_t{16} << 30;
    p.features.avx = p.features.avx2 = p.features.fma = true;
    d = profile_defaults(p);
    CHECK(d.cpu_budget_percent == 50);
    CHECK(d.threads == 4);
    CHECK(d.batch == 128);
    CHECK(d.kernel == "avx2");

    p.device_class = DeviceClass::other;
    CHECK(profile_defaults(p).cpu_budget_percent == 25);
}

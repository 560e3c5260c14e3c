#pragma once
// What this device is: CPU model and class, SIMD features, cores, memory and thermal zones.
// Defaults (threads, batch size, kernel level, CPU budget) are picked from it, and `starling info`
// shows it. Readers take the /sys or /proc root so tests run on fake trees.

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace starling::firmware {

struct CpuFeatures {
    bool sse2 = false;
    bool sse4_2 = false;
    bool avx = false;  // includes the OS saving YMM state
    bool avx2 = false;
    bool fma = false;
    bool avx512f = false;  // includes the OS saving ZMM state
    bool avx512bw = false;
    bool avx512vl = false;
    bool avx512dq = false;
};

// The device classes of the fleet, from the CPU's brand string.
enum class DeviceClass { celeron, pentium, atom, core_i3, core_i5, core_i7, core_i9, xeon, epyc,
                         ryzen, other };

std::string_view to_string(DeviceClass c) noexcept;
DeviceClass classify_cpu(std::string_view brand) noexcept;

// One /sys/class/thermal/thermal_zoneN: its type ("x86_pkg_temp", "acpitz"...) and reading.
struct ThermalZone {
    std::string name;  // thermal_zoneN
    std::string type;
    double celsius = 0.0;
};

struct HardwareProfile {
    std::string cpu_model;  // the CPUID brand string
    DeviceClass device_class = DeviceClass::other;
    CpuFeatures features;
    unsigned logical_cores = 1;
    std::uint64_t memory_bytes = 0;  // MemTotal, 0 when unknown
    std::vector<ThermalZone> thermal_zones;
};

// The widest kernel level the features allow: "avx512", "avx2", "sse4.2" or "sse2".
[[nodiscard]] std::string_view simd_level(const CpuFeatures& f) noexcept;

// What the profile suggests for training on this device, and why (shown by `starling info`).
struct ProfileDefaults {
    unsigned cpu_budget_percent = 25;  // of the whole machine
    unsigned threads = 1;
    unsigned batch = 64;
    std::string_view kernel = "sse2";
    std::string_view why;  // one line: the reason for the CPU budget
};
[[nodiscard]] ProfileDefaults profile_defaults(const HardwareProfile& p) noexcept;

// Readers of the kernel's files under an injectable root ("/sys", "/proc" on a real device).
[[nodiscard]] std::vector<ThermalZone> read_thermal_zones(const std::filesystem::path& sys_root);
// A /proc/meminfo field ("MemTotal", "MemAvailable") in bytes; 0 when absent.
[[nodiscard]] std::uint64_t read_meminfo_bytes(const std::filesystem::path& proc_root,
                                               std::string_view field);
[[nodiscard]] std::uint64_t read_mem_total_bytes(const std::filesystem::path& proc_root);
// The hottest zone in degrees Celsius; 0 when the device exposes none.
[[nodiscard]] double hottest_celsius(const std::vector<ThermalZone>& zones) noexcept;

CpuFeatures detect_cpu_features() noexcept;
HardwareProfile detect_hardware();
HardwareProfile detect_hardware(const std::filesystem::path& sys_root,
                                const std::filesystem::path& proc_root);

}  // namespace starling::firmware

#include "firmware/hardware.hpp"

#include <cpuid.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

namespace starling::firmware {
namespace {

std::string cpu_brand() {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (__get_cpuid(0x80000000u, &eax, &ebx, &ecx, &edx) == 0 || eax < 0x80000004u) return {};
    std::array<unsigned, 12> words{};
    for (unsigned leaf = 0; leaf < 3; ++leaf)
        __get_cpuid(0x80000002u + leaf, &words[leaf * 4], &words[leaf * 4 + 1],
                    &words[leaf * 4 + 2], &words[leaf * 4 + 3]);
    char text[sizeof(words) + 1] = {};
    std::memcpy(text, words.data(), sizeof(words));
    std::string brand(text);
    // Brand strings are padded with spaces on both sides.
    const auto first = brand.find_first_not_of(' ');
    const auto last = brand.find_last_not_of(' ');
    return first == std::string::npos ? std::string{} : brand.substr(first, last - first + 1);
}

// The first line of a small kernel file, without its newline; empty when unreadable.
std::string first_line(const std::filesystem::path& file) {
    std::ifstream in(file);
    std::string line;
    std::getline(in, line);
    return line;
}

bool contains(std::string_view haystack, std::string_view needle) {
    return haystack.find(needle) != std::string_view::npos;
}

}  // namespace

std::string_view to_string(DeviceClass c) noexcept {
    switch (c) {
        case DeviceClass::celeron: return "celeron";
        case DeviceClass::pentium: return "pentium";
        case DeviceClass::atom: return "atom";
        case DeviceClass::core_i3: return "i3";
        case DeviceClass::core_i5: return "i5";
        case DeviceClass::core_i7: return "i7";
        case DeviceClass::core_i9: return "i9";
        case DeviceClass::xeon: return "xeon";
        case DeviceClass::epyc: return "epyc";
        case DeviceClass::ryzen: return "ryzen";
        case DeviceClass::other: return "other";
    }
    return "other";
}

DeviceClass classify_cpu(std::string_view brand) noexcept {
    std::string lower(brand);
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    if (contains(lower, "celeron")) return DeviceClass::celeron;
    if (contains(lower, "pentium")) return DeviceClass::pentium;
    if (contains(lower, "atom")) return DeviceClass::atom;
    if (contains(lower, "i3-") || contains(lower, "core i3")) return DeviceClass::core_i3;
    if (contains(lower, "i5-") || contains(lower, "core i5")) return DeviceClass::core_i5;
    if (contains(lower, "i7-") || contains(lower, "core i7")) return DeviceClass::core_i7;
    if (contains(lower, "i9-") || contains(lower, "core i9")) return DeviceClass::core_i9;
    if (contains(lower, "xeon")) return DeviceClass::xeon;
    if (contains(lower, "epyc")) return DeviceClass::epyc;
    if (contains(lower, "ryzen")) return DeviceClass::ryzen;
    return DeviceClass::other;
}

CpuFeatures detect_cpu_features() noexcept {
    // libgcc's checks include XGETBV, so AVX/AVX-512 are reported only when the OS saves the
    // wider registers on a context switch.
    __builtin_cpu_init();
    CpuFeatures f;
    f.sse2 = __builtin_cpu_supports("sse2");
    f.sse4_2 = __builtin_cpu_supports("sse4.2");
    f.avx = __builtin_cpu_supports("avx");
    f.avx2 = __builtin_cpu_supports("avx2");
    f.fma = __builtin_cpu_supports("fma");
    f.avx512f = __builtin_cpu_supports("avx512f");
    f.avx512bw = __builtin_cpu_supports("avx512bw");
    f.avx512vl = __builtin_cpu_supports("avx512vl");
    f.avx512dq = __builtin_cpu_supports("avx512dq");
    return f;
}

std::uint64_t read_meminfo_bytes(const std::filesystem::path& proc_root, std::string_view field) {
    std::ifstream in(proc_root / "meminfo");
    std::string key;
    std::uint64_t kib = 0;
    std::string unit;
    while (in >> key >> kib >> unit) {
        if (key.size() == field.size() + 1 && key.back() == ':' && key.starts_with(field))
            return kib * 1024u;
    }
    return 0;
}

std::uint64_t read_mem_total_bytes(const std::filesystem::path& proc_root) {
    return read_meminfo_bytes(proc_root, "MemTotal");
}

std::vector<ThermalZone> read_thermal_zones(const std::filesystem::path& sys_root) {
    std::vector<ThermalZone> zones;
    std::error_code ec;
    const auto dir = sys_root / "class" / "thermal";
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
        const std::string name = entry.path().filename().string();
        if (name.rfind("thermal_zone", 0) != 0) continue;
        // millidegrees Celsius; a zone whose sensor fails to read is left out
        const std::string temp = first_line(entry.path() / "temp");
        char* end = nullptr;
        const long long milli = std::strtoll(temp.c_str(), &end, 10);
        if (temp.empty() || end == temp.c_str()) continue;
        zones.push_back({name, first_line(entry.path() / "type"),
                         static_cast<double>(milli) / 1000.0});
    }
    std::sort(zones.begin(), zones.end(),
              [](const ThermalZone& a, const ThermalZone& b) { return a.name < b.name; });
    return zones;
}

double hottest_celsius(const std::vector<ThermalZone>& zones) noexcept {
    double hottest = 0.0;
    for (const auto& z : zones) hottest = std::max(hottest, z.celsius);
    return hottest;
}

std::string_view simd_level(const CpuFeatures& f) noexcept {
    if (f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq) return "avx512";
    if (f.avx2 && f.fma) return "avx2";
    if (f.sse4_2) return "sse4.2";
    return "sse2";
}

namespace {

struct Budget {
    unsigned percent;
    std::string_view why;
};

// The device's own job comes first: the weaker the CPU, the more of it that job already needs
// and the less thermal headroom a fanless box has.
Budget budget_for(DeviceClass c) noexcept {
    switch (c) {
        case DeviceClass::celeron:
        case DeviceClass::pentium:
        case DeviceClass::atom:
            return {25, "low-power CPU: its own job needs most of it, and it is often fanless"};
        case DeviceClass::core_i3: return {35, "two to four cores: a third leaves the job ample"};
        case DeviceClass::core_i5:
        case DeviceClass::core_i7:
        case DeviceClass::core_i9:
        case DeviceClass::ryzen:
            return {50, "desktop-class CPU: half leaves the device's job more than it uses"};
        case DeviceClass::xeon:
        case DeviceClass::epyc:
            return {50, "server CPU: many cores, half stays free for the host's own work"};
        case DeviceClass::other: break;
    }
    return {25, "unknown CPU: the most conservative budget"};
}

constexpr std::uint64_t kGiB = std::uint64_t{1} << 30;

}  // namespace

ProfileDefaults profile_defaults(const HardwareProfile& p) noexcept {
    ProfileDefaults d;
    const Budget b = budget_for(p.device_class);
    d.cpu_budget_percent = b.percent;
    d.why = b.why;
    // As many threads as the budget covers whole cores, at least one.
    d.threads = std::max(1u, p.logical_cores * b.percent / 100u);
    // Smaller batches keep activations small where memory is scarce.
    d.batch = p.memory_bytes != 0 && p.memory_bytes < 2 * kGiB ? 32u
              : p.memory_bytes >= 8 * kGiB                     ? 128u
                                                               : 64u;
    d.kernel = simd_level(p.features);
    return d;
}

HardwareProfile detect_hardware(const std::filesystem::path& sys_root,
                                const std::filesystem::path& proc_root) {
    HardwareProfile p;
    p.cpu_model = cpu_brand();
    p.device_class = classify_cpu(p.cpu_model);
    p.features = detect_cpu_features();
    const long cores = sysconf(_SC_NPROCESSORS_ONLN);
    p.logical_cores = cores > 0 ? static_cast<unsigned>(cores) : 1u;
    p.memory_bytes = read_mem_total_bytes(proc_root);
    p.thermal_zones = read_thermal_zones(sys_root);
    return p;
}

HardwareProfile detect_hardware() { return detect_hardware("/sys", "/proc"); }

}  // namespace starling::firmware

#include "firmware/hardware.hpp"

#include <cpuid.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
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

std::uint64_t mem_total_bytes() {
    std::ifstream in("/proc/meminfo");
    std::string key;
    std::uint64_t kib = 0;
    std::string unit;
    while (in >> key >> kib >> unit) {
        if (key == "MemTotal:") return kib * 1024u;
    }
    return 0;
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

HardwareProfile detect_hardware() {
    HardwareProfile p;
    p.cpu_model = cpu_brand();
    p.device_class = classify_cpu(p.cpu_model);
    p.features = detect_cpu_features();
    const long cores = sysconf(_SC_NPROCESSORS_ONLN);
    p.logical_cores = cores > 0 ? static_cast<unsigned>(cores) : 1u;
    p.memory_bytes = mem_total_bytes();
    return p;
}

}  // namespace starling::firmware

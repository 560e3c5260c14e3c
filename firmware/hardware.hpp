#pragma once
// What this device is: CPU model and class, SIMD features, cores and memory. Defaults (threads,
// batch size, kernel level) are picked from it, and `starling info` shows it.

#include <cstdint>
#include <string>
#include <string_view>

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

struct HardwareProfile {
    std::string cpu_model;  // the CPUID brand string
    DeviceClass device_class = DeviceClass::other;
    CpuFeatures features;
    unsigned logical_cores = 1;
    std::uint64_t memory_bytes = 0;  // MemTotal, 0 when unknown
};

CpuFeatures detect_cpu_features() noexcept;
HardwareProfile detect_hardware();

}  // namespace starling::firmware

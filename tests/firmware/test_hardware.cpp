#include <doctest/doctest.h>

#include "firmware/hardware.hpp"

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

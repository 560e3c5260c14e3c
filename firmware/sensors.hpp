#pragma once
// Thin readers of the kernel's files the governor needs, under an injectable /proc root, and the
// process's own CPU time. Each returns a neutral value (0) when the file is missing or unreadable,
// so a kernel without PSI never pauses training by itself.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string_view>

#include "firmware/governor.hpp"

namespace starling::firmware {

// "some avg10=1.23 avg60=..." -> 1.23; nullopt when the text holds no such line.
[[nodiscard]] std::optional<double> parse_psi_some_avg10(std::string_view text) noexcept;
// /proc/pressure/{cpu,memory,io}.
[[nodiscard]] Pressure read_pressure(const std::filesystem::path& proc_root);
// MemAvailable from /proc/meminfo, in bytes.
[[nodiscard]] std::uint64_t read_mem_available_bytes(const std::filesystem::path& proc_root);
// CPU time consumed by every thread of this process (CLOCK_PROCESS_CPUTIME_ID).
[[nodiscard]] Micros own_cpu_time() noexcept;

// Everything but the time, which the caller's clock supplies.
[[nodiscard]] Readings sample_host(Micros now, const std::filesystem::path& proc_root,
                                   const std::filesystem::path& sys_root);

}  // namespace starling::firmware

#pragma once
// Thin readers of the kernel's files the governor needs, under an injectable /proc root, and the
// process's own CPU time. Each returns a neutral value (0) when the file is missing or unreadable,
// so a kernel without PSI never pauses training by itself.

#include <cstdint>
#include <filesystem>
#include <functional>
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

// /proc/stat's "cpu" line: all cores' busy time (user, nice, system, irq, softirq, steal) in
// microseconds; nullopt when the text holds no such line.
[[nodiscard]] std::optional<Micros> parse_proc_stat_busy(std::string_view text,
                                                         long ticks_per_second) noexcept;
[[nodiscard]] Micros read_host_busy_time(const std::filesystem::path& proc_root);

// Everything but the time, which the caller's clock supplies.
[[nodiscard]] Readings sample_host(Micros now, const std::filesystem::path& proc_root,
                                   const std::filesystem::path& sys_root);

// The files are read at most this often by a HostSampler; steps run far more often.
inline constexpr Micros kHostRefresh = std::chrono::milliseconds(250);

// The governor's sampler for this host, cheap enough to call between every two training steps:
// the clock and the process's CPU time on every call, the kernel's files (PSI, /proc/stat,
// meminfo, thermal zones) once per kHostRefresh. `monotonic` is the caller's clock.
class HostSampler {
  public:
    explicit HostSampler(std::function<Micros()> monotonic,
                         std::filesystem::path proc_root = "/proc",
                         std::filesystem::path sys_root = "/sys");
    [[nodiscard]] Readings operator()();

  private:
    std::function<Micros()> monotonic_;
    std::filesystem::path proc_root_;
    std::filesystem::path sys_root_;
    Readings files_{};  // the last reading of the files
    bool have_files_ = false;
};

}  // namespace starling::firmware

#pragma once
// Training runs at the lowest priority the kernel offers, so the device's own work always wins
// the CPU and the disk: SCHED_IDLE (or nice 19 where refused) and the idle I/O class.

#include <string_view>

#include "protocol/result.hpp"

namespace starling::firmware {

enum class CpuPriority { sched_idle, nice19 };
[[nodiscard]] std::string_view to_string(CpuPriority p) noexcept;

// For the calling thread and the threads it creates afterwards: call before starting the
// trainer's threads. SCHED_IDLE first; nice 19 when the scheduler refuses it.
[[nodiscard]] Result<CpuPriority> lower_cpu_priority() noexcept;
// ioprio_set(IOPRIO_WHO_PROCESS, self, IOPRIO_CLASS_IDLE).
[[nodiscard]] Status lower_io_priority() noexcept;

}  // namespace starling::firmware

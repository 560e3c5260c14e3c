#include "firmware/priority.hpp"

#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace starling::firmware {
namespace {

// linux/ioprio.h, not exposed by glibc.
constexpr int kIoprioWhoProcess = 1;
constexpr int kIoprioClassIdle = 3;
constexpr int kIoprioClassShift = 13;
constexpr int kLowestNice = 19;

}  // namespace

std::string_view to_string(CpuPriority p) noexcept {
    return p == CpuPriority::sched_idle ? "SCHED_IDLE" : "nice 19";
}

Result<CpuPriority> lower_cpu_priority() noexcept {
    sched_param param{};
    param.sched_priority = 0;
    if (sched_setscheduler(0, SCHED_IDLE, &param) == 0) return CpuPriority::sched_idle;
    if (setpriority(PRIO_PROCESS, 0, kLowestNice) == 0) return CpuPriority::nice19;
    return make_error(ErrorCode::io, std::string("setpriority: ") + std::strerror(errno));
}

Status lower_io_priority() noexcept {
    const int value = kIoprioClassIdle << kIoprioClassShift;
    if (syscall(SYS_ioprio_set, kIoprioWhoProcess, 0, value) == 0) return Ok{};
    return make_error(ErrorCode::io, std::string("ioprio_set: ") + std::strerror(errno));
}

}  // namespace starling::firmware

#include "firmware/heap.hpp"

#include <malloc.h>

namespace starling::firmware {
namespace {

// Far above the default MLP's largest message (0.9 MB as fp32); only models many times its size
// are still mapped on their own. (glibc's own ceiling for the threshold is 32 MB on 64-bit.)
constexpr int kMmapThreshold = 16 << 20;
// Freed memory at the heap's top is handed back to the kernel only past this: a few models'
// worth stays mapped instead of faulting in again on the next exchange.
constexpr int kTrimThreshold = 64 << 20;

}  // namespace

bool keep_model_buffers_in_heap() noexcept {
    // Setting either also stops glibc adjusting them on its own.
    return mallopt(M_MMAP_THRESHOLD, kMmapThreshold) == 1 &&
           mallopt(M_TRIM_THRESHOLD, kTrimThreshold) == 1;
}

}  // namespace starling::firmware

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>

#include "firmware/hardware.hpp"
#include "node/kernels/kernels.hpp"
#include "node/kernels/levels.hpp"
#include "node/kernels/scratch.hpp"

namespace starling::kernels {
namespace {

bool cpu_runs(Level level, const firmware::CpuFeatures& f) noexcept {
    switch (level) {
        case Level::sse2: return f.sse2;
        case Level::sse4_2: return f.sse4_2;
        case Level::avx2: return f.avx2 && f.fma;
        case Level::avx512: return f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq;
    }
    return false;
}

const firmware::CpuFeatures& features() noexcept {
    static const firmware::CpuFeatures f = firmware::detect_cpu_features();
    return f;
}

const KernelSet& set_for(Level level) noexcept {
    switch (level) {
        case Level::sse2: return kernels_sse2();
        case Level::sse4_2: return kernels_sse4_2();
        case Level::avx2: return kernels_avx2();
        case Level::avx512: return kernels_avx512();
    }
    return kernels_sse2();
}

std::atomic<const KernelSet*> g_active{nullptr};

const KernelSet* initial_set() noexcept {
    Level level = detected_level();
    if (const char* forced = std::getenv("STARLING_SIMD"); forced != nullptr && *forced != 0) {
        // An unknown or unsupported name leaves the detected level in place; `starling info`
        // shows which level is active.
        if (auto parsed = parse_level(forced); parsed && cpu_runs(*parsed, features()))
            level = *parsed;
    }
    return &set_for(level);
}

struct ScratchBuffer {
    float* data = nullptr;
    std::size_t capacity = 0;
    ~ScratchBuffer() { ::operator delete[](data, std::align_val_t{64}); }
};

}  // namespace

std::string_view to_string(Level level) noexcept {
    switch (level) {
        case Level::sse2: return "sse2";
        case Level::sse4_2: return "sse4.2";
        case Level::avx2: return "avx2";
        case Level::avx512: return "avx512";
    }
    return "unknown";
}

std::optional<Level> parse_level(std::string_view name) noexcept {
    if (name == "sse2") return Level::sse2;
    if (name == "sse4.2" || name == "sse4_2" || name == "sse42") return Level::sse4_2;
    if (name == "avx2") return Level::avx2;
    if (name == "avx512" || name == "avx-512") return Level::avx512;
    return std::nullopt;
}

Level detected_level() noexcept {
    for (Level level : {Level::avx512, Level::avx2, Level::sse4_2})
        if (cpu_runs(level, features())) return level;
    return Level::sse2;  // every x86-64 CPU has SSE2
}

const KernelSet& active() noexcept {
    const KernelSet* set = g_active.load(std::memory_order_acquire);
    if (set == nullptr) {
        const KernelSet* fresh = initial_set();
        if (g_active.compare_exchange_strong(set, fresh, std::memory_order_acq_rel)) set = fresh;
    }
    return *set;
}

bool select(Level level) noexcept {
    if (!cpu_runs(level, features())) return false;
    g_active.store(&set_for(level), std::memory_order_release);
    return true;
}

const KernelSet* kernels_for(Level level) noexcept {
    return cpu_runs(level, features()) ? &set_for(level) : nullptr;
}

float* scratch(ScratchSlot slot, std::size_t floats) {
    thread_local ScratchBuffer buffers[2];
    ScratchBuffer& buf = buffers[static_cast<int>(slot)];
    if (buf.capacity < floats) {
        ::operator delete[](buf.data, std::align_val_t{64});
        buf.data = nullptr;
        buf.capacity = 0;
        buf.data = static_cast<float*>(::operator new[](floats * sizeof(float), std::align_val_t{64}));
        buf.capacity = floats;
    }
    return buf.data;
}

}  // namespace starling::kernels

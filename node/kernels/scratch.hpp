#pragma once
// Per-thread packing buffers for the kernels, defined in a baseline-ISA unit so that no
// allocator code is ever compiled with AVX flags (see gemm_impl.hpp).

#include <cstddef>

namespace starling::kernels {

enum class ScratchSlot : int { pack_a = 0, pack_b = 1 };

// A 64-byte aligned buffer of at least `floats` floats owned by the calling thread; it stays
// valid until the next call for the same slot on the same thread.
float* scratch(ScratchSlot slot, std::size_t floats);

}  // namespace starling::kernels

#pragma once
// One accessor per compiled SIMD level; call only after checking the CPU supports the level.

#include "node/kernels/kernels.hpp"

namespace starling::kernels {

const KernelSet& kernels_sse2();
const KernelSet& kernels_sse4_2();
const KernelSet& kernels_avx2();
const KernelSet& kernels_avx512();

}  // namespace starling::kernels

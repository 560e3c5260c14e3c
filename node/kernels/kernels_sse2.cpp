// The sse2 kernels: this unit alone is compiled with sse2's instruction-set flags (node/CMakeLists.txt).
#include "node/kernels/gemm_impl.hpp"
#include "node/kernels/levels.hpp"

namespace starling::kernels {

const KernelSet& kernels_sse2() {
    // 6×2-vector register tile.
    static const KernelSet set = make_kernel_set<xsimd::sse2, 6, 2>(Level::sse2);
    return set;
}

}  // namespace starling::kernels

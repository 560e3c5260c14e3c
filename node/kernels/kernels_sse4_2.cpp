// The sse4_2 kernels: this unit alone is compiled with sse4_2's instruction-set flags (node/CMakeLists.txt).
#include "node/kernels/gemm_impl.hpp"
#include "node/kernels/levels.hpp"

namespace starling::kernels {

const KernelSet& kernels_sse4_2() {
    // 6×2-vector register tile.
    static const KernelSet set = make_kernel_set<xsimd::sse4_2, 6, 2>(Level::sse4_2);
    return set;
}

}  // namespace starling::kernels

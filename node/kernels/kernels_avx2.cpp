// The avx2 kernels: this unit alone is compiled with avx2's instruction-set flags (node/CMakeLists.txt).
#include "node/kernels/gemm_impl.hpp"
#include "node/kernels/levels.hpp"

namespace starling::kernels {

const KernelSet& kernels_avx2() {
    // 6×2-vector register tile.
    static const KernelSet set = make_kernel_set<xsimd::fma3<xsimd::avx2>, 6, 2>(Level::avx2);
    return set;
}

}  // namespace starling::kernels

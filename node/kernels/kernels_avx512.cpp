// The avx512 kernels: this unit alone is compiled with avx512's instruction-set flags (node/CMakeLists.txt).
#include "node/kernels/gemm_impl.hpp"
#include "node/kernels/levels.hpp"

namespace starling::kernels {

const KernelSet& kernels_avx512() {
    // 12×2-vector register tile.
    static const KernelSet set = make_kernel_set<xsimd::avx512f, 12, 2>(Level::avx512);
    return set;
}

}  // namespace starling::kernels

#pragma once
// The SIMD kernels as templates over an xsimd architecture. Included once by each per-level
// translation unit (kernels_<level>.cpp), which is compiled with that level's -m flags.
//
// Everything here lives in an anonymous namespace and calls no inline library code (no std::
// containers or algorithms): a function compiled with AVX flags in one unit must never be picked
// by the linker for another unit's SSE2 path, or a Celeron would meet an illegal instruction.

#include <xsimd/xsimd.hpp>

#include <cstddef>
#include <cstdint>

#include "node/kernels/kernels.hpp"
#include "node/kernels/scratch.hpp"

namespace starling::kernels {
namespace {

inline int min_int(int a, int b) { return a < b ? a : b; }

// One optimizer update of a vector (V = a SIMD batch) or a scalar (V = float) of parameters:
// the same arithmetic serves the fused GEMM epilogue, the vector body and the scalar tails.
template <class V, class Load, class Store>
inline void sgd_update(V g, float* w, float* vel, const SgdStep& st, Load load, Store store) {
    const V wi = load(w);
    const V gi = g + V(st.weight_decay) * wi;
    const V vi = V(st.momentum) * load(vel) + gi;
    store(vel, vi);
    store(w, wi - V(st.learning_rate) * (st.nesterov ? gi + V(st.momentum) * vi : vi));
}

template <class V, class Sqrt, class Load, class Store>
inline void adam_update(V g, float* w, float* m, float* v, const AdamStep& st, Sqrt sqrt_fn,
                        Load load, Store store) {
    const V wi = load(w);
    const V gi = g + V(st.weight_decay) * wi;
    const V mi = V(st.beta1) * load(m) + V(1.0f - st.beta1) * gi;
    const V vi = V(st.beta2) * load(v) + V(1.0f - st.beta2) * gi * gi;
    store(m, mi);
    store(v, vi);
    // m̂ / (sqrt(v̂) + eps) with m̂ = m / c1 and v̂ = v / c2.
    const float step = st.learning_rate / st.bias_correction1;
    const float inv_sqrt_c2 = 1.0f / __builtin_sqrtf(st.bias_correction2);
    const V denom = sqrt_fn(vi) * V(inv_sqrt_c2) + V(st.epsilon);
    store(w, wi - V(step) * mi / denom);
}

inline float scalar_load(const float* p) { return *p; }
inline void scalar_store(float* p, float x) { *p = x; }
inline float scalar_sqrt(float x) { return __builtin_sqrtf(x); }

// Blocked GEMM in the manner of BLIS/GotoBLAS: op(A) is packed into MR-row panels, op(B) is read
// in place when it is row-major (the common forward and weight-gradient case) or packed into
// NR-column panels when it is transposed or ragged. An MR×NR register tile accumulates over a
// KC-deep slice; the epilogue (bias, ReLU, ReLU mask) is applied as the tile is stored.
template <class Arch, int MR, int NV>
struct Gemm {
    using V = xsimd::batch<float, Arch>;
    static constexpr int W = static_cast<int>(V::size);
    static constexpr int NR = NV * W;
    static constexpr int KC = 256;
    static constexpr int MC = MR * 20;

    // Packs rows [i0, i0+mc) × cols [p0, p0+kc) of op(A) into MR-row panels (k-major inside a
    // panel), zero-padding the last panel's missing rows.
    static void pack_a(const GemmCall& g, int i0, int mc, int p0, int kc, float* dst) {
        for (int ip = 0; ip < mc; ip += MR) {
            const int rows = min_int(MR, mc - ip);
            float* panel = dst + static_cast<std::ptrdiff_t>(ip) * kc;
            if (g.trans_a == Trans::no) {
                for (int i = 0; i < rows; ++i) {
                    const float* src = g.a + static_cast<std::ptrdiff_t>(i0 + ip + i) * g.lda + p0;
                    for (int k = 0; k < kc; ++k) panel[k * MR + i] = src[k];
                }
            } else {
                for (int k = 0; k < kc; ++k) {
                    const float* src = g.a + static_cast<std::ptrdiff_t>(p0 + k) * g.lda + i0 + ip;
                    for (int i = 0; i < rows; ++i) panel[k * MR + i] = src[i];
                }
            }
            for (int i = rows; i < MR; ++i)
                for (int k = 0; k < kc; ++k) panel[k * MR + i] = 0.0f;
        }
    }

    // Packs cols [j0, j0+nr) × rows [p0, p0+kc) of op(B) into one NR-wide panel, zero-padded.
    static void pack_b(const GemmCall& g, int j0, int nr, int p0, int kc, float* dst) {
        if (g.trans_b == Trans::no) {
            for (int k = 0; k < kc; ++k) {
                const float* src = g.b + static_cast<std::ptrdiff_t>(p0 + k) * g.ldb + j0;
                float* row = dst + k * NR;
                for (int j = 0; j < nr; ++j) row[j] = src[j];
                for (int j = nr; j < NR; ++j) row[j] = 0.0f;
            }
        } else {
            for (int k = 0; k < kc; ++k)
                for (int j = nr; j < NR; ++j) dst[k * NR + j] = 0.0f;
            for (int j = 0; j < nr; ++j) {
                const float* src = g.b + static_cast<std::ptrdiff_t>(j0 + j) * g.ldb + p0;
                for (int k = 0; k < kc; ++k) dst[k * NR + j] = src[k];
            }
        }
    }

    // Applies accumulate + epilogue to one output vector of row r, columns [col, col+W).
    static V finish(V acc, const GemmCall& g, const float* c_old, bool add_c, bool last, int row,
                    int col) {
        if (add_c) acc += V::load_unaligned(c_old);
        if (!last) return acc;
        switch (g.epilogue) {
            case Epilogue::none:
                break;
            case Epilogue::bias:
                acc += V::load_unaligned(g.bias + col);
                break;
            case Epilogue::bias_relu:
                acc = xsimd::max(acc + V::load_unaligned(g.bias + col), V(0.0f));
                break;
            case Epilogue::relu_mask: {
                const V mask =
                    V::load_unaligned(g.mask + static_cast<std::ptrdiff_t>(row) * g.ldmask + col);
                acc = xsimd::select(mask > V(0.0f), acc, V(0.0f));
                break;
            }
        }
        return acc;
    }

    static float finish_scalar(float acc, const GemmCall& g, float c_old, bool add_c, bool last,
                               int row, int col) {
        if (add_c) acc += c_old;
        if (!last) return acc;
        switch (g.epilogue) {
            case Epilogue::none:
                break;
            case Epilogue::bias:
                acc += g.bias[col];
                break;
            case Epilogue::bias_relu:
                acc += g.bias[col];
                acc = acc > 0.0f ? acc : 0.0f;
                break;
            case Epilogue::relu_mask:
                if (!(g.mask[static_cast<std::ptrdiff_t>(row) * g.ldmask + col] > 0.0f)) acc = 0.0f;
                break;
        }
        return acc;
    }

    static V vload(const float* p) { return V::load_unaligned(p); }
    static void vstore(float* p, V x) { x.store_unaligned(p); }
    static V vsqrt(V x) { return xsimd::sqrt(x); }

    static void apply_update(V grad, const FusedUpdate& u, std::ptrdiff_t at) {
        if (u.kind == FusedUpdate::Kind::sgd)
            sgd_update<V>(grad, u.w + at, u.s1 + at, u.sgd, vload, vstore);
        else
            adam_update<V>(grad, u.w + at, u.s1 + at, u.s2 + at, u.adam, vsqrt, vload, vstore);
    }

    static void apply_update_scalar(float grad, const FusedUpdate& u, std::ptrdiff_t at) {
        if (u.kind == FusedUpdate::Kind::sgd)
            sgd_update<float>(grad, u.w + at, u.s1 + at, u.sgd, scalar_load, scalar_store);
        else
            adam_update<float>(grad, u.w + at, u.s1 + at, u.s2 + at, u.adam, scalar_sqrt,
                               scalar_load, scalar_store);
    }

    // R rows (R <= MR) of one register tile over kc steps. b points at row 0 of the NR-wide
    // panel, successive rows ldb_panel floats apart (ldb when read in place, NR when packed).
    template <int R>
    static void tile(int kc, const float* a, const float* b, std::ptrdiff_t ldb_panel,
                     const GemmCall& g, int row0, int col0, int nr, bool add_c, bool last) {
        V acc[R][NV];
#pragma GCC unroll 16
        for (int i = 0; i < R; ++i)
#pragma GCC unroll 8
            for (int v = 0; v < NV; ++v) acc[i][v] = V(0.0f);

        for (int k = 0; k < kc; ++k) {
            V bv[NV];
#pragma GCC unroll 8
            for (int v = 0; v < NV; ++v) bv[v] = V::load_unaligned(b + v * W);
#pragma GCC unroll 16
            for (int i = 0; i < R; ++i) {
                const V ai(a[i]);
#pragma GCC unroll 8
                for (int v = 0; v < NV; ++v) acc[i][v] = xsimd::fma(ai, bv[v], acc[i][v]);
            }
            a += MR;
            b += ldb_panel;
        }

        const bool update = last && g.update != nullptr;
        if (nr == NR) {
#pragma GCC unroll 16
            for (int i = 0; i < R; ++i) {
                const std::ptrdiff_t at = static_cast<std::ptrdiff_t>(row0 + i) * g.ldc + col0;
                float* c = g.c + at;
#pragma GCC unroll 8
                for (int v = 0; v < NV; ++v) {
                    const V out = finish(acc[i][v], g, c + v * W, add_c, last, row0 + i,
                                         col0 + v * W);
                    if (update)
                        apply_update(out, *g.update, at + v * W);
                    else
                        out.store_unaligned(c + v * W);
                }
            }
        } else {
            alignas(64) float spill[NR];
            for (int i = 0; i < R; ++i) {
#pragma GCC unroll 8
                for (int v = 0; v < NV; ++v) acc[i][v].store_aligned(spill + v * W);
                const std::ptrdiff_t at = static_cast<std::ptrdiff_t>(row0 + i) * g.ldc + col0;
                float* c = g.c + at;
                for (int j = 0; j < nr; ++j) {
                    const float out =
                        finish_scalar(spill[j], g, c[j], add_c, last, row0 + i, col0 + j);
                    if (update)
                        apply_update_scalar(out, *g.update, at + j);
                    else
                        c[j] = out;
                }
            }
        }
    }

    template <int R>
    static void tile_rows(int rows, int kc, const float* a, const float* b, std::ptrdiff_t ldb,
                          const GemmCall& g, int row0, int col0, int nr, bool add_c, bool last) {
        if constexpr (R > 0) {
            if (rows == R) return tile<R>(kc, a, b, ldb, g, row0, col0, nr, add_c, last);
            return tile_rows<R - 1>(rows, kc, a, b, ldb, g, row0, col0, nr, add_c, last);
        }
    }

    static void run(const GemmCall& g) {
        if (g.m <= 0 || g.n <= 0) return;
        if (g.k <= 0) {  // empty product: C = epilogue(0 (+ C))
            for (int i = 0; i < g.m; ++i)
                for (int j = 0; j < g.n; ++j) {
                    float* c = g.c + static_cast<std::ptrdiff_t>(i) * g.ldc + j;
                    *c = finish_scalar(0.0f, g, *c, g.accumulate, true, i, j);
                }
            return;
        }
        // K is cut into equal slices of at most KC, so no slice is a short, overhead-bound tail
        // (784 = 4 × 196 rather than 3 × 256 + 16).
        const int slices = (g.k + KC - 1) / KC;
        const int kc_max = (g.k + slices - 1) / slices;
        const int mc_max = min_int(MC, g.m);
        float* a_pack = scratch(ScratchSlot::pack_a,
                                static_cast<std::size_t>((mc_max + MR - 1) / MR * MR) * kc_max);
        float* b_pack = scratch(ScratchSlot::pack_b, static_cast<std::size_t>(NR) * kc_max);

        for (int p0 = 0; p0 < g.k; p0 += kc_max) {
            const int kc = min_int(kc_max, g.k - p0);
            const bool add_c = g.accumulate || p0 > 0;
            const bool last = p0 + kc == g.k;
            for (int i0 = 0; i0 < g.m; i0 += MC) {
                const int mc = min_int(MC, g.m - i0);
                pack_a(g, i0, mc, p0, kc, a_pack);
                for (int j0 = 0; j0 < g.n; j0 += NR) {
                    const int nr = min_int(NR, g.n - j0);
                    // Always packed: rows of a row-major B sit ldb floats apart, and with ldb a
                    // multiple of 256 they fall into a handful of L1 sets and evict each other.
                    pack_b(g, j0, nr, p0, kc, b_pack);
                    const float* panel = b_pack;
                    const std::ptrdiff_t ld = NR;
                    for (int ip = 0; ip < mc; ip += MR) {
                        const int rows = min_int(MR, mc - ip);
                        tile_rows<MR>(rows, kc, a_pack + static_cast<std::ptrdiff_t>(ip) * kc,
                                      panel, ld, g, i0 + ip, j0, nr, add_c, last);
                    }
                }
            }
        }
    }
};

template <class Arch>
struct Elementwise {
    using V = xsimd::batch<float, Arch>;
    static constexpr std::size_t W = V::size;

    static void bytes_to_floats(const std::uint8_t* __restrict in, float* __restrict out,
                                std::size_t n, float scale) {
        // uint8 may alias anything, so without __restrict the compiler will not vectorise this.
        for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<float>(in[i]) * scale;
    }

    static void column_sums(const float* a, int m, int n, int lda, float* out) {
        int j = 0;
        for (; j + static_cast<int>(W) <= n; j += static_cast<int>(W)) {
            V s(0.0f);
            for (int i = 0; i < m; ++i)
                s += V::load_unaligned(a + static_cast<std::ptrdiff_t>(i) * lda + j);
            s.store_unaligned(out + j);
        }
        for (; j < n; ++j) {
            float s = 0.0f;
            for (int i = 0; i < m; ++i) s += a[static_cast<std::ptrdiff_t>(i) * lda + j];
            out[j] = s;
        }
    }

    static V vload(const float* p) { return V::load_unaligned(p); }
    static void vstore(float* p, V x) { x.store_unaligned(p); }
    static V vsqrt(V x) { return xsimd::sqrt(x); }

    static void sgd(float* w, float* v, const float* g, std::size_t n, const SgdStep& st) {
        std::size_t i = 0;
        for (; i + W <= n; i += W) sgd_update<V>(vload(g + i), w + i, v + i, st, vload, vstore);
        for (; i < n; ++i) sgd_update<float>(g[i], w + i, v + i, st, scalar_load, scalar_store);
    }

    static void adam(float* w, float* m, float* v, const float* g, std::size_t n,
                     const AdamStep& st) {
        std::size_t i = 0;
        for (; i + W <= n; i += W)
            adam_update<V>(vload(g + i), w + i, m + i, v + i, st, vsqrt, vload, vstore);
        for (; i < n; ++i)
            adam_update<float>(g[i], w + i, m + i, v + i, st, scalar_sqrt, scalar_load,
                               scalar_store);
    }
};

template <class Arch, int MR, int NV>
KernelSet make_kernel_set(Level level) {
    return KernelSet{
        level,
        &Gemm<Arch, MR, NV>::run,
        &Elementwise<Arch>::bytes_to_floats,
        &Elementwise<Arch>::column_sums,
        &Elementwise<Arch>::sgd,
        &Elementwise<Arch>::adam,
    };
}

}  // namespace
}  // namespace starling::kernels

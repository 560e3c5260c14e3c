#pragma once
// Hand-tuned compute kernels, one set per SIMD level, chosen at run time from the CPU's features
// so one static binary runs on a Celeron (SSE4.2) and on an AVX-512 server alike.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace starling::kernels {

enum class Level : int { sse2 = 0, sse4_2 = 1, avx2 = 2, avx512 = 3 };
inline constexpr int kLevelCount = 4;

std::string_view to_string(Level level) noexcept;
std::optional<Level> parse_level(std::string_view name) noexcept;  // "sse2", "sse4.2", "avx2", "avx512"

enum class Trans : std::uint8_t { no, yes };

// What happens to each output element after the product (fused, so C is written once).
enum class Epilogue : std::uint8_t {
    none,       // C = A·B (+ C)
    bias,       // C = A·B + bias[col]
    bias_relu,  // C = max(A·B + bias[col], 0)
    relu_mask,  // C = A·B where mask[row, col] > 0, else 0 (ReLU's backward)
};

struct SgdStep {
    float learning_rate;
    float momentum;      // 0 disables the velocity buffer's effect
    float weight_decay;  // L2, added to the gradient
    bool nesterov = false;  // step along g + momentum*v (the new v) instead of along v
};

struct AdamStep {
    float learning_rate;
    float beta1, beta2, epsilon, weight_decay;
    float bias_correction1;  // 1 - beta1^t
    float bias_correction2;  // 1 - beta2^t
};

// An optimizer step fused into a weight-gradient GEMM: the gradient tile is consumed while it
// is still in registers instead of being written out and read back (the weight gradients of a
// 784×256 layer do not fit in L2). w, s1 (and s2 for Adam) are m×n with row stride ldc.
struct FusedUpdate {
    enum class Kind : std::uint8_t { sgd, adam };
    Kind kind = Kind::sgd;
    float* w = nullptr;   // the parameters
    float* s1 = nullptr;  // SGD velocity, or Adam's first moment
    float* s2 = nullptr;  // Adam's second moment
    SgdStep sgd{};
    AdamStep adam{};
};

// C[M×N] = op(A)[M×K] · op(B)[K×N], all row-major with leading dimensions in elements.
struct GemmCall {
    Trans trans_a = Trans::no;
    Trans trans_b = Trans::no;
    int m = 0, n = 0, k = 0;
    const float* a = nullptr;
    int lda = 0;
    const float* b = nullptr;
    int ldb = 0;
    float* c = nullptr;
    int ldc = 0;
    bool accumulate = false;  // add to C instead of overwriting it
    Epilogue epilogue = Epilogue::none;
    const float* bias = nullptr;  // n floats, for bias and bias_relu
    const float* mask = nullptr;  // m×n, row stride ldmask, for relu_mask
    int ldmask = 0;
    // When set, the finished product is a gradient applied to update->w instead of stored in C
    // (C then only holds partial sums while K is split into slices). Needs epilogue none.
    const FusedUpdate* update = nullptr;
};

// One level's kernels. Every function is pure over its pointers; none allocates on the hot path
// except gemm's per-thread packing buffers, which grow once and are reused.
struct KernelSet {
    Level level;
    void (*gemm)(const GemmCall& call);
    // out[i] = in[i] * scale (uint8 pixels to floats, one batch at a time).
    void (*bytes_to_floats)(const std::uint8_t* in, float* out, std::size_t n, float scale);
    // out[j] = sum_i a[i*lda + j] for an m×n matrix (bias gradients).
    void (*column_sums)(const float* a, int m, int n, int lda, float* out);
    // Fused SGD: v = momentum*v + g + wd*w; w -= lr*v (Nesterov: lr*(g + wd*w + momentum*v)).
    // One pass over the parameters.
    void (*sgd)(float* w, float* v, const float* g, std::size_t n, const SgdStep& step);
    // Fused Adam: m, v, w updated in one pass over the parameters.
    void (*adam)(float* w, float* m, float* v, const float* g, std::size_t n,
                 const AdamStep& step);
};

// The best level this CPU and OS support.
Level detected_level() noexcept;

// The kernels in use: the detected level, or a lower one forced by select() or the
// STARLING_SIMD environment variable (read once, on first use).
const KernelSet& active() noexcept;

// Forces a level (for tests and comparisons). Returns false, changing nothing, when the CPU
// cannot run it.
bool select(Level level) noexcept;

// A specific level's kernels, or nullptr when this CPU cannot run them.
const KernelSet* kernels_for(Level level) noexcept;

// Plain, obviously-correct versions that the optimised kernels are checked against.
namespace reference {
void gemm(const GemmCall& call);
}

}  // namespace starling::kernels

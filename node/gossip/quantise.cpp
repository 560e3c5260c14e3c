// Blockwise quantisation of model values (model_wire.cpp's encodings): fp16, int8 and int4
// blocks with error feedback, the lattice's residues and checks, and the value-level helpers
// the codec shares. Apart from the message format, which only frames what these produce.
#include "node/gossip/quantise.hpp"

#include <algorithm>
#include <bit>
#include <cassert>
#include <cmath>
#include <cstring>
#include <limits>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace starling::gossip {
namespace detail {
namespace {

constexpr float kMaxHalf = 65504.0f;  // largest finite fp16 value
constexpr float kInt8Levels = 127.0f;

constexpr std::size_t kMaxBlockValues = std::max({kInt8BlockValues, kInt4BlockValues,
                                                   kLatticeBlockValues});

std::int8_t int4_at(const std::uint8_t* payload, std::size_t i) {
    // Shift the nibble to the top of a byte, then back down with the sign: two's complement.
    const auto byte = static_cast<std::uint8_t>(payload[i / 2] << (i % 2 == 0 ? 4 : 0));
    return static_cast<std::int8_t>(static_cast<std::int8_t>(byte) >> 4);
}

// Values [begin, end) of a block as signed nibbles, to and from whole numbers held as floats.
// Blocks start at even values, so two go in a byte; a block of odd length is the last one, and
// its last byte's high nibble is the zero padding.
void pack_nibbles(const float* k, std::size_t begin, std::size_t end, std::uint8_t* payload) {
    // Whole numbers to bytes first, then pairs to bytes: both loops vectorise (stores through a
    // byte pointer into `payload` alone would have to assume they change `k`).
    std::uint8_t nibble[kMaxBlockValues];
    const std::size_t count = end - begin;
    assert(count <= sizeof nibble);
    for (std::size_t i = 0; i < count; ++i)
        nibble[i] = static_cast<std::uint8_t>(static_cast<std::int32_t>(k[i]) & 0x0f);
    std::uint8_t* pairs = payload + begin / 2;
    for (std::size_t j = 0; j < count / 2; ++j)  // indexed by byte, as unpack_nibbles
        pairs[j] = static_cast<std::uint8_t>(nibble[2 * j] | nibble[2 * j + 1] << 4);
    if (count % 2 == 1) pairs[count / 2] = nibble[count - 1];
}

void unpack_nibbles(const std::uint8_t* payload, std::size_t begin, std::size_t end, float* k) {
    const std::uint8_t* pairs = payload + begin / 2;
    const std::size_t count = end - begin;
    for (std::size_t j = 0; j < count / 2; ++j) {  // indexed by byte, so that it vectorises
        const std::uint8_t byte = pairs[j];
        k[2 * j] = static_cast<float>(static_cast<std::int8_t>(byte << 4) >> 4);
        k[2 * j + 1] = static_cast<float>(static_cast<std::int8_t>(byte) >> 4);
    }
    if (count % 2 == 1) k[count - 1] = int4_at(payload, end - 1);
}


// The 32-bit finaliser of MurmurHash3: every input bit reaches all 16 bits a check keeps.
std::uint16_t mix_to_16(std::uint32_t x) noexcept {
    x ^= x >> 16;
    x *= 0x85ebca6bu;
    x ^= x >> 13;
    x *= 0xc2b2ae35u;
    x ^= x >> 16;
    return static_cast<std::uint16_t>(x);
}

// Format version 1's check: the indices k hashed in four interleaved chains (value i in chain
// i % 4). Still read from version-1 senders; each chain is serial, so it cost ~30% of a lattice
// encode or decode. `k` holds whole numbers below 2^23, as floats.
std::uint16_t lattice_check_v1(std::span<const float> k) noexcept {
    const auto step = [](std::uint32_t h, float v) {
        return std::rotl(h ^ static_cast<std::uint32_t>(static_cast<std::int32_t>(v)), 13) *
               0x9e3779b1u;
    };
    std::uint32_t h0 = 0x811c9dc5u, h1 = 0x01000193u, h2 = 0x9e3779b9u, h3 = 0x7f4a7c15u;
    std::size_t i = 0;
    for (; i + 4 <= k.size(); i += 4) {  // four chains in registers, side by side
        h0 = step(h0, k[i]);
        h1 = step(h1, k[i + 1]);
        h2 = step(h2, k[i + 2]);
        h3 = step(h3, k[i + 3]);
    }
    if (i < k.size()) h0 = step(h0, k[i++]);
    if (i < k.size()) h1 = step(h1, k[i++]);
    if (i < k.size()) h2 = step(h2, k[i]);
    return mix_to_16(h0 ^ std::rotl(h1, 8) ^ std::rotl(h2, 16) ^ std::rotl(h3, 24));
}

// Format version 2's check weighs each index's low 16 bits by a fixed odd 15-bit weight for its
// position in the block, sums modulo 2^32 (from a seed) and mixes the sum to 16 bits. A
// receiver's wrong index is off by a multiple of 16, which changes the sum unless it is a
// multiple of 65,536 or several errors cancel exactly (about as rare as two mixes agreeing on
// 16 bits). Products of 16-bit halves summed in pairs are one SSE2 instruction, so the check
// runs eight values at a time where version 1's ran a value per chain step.
struct CheckWeights {
    alignas(16) std::int16_t w[kLatticeBlockValues];
};
constexpr CheckWeights make_check_weights() {
    CheckWeights c{};
    for (std::uint32_t i = 0; i < kLatticeBlockValues; ++i)
        c.w[i] = static_cast<std::int16_t>((((i + 1) * 0x9e3779b1u) >> 17) | 1u);
    return c;
}
constexpr CheckWeights kCheckWeights = make_check_weights();

std::uint32_t weighted_index(float k, std::size_t i) noexcept {
    const auto low = static_cast<std::int16_t>(static_cast<std::int32_t>(k));  // mod 2^16
    return static_cast<std::uint32_t>(std::int32_t{low} * kCheckWeights.w[i]);
}

std::uint16_t lattice_check(std::span<const float> k) noexcept {
    // Seeded with the block's length, so that a block of zeros (or a zeroed message) does not
    // check to 0.
    std::uint32_t sum = 0x7f4a7c15u + static_cast<std::uint32_t>(k.size());
    std::size_t i = 0;
#if defined(__SSE2__)
    __m128i lanes = _mm_setzero_si128();
    for (; i + 8 <= k.size(); i += 8) {
        // Whole floats to int32, each sign-extended from its low 16 bits, packed (no value
        // saturates then) and multiplied by the weights, pairs added: all modulo 2^32.
        __m128i lo = _mm_cvttps_epi32(_mm_loadu_ps(k.data() + i));
        __m128i hi = _mm_cvttps_epi32(_mm_loadu_ps(k.data() + i + 4));
        lo = _mm_srai_epi32(_mm_slli_epi32(lo, 16), 16);
        hi = _mm_srai_epi32(_mm_slli_epi32(hi, 16), 16);
        const __m128i w = _mm_load_si128(reinterpret_cast<const __m128i*>(kCheckWeights.w + i));
        lanes = _mm_add_epi32(lanes, _mm_madd_epi16(_mm_packs_epi32(lo, hi), w));
    }
    alignas(16) std::uint32_t folded[4];
    _mm_store_si128(reinterpret_cast<__m128i*>(folded), lanes);
    sum += folded[0] + folded[1] + folded[2] + folded[3];
#endif
    for (; i < k.size(); ++i) sum += weighted_index(k[i], i);
    return mix_to_16(sum);
}

// A receiver takes no index past 2^23 (floats hold them exactly); a sender's step is never so
// small that its own values get past 2^22.
constexpr float kMaxLatticeIndex = 8388608.0f;
constexpr float kMinStepFraction = 1.0f / 4194304.0f;  // of the block's largest value
constexpr float kMaxLatticeStepsFromZero = 4194304.0f;

// Round to nearest, ties to even (what nearbyint does in the default mode), for |x| <= 2^22:
// adding and taking away 1.5 * 2^23 leaves no bits below the point. Inline, where nearbyint is a
// library call per value on the baseline x86-64 the gossip code is built for. (x86-64 rounds
// each float operation to float, and without -ffast-math the compiler keeps both.)
float round_even(float x) {
    constexpr float kShift = 12582912.0f;  // 1.5 * 2^23
    return (x + kShift) - kShift;
}

// 1 when |x| >= limit or x is NaN (limit finite and positive, or +Inf), else 0. On the bits:
// for floats of one sign their order is their bits' order, and NaNs lie above +Inf; integer
// operations only, so loops that gather it vectorise on the x86-64 baseline.
constexpr float kInfinity = std::numeric_limits<float>::infinity();
inline std::uint32_t at_or_past(float x, float limit) noexcept {
    const auto magnitude = static_cast<std::int32_t>(std::bit_cast<std::uint32_t>(x) & 0x7fffffffu);
    const auto below = static_cast<std::int32_t>(std::bit_cast<std::uint32_t>(limit)) - 1;
    return static_cast<std::uint32_t>(below - magnitude) >> 31;
}

}  // namespace

// The largest of |values| (0 for none); NaNs are passed over, as std::max(top, x) passes them.
// The compiler leaves a max reduction scalar (it may not reorder one without -ffast-math), so on
// x86-64 (SSE2 is its baseline) eight lanes run in two registers; max is exact, so the lanes'
// order does not change the result.
float absmax(const float* values, std::size_t count) {
    float top = 0.0f;
    std::size_t i = 0;
#if defined(__SSE2__)
    const __m128 magnitude = _mm_castsi128_ps(_mm_set1_epi32(0x7fffffff));
    __m128 low = _mm_setzero_ps();
    __m128 high = _mm_setzero_ps();
    for (; i + 8 <= count; i += 8) {  // maxps(x, m) is m where x is NaN, like std::max(m, x)
        low = _mm_max_ps(_mm_and_ps(_mm_loadu_ps(values + i), magnitude), low);
        high = _mm_max_ps(_mm_and_ps(_mm_loadu_ps(values + i + 4), magnitude), high);
    }
    alignas(16) float lanes[8];
    _mm_store_ps(lanes, low);
    _mm_store_ps(lanes + 4, high);
    for (const float lane : lanes) top = std::max(top, lane);
#endif
    for (; i < count; ++i) top = std::max(top, std::fabs(values[i]));
    return top;
}

namespace {

// Calls quantise(b, begin, s, d) for each block b of `block` values starting at `begin`: s holds
// the staged values, and quantise writes into d what each decodes to.
template <typename Quantise>
void for_each_staged_block(const Staging& st, std::size_t block, Quantise quantise) {
    const std::size_t n = st.values.size();
    assert(block <= kMaxBlockValues);
    float s[kMaxBlockValues];
    float d[kMaxBlockValues];
    for (std::size_t begin = 0, b = 0; begin < n; begin += block, ++b) {
        const std::size_t count = std::min(n - begin, block);
        const float* v = st.values.data() + begin;
        if (st.carried != nullptr) {
            const float* e = st.carried + begin;
            for (std::size_t j = 0; j < count; ++j) s[j] = v[j] + e[j];
        } else {
            for (std::size_t j = 0; j < count; ++j) s[j] = v[j];
        }
        quantise(b, begin, std::span<const float>(s, count), d);
        if (st.residual != nullptr) {
            float* r = st.residual + begin;
            for (std::size_t j = 0; j < count; ++j) r[j] = s[j] - d[j];
        }
    }
}

// Blockwise absmax quantisation to `levels` steps each side of zero; `put(k, begin, end)` stores
// values [begin, end) from their levels k.
template <typename Put>
void quantise_blocks(const Staging& st, std::uint32_t block, float levels,
                     std::vector<float>& scales, Put put) {
    scales.resize((st.values.size() + block - 1) / block);
    for_each_staged_block(st, block, [&](std::size_t b, std::size_t begin,
                                         std::span<const float> s, float* d) {
        const float top = absmax(s.data(), s.size());
        const float scale = top / levels;
        scales[b] = scale;
        const float inverse = scale > 0.0f ? 1.0f / scale : 0.0f;
        float k[kMaxBlockValues];  // the levels (whole numbers), apart so both loops vectorise
        for (std::size_t j = 0; j < s.size(); ++j) {
            k[j] = round_even(std::clamp(s[j] * inverse, -levels, levels));
            d[j] = k[j] * scale;
        }
        put(k, begin, begin + s.size());
    });
}

// Residues are taken modulo 16: a receiver resolves values within 8 steps of the sender's.
constexpr float kLatticePeriod = 16.0f;
constexpr float kLatticeReach = 8.0f;

}  // namespace

// Lattice quantisation: block b's step is `margin` x spread[b] over the reach, so a receiver as
// far from this model as the peer measured, times margin, resolves it. Where that step would be
// no finer than int4's (peers far apart, early in training, or steps doubled after unresolved
// blocks) the block goes as plain int4 instead, its scale negated: every receiver can read it.
void quantise_lattice(const Staging& st, std::span<const float> spread, float margin,
                      std::uint8_t* payload, std::vector<float>& scales,
                      std::vector<std::uint16_t>& checks) {
    const std::size_t block = kLatticeBlockValues;
    scales.resize((st.values.size() + block - 1) / block);
    checks.resize(scales.size());
    for_each_staged_block(st, block, [&](std::size_t b, std::size_t begin,
                                         std::span<const float> s, float* d) {
        const float top = absmax(s.data(), s.size());
        const float plain = top / kInt4Levels;
        const bool absolute = margin * spread[b] / kLatticeReach >= plain && plain > 0.0f;
        const float step = absolute ? plain
                                    : std::max(margin * spread[b] / kLatticeReach,
                                               top * kMinStepFraction);
        scales[b] = absolute ? -step : step;
        const float inverse = step > 0.0f ? 1.0f / step : 0.0f;
        const float limit = absolute ? kInt4Levels : kMaxLatticeStepsFromZero;
        float k[kLatticeBlockValues];
        for (std::size_t j = 0; j < s.size(); ++j) {
            k[j] = round_even(std::clamp(s[j] * inverse, -limit, limit));
            d[j] = k[j] * step;
        }
        pack_nibbles(k, begin, begin + s.size(), payload);
        checks[b] = lattice_check({k, s.size()});
    });
}

namespace {

// Turns a block's residues `k` into the indices nearest `near` / step. Returns nonzero when a
// local value is NaN or too far off to take an index. Its own function: inlined into the block
// loop, the compiler leaves it scalar.
[[gnu::noinline]] std::uint32_t nearest_indices(std::span<float> k, const float* near,
                                                float inverse) {
    std::uint32_t off_lattice = 0;
    for (std::size_t i = 0; i < k.size(); ++i) {
        const float t = near[i] * inverse;
        const float r = k[i];
        k[i] = r + kLatticePeriod * round_even((t - r) * (1.0f / kLatticePeriod));
        off_lattice |= at_or_past(t, kMaxLatticeIndex);
    }
    return off_lattice;
}

// out[i] = k[i] * step, as its own loop over plain pointers: written through the span inside the
// block loop (even with these pointers, once inlined), GCC left it scalar.
[[gnu::noinline]] void scale_block(const float* __restrict k, std::size_t count, float step,
                                   float* __restrict out) noexcept {
    for (std::size_t i = 0; i < count; ++i) out[i] = k[i] * step;
}

}  // namespace

// Resolves lattice residues against `local`: each value's index is the one of its residue class
// nearest the local value. A block whose indices fail the check (or run off the lattice) keeps the
// local values and is listed in `unresolved`.
void resolve_lattice(const std::uint8_t* payload, std::span<const float> scales,
                     std::span<const std::uint16_t> checks, std::uint16_t format_version,
                     std::span<const float> local, std::span<float> out,
                     std::vector<std::uint32_t>& unresolved) {
    const auto check = format_version == 1 ? lattice_check_v1 : lattice_check;
    const std::size_t n = out.size();
    const std::size_t block = kLatticeBlockValues;
    for (std::size_t begin = 0, b = 0; begin < n; begin += block, ++b) {
        const float scale = scales[b];
        const float step = std::fabs(scale);
        const std::size_t end = std::min(n, begin + block);
        float k[kLatticeBlockValues];
        unpack_nibbles(payload, begin, end, k);
        // Negative: plain int4, the residue is the index; 0: all zero.
        const bool on_lattice =
            scale <= 0.0f ||
            nearest_indices({k, end - begin}, local.data() + begin, 1.0f / step) == 0;
        scale_block(k, end - begin, step, out.data() + begin);
        if (!on_lattice || check({k, end - begin}) != checks[b]) {
            std::copy(local.begin() + static_cast<std::ptrdiff_t>(begin),
                      local.begin() + static_cast<std::ptrdiff_t>(end),
                      out.begin() + static_cast<std::ptrdiff_t>(begin));
            unresolved.push_back(static_cast<std::uint32_t>(b));
        }
    }
}

// Quantises the staged values into `payload` (and `scales` for the blockwise encodings),
// keeping the error each leaves where `st` says.
void quantise(Encoding encoding, const Staging& st, std::uint8_t* payload,
              std::vector<float>& scales) {
    switch (encoding) {
    case Encoding::fp32:  // exact: no error to keep
        assert(st.carried == nullptr && st.residual == nullptr);
        std::memcpy(payload, st.values.data(), st.values.size() * sizeof(float));
        return;
    case Encoding::fp16:
        for_each_staged_block(st, kMaxBlockValues, [payload](std::size_t, std::size_t begin,
                                                             std::span<const float> s, float* d) {
            for (std::size_t j = 0; j < s.size(); ++j) {
                const std::uint16_t h = float_to_half(std::clamp(s[j], -kMaxHalf, kMaxHalf));
                std::memcpy(payload + 2 * (begin + j), &h, 2);
                d[j] = half_to_float(h);
            }
        });
        return;
    case Encoding::int8:
        quantise_blocks(st, kInt8BlockValues, kInt8Levels, scales,
                        [payload](const float* k, std::size_t begin, std::size_t end) {
                            for (std::size_t i = begin; i < end; ++i)
                                payload[i] = static_cast<std::uint8_t>(
                                    static_cast<std::int8_t>(k[i - begin]));
                        });
        return;
    case Encoding::int4:
        quantise_blocks(st, kInt4BlockValues, kInt4Levels, scales,
                        [payload](const float* k, std::size_t begin, std::size_t end) {
                            pack_nibbles(k, begin, end, payload);
                        });
        return;
    case Encoding::lattice: break;  // quantise_lattice: it needs the spread
    }
}

void dequantise(Encoding encoding, const std::uint8_t* payload, std::span<const float> scales,
                std::span<float> out) {
    const std::size_t n = out.size();
    switch (encoding) {
    case Encoding::fp32: std::memcpy(out.data(), payload, n * sizeof(float)); return;
    case Encoding::fp16:
        for (std::size_t i = 0; i < n; ++i) {
            std::uint16_t h = 0;
            std::memcpy(&h, payload + 2 * i, 2);
            out[i] = half_to_float(h);
        }
        return;
    case Encoding::int8:
    case Encoding::int4: {
        const std::size_t block = encoding == Encoding::int8 ? kInt8BlockValues : kInt4BlockValues;
        for (std::size_t begin = 0, b = 0; begin < n; begin += block, ++b) {
            const float scale = scales[b];
            const std::size_t end = std::min(n, begin + block);
            if (encoding == Encoding::int8) {
                for (std::size_t i = begin; i < end; ++i)
                    out[i] = static_cast<float>(static_cast<std::int8_t>(payload[i])) * scale;
            } else {
                unpack_nibbles(payload, begin, end, out.data() + begin);
                for (std::size_t i = begin; i < end; ++i) out[i] *= scale;
            }
        }
        return;
    }
    case Encoding::lattice: assert(false && "the lattice resolves: resolve_lattice"); return;
    }
}

}  // namespace detail

// Out of line: inlined into decode_model, GCC left the loop scalar (a third of a decode).
[[gnu::noinline]] bool all_finite(std::span<const float> values) noexcept {
    std::uint32_t not_finite = 0;  // gathered with integer ops, so that the loop vectorises
    for (const float v : values) not_finite |= detail::at_or_past(v, detail::kInfinity);
    return not_finite == 0;
}

std::uint16_t float_to_half(float value) noexcept {
    const auto x = std::bit_cast<std::uint32_t>(value);
    const auto sign = static_cast<std::uint16_t>((x >> 16) & 0x8000u);
    const std::uint32_t exponent = (x >> 23) & 0xffu;
    std::uint32_t mantissa = x & 0x7fffffu;
    if (exponent == 0xffu)  // Inf stays Inf, NaN stays a (quiet) NaN
        return static_cast<std::uint16_t>(sign | 0x7c00u | (mantissa != 0 ? 0x200u : 0u));
    const int e = static_cast<int>(exponent) - 127 + 15;
    if (e >= 31) return static_cast<std::uint16_t>(sign | 0x7c00u);  // overflow: Inf
    if (e <= 0) {                                                     // subnormal half, or zero
        if (e < -10) return sign;
        mantissa |= 0x800000u;
        const int shift = 14 - e;
        std::uint32_t half = mantissa >> shift;
        const std::uint32_t rest = mantissa & ((1u << shift) - 1u);
        const std::uint32_t halfway = 1u << (shift - 1);
        if (rest > halfway || (rest == halfway && (half & 1u) != 0)) ++half;
        return static_cast<std::uint16_t>(sign | half);
    }
    std::uint32_t half = (static_cast<std::uint32_t>(e) << 10) | (mantissa >> 13);
    const std::uint32_t rest = mantissa & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (half & 1u) != 0)) ++half;  // may carry to Inf
    return static_cast<std::uint16_t>(sign | half);
}

float half_to_float(std::uint16_t half) noexcept {
    const std::uint32_t sign = static_cast<std::uint32_t>(half & 0x8000u) << 16;
    const std::uint32_t exponent = (half >> 10) & 0x1fu;
    const std::uint32_t mantissa = half & 0x3ffu;
    if (exponent == 0) {
        const float magnitude = std::ldexp(static_cast<float>(mantissa), -24);
        return sign != 0 ? -magnitude : magnitude;
    }
    if (exponent == 31) return std::bit_cast<float>(sign | 0x7f800000u | (mantissa << 13));
    return std::bit_cast<float>(sign | ((exponent - 15 + 127) << 23) | (mantissa << 13));
}

}  // namespace starling::gossip

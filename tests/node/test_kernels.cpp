// Every optimised kernel, at every level this CPU runs, against the plain reference.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <utility>
#include <vector>

#include "node/kernels/kernels.hpp"

using namespace starling::kernels;

namespace {

std::vector<float> random_floats(std::size_t n, std::mt19937& rng) {
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    std::vector<float> v(n);
    for (auto& x : v) x = dist(rng);
    return v;
}

std::vector<const KernelSet*> runnable_sets() {
    std::vector<const KernelSet*> sets;
    for (int l = 0; l < kLevelCount; ++l)
        if (const KernelSet* s = kernels_for(static_cast<Level>(l))) sets.push_back(s);
    return sets;
}

void check_gemm(const KernelSet& ks, Trans ta, Trans tb, int m, int n, int k, Epilogue ep,
                bool accumulate, std::mt19937& rng) {
    const int lda = (ta == Trans::no ? k : m) + 3;  // padded leading dimensions
    const int ldb = (tb == Trans::no ? n : k) + 5;
    const int ldc = n + 2;
    const auto a = random_floats(static_cast<std::size_t>(ta == Trans::no ? m : k) * lda, rng);
    const auto b = random_floats(static_cast<std::size_t>(tb == Trans::no ? k : n) * ldb, rng);
    const auto bias = random_floats(static_cast<std::size_t>(n), rng);
    const auto mask = random_floats(static_cast<std::size_t>(m) * ldc, rng);
    auto c_init = random_floats(static_cast<std::size_t>(m) * ldc, rng);
    auto c_fast = c_init;
    auto c_ref = c_init;

    GemmCall call{ta, tb, m, n, k, a.data(), lda, b.data(), ldb, nullptr, ldc,
                  accumulate, ep, bias.data(), mask.data(), ldc};
    call.c = c_fast.data();
    ks.gemm(call);
    call.c = c_ref.data();
    reference::gemm(call);

    const float tol = 1e-4f * static_cast<float>(k + 1);
    for (int i = 0; i < m; ++i)
        for (int j = 0; j < ldc; ++j) {
            const std::size_t at = static_cast<std::size_t>(i) * ldc + j;
            if (j >= n) {  // padding beyond n must be untouched
                REQUIRE(c_fast[at] == c_init[at]);
                continue;
            }
            INFO("level=" << to_string(ks.level) << " m=" << m << " n=" << n << " k=" << k
                          << " i=" << i << " j=" << j);
            REQUIRE(std::fabs(c_fast[at] - c_ref[at]) <= tol);
        }
}

}  // namespace

TEST_CASE("gemm matches the reference for every shape, transpose and epilogue") {
    std::mt19937 rng(1234);
    const int sizes[][3] = {{1, 1, 1},   {5, 7, 3},     {6, 16, 8},   {13, 33, 17},
                            {64, 10, 128}, {64, 128, 256}, {37, 50, 300}, {130, 47, 513}};
    for (const KernelSet* ks : runnable_sets()) {
        for (const auto& s : sizes)
            for (Trans ta : {Trans::no, Trans::yes})
                for (Trans tb : {Trans::no, Trans::yes})
                    for (Epilogue ep : {Epilogue::none, Epilogue::bias, Epilogue::bias_relu,
                                        Epilogue::relu_mask})
                        for (bool acc : {false, true})
                            check_gemm(*ks, ta, tb, s[0], s[1], s[2], ep, acc, rng);
    }
}

TEST_CASE("gemm with k = 0 applies only the epilogue") {
    std::mt19937 rng(7);
    for (const KernelSet* ks : runnable_sets())
        check_gemm(*ks, Trans::no, Trans::no, 4, 9, 0, Epilogue::bias, true, rng);
}

TEST_CASE("elementwise kernels match scalar arithmetic") {
    std::mt19937 rng(99);
    for (const KernelSet* ks : runnable_sets()) {
        CAPTURE(to_string(ks->level));
        // bytes to floats
        std::vector<std::uint8_t> bytes(37);
        for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<std::uint8_t>(i * 7);
        std::vector<float> out(bytes.size());
        ks->bytes_to_floats(bytes.data(), out.data(), bytes.size(), 1.0f / 255.0f);
        for (std::size_t i = 0; i < bytes.size(); ++i)
            CHECK(out[i] == doctest::Approx(bytes[i] / 255.0f));

        // column sums over a padded matrix
        const int m = 9, n = 21, lda = 24;
        const auto a = random_floats(static_cast<std::size_t>(m) * lda, rng);
        std::vector<float> sums(n);
        ks->column_sums(a.data(), m, n, lda, sums.data());
        for (int j = 0; j < n; ++j) {
            float s = 0;
            for (int i = 0; i < m; ++i) s += a[static_cast<std::size_t>(i) * lda + j];
            CHECK(sums[j] == doctest::Approx(s).epsilon(1e-5));
        }

        // SGD with momentum and weight decay, two steps
        const std::size_t np = 19;
        auto w = random_floats(np, rng), v = random_floats(np, rng);
        const auto g = random_floats(np, rng);
        auto w_ref = w, v_ref = v;
        const SgdStep st{0.05f, 0.9f, 1e-3f};
        for (int rep = 0; rep < 2; ++rep) {
            ks->sgd(w.data(), v.data(), g.data(), np, st);
            for (std::size_t i = 0; i < np; ++i) {
                v_ref[i] = st.momentum * v_ref[i] + g[i] + st.weight_decay * w_ref[i];
                w_ref[i] -= st.learning_rate * v_ref[i];
            }
        }
        for (std::size_t i = 0; i < np; ++i) {
            CHECK(w[i] == doctest::Approx(w_ref[i]).epsilon(1e-5));
            CHECK(v[i] == doctest::Approx(v_ref[i]).epsilon(1e-5));
        }

        // The same with Nesterov's momentum: the step looks ahead along the new velocity
        auto wn = random_floats(np, rng), vn = random_floats(np, rng);
        auto wn_ref = wn, vn_ref = vn;
        auto wh = wn, vh = vn;  // heavy-ball from the same start, which must end elsewhere
        for (int rep = 0; rep < 2; ++rep) ks->sgd(wh.data(), vh.data(), g.data(), np, st);
        const SgdStep nst{0.05f, 0.9f, 1e-3f, true};
        for (int rep = 0; rep < 2; ++rep) {
            ks->sgd(wn.data(), vn.data(), g.data(), np, nst);
            for (std::size_t i = 0; i < np; ++i) {
                const float grad = g[i] + nst.weight_decay * wn_ref[i];
                vn_ref[i] = nst.momentum * vn_ref[i] + grad;
                wn_ref[i] -= nst.learning_rate * (grad + nst.momentum * vn_ref[i]);
            }
        }
        for (std::size_t i = 0; i < np; ++i) {
            CHECK(wn[i] == doctest::Approx(wn_ref[i]).epsilon(1e-5));
            CHECK(vn[i] == doctest::Approx(vn_ref[i]).epsilon(1e-5));
            CHECK(wn[i] != doctest::Approx(wh[i]).epsilon(1e-4));
        }

        // Adam, one step from zero moments moves each weight by about lr against the gradient
        auto wa = random_floats(np, rng);
        const auto wa0 = wa;
        std::vector<float> m1(np, 0.0f), m2(np, 0.0f);
        const AdamStep ast{1e-3f, 0.9f, 0.999f, 1e-8f, 0.0f, 1.0f - 0.9f, 1.0f - 0.999f};
        ks->adam(wa.data(), m1.data(), m2.data(), g.data(), np, ast);
        for (std::size_t i = 0; i < np; ++i) {
            const float expected = wa0[i] - 1e-3f * (g[i] > 0 ? 1.0f : -1.0f);
            CHECK(wa[i] == doctest::Approx(expected).epsilon(1e-3));
        }
    }
}

TEST_CASE("levels parse, print and can be forced down") {
    CHECK(parse_level("avx2") == Level::avx2);
    CHECK(parse_level("sse4.2") == Level::sse4_2);
    CHECK_FALSE(parse_level("neon").has_value());
    CHECK(to_string(Level::avx512) == "avx512");
    const Level best = detected_level();
    CHECK(select(Level::sse2));
    CHECK(active().level == Level::sse2);
    CHECK(select(best));
    CHECK(active().level == best);
    CHECK(kernels_for(Level::sse2) != nullptr);
}

TEST_CASE("a fused optimizer update equals computing the gradient, then stepping") {
    std::mt19937 rng(31);
    for (const KernelSet* ks : runnable_sets()) {
        for (const auto& [kind, nesterov] :
             {std::pair{FusedUpdate::Kind::sgd, false}, std::pair{FusedUpdate::Kind::sgd, true},
              std::pair{FusedUpdate::Kind::adam, false}}) {
            // K = 300 > one 256-deep slice, so partial sums pass through C on the way.
            for (int k : {7, 64, 300}) {
                const int m = 29, n = 37;
                const auto a = random_floats(static_cast<std::size_t>(k) * m, rng);  // Aᵀ stored
                const auto b = random_floats(static_cast<std::size_t>(k) * n, rng);
                const std::size_t size = static_cast<std::size_t>(m) * n;
                auto w = random_floats(size, rng), s1 = random_floats(size, rng);
                auto s2 = random_floats(size, rng);
                for (auto& x : s2) x = x * x;  // a second moment is never negative
                auto w_ref = w, s1_ref = s1, s2_ref = s2;
                std::vector<float> c(size), c_ref(size);

                FusedUpdate u{kind, w.data(), s1.data(), s2.data(), {0.05f, 0.9f, 1e-3f},
                              {1e-2f, 0.9f, 0.999f, 1e-8f, 1e-3f, 0.19f, 0.002f}};
                u.sgd.nesterov = nesterov;
                FusedUpdate u_ref = u;
                u_ref.w = w_ref.data(), u_ref.s1 = s1_ref.data(), u_ref.s2 = s2_ref.data();
                GemmCall call{Trans::yes, Trans::no, m, n, k, a.data(), m, b.data(), n,
                              c.data(), n};
                call.update = &u;
                ks->gemm(call);
                call.c = c_ref.data();
                call.update = &u_ref;
                reference::gemm(call);
                INFO("level=" << to_string(ks->level) << " k=" << k << " nesterov=" << nesterov);
                for (std::size_t i = 0; i < size; ++i) {
                    REQUIRE(w[i] == doctest::Approx(w_ref[i]).epsilon(1e-4).scale(1.0));
                    REQUIRE(s1[i] == doctest::Approx(s1_ref[i]).epsilon(1e-4).scale(1.0));
                    if (kind == FusedUpdate::Kind::adam)
                        REQUIRE(s2[i] == doctest::Approx(s2_ref[i]).epsilon(1e-4).scale(1e-2));
                }
            }
        }
    }
}

#include <cmath>

#include "node/kernels/kernels.hpp"

namespace starling::kernels::reference {

void gemm(const GemmCall& g) {
    for (int i = 0; i < g.m; ++i) {
        for (int j = 0; j < g.n; ++j) {
            double sum = 0.0;  // double, so the reference is the more accurate side
            for (int p = 0; p < g.k; ++p) {
                const float a = g.trans_a == Trans::no ? g.a[i * g.lda + p] : g.a[p * g.lda + i];
                const float b = g.trans_b == Trans::no ? g.b[p * g.ldb + j] : g.b[j * g.ldb + p];
                sum += static_cast<double>(a) * static_cast<double>(b);
            }
            float& c = g.c[i * g.ldc + j];
            float value = static_cast<float>(sum) + (g.accumulate ? c : 0.0f);
            switch (g.epilogue) {
                case Epilogue::none: break;
                case Epilogue::bias: value += g.bias[j]; break;
                case Epilogue::bias_relu:
                    value += g.bias[j];
                    value = value > 0.0f ? value : 0.0f;
                    break;
                case Epilogue::relu_mask:
                    if (!(g.mask[i * g.ldmask + j] > 0.0f)) value = 0.0f;
                    break;
            }
            if (g.update == nullptr) {
                c = value;
                continue;
            }
            // The fused optimizer step, written out plainly.
            const FusedUpdate& u = *g.update;
            const int at = i * g.ldc + j;
            float& w = u.w[at];
            if (u.kind == FusedUpdate::Kind::sgd) {
                const float grad = value + u.sgd.weight_decay * w;
                u.s1[at] = u.sgd.momentum * u.s1[at] + grad;
                w -= u.sgd.learning_rate *
                     (u.sgd.nesterov ? grad + u.sgd.momentum * u.s1[at] : u.s1[at]);
            } else {
                const AdamStep& st = u.adam;
                const float grad = value + st.weight_decay * w;
                u.s1[at] = st.beta1 * u.s1[at] + (1.0f - st.beta1) * grad;
                u.s2[at] = st.beta2 * u.s2[at] + (1.0f - st.beta2) * grad * grad;
                const float m_hat = u.s1[at] / st.bias_correction1;
                const float v_hat = u.s2[at] / st.bias_correction2;
                w -= st.learning_rate * m_hat / (std::sqrt(v_hat) + st.epsilon);
            }
        }
    }
}

}  // namespace starling::kernels::reference

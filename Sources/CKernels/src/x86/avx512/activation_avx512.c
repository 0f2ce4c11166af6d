/* AVX-512 activation kernels (16 lanes; masked loads/stores for the tail, so no scalar remainder).
 * The switch on the activation kind is hoisted out of the loops; the math is in vmath_avx512.h. */
#include "internal/eltwise.h"
#include "internal/vmath_avx512.h"

#define CK_T __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq")))

/* y[i] = act(x[i] + bias[i]) (bias may be NULL). */
#define CK_FWD_LOOP(EXPR)                                                                  \
    do {                                                                                   \
        int64_t i = 0;                                                                     \
        for (; i + 16 <= n; i += 16) {                                                     \
            __m512 v = _mm512_loadu_ps(x + i);                                             \
            if (bias != NULL) v = _mm512_add_ps(v, _mm512_loadu_ps(bias + i));             \
            _mm512_storeu_ps(y + i, EXPR);                                                 \
        }                                                                                  \
        if (i < n) {                                                                       \
            __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);                               \
            __m512 v = _mm512_maskz_loadu_ps(m, x + i);                                    \
            if (bias != NULL) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, bias + i));    \
            _mm512_mask_storeu_ps(y + i, m, EXPR);                                         \
        }                                                                                  \
    } while (0)

CK_T static void ck_act_row_avx512(int64_t n, const float *x, const float *bias, float *y, ck_act act,
                                   float act_param) {
    const __m512 slope = _mm512_set1_ps(act_param);
    switch (act) {
    case CK_ACT_GELU_ERF: CK_FWD_LOOP(ck_v16_gelu_erf(v)); break;
    case CK_ACT_GELU_TANH: CK_FWD_LOOP(ck_v16_gelu_tanh(v)); break;
    case CK_ACT_RELU: CK_FWD_LOOP(ck_v16_relu(v)); break;
    case CK_ACT_SILU: CK_FWD_LOOP(ck_v16_silu(v)); break;
    case CK_ACT_TANH: CK_FWD_LOOP(ck_v16_tanh(v)); break;
    case CK_ACT_SIGMOID: CK_FWD_LOOP(ck_v16_sigmoid(v)); break;
    case CK_ACT_LEAKY_RELU: CK_FWD_LOOP(ck_v16_leaky_relu(v, slope)); break;
    case CK_ACT_NONE:
    default: CK_FWD_LOOP(v); break;
    }
}

CK_T void ck_act_fwd_avx512(int64_t n, const float *x, float *y, ck_act act, float act_param) {
    ck_act_row_avx512(n, x, NULL, y, act, act_param);
}

CK_T void ck_bias_act_avx512(int64_t m, int64_t n, const float *bias, float *c, int64_t ldc, ck_act act,
                             float act_param) {
    for (int64_t r = 0; r < m; ++r) ck_act_row_avx512(n, c + r * ldc, bias, c + r * ldc, act, act_param);
}

/* dx = [dx +] dy * act'(x); G is the gradient factor expression in v (= x). */
#define CK_BWD_LOOP(GRADMUL)                                                               \
    do {                                                                                   \
        int64_t i = 0;                                                                     \
        for (; i + 16 <= n; i += 16) {                                                     \
            __m512 v = _mm512_loadu_ps(x + i), d = _mm512_loadu_ps(dy + i);                \
            __m512 g = GRADMUL; (void)v;                                                   \
            if (beta != 0.0f) g = _mm512_add_ps(_mm512_loadu_ps(dx + i), g);               \
            _mm512_storeu_ps(dx + i, g);                                                   \
        }                                                                                  \
        if (i < n) {                                                                       \
            __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);                               \
            __m512 v = _mm512_maskz_loadu_ps(m, x + i), d = _mm512_maskz_loadu_ps(m, dy + i); \
            __m512 g = GRADMUL; (void)v;                                                   \
            if (beta != 0.0f) g = _mm512_add_ps(_mm512_maskz_loadu_ps(m, dx + i), g);      \
            _mm512_mask_storeu_ps(dx + i, m, g);                                           \
        }                                                                                  \
    } while (0)

CK_T void ck_act_bwd_avx512(int64_t n, const float *x, const float *dy, float *dx, float beta, ck_act act,
                            float act_param) {
    const __m512 slope = _mm512_set1_ps(act_param), zero = _mm512_setzero_ps();
    switch (act) {
    case CK_ACT_GELU_ERF: CK_BWD_LOOP(_mm512_mul_ps(d, ck_v16_gelu_erf_grad(v))); break;
    case CK_ACT_GELU_TANH: CK_BWD_LOOP(_mm512_mul_ps(d, ck_v16_gelu_tanh_grad(v))); break;
    case CK_ACT_RELU: CK_BWD_LOOP(_mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, zero, _CMP_GT_OQ), d)); break;
    case CK_ACT_SILU: CK_BWD_LOOP(_mm512_mul_ps(d, ck_v16_silu_grad(v))); break;
    case CK_ACT_TANH: CK_BWD_LOOP(_mm512_mul_ps(d, ck_v16_tanh_grad(v))); break;
    case CK_ACT_SIGMOID: CK_BWD_LOOP(_mm512_mul_ps(d, ck_v16_sigmoid_grad(v))); break;
    case CK_ACT_LEAKY_RELU:
        CK_BWD_LOOP(_mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, zero, _CMP_GT_OQ), _mm512_mul_ps(d, slope), d));
        break;
    case CK_ACT_NONE:
    default: CK_BWD_LOOP(d); break;
    }
}

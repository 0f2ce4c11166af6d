/* AVX2 activation kernels (8 lanes; maskload/maskstore for the tail, so no scalar remainder).
 * The switch on the activation kind is hoisted out of the loops; the math is in vmath_avx2.h. */
#include "internal/eltwise.h"
#include "internal/vmath_avx2.h"

#define CK_T __attribute__((target("avx2,fma")))

/* Lane mask with the first r (1..7) lanes set, for maskload/maskstore. */
CK_T static inline __m256i ck_tail_mask8(int64_t r) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)r), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* y[i] = act(x[i] + bias[i]) (bias may be NULL). */
#define CK_FWD_LOOP(EXPR)                                                                  \
    do {                                                                                   \
        int64_t i = 0;                                                                     \
        for (; i + 8 <= n; i += 8) {                                                     \
            __m256 v = _mm256_loadu_ps(x + i);                                             \
            if (bias != NULL) v = _mm256_add_ps(v, _mm256_loadu_ps(bias + i));             \
            _mm256_storeu_ps(y + i, EXPR);                                                 \
        }                                                                                  \
        if (i < n) {                                                                       \
            __m256i m = ck_tail_mask8(n - i);                               \
            __m256 v = _mm256_maskload_ps(x + i, m);                                    \
            if (bias != NULL) v = _mm256_add_ps(v, _mm256_maskload_ps(bias + i, m));    \
            _mm256_maskstore_ps(y + i, m, EXPR);                                         \
        }                                                                                  \
    } while (0)

CK_T static void ck_act_row_avx2(int64_t n, const float *x, const float *bias, float *y, ck_act act,
                                   float act_param) {
    const __m256 slope = _mm256_set1_ps(act_param);
    switch (act) {
    case CK_ACT_GELU_ERF: CK_FWD_LOOP(ck_v8_gelu_erf(v)); break;
    case CK_ACT_GELU_TANH: CK_FWD_LOOP(ck_v8_gelu_tanh(v)); break;
    case CK_ACT_RELU: CK_FWD_LOOP(ck_v8_relu(v)); break;
    case CK_ACT_SILU: CK_FWD_LOOP(ck_v8_silu(v)); break;
    case CK_ACT_TANH: CK_FWD_LOOP(ck_v8_tanh(v)); break;
    case CK_ACT_SIGMOID: CK_FWD_LOOP(ck_v8_sigmoid(v)); break;
    case CK_ACT_LEAKY_RELU: CK_FWD_LOOP(ck_v8_leaky_relu(v, slope)); break;
    case CK_ACT_NONE:
    default: CK_FWD_LOOP(v); break;
    }
}

CK_T void ck_act_fwd_avx2(int64_t n, const float *x, float *y, ck_act act, float act_param) {
    ck_act_row_avx2(n, x, NULL, y, act, act_param);
}

CK_T void ck_bias_act_avx2(int64_t m, int64_t n, const float *bias, float *c, int64_t ldc, ck_act act,
                             float act_param) {
    for (int64_t r = 0; r < m; ++r) ck_act_row_avx2(n, c + r * ldc, bias, c + r * ldc, act, act_param);
}

/* dx = [dx +] dy * act'(x); G is the gradient factor expression in v (= x). */
#define CK_BWD_LOOP(GRADMUL)                                                               \
    do {                                                                                   \
        int64_t i = 0;                                                                     \
        for (; i + 8 <= n; i += 8) {                                                     \
            __m256 v = _mm256_loadu_ps(x + i), d = _mm256_loadu_ps(dy + i);                \
            __m256 g = GRADMUL; (void)v;                                                   \
            if (beta != 0.0f) g = _mm256_add_ps(_mm256_loadu_ps(dx + i), g);               \
            _mm256_storeu_ps(dx + i, g);                                                   \
        }                                                                                  \
        if (i < n) {                                                                       \
            __m256i m = ck_tail_mask8(n - i);                               \
            __m256 v = _mm256_maskload_ps(x + i, m), d = _mm256_maskload_ps(dy + i, m); \
            __m256 g = GRADMUL; (void)v;                                                   \
            if (beta != 0.0f) g = _mm256_add_ps(_mm256_maskload_ps(dx + i, m), g);      \
            _mm256_maskstore_ps(dx + i, m, g);                                           \
        }                                                                                  \
    } while (0)

CK_T void ck_act_bwd_avx2(int64_t n, const float *x, const float *dy, float *dx, float beta, ck_act act,
                            float act_param) {
    const __m256 slope = _mm256_set1_ps(act_param), zero = _mm256_setzero_ps();
    switch (act) {
    case CK_ACT_GELU_ERF: CK_BWD_LOOP(_mm256_mul_ps(d, ck_v8_gelu_erf_grad(v))); break;
    case CK_ACT_GELU_TANH: CK_BWD_LOOP(_mm256_mul_ps(d, ck_v8_gelu_tanh_grad(v))); break;
    case CK_ACT_RELU: CK_BWD_LOOP(_mm256_and_ps(_mm256_cmp_ps(v, zero, _CMP_GT_OQ), d)); break;
    case CK_ACT_SILU: CK_BWD_LOOP(_mm256_mul_ps(d, ck_v8_silu_grad(v))); break;
    case CK_ACT_TANH: CK_BWD_LOOP(_mm256_mul_ps(d, ck_v8_tanh_grad(v))); break;
    case CK_ACT_SIGMOID: CK_BWD_LOOP(_mm256_mul_ps(d, ck_v8_sigmoid_grad(v))); break;
    case CK_ACT_LEAKY_RELU:
        CK_BWD_LOOP(_mm256_blendv_ps(_mm256_mul_ps(d, slope), d, _mm256_cmp_ps(v, zero, _CMP_GT_OQ)));
        break;
    case CK_ACT_NONE:
    default: CK_BWD_LOOP(d); break;
    }
}

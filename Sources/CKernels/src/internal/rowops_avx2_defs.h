/* AVX2 instantiation of the rowops_simd.h vocabulary (see that file). */
#ifndef CK_INTERNAL_ROWOPS_AVX2_DEFS_H
#define CK_INTERNAL_ROWOPS_AVX2_DEFS_H
#include "internal/eltwise.h"
#include "internal/vmath_avx2.h"

#define CKV __m256
#define CKM __m256i
#define CKW 8
#define CKV_TARGET __attribute__((target("avx2,fma")))
#define CKV_SUFFIX(name) name##_avx2

CKV_TARGET static inline __m256i ck_rowops_tail8(int64_t r) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)r), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
CKV_TARGET static inline __m128 ck_rowops_fold8(__m256 v, int op) {
    __m128 a = _mm256_castps256_ps128(v), b = _mm256_extractf128_ps(v, 1);
    return op == 0 ? _mm_add_ps(a, b) : op == 1 ? _mm_max_ps(a, b) : _mm_min_ps(a, b);
}
CKV_TARGET static inline float ck_rowops_hsum8(__m256 v) {
    __m128 a = ck_rowops_fold8(v, 0);
    a = _mm_add_ps(a, _mm_movehl_ps(a, a));
    a = _mm_add_ss(a, _mm_movehdup_ps(a));
    return _mm_cvtss_f32(a);
}
CKV_TARGET static inline float ck_rowops_hmax8(__m256 v) {
    __m128 a = ck_rowops_fold8(v, 1);
    a = _mm_max_ps(a, _mm_movehl_ps(a, a));
    a = _mm_max_ss(a, _mm_movehdup_ps(a));
    return _mm_cvtss_f32(a);
}
CKV_TARGET static inline float ck_rowops_hmin8(__m256 v) {
    __m128 a = ck_rowops_fold8(v, 2);
    a = _mm_min_ps(a, _mm_movehl_ps(a, a));
    a = _mm_min_ss(a, _mm_movehdup_ps(a));
    return _mm_cvtss_f32(a);
}

#define CKV_TAIL(r) ck_rowops_tail8(r)
#define CKV_LOAD(p) _mm256_loadu_ps(p)
#define CKV_STORE(p, v) _mm256_storeu_ps((p), (v))
#define CKV_LOADM(p, m) _mm256_maskload_ps((p), (m))
#define CKV_STOREM(p, m, v) _mm256_maskstore_ps((p), (m), (v))
#define CKV_ZEROM(m, v) _mm256_and_ps(_mm256_castsi256_ps(m), (v))
#define CKV_SELM(m, a, b) _mm256_blendv_ps((a), (b), _mm256_castsi256_ps(m))
#define CKV_SET1(f) _mm256_set1_ps(f)
#define CKV_ADD(a, b) _mm256_add_ps((a), (b))
#define CKV_SUB(a, b) _mm256_sub_ps((a), (b))
#define CKV_MUL(a, b) _mm256_mul_ps((a), (b))
#define CKV_MAX(a, b) _mm256_max_ps((a), (b))
#define CKV_MIN(a, b) _mm256_min_ps((a), (b))
#define CKV_FMA(a, b, c) _mm256_fmadd_ps((a), (b), (c))
#define CKV_FNMA(a, b, c) _mm256_fnmadd_ps((a), (b), (c))
#define CKV_HSUM(v) ck_rowops_hsum8(v)
#define CKV_HMAX(v) ck_rowops_hmax8(v)
#define CKV_HMIN(v) ck_rowops_hmin8(v)
#define CKV_LN_PAIR_MAX_COLS 0 /* layernorm: no row pairing (16 ymm registers: the paired statistics loop spilled, ~40% slower) */
#define CKV_EXP(v) ck_v8_exp(v)
#define CKV_EXP_NONPOS(v) ck_v8_exp_nonpos(v) /* softmax: arguments z - max <= 0 */
/* softmax: no register chunking (16 ymm registers: chunks of 8 spilled and measured ~2% slower than the
 * three-pass loop, chunks of 4 ~40% slower) */
#define CKV_SM_CHUNK 0
#endif

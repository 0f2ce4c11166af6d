/* AVX2 + FMA GEMM: the 6x16 micro-kernel ck_sgemm_ukr_avx2_6x16 and its packing routines
 * (docs/kernels.md, "GEMM").
 *
 * Register tile: 6 rows x 16 columns of C = 12 ymm accumulators, 2 ymm for the B row, 1 for the
 * broadcast A value (15 of 16 registers). Per k step: 2 loads of B, 6 broadcasts, 12 independent
 * FMAs (2 FMA pipes x latency 4 needs >= 8 in flight). Every accumulator lane is one C element's
 * FMA chain, exactly as in ck_gemm_f32_ref. */
#include "internal/gemm_internal.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>

#include "internal/vmath_avx2.h"

#define CK_AVX2 __attribute__((target("avx2,fma")))

enum { MR = 6, NR = 16 };

/* Lane masks for maskload/maskstore: lanes [0, cols) set. */
CK_AVX2 static inline __m256i ck_mask8(int64_t cols) {
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const int n = cols <= 0 ? 0 : (cols >= 8 ? 8 : (int)cols);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), idx);
}

CK_AVX2 static inline __m256 ck_act8(__m256 t, ck_act act, float param) {
    return act == CK_ACT_NONE ? t : ck_v8_act(t, act, param);
}

/* Epilogue of one row segment of 8 columns: t = acc + bias, preact, act, residual, store. */
CK_AVX2 static inline void ck_epi_row8(__m256 acc, __m256i m, float *c, const float *bias,
                                       const float *res, float *pre, ck_act act, float param) {
    if (bias) acc = _mm256_add_ps(acc, _mm256_maskload_ps(bias, m));
    if (pre) _mm256_maskstore_ps(pre, m, acc);
    __m256 y = ck_act8(acc, act, param);
    if (res) y = _mm256_add_ps(y, _mm256_maskload_ps(res, m));
    _mm256_maskstore_ps(c, m, y);
}

CK_AVX2 static void ck_sgemm_ukr_avx2_6x16(int64_t kc, const float *restrict ap,
                                           const float *restrict bp, float *c, int64_t ldc,
                                           int64_t mr, int64_t nr, const ck_ukr_args *args) {
    const __m256i m0 = ck_mask8(nr), m1 = ck_mask8(nr - 8);
    __m256 c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
    c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = c40 = c41 = c50 = c51 = _mm256_setzero_ps();

    const int first = (args->flags & CK_UKR_FIRST) != 0;
    const float beta = args->beta;
    if (!first || beta != 0.0f) {
        const __m256 vb = _mm256_set1_ps(first ? beta : 1.0f);
        const int scale = first && beta != 1.0f;
#define CK_LOAD_ROW(r)                                                                        \
    if (r < mr) {                                                                             \
        const float *cr = c + (r) * ldc;                                                      \
        c##r##0 = _mm256_maskload_ps(cr, m0);                                                 \
        c##r##1 = _mm256_maskload_ps(cr + 8, m1);                                             \
        if (scale) {                                                                          \
            c##r##0 = _mm256_mul_ps(c##r##0, vb);                                             \
            c##r##1 = _mm256_mul_ps(c##r##1, vb);                                             \
        }                                                                                     \
    }
        CK_LOAD_ROW(0) CK_LOAD_ROW(1) CK_LOAD_ROW(2) CK_LOAD_ROW(3) CK_LOAD_ROW(4) CK_LOAD_ROW(5)
#undef CK_LOAD_ROW
    } else {
        for (int64_t r = 0; r < mr; ++r) {
            _mm_prefetch((const char *)(c + r * ldc), _MM_HINT_T0);
            _mm_prefetch((const char *)(c + r * ldc + 15), _MM_HINT_T0);
        }
    }

#define CK_FMA_ROW(r)                                                                         \
    {                                                                                         \
        const __m256 a = _mm256_broadcast_ss(ap + (r));                                       \
        c##r##0 = _mm256_fmadd_ps(a, b0, c##r##0);                                            \
        c##r##1 = _mm256_fmadd_ps(a, b1, c##r##1);                                            \
    }
#define CK_STEP                                                                               \
    {                                                                                         \
        const __m256 b0 = _mm256_load_ps(bp), b1 = _mm256_load_ps(bp + 8);                    \
        CK_FMA_ROW(0) CK_FMA_ROW(1) CK_FMA_ROW(2) CK_FMA_ROW(3) CK_FMA_ROW(4) CK_FMA_ROW(5)    \
        ap += MR;                                                                             \
        bp += NR;                                                                             \
    }
    int64_t p = 0;
    for (; p + 4 <= kc; p += 4) {
        _mm_prefetch((const char *)(bp + 8 * NR), _MM_HINT_T0);
        _mm_prefetch((const char *)(bp + 10 * NR), _MM_HINT_T0);
        CK_STEP CK_STEP CK_STEP CK_STEP
    }
    for (; p < kc; ++p) CK_STEP
#undef CK_STEP
#undef CK_FMA_ROW

    const float *bias = args->bias;
    const ck_act act = args->act;
    const float param = args->act_param;
    if (!(args->flags & CK_UKR_LAST) ||
        (bias == NULL && act == CK_ACT_NONE && args->residual == NULL && args->preact == NULL)) {
#define CK_STORE_ROW(r)                                                                       \
    if (r < mr) {                                                                             \
        float *cr = c + (r) * ldc;                                                            \
        _mm256_maskstore_ps(cr, m0, c##r##0);                                                 \
        _mm256_maskstore_ps(cr + 8, m1, c##r##1);                                             \
    }
        CK_STORE_ROW(0) CK_STORE_ROW(1) CK_STORE_ROW(2) CK_STORE_ROW(3) CK_STORE_ROW(4) CK_STORE_ROW(5)
#undef CK_STORE_ROW
        return;
    }
#define CK_EPI_ROW(r)                                                                         \
    if (r < mr) {                                                                             \
        float *cr = c + (r) * ldc;                                                            \
        const float *rr = args->residual ? args->residual + (r) * args->ld_residual : NULL;   \
        float *pr = args->preact ? args->preact + (r) * args->ld_preact : NULL;               \
        ck_epi_row8(c##r##0, m0, cr, bias, rr, pr, act, param);                               \
        ck_epi_row8(c##r##1, m1, cr + 8, bias ? bias + 8 : NULL, rr ? rr + 8 : NULL,          \
                    pr ? pr + 8 : NULL, act, param);                                          \
    }
    CK_EPI_ROW(0) CK_EPI_ROW(1) CK_EPI_ROW(2) CK_EPI_ROW(3) CK_EPI_ROW(4) CK_EPI_ROW(5)
#undef CK_EPI_ROW
}

/* ------------------------------------------------------------------------------------------ */
/* Packing                                                                                     */
/* ------------------------------------------------------------------------------------------ */

/* In-register transpose of an 8x8 block of ymm rows. */
CK_AVX2 static inline void ck_transpose8x8_avx2(__m256 r[8]) {
    __m256 t[8], u[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
        u[i + 0] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
        u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
        u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    for (int q = 0; q < 4; ++q) {
        r[q] = _mm256_permute2f128_ps(u[q], u[4 + q], 0x20);
        r[q + 4] = _mm256_permute2f128_ps(u[q], u[4 + q], 0x31);
    }
}

static void ck_pack_a_avx2(ck_trans transa, const float *a, int64_t lda, int64_t i0, int64_t p0,
                           int64_t mc, int64_t kc, float alpha, float *dst) {
    ck_gemm_pack_a_generic(transa, a, lda, i0, p0, mc, kc, alpha, dst, MR);
}

/* B micro-panels of 16 columns: dst[p*16 + c] = op(B)[p0 + p, j0 + jr + c], zero padded. */
CK_AVX2 static void ck_pack_b_avx2(ck_trans transb, const float *b, int64_t ldb, int64_t p0,
                                   int64_t j0, int64_t kc, int64_t nc, float *dst) {
    for (int64_t jr = 0; jr < nc; jr += NR) {
        const int64_t cols = nc - jr < NR ? nc - jr : NR;
        float *d = dst + jr * kc;
        if (transb == CK_NO_TRANS) {
            const __m256i m0 = ck_mask8(cols), m1 = ck_mask8(cols - 8);
            const float *s = b + p0 * ldb + j0 + jr;
            for (int64_t p = 0; p < kc; ++p) {
                _mm256_store_ps(d + p * NR, _mm256_maskload_ps(s + p * ldb, m0));
                _mm256_store_ps(d + p * NR + 8, _mm256_maskload_ps(s + p * ldb + 8, m1));
            }
            continue;
        }
        if (cols < NR) {
            ck_gemm_pack_b_generic(transb, b, ldb, p0, j0 + jr, kc, cols, d, NR);
            continue;
        }
        /* op(B)[p, j] = b[j*ldb + p]: 8 (columns) x 8 (depth) transposes. */
        const float *s = b + (j0 + jr) * ldb + p0;
        int64_t p = 0;
        for (; p + 8 <= kc; p += 8) {
            for (int cb = 0; cb < NR; cb += 8) {
                __m256 r[8];
                for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(s + (cb + i) * ldb + p);
                ck_transpose8x8_avx2(r);
                for (int i = 0; i < 8; ++i) _mm256_store_ps(d + (p + i) * NR + cb, r[i]);
            }
        }
        for (; p < kc; ++p)
            for (int cidx = 0; cidx < NR; ++cidx) d[p * NR + cidx] = s[cidx * ldb + p];
    }
}

/* Block sizes: the same plan as AVX-512 (ck_gemm_plan), with MC the multiple of MR = 6 just above
 * 128, so that M = 128 also runs as one A block (and needs the same workspace as AVX-512). */
CK_GEMM_TABLE_CONST ck_gemm_blocking ck_gemm_blocking_avx2 = {
    .mr = MR, .nr = NR, .mc = 132, .kc = 768, .nc = 768, .l2_b_bytes = 576 * 1024,
    .ukr = ck_sgemm_ukr_avx2_6x16, .pack_a = ck_pack_a_avx2, .pack_b = ck_pack_b_avx2,
};

#else
CK_GEMM_TABLE_CONST ck_gemm_blocking ck_gemm_blocking_avx2 = {6, 16, 132, 768, 768, 576 * 1024, NULL, NULL, NULL};
#endif

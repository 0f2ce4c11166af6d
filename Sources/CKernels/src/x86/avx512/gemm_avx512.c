/* AVX-512 GEMM: the 8x48 micro-kernel ck_sgemm_ukr_avx512_8x48 and its packing routines
 * (docs/kernels.md, "GEMM").
 *
 * Register tile: 8 rows x 48 columns of C = 24 zmm accumulators, 3 zmm for the B row, A values
 * broadcast from the packed A panel. Per k step: 3 loads of B, 8 broadcasts, 24 independent FMAs
 * (Zen 4 needs >= 4 independent 512-bit FMAs in flight: 1 per cycle, latency 4). Every
 * accumulator lane is one C element's FMA chain (no split sums), which is what keeps the result
 * bitwise equal to ck_gemm_f32_ref. */
#include "internal/gemm_internal.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>

#include "internal/vmath_avx512.h"

#define CK_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq")))

enum { MR = 8, NR = 48 };

/* Activation of one vector: the shared vector math (vmath_avx512.h; ReLU and leaky ReLU are exact,
 * the transcendental ones are within a few ulps of the scalar reference, docs/numerics.md). */
CK_AVX512 static inline __m512 ck_act16(__m512 t, ck_act act, float param) {
    return act == CK_ACT_NONE ? t : ck_v16_act(t, act, param);
}

static inline __mmask16 ck_mask16(int64_t cols) {
    if (cols >= 16) return (__mmask16)0xFFFF;
    if (cols <= 0) return 0;
    return (__mmask16)((1u << cols) - 1u);
}

/* The epilogue of one row segment of 16 columns (mask m): t = acc + bias, preact, act, residual. */
CK_AVX512 static inline void ck_epi_row16(__m512 acc, __mmask16 m, float *c, const float *bias,
                                          const float *res, float *pre, ck_act act, float param) {
    if (bias) acc = _mm512_add_ps(acc, _mm512_maskz_loadu_ps(m, bias));
    if (pre) _mm512_mask_storeu_ps(pre, m, acc);
    __m512 y = ck_act16(acc, act, param);
    if (res) y = _mm512_add_ps(y, _mm512_maskz_loadu_ps(m, res));
    _mm512_mask_storeu_ps(c, m, y);
}

CK_AVX512 static void ck_sgemm_ukr_avx512_8x48(int64_t kc, const float *restrict ap,
                                               const float *restrict bp, float *c, int64_t ldc,
                                               int64_t mr, int64_t nr, const ck_ukr_args *args) {
    const __mmask16 m0 = ck_mask16(nr), m1 = ck_mask16(nr - 16), m2 = ck_mask16(nr - 32);
    __m512 c00, c01, c02, c10, c11, c12, c20, c21, c22, c30, c31, c32;
    __m512 c40, c41, c42, c50, c51, c52, c60, c61, c62, c70, c71, c72;
    c00 = c01 = c02 = c10 = c11 = c12 = c20 = c21 = c22 = c30 = c31 = c32 = _mm512_setzero_ps();
    c40 = c41 = c42 = c50 = c51 = c52 = c60 = c61 = c62 = c70 = c71 = c72 = _mm512_setzero_ps();

    const int first = (args->flags & CK_UKR_FIRST) != 0;
    const float beta = args->beta;
    if (!first || beta != 0.0f) {
        const __m512 vb = _mm512_set1_ps(first ? beta : 1.0f);
        const int scale = first && beta != 1.0f;
#define CK_LOAD_ROW(r)                                                                        \
    if (r < mr) {                                                                             \
        const float *cr = c + (r) * ldc;                                                      \
        c##r##0 = _mm512_maskz_loadu_ps(m0, cr);                                              \
        c##r##1 = _mm512_maskz_loadu_ps(m1, cr + 16);                                         \
        c##r##2 = _mm512_maskz_loadu_ps(m2, cr + 32);                                         \
        if (scale) {                                                                          \
            c##r##0 = _mm512_mul_ps(c##r##0, vb);                                             \
            c##r##1 = _mm512_mul_ps(c##r##1, vb);                                             \
            c##r##2 = _mm512_mul_ps(c##r##2, vb);                                             \
        }                                                                                     \
    }
        CK_LOAD_ROW(0) CK_LOAD_ROW(1) CK_LOAD_ROW(2) CK_LOAD_ROW(3)
        CK_LOAD_ROW(4) CK_LOAD_ROW(5) CK_LOAD_ROW(6) CK_LOAD_ROW(7)
#undef CK_LOAD_ROW
    } else {
        /* C is only written: bring its lines in while the K loop runs. */
        for (int64_t r = 0; r < mr; ++r) {
            _mm_prefetch((const char *)(c + r * ldc), _MM_HINT_T0);
            _mm_prefetch((const char *)(c + r * ldc + 16), _MM_HINT_T0);
            _mm_prefetch((const char *)(c + r * ldc + 32), _MM_HINT_T0);
            _mm_prefetch((const char *)(c + r * ldc + 47), _MM_HINT_T0);
        }
    }

#define CK_FMA_ROW(r)                                                                         \
    {                                                                                         \
        const __m512 a = _mm512_set1_ps(ap[r]);                                               \
        c##r##0 = _mm512_fmadd_ps(a, b0, c##r##0);                                            \
        c##r##1 = _mm512_fmadd_ps(a, b1, c##r##1);                                            \
        c##r##2 = _mm512_fmadd_ps(a, b2, c##r##2);                                            \
    }
#define CK_STEP                                                                               \
    {                                                                                         \
        const __m512 b0 = _mm512_load_ps(bp), b1 = _mm512_load_ps(bp + 16),                   \
                     b2 = _mm512_load_ps(bp + 32);                                            \
        CK_FMA_ROW(0) CK_FMA_ROW(1) CK_FMA_ROW(2) CK_FMA_ROW(3)                                \
        CK_FMA_ROW(4) CK_FMA_ROW(5) CK_FMA_ROW(6) CK_FMA_ROW(7)                                \
        ap += MR;                                                                             \
        bp += NR;                                                                             \
    }
    int64_t p = 0;
    for (; p + 4 <= kc; p += 4) {
        _mm_prefetch((const char *)(bp + 8 * NR), _MM_HINT_T0);
        _mm_prefetch((const char *)(bp + 8 * NR + 16), _MM_HINT_T0);
        _mm_prefetch((const char *)(bp + 8 * NR + 32), _MM_HINT_T0);
        CK_STEP CK_STEP CK_STEP CK_STEP
    }
    for (; p < kc; ++p) CK_STEP
#undef CK_STEP
#undef CK_FMA_ROW

#define CK_STORE_ROW(r)                                                                       \
    if (r < mr) {                                                                             \
        float *cr = c + (r) * ldc;                                                            \
        _mm512_mask_storeu_ps(cr, m0, c##r##0);                                               \
        _mm512_mask_storeu_ps(cr + 16, m1, c##r##1);                                          \
        _mm512_mask_storeu_ps(cr + 32, m2, c##r##2);                                          \
    }
    const float *bias = args->bias;
    const ck_act act = args->act;
    const float param = args->act_param;
    if (!(args->flags & CK_UKR_LAST) ||
        (bias == NULL && act == CK_ACT_NONE && args->residual == NULL && args->preact == NULL)) {
        /* Partial sums between K blocks, or a plain store. */
        CK_STORE_ROW(0) CK_STORE_ROW(1) CK_STORE_ROW(2) CK_STORE_ROW(3)
        CK_STORE_ROW(4) CK_STORE_ROW(5) CK_STORE_ROW(6) CK_STORE_ROW(7)
        return;
    }
#undef CK_STORE_ROW
#define CK_EPI_ROW(r)                                                                         \
    if (r < mr) {                                                                             \
        float *cr = c + (r) * ldc;                                                            \
        const float *rr = args->residual ? args->residual + (r) * args->ld_residual : NULL;   \
        float *pr = args->preact ? args->preact + (r) * args->ld_preact : NULL;               \
        ck_epi_row16(c##r##0, m0, cr, bias, rr, pr, act, param);                              \
        ck_epi_row16(c##r##1, m1, cr + 16, bias ? bias + 16 : NULL, rr ? rr + 16 : NULL,      \
                     pr ? pr + 16 : NULL, act, param);                                        \
        ck_epi_row16(c##r##2, m2, cr + 32, bias ? bias + 32 : NULL, rr ? rr + 32 : NULL,      \
                     pr ? pr + 32 : NULL, act, param);                                        \
    }
    CK_EPI_ROW(0) CK_EPI_ROW(1) CK_EPI_ROW(2) CK_EPI_ROW(3)
    CK_EPI_ROW(4) CK_EPI_ROW(5) CK_EPI_ROW(6) CK_EPI_ROW(7)
#undef CK_EPI_ROW
}

/* ------------------------------------------------------------------------------------------ */
/* Packing                                                                                     */
/* ------------------------------------------------------------------------------------------ */

/* In-register transpose of a 16x16 block: r[i] holds row i on entry, column i on exit. */
CK_AVX512 static inline void ck_transpose16x16(__m512 r[16]) {
    __m512 t[16], u[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        u[i + 0] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
        u[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xEE);
        u[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        u[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    /* u[4g + q] holds, in 128-bit lane l, column q + 4l of rows 4g..4g+3. */
    for (int q = 0; q < 4; ++q) {
        const __m512 v0 = _mm512_shuffle_f32x4(u[q], u[4 + q], 0x88);
        const __m512 v1 = _mm512_shuffle_f32x4(u[q], u[4 + q], 0xDD);
        const __m512 v2 = _mm512_shuffle_f32x4(u[8 + q], u[12 + q], 0x88);
        const __m512 v3 = _mm512_shuffle_f32x4(u[8 + q], u[12 + q], 0xDD);
        r[q] = _mm512_shuffle_f32x4(v0, v2, 0x88);
        r[q + 8] = _mm512_shuffle_f32x4(v0, v2, 0xDD);
        r[q + 4] = _mm512_shuffle_f32x4(v1, v3, 0x88);
        r[q + 12] = _mm512_shuffle_f32x4(v1, v3, 0xDD);
    }
}

/* In-register transpose of an 8x8 block of ymm rows. */
CK_AVX512 static inline void ck_transpose8x8(__m256 r[8]) {
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

/* A micro-panels of 8 rows: dst[p*8 + r] = alpha * op(A)[i0 + ir + r, p0 + p], zero padded. */
CK_AVX512 static void ck_pack_a_avx512(ck_trans transa, const float *a, int64_t lda, int64_t i0,
                                       int64_t p0, int64_t mc, int64_t kc, float alpha, float *dst) {
    const __m256 va = _mm256_set1_ps(alpha);
    const int scale = alpha != 1.0f;
    for (int64_t ir = 0; ir < mc; ir += MR) {
        const int64_t rows = mc - ir < MR ? mc - ir : MR;
        float *d = dst + ir * kc;
        if (transa == CK_TRANS) {
            /* op(A)[i, p] = a[p*lda + i]: 8 contiguous rows per k step. */
            const __mmask8 m = (__mmask8)((1u << rows) - 1u);
            const float *s = a + p0 * lda + i0 + ir;
            for (int64_t p = 0; p < kc; ++p) {
                __m256 v = _mm256_maskz_loadu_ps(m, s + p * lda);
                if (scale) v = _mm256_mul_ps(v, va);
                _mm256_store_ps(d + p * MR, v);
            }
            continue;
        }
        if (rows < MR) {
            ck_gemm_pack_a_generic(transa, a, lda, i0 + ir, p0, rows, kc, alpha, d, MR);
            continue;
        }
        const float *s = a + (i0 + ir) * lda + p0;
        int64_t p = 0;
        for (; p + 8 <= kc; p += 8) {
            __m256 r[8];
            for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(s + i * lda + p);
            ck_transpose8x8(r);
            for (int i = 0; i < 8; ++i) {
                if (scale) r[i] = _mm256_mul_ps(r[i], va);
                _mm256_store_ps(d + (p + i) * MR, r[i]);
            }
        }
        for (; p < kc; ++p)
            for (int i = 0; i < 8; ++i) d[p * MR + i] = alpha * s[i * lda + p];
    }
}

/* B micro-panels of 48 columns: dst[p*48 + c] = op(B)[p0 + p, j0 + jr + c], zero padded. */
CK_AVX512 static void ck_pack_b_avx512(ck_trans transb, const float *b, int64_t ldb, int64_t p0,
                                       int64_t j0, int64_t kc, int64_t nc, float *dst) {
    for (int64_t jr = 0; jr < nc; jr += NR) {
        const int64_t cols = nc - jr < NR ? nc - jr : NR;
        float *d = dst + jr * kc;
        if (transb == CK_NO_TRANS) {
            const __mmask16 m0 = ck_mask16(cols), m1 = ck_mask16(cols - 16), m2 = ck_mask16(cols - 32);
            const float *s = b + p0 * ldb + j0 + jr;
            for (int64_t p = 0; p < kc; ++p) {
                const float *sp = s + p * ldb;
                _mm512_store_ps(d + p * NR, _mm512_maskz_loadu_ps(m0, sp));
                _mm512_store_ps(d + p * NR + 16, _mm512_maskz_loadu_ps(m1, sp + 16));
                _mm512_store_ps(d + p * NR + 32, _mm512_maskz_loadu_ps(m2, sp + 32));
            }
            continue;
        }
        /* op(B)[p, j] = b[j*ldb + p]: transpose 16 (columns j) x 16 (depth p) blocks. */
        const float *s = b + (j0 + jr) * ldb + p0;
        for (int64_t cb = 0; cb < NR; cb += 16) {
            const int64_t ccount = cols - cb; /* may be <= 0: zero block */
            int64_t p = 0;
            for (; p + 16 <= kc; p += 16) {
                __m512 r[16];
                for (int i = 0; i < 16; ++i)
                    r[i] = i < ccount ? _mm512_loadu_ps(s + (cb + i) * ldb + p) : _mm512_setzero_ps();
                ck_transpose16x16(r);
                for (int i = 0; i < 16; ++i) _mm512_store_ps(d + (p + i) * NR + cb, r[i]);
            }
            if (p < kc) {
                /* Depth tail: masked loads along p, same transpose. */
                const __mmask16 mp = ck_mask16(kc - p);
                __m512 r[16];
                for (int i = 0; i < 16; ++i)
                    r[i] = i < ccount ? _mm512_maskz_loadu_ps(mp, s + (cb + i) * ldb + p) : _mm512_setzero_ps();
                ck_transpose16x16(r);
                for (int i = 0; p + i < kc; ++i) _mm512_store_ps(d + (p + i) * NR + cb, r[i]);
            }
        }
    }
}

/* Block sizes (Zen 4: 32 KiB L1D, 1 MiB L2 per core), measured on the NT shapes of docs/kernels.md
 * (see ck_gemm_plan for how a call derives its blocks):
 *   MC = 128: the A block MC x KC (up to 384 KiB) stays in L2 and is reused across all B panels;
 *   KC <= 768: K = 768 runs as one block (no partial sums through C: +4-6% on (1024, 768, 3072)),
 *              the B micro-panel KC x NR (up to 144 KiB) is reused by the MC/MR A panels from L2;
 *   NC = 768 when M spans several A blocks (A repacked N/768 times);
 *   B block of ~576 KiB when M fits one A block (packed, then consumed from L2). */
CK_GEMM_TABLE_CONST ck_gemm_blocking ck_gemm_blocking_avx512 = {
    .mr = MR, .nr = NR, .mc = 128, .kc = 768, .nc = 768, .l2_b_bytes = 576 * 1024,
    .ukr = ck_sgemm_ukr_avx512_8x48, .pack_a = ck_pack_a_avx512, .pack_b = ck_pack_b_avx512,
};

#else
CK_GEMM_TABLE_CONST ck_gemm_blocking ck_gemm_blocking_avx512 = {8, 48, 128, 768, 768, 576 * 1024, NULL, NULL, NULL};
#endif

/*
 * vmath_avx2.h — vectorized transcendental functions on __m256 (8 x fp32), all static inline.
 *
 * Every function carries __attribute__((target("avx2,fma"))) (CK_VM256_TARGET), so it inlines into any
 * caller whose target list contains avx2 and fma. This file holds the ISA-specific part (abs, copysign, clamp,
 * exp: 2^n applied as two exponent-field multiplies instead of scalef); everything built on it (erf, tanh,
 * sigmoid, GELU, SiLU, ReLU, the ck_act dispatchers) is written once in vmath_simd.h and shared with
 * vmath_avx512.h (same algorithms, coefficients and operation order; blends instead of mask registers).
 *
 * Accuracy (measured against double over dense sweeps, see docs/numerics.md "Activations"):
 *   ck_v8_exp       <= 1 ulp-ish (minimax degree-6 polynomial after Cody-Waite reduction; the
 *                      polynomial alone is good to 9.6e-9 relative), overflow -> +inf, results below
 *                      e^-86.5 = 2.7e-38 flush to +0 (no subnormal arithmetic), NaN -> NaN.
 *   ck_v8_erf       |z| <= 1: z + z P6(z^2) (minimax, 3e-9 relative); |z| > 1: 1 - exp(-z^2) erfcx(z)
 *                      with erfcx as t * P8(u), t = 1/(1 + z/2) (2e-7 relative in fp32 evaluation) and
 *                      z^2 split exactly with an FMA so exp(-z^2) is not hurt by rounding of z^2.
 *   ck_v8_tanh      |x| < 0.625: x + x^3 P5(x^2); else (1 - e)/(1 + e), e = exp(-2|x|).
 *   GELU (erf)       x * Phi(x) with Phi from the same erf/erfc pieces; for x < -sqrt(2) it uses
 *                      0.5 erfc(|x|/sqrt2) directly, so the negative tail keeps its relative accuracy
 *                      (no 1 + erf cancellation).
 *   GELU (tanh)      x * sigmoid(2u) (identical to 0.5 x (1 + tanh u)), accurate in the negative tail;
 *                      2u is formed in double-float (FMA-exact products, Fast2Sum), <= 4.1 ulp measured.
 *
 * The polynomial coefficients were fitted for this project (weighted least squares iterated towards
 * minimax, coefficients rounded to fp32 one at a time with refits); see docs/numerics.md.
 */
#ifndef CK_INTERNAL_VMATH_AVX2_H
#define CK_INTERNAL_VMATH_AVX2_H

#include <immintrin.h>

#include "ckernels.h"

#define CK_VM256_TARGET __attribute__((target("avx2,fma")))
#define CK_VM256 static inline CK_VM256_TARGET

/* ---- bit helpers ---------------------------------------------------------- */

CK_VM256 __m256 ck_v8_abs(__m256 x) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x); }

/* Returns |a| with the sign bit of s. */
CK_VM256 __m256 ck_v8_copysign(__m256 a, __m256 s) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    return _mm256_or_ps(_mm256_andnot_ps(sign, a), _mm256_and_ps(sign, s));
}

/* Clamp that lets NaN through: max/min return their SECOND operand when either is NaN. */
CK_VM256 __m256 ck_v8_clamp(__m256 x, float lo, float hi) {
    x = _mm256_max_ps(_mm256_set1_ps(lo), x);
    return _mm256_min_ps(_mm256_set1_ps(hi), x);
}

/* ---- exp --------------------------------------------------------------------------------- */

/* e^x. Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2, e^r = 1 + r + r^2 P4(r), then
 * multiplication by 2^n1 * 2^n2 with n1 = n >> 1, n2 = n - n1 (each a normal power of two for
 * n in [-125, 129], so overflow gives +inf). x < -86.5 gives +0 (flush, see below). */
CK_VM256 __m256 ck_v8_exp(__m256 x) {
    const __m256 magic = _mm256_set1_ps(12582912.0f); /* 1.5 * 2^23: t - magic = round(x log2 e) */
    /* Results below e^-86.5 (2.7e-38) flush to +0 without any subnormal arithmetic (which costs a
     * microcode assist per lane on this class of CPU); NaN is kept (unordered compare). */
    __m256 keep = _mm256_cmp_ps(x, _mm256_set1_ps(-86.5f), _CMP_NLT_UQ);
    x = ck_v8_clamp(x, -86.5f, 89.0f);
    __m256 t = _mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), magic);
    __m256 n = _mm256_sub_ps(t, magic);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.390615245e-03f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.362949826e-03f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.166675732e-02f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.666657925e-01f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    __m256 r2 = _mm256_mul_ps(r, r);
    p = _mm256_fmadd_ps(p, r2, r);
    p = _mm256_add_ps(p, _mm256_set1_ps(1.0f));
    /* integer n from the low mantissa bits of t (exact for |n| < 2^22); NaN lanes: p is NaN already */
    __m256i ni = _mm256_sub_epi32(_mm256_castps_si256(t), _mm256_castps_si256(magic));
    __m256i n1 = _mm256_srai_epi32(ni, 1);
    __m256i n2 = _mm256_sub_epi32(ni, n1);
    const __m256i bias = _mm256_set1_epi32(127);
    __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
    __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
    return _mm256_and_ps(keep, _mm256_mul_ps(_mm256_mul_ps(p, s1), s2));
}

/* e^x for x <= 0 only (softmax arguments z - max), 12 instructions instead of ck_v8_exp's ~24: k = round(8 x log2 e)
 * read from t = 8 x log2e + 1.5 * 2^23 (low 3 bits of t's encoding = k mod 8 = j), r = x - k * fl(ln2 / 8) in ONE
 * fused step (fl(ln2/8) is 2.4e-10 above ln2/8, so r carries |x| * 2.75e-9 of extra absolute error), e^r = 1 + r +
 * r^2 (c2 + c3 r) (minimax on |r| <= ln2/16, 2.7e-8 relative), 2^(j/8) from an 8-entry register table (vpermps) whose
 * entries are pre-biased by -(j << 20) so that adding k << 20 as an integer gives 2^(k/8) exactly. Measured on
 * [-87.3, 0] (every float) in docs/numerics.md. x < -87.3 -> +0 exactly (no subnormal arithmetic), -inf -> +0,
 * NaN -> NaN. x > 0 is NOT supported (the integer exponent add is not range checked). */
CK_VM256 __m256 ck_v8_exp_nonpos(__m256 x) {
    const __m256 magic = _mm256_set1_ps(12582912.0f); /* 1.5 * 2^23: t - magic = k */
    const __m256i tab = _mm256_setr_epi32(0x3f800000, 0x3f7b95c2, 0x3f7837f0, 0x3f75fed7, 0x3f7504f3, 0x3f75672a,
                                          0x3f7744fd, 0x3f7ac0c7);
    __m256 keep = _mm256_cmp_ps(x, _mm256_set1_ps(-87.3f), _CMP_NLT_UQ);
    __m256 t = _mm256_fmadd_ps(x, _mm256_set1_ps(1.154156017e+01f), magic);
    __m256 k = _mm256_sub_ps(t, magic);
    __m256 r = _mm256_fnmadd_ps(k, _mm256_set1_ps(8.664339781e-02f), x);
    __m256 p = _mm256_fmadd_ps(r, _mm256_set1_ps(1.666464061e-01f), _mm256_set1_ps(5.000647902e-01f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    __m256i ti = _mm256_castps_si256(t);
    __m256i tb = _mm256_add_epi32(_mm256_permutevar8x32_epi32(tab, ti), _mm256_slli_epi32(ti, 20));
    return _mm256_and_ps(keep, _mm256_mul_ps(_mm256_castsi256_ps(tb), p));
}

/* ---- the ISA-independent functions (vmath_simd.h) ------------------------------------------ */

#define CKVM_T __m256
#define CKVM_M __m256
#define CKVM_DEF CK_VM256
#define CKVM_(name) ck_v8_##name
#define CKVM_SET1(f) _mm256_set1_ps(f)
#define CKVM_ZERO() _mm256_setzero_ps()
#define CKVM_ADD(a, b) _mm256_add_ps((a), (b))
#define CKVM_SUB(a, b) _mm256_sub_ps((a), (b))
#define CKVM_MUL(a, b) _mm256_mul_ps((a), (b))
#define CKVM_DIV(a, b) _mm256_div_ps((a), (b))
#define CKVM_MAX(a, b) _mm256_max_ps((a), (b))
#define CKVM_MIN(a, b) _mm256_min_ps((a), (b))
#define CKVM_FMA(a, b, c) _mm256_fmadd_ps((a), (b), (c))
#define CKVM_FMS(a, b, c) _mm256_fmsub_ps((a), (b), (c))
#define CKVM_FNMA(a, b, c) _mm256_fnmadd_ps((a), (b), (c))
#define CKVM_CMP(a, b, pred) _mm256_cmp_ps((a), (b), (pred))
#define CKVM_BLEND(m, a, b) _mm256_blendv_ps((a), (b), (m))
#define CKVM_ALL(m) (_mm256_movemask_ps(m) == 0xFF)
#define CKVM_NOTALL(m) (_mm256_movemask_ps(m) != 0xFF)
#define CKVM_ZEROM(m, v) _mm256_and_ps((m), (v))
#define CKVM_XORSIGN(v, s) _mm256_xor_ps((v), _mm256_and_ps((s), _mm256_set1_ps(-0.0f)))
#include "internal/vmath_simd.h"

#endif /* CK_INTERNAL_VMATH_AVX2_H */

/*
 * vmath_avx512.h — vectorized transcendental functions on __m512 (16 x fp32), all static inline.
 *
 * Every function carries __attribute__((target("avx512f"))) (CK_VM512_TARGET) and nothing more, so it
 * inlines into any caller whose target list contains avx512f (e.g. "avx512f,avx512bw,avx512vl,avx512dq").
 * Only AVX-512F intrinsics are used (no _mm512_and_ps & co., which need DQ). This file holds the ISA-specific
 * part (abs, copysign, clamp, exp, exp_nonpos); everything built on it is written once in vmath_simd.h and
 * shared with vmath_avx2.h.
 *
 * Accuracy (measured against double over dense sweeps, see docs/numerics.md "Activations"):
 *   ck_v16_exp       <= 1 ulp-ish (minimax degree-6 polynomial after Cody-Waite reduction; the
 *                      polynomial alone is good to 9.6e-9 relative), overflow -> +inf, results below
 *                      e^-86.5 = 2.7e-38 flush to +0 (no subnormal arithmetic), NaN -> NaN.
 *   ck_v16_erf       |z| <= 1: z + z P6(z^2) (minimax, 3e-9 relative); |z| > 1: 1 - exp(-z^2) erfcx(z)
 *                      with erfcx as t * P8(u), t = 1/(1 + z/2) (2e-7 relative in fp32 evaluation) and
 *                      z^2 split exactly with an FMA so exp(-z^2) is not hurt by rounding of z^2.
 *   ck_v16_tanh      |x| < 0.625: x + x^3 P5(x^2); else (1 - e)/(1 + e), e = exp(-2|x|).
 *   GELU (erf)       x * Phi(x) with Phi from the same erf/erfc pieces; for x < -sqrt(2) it uses
 *                      0.5 erfc(|x|/sqrt2) directly, so the negative tail keeps its relative accuracy
 *                      (no 1 + erf cancellation).
 *   GELU (tanh)      x * sigmoid(2u) (identical to 0.5 x (1 + tanh u)), accurate in the negative tail;
 *                      2u is formed in double-float (FMA-exact products, Fast2Sum), <= 4.1 ulp measured.
 *
 * The polynomial coefficients were fitted for this project (weighted least squares iterated towards
 * minimax, coefficients rounded to fp32 one at a time with refits); see docs/numerics.md.
 */
#ifndef CK_INTERNAL_VMATH_AVX512_H
#define CK_INTERNAL_VMATH_AVX512_H

#include <immintrin.h>

#include "ckernels.h"

#define CK_VM512_TARGET __attribute__((target("avx512f")))
#define CK_VM512 static inline CK_VM512_TARGET

/* ---- bit helpers (AVX-512F only) ---------------------------------------------------------- */

CK_VM512 __m512 ck_v16_abs(__m512 x) { return _mm512_abs_ps(x); }

/* Returns |a| with the sign bit of s. */
CK_VM512 __m512 ck_v16_copysign(__m512 a, __m512 s) {
    const __m512i sign = _mm512_set1_epi32((int)0x80000000u);
    __m512i r = _mm512_ternarylogic_epi32(_mm512_castps_si512(a), _mm512_castps_si512(s), sign, 0xD8);
    /* 0xD8: (C ? B : A) bitwise, i.e. sign bit from s, the rest from a */
    return _mm512_castsi512_ps(r);
}

/* Clamp that lets NaN through: max/min return their SECOND operand when either is NaN. */
CK_VM512 __m512 ck_v16_clamp(__m512 x, float lo, float hi) {
    x = _mm512_max_ps(_mm512_set1_ps(lo), x);
    return _mm512_min_ps(_mm512_set1_ps(hi), x);
}

/* ---- exp --------------------------------------------------------------------------------- */

/* e^x. Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2, e^r = 1 + r + r^2 P4(r), then scalef
 * (exact 2^n scaling; overflow gives +inf). x < -86.5 gives +0 (flush, see below). */
CK_VM512 __m512 ck_v16_exp(__m512 x) {
    const __m512 magic = _mm512_set1_ps(12582912.0f); /* 1.5 * 2^23: t - magic = round(x log2 e) */
    /* Results below e^-86.5 (2.7e-38) flush to +0 without any subnormal arithmetic (which costs a
     * microcode assist per lane on this class of CPU); NaN is kept (unordered compare). */
    __mmask16 keep = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-86.5f), _CMP_NLT_UQ);
    x = ck_v16_clamp(x, -86.5f, 89.0f);
    __m512 t = _mm512_fmadd_ps(x, _mm512_set1_ps(1.44269504088896341f), magic);
    __m512 n = _mm512_sub_ps(t, magic);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.390615245e-03f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.362949826e-03f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.166675732e-02f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.666657925e-01f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    __m512 r2 = _mm512_mul_ps(r, r);
    p = _mm512_fmadd_ps(p, r2, r);
    p = _mm512_add_ps(p, _mm512_set1_ps(1.0f));
    return _mm512_maskz_scalef_ps(keep, p, n);
}

/* e^x for x <= 0 only (softmax arguments z - max), cheaper than ck_v16_exp (9 instructions):
 * x = (k / 32) ln2 + r with k = round(32 x log2 e) read from t = x log2e + 1.5 * 2^18 (t - magic = k/32 exactly,
 * the low 5 bits of t's encoding = k mod 32), r = x - (k/32) * fl(ln2) in ONE fused step (no hi/lo split), so r
 * carries (k/32) * (fl(ln2) - ln2) = |x| * 2.7e-9 of absolute error on top of its rounding; e^r = 1 + r(c1 + c2 r)
 * (minimax on |r| <= ln2/64, 5.3e-8 relative); 2^(j/32) from a 32-entry register table (vpermt2ps, j = k mod 32);
 * vscalefps multiplies by 2^floor(k/32). Measured <= 1.87 eps relative (<= 2.7 ulp) for |x| < 1 and <= 3.83 eps
 * (6.4 ulp, at x = -86.01) on [-87.3, 0] (every float) (docs/numerics.md): the |x|-proportional part is ~5 % of the error that
 * rounding z - max already puts into a softmax entry. x < -87.3 -> +0 exactly (no subnormal results), -inf -> +0,
 * NaN -> NaN. x > 0 is NOT supported. */
CK_VM512 __m512 ck_v16_exp_nonpos(__m512 x) {
    const __m512 magic = _mm512_set1_ps(393216.0f); /* 1.5 * 2^18: t - magic = k/32 */
    const __m512 tlo = _mm512_setr_ps(1.000000000e+00f, 1.021897197e+00f, 1.044273734e+00f, 1.067140460e+00f,
                                      1.090507746e+00f, 1.114386797e+00f, 1.138788581e+00f, 1.163724899e+00f,
                                      1.189207077e+00f, 1.215247393e+00f, 1.241857767e+00f, 1.269050956e+00f,
                                      1.296839595e+00f, 1.325236678e+00f, 1.354255557e+00f, 1.383909941e+00f);
    const __m512 thi = _mm512_setr_ps(1.414213538e+00f, 1.445180774e+00f, 1.476826191e+00f, 1.509164453e+00f,
                                      1.542210817e+00f, 1.575980902e+00f, 1.610490322e+00f, 1.645755529e+00f,
                                      1.681792855e+00f, 1.718619347e+00f, 1.756252170e+00f, 1.794709086e+00f,
                                      1.834008098e+00f, 1.874167681e+00f, 1.915206552e+00f, 1.957144141e+00f);
    /* lanes below -87.3 (also -inf, whose reduction gives NaN) are zeroed by the final masked scalef */
    __mmask16 keep = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.3f), _CMP_NLT_UQ);
    __m512 t = _mm512_fmadd_ps(x, _mm512_set1_ps(1.442695022e+00f), magic);
    __m512 kq = _mm512_sub_ps(t, magic);
    __m512 r = _mm512_fnmadd_ps(kq, _mm512_set1_ps(6.931471825e-01f), x);
    __m512 p = _mm512_fmadd_ps(r, _mm512_set1_ps(5.000009537e-01f), _mm512_set1_ps(1.000014663e+00f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    __m512 tj = _mm512_permutex2var_ps(tlo, _mm512_castps_si512(t), thi);
    return _mm512_maskz_scalef_ps(keep, _mm512_mul_ps(tj, p), kq);
}

/* ---- the ISA-independent functions (vmath_simd.h) ------------------------------------------ */

#define CKVM_T __m512
#define CKVM_M __mmask16
#define CKVM_DEF CK_VM512
#define CKVM_(name) ck_v16_##name
#define CKVM_SET1(f) _mm512_set1_ps(f)
#define CKVM_ZERO() _mm512_setzero_ps()
#define CKVM_ADD(a, b) _mm512_add_ps((a), (b))
#define CKVM_SUB(a, b) _mm512_sub_ps((a), (b))
#define CKVM_MUL(a, b) _mm512_mul_ps((a), (b))
#define CKVM_DIV(a, b) _mm512_div_ps((a), (b))
#define CKVM_MAX(a, b) _mm512_max_ps((a), (b))
#define CKVM_MIN(a, b) _mm512_min_ps((a), (b))
#define CKVM_FMA(a, b, c) _mm512_fmadd_ps((a), (b), (c))
#define CKVM_FMS(a, b, c) _mm512_fmsub_ps((a), (b), (c))
#define CKVM_FNMA(a, b, c) _mm512_fnmadd_ps((a), (b), (c))
#define CKVM_CMP(a, b, pred) _mm512_cmp_ps_mask((a), (b), (pred))
#define CKVM_BLEND(m, a, b) _mm512_mask_blend_ps((m), (a), (b))
#define CKVM_ALL(m) ((m) == 0xFFFF)
#define CKVM_NOTALL(m) ((m) != 0xFFFF)
#define CKVM_ZEROM(m, v) _mm512_maskz_mov_ps((m), (v))
/* AVX-512F only (no _mm512_xor_ps, which needs DQ): integer xor/and on the bit patterns */
#define CKVM_XORSIGN(v, s)                                                                               \
    _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(v),                                        \
                                         _mm512_and_si512(_mm512_castps_si512(s), _mm512_set1_epi32((int)0x80000000u))))
#include "internal/vmath_simd.h"

#endif /* CK_INTERNAL_VMATH_AVX512_H */

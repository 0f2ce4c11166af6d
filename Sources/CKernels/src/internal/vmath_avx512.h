/*
 * vmath_avx512.h — vectorized transcendental functions on __m512 (16 x fp32), all static inline.
 *
 * Every function carries __attribute__((target("avx512f"))) (CK_VM512_TARGET) and nothing more, so it
 * inlines into any caller whose target list contains avx512f (e.g. "avx512f,avx512bw,avx512vl,avx512dq").
 * Only AVX-512F intrinsics are used (no _mm512_and_ps & co., which need DQ).
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

/* e^-(hi + lo) for a small correction lo (|lo| <= ulp(hi)): e^-hi * (1 - lo). */
CK_VM512 __m512 ck_v16_exp_neg2(__m512 hi, __m512 lo) {
    __m512 e = ck_v16_exp(_mm512_sub_ps(_mm512_setzero_ps(), hi));
    return _mm512_fnmadd_ps(e, lo, e);
}

/* ---- erf / erfc pieces --------------------------------------------------------------------- */

/* erf(z) / z - 1 for |z| <= 1 as P6(z^2) (3e-9 relative to erf); erf(z) = fma(z, P6, z), which keeps
 * the leading 2/sqrt(pi) from costing an fp32 rounding of its own. */
CK_VM512 __m512 ck_v16_erf_small_m1(__m512 z2) {
    __m512 p = _mm512_set1_ps(7.981615636e-05f);
    p = _mm512_fmadd_ps(p, z2, _mm512_set1_ps(-8.043400012e-04f));
    p = _mm512_fmadd_ps(p, z2, _mm512_set1_ps(5.191358272e-03f));
    p = _mm512_fmadd_ps(p, z2, _mm512_set1_ps(-2.685493417e-02f));
    p = _mm512_fmadd_ps(p, z2, _mm512_set1_ps(1.128359884e-01f));
    p = _mm512_fmadd_ps(p, z2, _mm512_set1_ps(-3.761262596e-01f));
    p = _mm512_fmadd_ps(p, z2, _mm512_set1_ps(1.283791661e-01f));
    return p;
}

/* erfcx(a) = e^(a^2) erfc(a) for a in [1, 10.2] (callers clamp a into that range). */
CK_VM512 __m512 ck_v16_erfcx_tail(__m512 a) {
    __m512 t = _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_fmadd_ps(a, _mm512_set1_ps(0.5f), _mm512_set1_ps(1.0f)));
    __m512 u = _mm512_fmsub_ps(t, _mm512_set1_ps(3.978260870e+00f), _mm512_set1_ps(1.652173913e+00f));
    __m512 p = _mm512_set1_ps(-5.930317570e-07f);
    p = _mm512_fmadd_ps(p, u, _mm512_set1_ps(5.957031590e-06f));
    p = _mm512_fmadd_ps(p, u, _mm512_set1_ps(1.267146126e-05f));
    p = _mm512_fmadd_ps(p, u, _mm512_set1_ps(-1.432815334e-04f));
    p = _mm512_fmadd_ps(p, u, _mm512_set1_ps(-4.748416832e-04f));
    p = _mm512_fmadd_ps(p, u, _mm512_set1_ps(3.105762880e-03f));
    p = _mm512_fmadd_ps(p, u, _mm512_set1_ps(3.255270794e-02f));
    p = _mm512_fmadd_ps(p, u, _mm512_set1_ps(1.498148441e-01f));
    p = _mm512_fmadd_ps(p, u, _mm512_set1_ps(4.565021396e-01f));
    return _mm512_mul_ps(p, t);
}

/* erf(z). */
CK_VM512 __m512 ck_v16_erf(__m512 z) {
    const __m512 one = _mm512_set1_ps(1.0f);
    __m512 a = ck_v16_abs(z);
    __mmask16 small = _mm512_cmp_ps_mask(a, one, _CMP_LE_OQ);
    __m512 r = _mm512_fmadd_ps(a, ck_v16_erf_small_m1(_mm512_mul_ps(a, a)), a);
    if (small != 0xFFFF) {
        __m512 ac = ck_v16_clamp(a, 1.0f, 10.2f);
        __m512 aa = _mm512_mul_ps(ac, ac);
        __m512 ae = _mm512_fmsub_ps(ac, ac, aa); /* exact low part of ac^2 */
        __m512 erfc = _mm512_mul_ps(ck_v16_exp_neg2(aa, ae), ck_v16_erfcx_tail(ac));
        r = _mm512_mask_blend_ps(small, _mm512_sub_ps(one, erfc), r);
    }
    return ck_v16_copysign(r, z);
}

/* ---- tanh, sigmoid ------------------------------------------------------------------------- */

CK_VM512 __m512 ck_v16_tanh(__m512 x) {
    const __m512 one = _mm512_set1_ps(1.0f);
    __m512 a = ck_v16_abs(x);
    __mmask16 small = _mm512_cmp_ps_mask(a, _mm512_set1_ps(0.625f), _CMP_LT_OQ);
    __m512 x2 = _mm512_mul_ps(x, x);
    __m512 p = _mm512_set1_ps(2.794105094e-03f);
    p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(-8.845036849e-03f));
    p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(2.194546722e-02f));
    p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(-5.398493633e-02f));
    p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(1.333343685e-01f));
    p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(-3.333333433e-01f));
    __m512 r = _mm512_fmadd_ps(_mm512_mul_ps(p, x2), x, x);
    if (small != 0xFFFF) {
        __m512 e = ck_v16_exp(_mm512_mul_ps(a, _mm512_set1_ps(-2.0f)));
        __m512 big = _mm512_div_ps(_mm512_sub_ps(one, e), _mm512_add_ps(one, e));
        r = _mm512_mask_blend_ps(small, ck_v16_copysign(big, x), r);
    }
    return r;
}

/* d tanh / dx = sech^2 x = 4e / (1 + e)^2 with e = exp(-2|x|): no 1 - t^2 cancellation. */
CK_VM512 __m512 ck_v16_tanh_grad(__m512 x) {
    __m512 e = ck_v16_exp(_mm512_mul_ps(ck_v16_abs(x), _mm512_set1_ps(-2.0f)));
    __m512 d = _mm512_add_ps(_mm512_set1_ps(1.0f), e);
    return _mm512_div_ps(_mm512_mul_ps(_mm512_set1_ps(4.0f), e), _mm512_mul_ps(d, d));
}

/* s = sigmoid(x) and sm = 1 - s = sigmoid(-x), both accurate in both tails: with e = exp(-|x|) <= 1
 * and d = 1 / (1 + e), the pair is (d, e d) for x >= 0 and (e d, d) for x < 0. Nothing overflows;
 * +-inf give exactly (1, 0) / (0, 1); NaN gives NaN. */
CK_VM512 void ck_v16_sigmoid_pair(__m512 x, __m512 *s, __m512 *sm) {
    __m512 e = ck_v16_exp(_mm512_sub_ps(_mm512_setzero_ps(), ck_v16_abs(x)));
    __m512 d = _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_add_ps(_mm512_set1_ps(1.0f), e));
    __m512 ed = _mm512_mul_ps(e, d);
    __mmask16 neg = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
    *s = _mm512_mask_blend_ps(neg, d, ed);
    *sm = _mm512_mask_blend_ps(neg, ed, d);
}

/* sigmoid(x); -inf -> 0, +inf -> 1. */
CK_VM512 __m512 ck_v16_sigmoid(__m512 x) {
    __m512 s, sm;
    ck_v16_sigmoid_pair(x, &s, &sm);
    return s;
}

CK_VM512 __m512 ck_v16_sigmoid_grad(__m512 x) {
    __m512 s, sm;
    ck_v16_sigmoid_pair(x, &s, &sm);
    return _mm512_mul_ps(s, sm);
}

/* ---- GELU (erf), BERT "gelu": x * Phi(x) --------------------------------------------------- */

/* Shared core: returns Phi(x); when want_pdf, also *xpdf = x * phi(x) (phi = standard normal pdf).
 * Regions: |x| <= sqrt2: Phi = 0.5 + 0.5 erf(x/sqrt2) (polynomial);
 *          x < -sqrt2:   Phi = 0.5 erfc(|x|/sqrt2) = 0.5 e^(-x^2/2) erfcx(|x|/sqrt2);
 *          x >  sqrt2:   Phi = 1 - (the same).
 * x^2/2 is formed exactly (FMA split, power-of-two halving) so e^(-x^2/2) keeps full accuracy. */
CK_VM512 __m512 ck_v16_gelu_erf_core(__m512 x, int want_pdf, __m512 *xpdf) {
    const __m512 half = _mm512_set1_ps(0.5f);
    __m512 z = _mm512_mul_ps(x, _mm512_set1_ps(0.70710678118654752f));
    __m512 a = ck_v16_abs(z);
    __mmask16 small = _mm512_cmp_ps_mask(a, _mm512_set1_ps(1.0f), _CMP_LE_OQ);
    __m512 erf_s = _mm512_fmadd_ps(z, ck_v16_erf_small_m1(_mm512_mul_ps(z, z)), z);
    __m512 phi = _mm512_fmadd_ps(half, erf_s, half);
    if (small != 0xFFFF || want_pdf) {
        __m512 xc = ck_v16_clamp(x, -14.5f, 14.5f);
        __m512 xx = _mm512_mul_ps(xc, xc);
        __m512 xe = _mm512_fmsub_ps(xc, xc, xx);
        __m512 e = ck_v16_exp_neg2(_mm512_mul_ps(half, xx), _mm512_mul_ps(half, xe)); /* e^(-x^2/2) */
        if (want_pdf) *xpdf = _mm512_mul_ps(_mm512_mul_ps(xc, _mm512_set1_ps(0.39894228040143268f)), e);
        if (small != 0xFFFF) {
            __m512 ac = ck_v16_clamp(a, 1.0f, 10.2f);
            __m512 hc = _mm512_mul_ps(half, _mm512_mul_ps(e, ck_v16_erfcx_tail(ac))); /* 0.5 erfc(|z|) */
            __mmask16 neg = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
            __m512 tail = _mm512_mask_blend_ps(neg, _mm512_sub_ps(_mm512_set1_ps(1.0f), hc), hc);
            phi = _mm512_mask_blend_ps(small, tail, phi);
        }
    }
    return phi;
}

/* GELU(x) = x Phi(x). The tails are formed as w = (0.5 x e^(-x^2/2)) erfcx(|x|/sqrt2) so no
 * intermediate goes subnormal before the result does: GELU = w for x < -sqrt2, x - w for x > sqrt2.
 * Large positive x returns x exactly; x -> -inf gives -0. */
CK_VM512 __m512 ck_v16_gelu_erf(__m512 x) {
    const __m512 half = _mm512_set1_ps(0.5f);
    __m512 z = _mm512_mul_ps(x, _mm512_set1_ps(0.70710678118654752f));
    __m512 a = ck_v16_abs(z);
    __mmask16 small = _mm512_cmp_ps_mask(a, _mm512_set1_ps(1.0f), _CMP_LE_OQ);
    __m512 h = _mm512_mul_ps(half, x);
    __m512 r = _mm512_fmadd_ps(h, _mm512_fmadd_ps(z, ck_v16_erf_small_m1(_mm512_mul_ps(z, z)), z), h);
    if (!(small == 0xFFFF)) {
        __m512 xc = ck_v16_clamp(x, -14.5f, 14.5f);
        __m512 xx = _mm512_mul_ps(xc, xc);
        __m512 xe = _mm512_fmsub_ps(xc, xc, xx);
        __m512 e = ck_v16_exp_neg2(_mm512_mul_ps(half, xx), _mm512_mul_ps(half, xe)); /* e^(-x^2/2) */
        __m512 ac = ck_v16_clamp(a, 1.0f, 10.2f);
        __m512 w = _mm512_mul_ps(_mm512_mul_ps(_mm512_mul_ps(half, xc), e), ck_v16_erfcx_tail(ac));
        __mmask16 neg = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
        __m512 tail = _mm512_mask_blend_ps(neg, _mm512_sub_ps(x, w), w);
        r = _mm512_mask_blend_ps(small, tail, r);
    }
    return r;
}

/* d GELU / dx = Phi(x) + x phi(x). */
CK_VM512 __m512 ck_v16_gelu_erf_grad(__m512 x) {
    __m512 xpdf = _mm512_setzero_ps();
    __m512 phi = ck_v16_gelu_erf_core(x, 1, &xpdf);
    return _mm512_add_ps(phi, xpdf);
}

/* ---- GELU (tanh approximation), "gelu_new" / "gelu_pytorch_tanh" --------------------------- */
/* u = sqrt(2/pi) (x + 0.044715 x^3); GELU = 0.5 x (1 + tanh u) = x sigmoid(2u). */

CK_VM512 __m512 ck_v16_gelu_tanh(__m512 x) {
    /* 2u = x (c0 + c1 x^2), c0 = 2 sqrt(2/pi), c1 = 0.044715 c0, formed as vh + vl in double-float
     * (exact products by FMA, Fast2Sum, hi/lo constants): rounding 2u in plain fp32 would cost a
     * relative error of ~4 |2u| 2^-24 in sigmoid(2u), i.e. 13 ulp at x = -2.75 and 200 ulp at -9.8. */
    const __m512 c0h = _mm512_set1_ps(1.595769167e+00f), c0l = _mm512_set1_ps(-4.534068054e-08f);
    const __m512 c1h = _mm512_set1_ps(7.135481387e-02f), c1l = _mm512_set1_ps(2.398832466e-09f);
    __m512 xm = _mm512_max_ps(_mm512_set1_ps(-12.0f), x); /* below -12 the result is -0 anyway */
    __m512 xc = _mm512_min_ps(_mm512_set1_ps(12.0f), xm); /* above 12 sigmoid(2u) is exactly 1 (and x^2 stays finite) */
    __m512 x2 = _mm512_mul_ps(xc, xc);
    __m512 x2e = _mm512_fmsub_ps(xc, xc, x2);                  /* xc^2 = x2 + x2e exactly */
    __m512 m = _mm512_mul_ps(c1h, x2);
    __m512 me = _mm512_fmsub_ps(c1h, x2, m);                   /* c1h x2 = m + me exactly */
    __m512 big = _mm512_max_ps(c0h, m), sml = _mm512_min_ps(c0h, m); /* both >= 0: Fast2Sum needs |big| >= |sml| */
    __m512 q = _mm512_add_ps(big, sml);
    __m512 qe = _mm512_sub_ps(sml, _mm512_sub_ps(q, big));         /* c0h + m = q + qe exactly */
    __m512 pc = _mm512_add_ps(_mm512_add_ps(qe, me), _mm512_fmadd_ps(c1h, x2e, _mm512_fmadd_ps(c1l, x2, c0l)));
    __m512 vh = _mm512_mul_ps(xc, q);
    __m512 vl = _mm512_fmadd_ps(xc, pc, _mm512_fmsub_ps(xc, q, vh)); /* 2u = vh + vl */
    /* sigmoid(vh + vl): e = exp(-|vh|) (1 - sign(vh) vl), d = 1/(1 + e); sigmoid = d (vh >= 0) or e d. */
    __m512 e = ck_v16_exp(_mm512_sub_ps(_mm512_setzero_ps(), ck_v16_abs(vh)));
    e = _mm512_fnmadd_ps(e, _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(vl), _mm512_and_si512(_mm512_castps_si512(vh), _mm512_set1_epi32((int)0x80000000u)))), e);
    __m512 d = _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_add_ps(_mm512_set1_ps(1.0f), e));
    __m512 ed = _mm512_mul_ps(e, d);
    __mmask16 neg = _mm512_cmp_ps_mask(vh, _mm512_setzero_ps(), _CMP_LT_OQ);
    return _mm512_mul_ps(xm, _mm512_mask_blend_ps(neg, d, ed));
}

/* d/dx [x s(2u)] = s + x s (1 - s) 2u',  2u' = 2 sqrt(2/pi) (1 + 3 * 0.044715 x^2). */
CK_VM512 __m512 ck_v16_gelu_tanh_grad(__m512 x) {
    __m512 xc = ck_v16_clamp(x, -12.0f, 12.0f);
    __m512 x2 = _mm512_mul_ps(xc, xc);
    __m512 twou = _mm512_mul_ps(xc, _mm512_fmadd_ps(x2, _mm512_set1_ps(0.0713548162726008f),
                                                    _mm512_set1_ps(1.5957691216057308f)));
    __m512 s, sm;
    ck_v16_sigmoid_pair(twou, &s, &sm);
    __m512 du = _mm512_fmadd_ps(x2, _mm512_set1_ps(0.2140644488178024f), _mm512_set1_ps(1.5957691216057308f));
    return _mm512_fmadd_ps(_mm512_mul_ps(xc, du), _mm512_mul_ps(s, sm), s);
}

/* ---- SiLU, ReLU, leaky ReLU ---------------------------------------------------------------- */

CK_VM512 __m512 ck_v16_silu(__m512 x) {
    __m512 xm = _mm512_max_ps(_mm512_set1_ps(-120.0f), x); /* x e^x underflows to -0 below that */
    return _mm512_mul_ps(xm, ck_v16_sigmoid(xm));
}

/* d/dx [x s(x)] = s + x s (1 - s). */
CK_VM512 __m512 ck_v16_silu_grad(__m512 x) {
    __m512 xc = ck_v16_clamp(x, -120.0f, 120.0f);
    __m512 s, sm;
    ck_v16_sigmoid_pair(xc, &s, &sm);
    return _mm512_fmadd_ps(xc, _mm512_mul_ps(s, sm), s);
}

/* max(x, 0) with NaN propagated and -0 mapped to +0 (the + 0 does both without a branch). */
CK_VM512 __m512 ck_v16_relu(__m512 x) {
    return _mm512_add_ps(_mm512_max_ps(_mm512_setzero_ps(), x), _mm512_setzero_ps());
}

CK_VM512 __m512 ck_v16_leaky_relu(__m512 x, __m512 slope) {
    __mmask16 pos = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GE_OQ);
    return _mm512_mask_blend_ps(pos, _mm512_mul_ps(x, slope), x);
}

/* ---- dispatch on ck_act (for epilogues; hoist the switch out of hot loops when you can) ---- */

/* act(x). Unknown kinds return x unchanged (entry points validate `act` before calling). */
CK_VM512 __m512 ck_v16_act(__m512 x, ck_act act, float act_param) {
    switch (act) {
    case CK_ACT_GELU_ERF: return ck_v16_gelu_erf(x);
    case CK_ACT_GELU_TANH: return ck_v16_gelu_tanh(x);
    case CK_ACT_RELU: return ck_v16_relu(x);
    case CK_ACT_SILU: return ck_v16_silu(x);
    case CK_ACT_TANH: return ck_v16_tanh(x);
    case CK_ACT_SIGMOID: return ck_v16_sigmoid(x);
    case CK_ACT_LEAKY_RELU: return ck_v16_leaky_relu(x, _mm512_set1_ps(act_param));
    case CK_ACT_NONE:
    default: return x;
    }
}

/* dy * act'(x). ReLU: 0 at x <= 0 (and for NaN x); leaky: slope at x <= 0. */
CK_VM512 __m512 ck_v16_act_grad_mul(__m512 x, __m512 dy, ck_act act, float act_param) {
    switch (act) {
    case CK_ACT_GELU_ERF: return _mm512_mul_ps(dy, ck_v16_gelu_erf_grad(x));
    case CK_ACT_GELU_TANH: return _mm512_mul_ps(dy, ck_v16_gelu_tanh_grad(x));
    case CK_ACT_RELU:
        return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GT_OQ), dy);
    case CK_ACT_SILU: return _mm512_mul_ps(dy, ck_v16_silu_grad(x));
    case CK_ACT_TANH: return _mm512_mul_ps(dy, ck_v16_tanh_grad(x));
    case CK_ACT_SIGMOID: return _mm512_mul_ps(dy, ck_v16_sigmoid_grad(x));
    case CK_ACT_LEAKY_RELU: {
        __mmask16 pos = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GT_OQ);
        return _mm512_mask_blend_ps(pos, _mm512_mul_ps(dy, _mm512_set1_ps(act_param)), dy);
    }
    case CK_ACT_NONE:
    default: return dy;
    }
}

#endif /* CK_INTERNAL_VMATH_AVX512_H */

/*
 * vmath_simd.h — the ISA-independent part of the vector math (exp_neg2, erf, tanh, sigmoid, GELU erf/tanh, SiLU,
 * ReLU, leaky ReLU and the ck_act dispatchers), written once over a small vocabulary and included by
 * vmath_avx512.h (ck_v16_*, __m512) and vmath_avx2.h (ck_v8_*, __m256) after their ISA-specific part
 * (abs, copysign, clamp, exp; AVX-512 also exp_nonpos). Same operations in the same order on both ISAs, so
 * the two instantiations are lane-for-lane the code the two files held before (bitwise identical results).
 *
 * Vocabulary (defined by the including header, #undef'd at the end of this file): CKVM_T (vector), CKVM_M (compare mask),
 * CKVM_DEF (static inline + target attribute), CKVM_(name) (ck_v16_name / ck_v8_name), CKVM_SET1, CKVM_ZERO(),
 * CKVM_ADD/SUB/MUL/DIV/MAX/MIN, CKVM_FMA(a,b,c) = a*b+c, CKVM_FMS(a,b,c) = a*b-c, CKVM_FNMA(a,b,c) = c-a*b,
 * CKVM_CMP(a, b, pred) -> mask, CKVM_BLEND(m, a, b) (m ? b : a per lane), CKVM_ALL(m) / CKVM_NOTALL(m)
 * (every lane set / not every lane set),
 * CKVM_ZEROM(m, v) (m ? v : 0), CKVM_XORSIGN(v, s) (v with its sign flipped where s is negative).
 *
 * Not a standalone header: no include guard on purpose (one inclusion per ISA header).
 */

/* e^-(hi + lo) for a small correction lo (|lo| <= ulp(hi)): e^-hi * (1 - lo). */
CKVM_DEF CKVM_T CKVM_(exp_neg2)(CKVM_T hi, CKVM_T lo) {
    CKVM_T e = CKVM_(exp)(CKVM_SUB(CKVM_ZERO(), hi));
    return CKVM_FNMA(e, lo, e);
}

/* ---- erf / erfc pieces --------------------------------------------------------------------- */

/* erf(z) / z - 1 for |z| <= 1 as P6(z^2) (3e-9 relative to erf); erf(z) = fma(z, P6, z), which keeps
 * the leading 2/sqrt(pi) from costing an fp32 rounding of its own. */
CKVM_DEF CKVM_T CKVM_(erf_small_m1)(CKVM_T z2) {
    CKVM_T p = CKVM_SET1(7.981615636e-05f);
    p = CKVM_FMA(p, z2, CKVM_SET1(-8.043400012e-04f));
    p = CKVM_FMA(p, z2, CKVM_SET1(5.191358272e-03f));
    p = CKVM_FMA(p, z2, CKVM_SET1(-2.685493417e-02f));
    p = CKVM_FMA(p, z2, CKVM_SET1(1.128359884e-01f));
    p = CKVM_FMA(p, z2, CKVM_SET1(-3.761262596e-01f));
    p = CKVM_FMA(p, z2, CKVM_SET1(1.283791661e-01f));
    return p;
}

/* erfcx(a) = e^(a^2) erfc(a) for a in [1, 10.2] (callers clamp a into that range). */
CKVM_DEF CKVM_T CKVM_(erfcx_tail)(CKVM_T a) {
    CKVM_T t = CKVM_DIV(CKVM_SET1(1.0f), CKVM_FMA(a, CKVM_SET1(0.5f), CKVM_SET1(1.0f)));
    CKVM_T u = CKVM_FMS(t, CKVM_SET1(3.978260870e+00f), CKVM_SET1(1.652173913e+00f));
    CKVM_T p = CKVM_SET1(-5.930317570e-07f);
    p = CKVM_FMA(p, u, CKVM_SET1(5.957031590e-06f));
    p = CKVM_FMA(p, u, CKVM_SET1(1.267146126e-05f));
    p = CKVM_FMA(p, u, CKVM_SET1(-1.432815334e-04f));
    p = CKVM_FMA(p, u, CKVM_SET1(-4.748416832e-04f));
    p = CKVM_FMA(p, u, CKVM_SET1(3.105762880e-03f));
    p = CKVM_FMA(p, u, CKVM_SET1(3.255270794e-02f));
    p = CKVM_FMA(p, u, CKVM_SET1(1.498148441e-01f));
    p = CKVM_FMA(p, u, CKVM_SET1(4.565021396e-01f));
    return CKVM_MUL(p, t);
}

/* erf(z). */
CKVM_DEF CKVM_T CKVM_(erf)(CKVM_T z) {
    const CKVM_T one = CKVM_SET1(1.0f);
    CKVM_T a = CKVM_(abs)(z);
    CKVM_M small = CKVM_CMP(a, one, _CMP_LE_OQ);
    CKVM_T r = CKVM_FMA(a, CKVM_(erf_small_m1)(CKVM_MUL(a, a)), a);
    if (CKVM_NOTALL(small)) {
        CKVM_T ac = CKVM_(clamp)(a, 1.0f, 10.2f);
        CKVM_T aa = CKVM_MUL(ac, ac);
        CKVM_T ae = CKVM_FMS(ac, ac, aa); /* exact low part of ac^2 */
        CKVM_T erfc = CKVM_MUL(CKVM_(exp_neg2)(aa, ae), CKVM_(erfcx_tail)(ac));
        r = CKVM_BLEND(small, CKVM_SUB(one, erfc), r);
    }
    return CKVM_(copysign)(r, z);
}

/* ---- tanh, sigmoid ------------------------------------------------------------------------- */

CKVM_DEF CKVM_T CKVM_(tanh)(CKVM_T x) {
    const CKVM_T one = CKVM_SET1(1.0f);
    CKVM_T a = CKVM_(abs)(x);
    CKVM_M small = CKVM_CMP(a, CKVM_SET1(0.625f), _CMP_LT_OQ);
    CKVM_T x2 = CKVM_MUL(x, x);
    CKVM_T p = CKVM_SET1(2.794105094e-03f);
    p = CKVM_FMA(p, x2, CKVM_SET1(-8.845036849e-03f));
    p = CKVM_FMA(p, x2, CKVM_SET1(2.194546722e-02f));
    p = CKVM_FMA(p, x2, CKVM_SET1(-5.398493633e-02f));
    p = CKVM_FMA(p, x2, CKVM_SET1(1.333343685e-01f));
    p = CKVM_FMA(p, x2, CKVM_SET1(-3.333333433e-01f));
    CKVM_T r = CKVM_FMA(CKVM_MUL(p, x2), x, x);
    if (CKVM_NOTALL(small)) {
        CKVM_T e = CKVM_(exp)(CKVM_MUL(a, CKVM_SET1(-2.0f)));
        CKVM_T big = CKVM_DIV(CKVM_SUB(one, e), CKVM_ADD(one, e));
        r = CKVM_BLEND(small, CKVM_(copysign)(big, x), r);
    }
    return r;
}

/* d tanh / dx = sech^2 x = 4e / (1 + e)^2 with e = exp(-2|x|): no 1 - t^2 cancellation. */
CKVM_DEF CKVM_T CKVM_(tanh_grad)(CKVM_T x) {
    CKVM_T e = CKVM_(exp)(CKVM_MUL(CKVM_(abs)(x), CKVM_SET1(-2.0f)));
    CKVM_T d = CKVM_ADD(CKVM_SET1(1.0f), e);
    return CKVM_DIV(CKVM_MUL(CKVM_SET1(4.0f), e), CKVM_MUL(d, d));
}

/* s = sigmoid(x) and sm = 1 - s = sigmoid(-x), both accurate in both tails: with e = exp(-|x|) <= 1
 * and d = 1 / (1 + e), the pair is (d, e d) for x >= 0 and (e d, d) for x < 0. Nothing overflows;
 * +-inf give exactly (1, 0) / (0, 1); NaN gives NaN. */
CKVM_DEF void CKVM_(sigmoid_pair)(CKVM_T x, CKVM_T *s, CKVM_T *sm) {
    CKVM_T e = CKVM_(exp)(CKVM_SUB(CKVM_ZERO(), CKVM_(abs)(x)));
    CKVM_T d = CKVM_DIV(CKVM_SET1(1.0f), CKVM_ADD(CKVM_SET1(1.0f), e));
    CKVM_T ed = CKVM_MUL(e, d);
    CKVM_M neg = CKVM_CMP(x, CKVM_ZERO(), _CMP_LT_OQ);
    *s = CKVM_BLEND(neg, d, ed);
    *sm = CKVM_BLEND(neg, ed, d);
}

/* sigmoid(x); -inf -> 0, +inf -> 1. */
CKVM_DEF CKVM_T CKVM_(sigmoid)(CKVM_T x) {
    CKVM_T s, sm;
    CKVM_(sigmoid_pair)(x, &s, &sm);
    return s;
}

CKVM_DEF CKVM_T CKVM_(sigmoid_grad)(CKVM_T x) {
    CKVM_T s, sm;
    CKVM_(sigmoid_pair)(x, &s, &sm);
    return CKVM_MUL(s, sm);
}

/* ---- GELU (erf), BERT "gelu": x * Phi(x) --------------------------------------------------- */

/* Shared core: returns Phi(x); when want_pdf, also *xpdf = x * phi(x) (phi = standard normal pdf).
 * Regions: |x| <= sqrt2: Phi = 0.5 + 0.5 erf(x/sqrt2) (polynomial);
 *          x < -sqrt2:   Phi = 0.5 erfc(|x|/sqrt2) = 0.5 e^(-x^2/2) erfcx(|x|/sqrt2);
 *          x >  sqrt2:   Phi = 1 - (the same).
 * x^2/2 is formed exactly (FMA split, power-of-two halving) so e^(-x^2/2) keeps full accuracy. */
CKVM_DEF CKVM_T CKVM_(gelu_erf_core)(CKVM_T x, int want_pdf, CKVM_T *xpdf) {
    const CKVM_T half = CKVM_SET1(0.5f);
    CKVM_T z = CKVM_MUL(x, CKVM_SET1(0.70710678118654752f));
    CKVM_T a = CKVM_(abs)(z);
    CKVM_M small = CKVM_CMP(a, CKVM_SET1(1.0f), _CMP_LE_OQ);
    CKVM_T erf_s = CKVM_FMA(z, CKVM_(erf_small_m1)(CKVM_MUL(z, z)), z);
    CKVM_T phi = CKVM_FMA(half, erf_s, half);
    if (CKVM_NOTALL(small) || want_pdf) {
        CKVM_T xc = CKVM_(clamp)(x, -14.5f, 14.5f);
        CKVM_T xx = CKVM_MUL(xc, xc);
        CKVM_T xe = CKVM_FMS(xc, xc, xx);
        CKVM_T e = CKVM_(exp_neg2)(CKVM_MUL(half, xx), CKVM_MUL(half, xe)); /* e^(-x^2/2) */
        if (want_pdf) *xpdf = CKVM_MUL(CKVM_MUL(xc, CKVM_SET1(0.39894228040143268f)), e);
        if (CKVM_NOTALL(small)) {
            CKVM_T ac = CKVM_(clamp)(a, 1.0f, 10.2f);
            CKVM_T hc = CKVM_MUL(half, CKVM_MUL(e, CKVM_(erfcx_tail)(ac))); /* 0.5 erfc(|z|) */
            CKVM_M neg = CKVM_CMP(x, CKVM_ZERO(), _CMP_LT_OQ);
            CKVM_T tail = CKVM_BLEND(neg, CKVM_SUB(CKVM_SET1(1.0f), hc), hc);
            phi = CKVM_BLEND(small, tail, phi);
        }
    }
    return phi;
}

/* GELU(x) = x Phi(x). The tails are formed as w = (0.5 x e^(-x^2/2)) erfcx(|x|/sqrt2) so no
 * intermediate goes subnormal before the result does: GELU = w for x < -sqrt2, x - w for x > sqrt2.
 * Large positive x returns x exactly; x -> -inf gives -0. */
CKVM_DEF CKVM_T CKVM_(gelu_erf)(CKVM_T x) {
    const CKVM_T half = CKVM_SET1(0.5f);
    CKVM_T z = CKVM_MUL(x, CKVM_SET1(0.70710678118654752f));
    CKVM_T a = CKVM_(abs)(z);
    CKVM_M small = CKVM_CMP(a, CKVM_SET1(1.0f), _CMP_LE_OQ);
    CKVM_T h = CKVM_MUL(half, x);
    CKVM_T r = CKVM_FMA(h, CKVM_FMA(z, CKVM_(erf_small_m1)(CKVM_MUL(z, z)), z), h);
    if (!CKVM_ALL(small)) {
        CKVM_T xc = CKVM_(clamp)(x, -14.5f, 14.5f);
        CKVM_T xx = CKVM_MUL(xc, xc);
        CKVM_T xe = CKVM_FMS(xc, xc, xx);
        CKVM_T e = CKVM_(exp_neg2)(CKVM_MUL(half, xx), CKVM_MUL(half, xe)); /* e^(-x^2/2) */
        CKVM_T ac = CKVM_(clamp)(a, 1.0f, 10.2f);
        CKVM_T w = CKVM_MUL(CKVM_MUL(CKVM_MUL(half, xc), e), CKVM_(erfcx_tail)(ac));
        CKVM_M neg = CKVM_CMP(x, CKVM_ZERO(), _CMP_LT_OQ);
        CKVM_T tail = CKVM_BLEND(neg, CKVM_SUB(x, w), w);
        r = CKVM_BLEND(small, tail, r);
    }
    return r;
}

/* d GELU / dx = Phi(x) + x phi(x). */
CKVM_DEF CKVM_T CKVM_(gelu_erf_grad)(CKVM_T x) {
    CKVM_T xpdf = CKVM_ZERO();
    CKVM_T phi = CKVM_(gelu_erf_core)(x, 1, &xpdf);
    return CKVM_ADD(phi, xpdf);
}

/* ---- GELU (tanh approximation), "gelu_new" / "gelu_pytorch_tanh" --------------------------- */
/* u = sqrt(2/pi) (x + 0.044715 x^3); GELU = 0.5 x (1 + tanh u) = x sigmoid(2u). */

CKVM_DEF CKVM_T CKVM_(gelu_tanh)(CKVM_T x) {
    /* 2u = x (c0 + c1 x^2), c0 = 2 sqrt(2/pi), c1 = 0.044715 c0, formed as vh + vl in double-float
     * (exact products by FMA, Fast2Sum, hi/lo constants): rounding 2u in plain fp32 would cost a
     * relative error of ~4 |2u| 2^-24 in sigmoid(2u), i.e. 13 ulp at x = -2.75 and 200 ulp at -9.8. */
    const CKVM_T c0h = CKVM_SET1(1.595769167e+00f), c0l = CKVM_SET1(-4.534068054e-08f);
    const CKVM_T c1h = CKVM_SET1(7.135481387e-02f), c1l = CKVM_SET1(2.398832466e-09f);
    CKVM_T xm = CKVM_MAX(CKVM_SET1(-12.0f), x); /* below -12 the result is -0 anyway */
    CKVM_T xc = CKVM_MIN(CKVM_SET1(12.0f), xm); /* above 12 sigmoid(2u) is exactly 1 (and x^2 stays finite) */
    CKVM_T x2 = CKVM_MUL(xc, xc);
    CKVM_T x2e = CKVM_FMS(xc, xc, x2);                  /* xc^2 = x2 + x2e exactly */
    CKVM_T m = CKVM_MUL(c1h, x2);
    CKVM_T me = CKVM_FMS(c1h, x2, m);                   /* c1h x2 = m + me exactly */
    CKVM_T big = CKVM_MAX(c0h, m), sml = CKVM_MIN(c0h, m); /* both >= 0: Fast2Sum needs |big| >= |sml| */
    CKVM_T q = CKVM_ADD(big, sml);
    CKVM_T qe = CKVM_SUB(sml, CKVM_SUB(q, big));         /* c0h + m = q + qe exactly */
    CKVM_T pc = CKVM_ADD(CKVM_ADD(qe, me), CKVM_FMA(c1h, x2e, CKVM_FMA(c1l, x2, c0l)));
    CKVM_T vh = CKVM_MUL(xc, q);
    CKVM_T vl = CKVM_FMA(xc, pc, CKVM_FMS(xc, q, vh)); /* 2u = vh + vl */
    /* sigmoid(vh + vl): e = exp(-|vh|) (1 - sign(vh) vl), d = 1/(1 + e); sigmoid = d (vh >= 0) or e d. */
    CKVM_T e = CKVM_(exp)(CKVM_SUB(CKVM_ZERO(), CKVM_(abs)(vh)));
    e = CKVM_FNMA(e, CKVM_XORSIGN(vl, vh), e);
    CKVM_T d = CKVM_DIV(CKVM_SET1(1.0f), CKVM_ADD(CKVM_SET1(1.0f), e));
    CKVM_T ed = CKVM_MUL(e, d);
    CKVM_M neg = CKVM_CMP(vh, CKVM_ZERO(), _CMP_LT_OQ);
    return CKVM_MUL(xm, CKVM_BLEND(neg, d, ed));
}

/* d/dx [x s(2u)] = s + x s (1 - s) 2u',  2u' = 2 sqrt(2/pi) (1 + 3 * 0.044715 x^2). */
CKVM_DEF CKVM_T CKVM_(gelu_tanh_grad)(CKVM_T x) {
    CKVM_T xc = CKVM_(clamp)(x, -12.0f, 12.0f);
    CKVM_T x2 = CKVM_MUL(xc, xc);
    CKVM_T twou = CKVM_MUL(xc, CKVM_FMA(x2, CKVM_SET1(0.0713548162726008f),
                                                    CKVM_SET1(1.5957691216057308f)));
    CKVM_T s, sm;
    CKVM_(sigmoid_pair)(twou, &s, &sm);
    CKVM_T du = CKVM_FMA(x2, CKVM_SET1(0.2140644488178024f), CKVM_SET1(1.5957691216057308f));
    return CKVM_FMA(CKVM_MUL(xc, du), CKVM_MUL(s, sm), s);
}

/* ---- SiLU, ReLU, leaky ReLU ---------------------------------------------------------------- */

CKVM_DEF CKVM_T CKVM_(silu)(CKVM_T x) {
    CKVM_T xm = CKVM_MAX(CKVM_SET1(-120.0f), x); /* x e^x underflows to -0 below that */
    return CKVM_MUL(xm, CKVM_(sigmoid)(xm));
}

/* d/dx [x s(x)] = s + x s (1 - s). */
CKVM_DEF CKVM_T CKVM_(silu_grad)(CKVM_T x) {
    CKVM_T xc = CKVM_(clamp)(x, -120.0f, 120.0f);
    CKVM_T s, sm;
    CKVM_(sigmoid_pair)(xc, &s, &sm);
    return CKVM_FMA(xc, CKVM_MUL(s, sm), s);
}

/* max(x, 0) with NaN propagated and -0 mapped to +0 (the + 0 does both without a branch). */
CKVM_DEF CKVM_T CKVM_(relu)(CKVM_T x) {
    return CKVM_ADD(CKVM_MAX(CKVM_ZERO(), x), CKVM_ZERO());
}

CKVM_DEF CKVM_T CKVM_(leaky_relu)(CKVM_T x, CKVM_T slope) {
    CKVM_M pos = CKVM_CMP(x, CKVM_ZERO(), _CMP_GE_OQ);
    return CKVM_BLEND(pos, CKVM_MUL(x, slope), x);
}

/* ---- dispatch on ck_act (for epilogues; hoist the switch out of hot loops when you can) ---- */

/* act(x). Unknown kinds return x unchanged (entry points validate `act` before calling). */
CKVM_DEF CKVM_T CKVM_(act)(CKVM_T x, ck_act act, float act_param) {
    switch (act) {
    case CK_ACT_GELU_ERF: return CKVM_(gelu_erf)(x);
    case CK_ACT_GELU_TANH: return CKVM_(gelu_tanh)(x);
    case CK_ACT_RELU: return CKVM_(relu)(x);
    case CK_ACT_SILU: return CKVM_(silu)(x);
    case CK_ACT_TANH: return CKVM_(tanh)(x);
    case CK_ACT_SIGMOID: return CKVM_(sigmoid)(x);
    case CK_ACT_LEAKY_RELU: return CKVM_(leaky_relu)(x, CKVM_SET1(act_param));
    case CK_ACT_NONE:
    default: return x;
    }
}

/* dy * act'(x). ReLU: 0 at x <= 0 (and for NaN x); leaky: slope at x <= 0. */
CKVM_DEF CKVM_T CKVM_(act_grad_mul)(CKVM_T x, CKVM_T dy, ck_act act, float act_param) {
    switch (act) {
    case CK_ACT_GELU_ERF: return CKVM_MUL(dy, CKVM_(gelu_erf_grad)(x));
    case CK_ACT_GELU_TANH: return CKVM_MUL(dy, CKVM_(gelu_tanh_grad)(x));
    case CK_ACT_RELU:
        return CKVM_ZEROM(CKVM_CMP(x, CKVM_ZERO(), _CMP_GT_OQ), dy);
    case CK_ACT_SILU: return CKVM_MUL(dy, CKVM_(silu_grad)(x));
    case CK_ACT_TANH: return CKVM_MUL(dy, CKVM_(tanh_grad)(x));
    case CK_ACT_SIGMOID: return CKVM_MUL(dy, CKVM_(sigmoid_grad)(x));
    case CK_ACT_LEAKY_RELU: {
        CKVM_M pos = CKVM_CMP(x, CKVM_ZERO(), _CMP_GT_OQ);
        return CKVM_BLEND(pos, CKVM_MUL(dy, CKVM_SET1(act_param)), dy);
    }
    case CK_ACT_NONE:
    default: return dy;
    }
}

/* The vocabulary ends with this instantiation (the next ISA header defines its own). */
#undef CKVM_T
#undef CKVM_M
#undef CKVM_DEF
#undef CKVM_
#undef CKVM_SET1
#undef CKVM_ZERO
#undef CKVM_ADD
#undef CKVM_SUB
#undef CKVM_MUL
#undef CKVM_DIV
#undef CKVM_MAX
#undef CKVM_MIN
#undef CKVM_FMA
#undef CKVM_FMS
#undef CKVM_FNMA
#undef CKVM_CMP
#undef CKVM_BLEND
#undef CKVM_ALL
#undef CKVM_NOTALL
#undef CKVM_ZEROM
#undef CKVM_XORSIGN

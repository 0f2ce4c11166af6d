/*
 * rowops_simd.h — LayerNorm and softmax row kernels written once over a small vector vocabulary and
 * instantiated per ISA: x86/avx512/{layernorm,softmax}_avx512.c and x86/avx2/{...}_avx2.c define the
 * CKV_* macros below and include this file with CK_ROWOPS_LAYERNORM or CK_ROWOPS_SOFTMAX defined.
 *
 * Vocabulary: CKV (vector type), CKM (tail mask type), CKW (lanes), CKV_TARGET (target attribute),
 * CKV_SUFFIX(name) (name##_isa), CKV_LOAD/STORE, CKV_TAIL(r) (first r lanes), CKV_LOADM (zero-filled
 * masked load), CKV_STOREM, CKV_ZEROM(m, v) (inactive lanes -> 0), CKV_SELM(m, a, b) (m ? b : a),
 * CKV_SET1, CKV_ADD/SUB/MUL/MAX/MIN, CKV_FMA(a,b,c) = a*b+c, CKV_FNMA(a,b,c) = c-a*b,
 * CKV_HSUM/HMAX/HMIN (horizontal reductions), CKV_EXP.
 *
 * Tails use masked loads/stores, so nothing past `cols` is read or written (NaN padding cannot leak).
 */

/* ================================ LayerNorm ================================================== */
#ifdef CK_ROWOPS_LAYERNORM

#include <math.h>

/* s = x (+ r) for a full vector / a masked tail (inactive lanes 0). */
#define CK_LN_S(j) (rr != NULL ? CKV_ADD(CKV_LOAD(xr + (j)), CKV_LOAD(rr + (j))) : CKV_LOAD(xr + (j)))
#define CK_LN_SM(j, m) \
    (rr != NULL ? CKV_ADD(CKV_LOADM(xr + (j), m), CKV_LOADM(rr + (j), m)) : CKV_LOADM(xr + (j), m))

CKV_TARGET void CKV_SUFFIX(ck_layernorm_fwd)(CK_LN_FWD_ARGS) {
    const int64_t n = cols;
    const int64_t nv = n / CKW * CKW;
    const int64_t rem = n - nv;
    const CKM tm = CKV_TAIL(rem > 0 ? rem : 1);
    const double inv_nd = 1.0 / (double)n;
    for (int64_t r = 0; r < rows; ++r) {
        const float *xr = x + r * ldx;
        const float *rr = residual != NULL ? residual + r * ld_residual : NULL;
        float *yr = y + r * ldy;
        float *sr = sum_out != NULL ? sum_out + r * ld_sum : NULL;

        /* pass 1: s (stored if asked), sum, min, max; two accumulators to shorten the add chain */
        CKV acc0 = CKV_SET1(0.0f), acc1 = CKV_SET1(0.0f);
        CKV vlo = CKV_SET1(INFINITY), vhi = CKV_SET1(-INFINITY);
        int64_t j = 0;
        for (; j + 2 * CKW <= nv; j += 2 * CKW) {
            CKV a = CK_LN_S(j), b = CK_LN_S(j + CKW);
            if (sr != NULL) { CKV_STORE(sr + j, a); CKV_STORE(sr + j + CKW, b); }
            acc0 = CKV_ADD(acc0, a);
            acc1 = CKV_ADD(acc1, b);
            vlo = CKV_MIN(vlo, CKV_MIN(a, b));
            vhi = CKV_MAX(vhi, CKV_MAX(a, b));
        }
        for (; j < nv; j += CKW) {
            CKV a = CK_LN_S(j);
            if (sr != NULL) CKV_STORE(sr + j, a);
            acc0 = CKV_ADD(acc0, a);
            vlo = CKV_MIN(vlo, a);
            vhi = CKV_MAX(vhi, a);
        }
        if (rem > 0) {
            CKV a = CK_LN_SM(nv, tm);
            if (sr != NULL) CKV_STOREM(sr + nv, tm, a);
            acc1 = CKV_ADD(acc1, a);
            vlo = CKV_SELM(tm, vlo, CKV_MIN(vlo, a));
            vhi = CKV_SELM(tm, vhi, CKV_MAX(vhi, a));
        }
        float sum = CKV_HSUM(CKV_ADD(acc0, acc1));
        float lo = CKV_HMIN(vlo), hi = CKV_HMAX(vhi);
        int shift = 0;
        if (!isfinite(sum) && isfinite(lo) && isfinite(hi)) { /* fp32 sum overflowed: redo scaled */
            const CKV sc = CKV_SET1(0x1p-64f);
            shift = 64;
            acc0 = CKV_SET1(0.0f);
            for (j = 0; j < nv; j += CKW) acc0 = CKV_FMA(CK_LN_S(j), sc, acc0);
            if (rem > 0) acc0 = CKV_FMA(CK_LN_SM(nv, tm), sc, acc0);
            sum = CKV_HSUM(acc0);
        }

        float mean0, dscale, mu, rs, xshift;
        if (ck_ln_row_pass1(n, inv_nd, sum, shift, lo, hi, &mean0, &dscale)) {
            /* constant row: xhat == 0, y = beta exactly */
            mu = mean0;
            rs = (float)(1.0 / sqrt((double)eps));
            const CKV z = CKV_SET1(0.0f);
            for (j = 0; j < nv; j += CKW) CKV_STORE(yr + j, beta != NULL ? CKV_LOAD(beta + j) : z);
            if (rem > 0) CKV_STOREM(yr + nv, tm, beta != NULL ? CKV_LOADM(beta + nv, tm) : z);
        } else {
            /* pass 2: deviations from the first-pass mean (times dscale, a power of two, when != 1) */
            const CKV vm0 = CKV_SET1(mean0), vsc = CKV_SET1(dscale);
            const int scaled = dscale != 1.0f;
            CKV sd0 = CKV_SET1(0.0f), sd1 = CKV_SET1(0.0f), q0 = CKV_SET1(0.0f), q1 = CKV_SET1(0.0f);
#define CK_LN_D(expr) (scaled ? CKV_MUL(CKV_SUB((expr), vm0), vsc) : CKV_SUB((expr), vm0))
            for (j = 0; j + 2 * CKW <= nv; j += 2 * CKW) {
                CKV d0 = CK_LN_D(CK_LN_S(j));
                CKV d1 = CK_LN_D(CK_LN_S(j + CKW));
                sd0 = CKV_ADD(sd0, d0);
                sd1 = CKV_ADD(sd1, d1);
                q0 = CKV_FMA(d0, d0, q0);
                q1 = CKV_FMA(d1, d1, q1);
            }
            for (; j < nv; j += CKW) {
                CKV d0 = CK_LN_D(CK_LN_S(j));
                sd0 = CKV_ADD(sd0, d0);
                q0 = CKV_FMA(d0, d0, q0);
            }
            if (rem > 0) {
                CKV d1 = CKV_ZEROM(tm, CK_LN_D(CK_LN_SM(nv, tm)));
                sd1 = CKV_ADD(sd1, d1);
                q1 = CKV_FMA(d1, d1, q1);
            }
#undef CK_LN_D
            ck_ln_row_pass2(inv_nd, mean0, dscale, CKV_HSUM(CKV_ADD(sd0, sd1)), CKV_HSUM(CKV_ADD(q0, q1)), eps, &mu, &rs, &xshift);

            /* pass 3: y = xhat * gamma + beta, xhat = (s - mean0) * rstd + shift (see ck_ln_row_pass2) */
            const CKV vrs = CKV_SET1(rs), vsh = CKV_SET1(xshift), one = CKV_SET1(1.0f), z = CKV_SET1(0.0f);
            for (j = 0; j < nv; j += CKW) {
                CKV xh = CKV_FMA(CKV_SUB(CK_LN_S(j), vm0), vrs, vsh);
                CKV g = gamma != NULL ? CKV_LOAD(gamma + j) : one;
                CKV b = beta != NULL ? CKV_LOAD(beta + j) : z;
                CKV_STORE(yr + j, CKV_FMA(xh, g, b));
            }
            if (rem > 0) {
                CKV xh = CKV_FMA(CKV_SUB(CK_LN_SM(nv, tm), vm0), vrs, vsh);
                CKV g = gamma != NULL ? CKV_LOADM(gamma + nv, tm) : one;
                CKV b = beta != NULL ? CKV_LOADM(beta + nv, tm) : z;
                CKV_STOREM(yr + nv, tm, CKV_FMA(xh, g, b));
            }
        }
        if (mean != NULL) mean[r] = mu;
        if (rstd != NULL) rstd[r] = rs;
    }
}

CKV_TARGET void CKV_SUFFIX(ck_layernorm_bwd)(CK_LN_BWD_ARGS) {
    const int64_t n = cols;
    const int64_t nv = n / CKW * CKW;
    const int64_t rem = n - nv;
    const CKM tm = CKV_TAIL(rem > 0 ? rem : 1);
    const float inv_n = (float)(1.0 / (double)n);
    const CKV one = CKV_SET1(1.0f);
    for (int64_t r = 0; r < rows; ++r) {
        const float *sr = s + r * lds, *dyr = dy + r * lddy;
        const CKV vmu = CKV_SET1(mean[r]), vrs = CKV_SET1(rstd[r]);
        /* pass A: sum(g), sum(g * xhat), g = dy * gamma */
        CKV sg = CKV_SET1(0.0f), sgx = CKV_SET1(0.0f);
        int64_t j = 0;
        for (; j < nv; j += CKW) {
            CKV xh = CKV_MUL(CKV_SUB(CKV_LOAD(sr + j), vmu), vrs);
            CKV g = CKV_MUL(CKV_LOAD(dyr + j), gamma != NULL ? CKV_LOAD(gamma + j) : one);
            sg = CKV_ADD(sg, g);
            sgx = CKV_FMA(g, xh, sgx);
        }
        if (rem > 0) { /* dy is 0 in inactive lanes, so g is too */
            CKV xh = CKV_MUL(CKV_SUB(CKV_LOADM(sr + nv, tm), vmu), vrs);
            CKV g = CKV_MUL(CKV_LOADM(dyr + nv, tm), gamma != NULL ? CKV_LOADM(gamma + nv, tm) : one);
            sg = CKV_ADD(sg, g);
            sgx = CKV_FMA(g, CKV_ZEROM(tm, xh), sgx);
        }
        const CKV mg = CKV_SET1(CKV_HSUM(sg) * inv_n), mgx = CKV_SET1(CKV_HSUM(sgx) * inv_n);
        float *dxr = dx != NULL ? dx + r * lddx : NULL;
        /* pass B: dx, dgamma, dbeta */
        for (j = 0; j < n; j += CKW) {
            const int full = j + CKW <= n;
            CKV sv = full ? CKV_LOAD(sr + j) : CKV_LOADM(sr + j, tm);
            CKV dyv = full ? CKV_LOAD(dyr + j) : CKV_LOADM(dyr + j, tm);
            CKV xh = CKV_MUL(CKV_SUB(sv, vmu), vrs);
            if (dxr != NULL) {
                CKV gm = gamma != NULL ? (full ? CKV_LOAD(gamma + j) : CKV_LOADM(gamma + j, tm)) : one;
                CKV g = CKV_MUL(dyv, gm);
                CKV v = CKV_MUL(vrs, CKV_FNMA(xh, mgx, CKV_SUB(g, mg)));
                if (beta_dx != 0.0f) v = CKV_ADD(full ? CKV_LOAD(dxr + j) : CKV_LOADM(dxr + j, tm), v);
                if (full) CKV_STORE(dxr + j, v); else CKV_STOREM(dxr + j, tm, v);
            }
            if (dgamma != NULL) {
                CKV v = CKV_FMA(dyv, xh, full ? CKV_LOAD(dgamma + j) : CKV_LOADM(dgamma + j, tm));
                if (full) CKV_STORE(dgamma + j, v); else CKV_STOREM(dgamma + j, tm, v);
            }
            if (dbeta != NULL) {
                CKV v = CKV_ADD(full ? CKV_LOAD(dbeta + j) : CKV_LOADM(dbeta + j, tm), dyv);
                if (full) CKV_STORE(dbeta + j, v); else CKV_STOREM(dbeta + j, tm, v);
            }
        }
    }
}

#endif /* CK_ROWOPS_LAYERNORM */

/* ================================ Softmax ==================================================== */
#ifdef CK_ROWOPS_SOFTMAX

#include <math.h>

/* z = scale*x (+ mask), two roundings like PyTorch's separate ops (no FMA). */
#define CK_SM_Z(j) (mr != NULL ? CKV_ADD(CKV_MUL(vscale, CKV_LOAD(xr + (j))), CKV_LOAD(mr + (j))) \
                               : CKV_MUL(vscale, CKV_LOAD(xr + (j))))
#define CK_SM_ZM(j, m) (mr != NULL ? CKV_ADD(CKV_MUL(vscale, CKV_LOADM(xr + (j), m)), CKV_LOADM(mr + (j), m)) \
                                   : CKV_MUL(vscale, CKV_LOADM(xr + (j), m)))

CKV_TARGET void CKV_SUFFIX(ck_softmax_fwd)(CK_SM_FWD_ARGS) {
    const int64_t n = cols;
    const int64_t nv = n / CKW * CKW;
    const int64_t rem = n - nv;
    const CKM tm = CKV_TAIL(rem > 0 ? rem : 1);
    const CKV vscale = CKV_SET1(scale), ninf = CKV_SET1(-INFINITY);
    for (int64_t r = 0; r < rows; ++r) {
        const float *xr = x + r * ldx;
        const float *mr = mask != NULL ? mask + (r / mask_group) * ldm : NULL;
        float *yr = y + r * ldy;
        /* pass 1: max, starting at -inf */
        CKV m0 = ninf, m1 = ninf;
        int64_t j = 0;
        for (; j + 2 * CKW <= nv; j += 2 * CKW) {
            m0 = CKV_MAX(m0, CK_SM_Z(j));
            m1 = CKV_MAX(m1, CK_SM_Z(j + CKW));
        }
        for (; j < nv; j += CKW) m0 = CKV_MAX(m0, CK_SM_Z(j));
        if (rem > 0) m1 = CKV_SELM(tm, m1, CKV_MAX(m1, CK_SM_ZM(nv, tm)));
        const float mx = CKV_HMAX(CKV_MAX(m0, m1));
        if (mx == -INFINITY) { /* every logit -inf: defined as a zero row */
            const CKV z = CKV_SET1(0.0f);
            for (j = 0; j < nv; j += CKW) CKV_STORE(yr + j, z);
            if (rem > 0) CKV_STOREM(yr + nv, tm, z);
            continue;
        }
        /* pass 2: e = exp(z - max) into y, sum */
        const CKV vmx = CKV_SET1(mx);
        CKV s0 = CKV_SET1(0.0f), s1 = CKV_SET1(0.0f);
        for (j = 0; j + 2 * CKW <= nv; j += 2 * CKW) {
            CKV e0 = CKV_EXP(CKV_SUB(CK_SM_Z(j), vmx));
            CKV e1 = CKV_EXP(CKV_SUB(CK_SM_Z(j + CKW), vmx));
            CKV_STORE(yr + j, e0);
            CKV_STORE(yr + j + CKW, e1);
            s0 = CKV_ADD(s0, e0);
            s1 = CKV_ADD(s1, e1);
        }
        for (; j < nv; j += CKW) {
            CKV e0 = CKV_EXP(CKV_SUB(CK_SM_Z(j), vmx));
            CKV_STORE(yr + j, e0);
            s0 = CKV_ADD(s0, e0);
        }
        if (rem > 0) {
            CKV e1 = CKV_ZEROM(tm, CKV_EXP(CKV_SUB(CK_SM_ZM(nv, tm), vmx)));
            CKV_STOREM(yr + nv, tm, e1);
            s1 = CKV_ADD(s1, e1);
        }
        /* pass 3: normalise */
        const CKV inv = CKV_SET1(1.0f / CKV_HSUM(CKV_ADD(s0, s1)));
        for (j = 0; j < nv; j += CKW) CKV_STORE(yr + j, CKV_MUL(CKV_LOAD(yr + j), inv));
        if (rem > 0) CKV_STOREM(yr + nv, tm, CKV_MUL(CKV_LOADM(yr + nv, tm), inv));
    }
}

CKV_TARGET void CKV_SUFFIX(ck_softmax_bwd)(CK_SM_BWD_ARGS) {
    const int64_t n = cols;
    const int64_t nv = n / CKW * CKW;
    const int64_t rem = n - nv;
    const CKM tm = CKV_TAIL(rem > 0 ? rem : 1);
    const CKV vscale = CKV_SET1(scale);
    for (int64_t r = 0; r < rows; ++r) {
        const float *yr = y + r * ldy, *dyr = dy + r * lddy;
        float *dxr = dx + r * lddx;
        CKV a0 = CKV_SET1(0.0f), a1 = CKV_SET1(0.0f);
        int64_t j = 0;
        for (; j + 2 * CKW <= nv; j += 2 * CKW) {
            a0 = CKV_FMA(CKV_LOAD(dyr + j), CKV_LOAD(yr + j), a0);
            a1 = CKV_FMA(CKV_LOAD(dyr + j + CKW), CKV_LOAD(yr + j + CKW), a1);
        }
        for (; j < nv; j += CKW) a0 = CKV_FMA(CKV_LOAD(dyr + j), CKV_LOAD(yr + j), a0);
        if (rem > 0) a1 = CKV_FMA(CKV_LOADM(dyr + nv, tm), CKV_LOADM(yr + nv, tm), a1);
        const CKV dot = CKV_SET1(CKV_HSUM(CKV_ADD(a0, a1)));
        for (j = 0; j < nv; j += CKW) {
            CKV v = CKV_MUL(CKV_MUL(vscale, CKV_LOAD(yr + j)), CKV_SUB(CKV_LOAD(dyr + j), dot));
            if (beta != 0.0f) v = CKV_ADD(CKV_LOAD(dxr + j), v);
            CKV_STORE(dxr + j, v);
        }
        if (rem > 0) {
            CKV v = CKV_MUL(CKV_MUL(vscale, CKV_LOADM(yr + nv, tm)), CKV_SUB(CKV_LOADM(dyr + nv, tm), dot));
            if (beta != 0.0f) v = CKV_ADD(CKV_LOADM(dxr + nv, tm), v);
            CKV_STOREM(dxr + nv, tm, v);
        }
    }
}

#endif /* CK_ROWOPS_SOFTMAX */

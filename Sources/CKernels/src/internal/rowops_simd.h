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

/* Rows up to CKV_LN_PAIR_MAX_COLS columns (per ISA; 0 = never) get their statistics computed two rows at a
 * time. */

/* s = x (+ r) for a full vector / a masked tail (inactive lanes 0). */
#define CK_LN_S(j) (rr != NULL ? CKV_ADD(CKV_LOAD(xr + (j)), CKV_LOAD(rr + (j))) : CKV_LOAD(xr + (j)))
#define CK_LN_SM(j, m) \
    (rr != NULL ? CKV_ADD(CKV_LOADM(xr + (j), m), CKV_LOADM(rr + (j), m)) : CKV_LOADM(xr + (j), m))

/* Fast-path decision and row constants from K, sum(d), sum(d^2) (see the fast path in the kernel). */
static inline int ck_ln_fast_finish(float K, float sdf, float qf, double inv_nd, float eps, float *mean0,
                                    float *rs, float *xshift) {
    const double md = (double)sdf * inv_nd, q = (double)qf * inv_nd;
    if (!(isfinite(sdf) && isfinite(qf) && q >= 0x1p-100 && md * md <= 0.25 * q)) return 0;
    const double var = q - md * md, rsd = 1.0 / sqrt(var + (double)eps), meand = (double)K + md;
    *mean0 = (float)meand;
    *rs = (float)rsd;
    *xshift = (float)(-(meand - (double)*mean0) * rsd);
    return 1;
}

#if CKV_LN_PAIR_MAX_COLS > 0
/* Fast-path statistics of two rows at once (a = row r, b = row r + 1), interleaved so the two rows'
 * reduction chains overlap; per row the same arithmetic as the single-row fast path except that each row
 * row: bitwise the same arithmetic as the single-row fast path. */
CKV_TARGET static inline void CKV_SUFFIX(ck_ln_stats2)(int64_t nv, int64_t rem, CKM tm, double inv_nd,
                                                       const float *xa, const float *ra, float *sa,
                                                       const float *xb, const float *rb, float *sb,
                                                       float *Ka, float *sda, float *qa,
                                                       float *Kb, float *sdb, float *qb) {
#define CK_LN_S2(xp, rp, j) (rp != NULL ? CKV_ADD(CKV_LOAD(xp + (j)), CKV_LOAD(rp + (j))) : CKV_LOAD(xp + (j)))
#define CK_LN_SM2(xp, rp, j, m) \
    (rp != NULL ? CKV_ADD(CKV_LOADM(xp + (j), m), CKV_LOADM(rp + (j), m)) : CKV_LOADM(xp + (j), m))
    const float ka = nv > 0 ? CKV_HSUM(CK_LN_S2(xa, ra, 0)) * (1.0f / (float)CKW)
                            : (float)((double)CKV_HSUM(CK_LN_SM2(xa, ra, 0, tm)) * inv_nd);
    const float kb = nv > 0 ? CKV_HSUM(CK_LN_S2(xb, rb, 0)) * (1.0f / (float)CKW)
                            : (float)((double)CKV_HSUM(CK_LN_SM2(xb, rb, 0, tm)) * inv_nd);
    const CKV vka = CKV_SET1(ka), vkb = CKV_SET1(kb);
    CKV da0 = CKV_SET1(0.0f), da1 = da0, qa0 = da0, qa1 = da0, db0 = da0, db1 = da0, qb0 = da0, qb1 = da0;
    int64_t j = 0;
    for (; j + 2 * CKW <= nv; j += 2 * CKW) {
        CKV a0 = CK_LN_S2(xa, ra, j), a1 = CK_LN_S2(xa, ra, j + CKW);
        CKV b0 = CK_LN_S2(xb, rb, j), b1 = CK_LN_S2(xb, rb, j + CKW);
        if (sa != NULL) {
            CKV_STORE(sa + j, a0); CKV_STORE(sa + j + CKW, a1);
            CKV_STORE(sb + j, b0); CKV_STORE(sb + j + CKW, b1);
        }
        a0 = CKV_SUB(a0, vka); a1 = CKV_SUB(a1, vka);
        b0 = CKV_SUB(b0, vkb); b1 = CKV_SUB(b1, vkb);
        da0 = CKV_ADD(da0, a0); da1 = CKV_ADD(da1, a1);
        db0 = CKV_ADD(db0, b0); db1 = CKV_ADD(db1, b1);
        qa0 = CKV_FMA(a0, a0, qa0); qa1 = CKV_FMA(a1, a1, qa1);
        qb0 = CKV_FMA(b0, b0, qb0); qb1 = CKV_FMA(b1, b1, qb1);
    }
    for (; j < nv; j += CKW) {
        CKV a = CK_LN_S2(xa, ra, j), b = CK_LN_S2(xb, rb, j);
        if (sa != NULL) { CKV_STORE(sa + j, a); CKV_STORE(sb + j, b); }
        CKV da = CKV_SUB(a, vka), db = CKV_SUB(b, vkb);
        da0 = CKV_ADD(da0, da);
        db0 = CKV_ADD(db0, db);
        qa0 = CKV_FMA(da, da, qa0);
        qb0 = CKV_FMA(db, db, qb0);
    }
    if (rem > 0) {
        CKV a = CK_LN_SM2(xa, ra, nv, tm), b = CK_LN_SM2(xb, rb, nv, tm);
        if (sa != NULL) { CKV_STOREM(sa + nv, tm, a); CKV_STOREM(sb + nv, tm, b); }
        CKV da = CKV_ZEROM(tm, CKV_SUB(a, vka)), db = CKV_ZEROM(tm, CKV_SUB(b, vkb));
        da1 = CKV_ADD(da1, da);
        db1 = CKV_ADD(db1, db);
        qa1 = CKV_FMA(da, da, qa1);
        qb1 = CKV_FMA(db, db, qb1);
    }
#undef CK_LN_S2
#undef CK_LN_SM2
    *Ka = ka; *Kb = kb;
    *sda = CKV_HSUM(CKV_ADD(da0, da1)); *sdb = CKV_HSUM(CKV_ADD(db0, db1));
    *qa = CKV_HSUM(CKV_ADD(qa0, qa1)); *qb = CKV_HSUM(CKV_ADD(qb0, qb1));
}

#endif

CKV_TARGET void CKV_SUFFIX(ck_layernorm_fwd)(CK_LN_FWD_ARGS) {
    const int64_t n = cols;
    const int64_t nv = n / CKW * CKW;
    const int64_t rem = n - nv;
    const CKM tm = CKV_TAIL(rem > 0 ? rem : 1);
    const double inv_nd = 1.0 / (double)n;
    int next_ready = 0, next_fast = 0; /* fast-path statistics of row r + 1 already computed (pairs) */
    float next_m0 = 0.0f, next_rs = 0.0f, next_sh = 0.0f;
    for (int64_t r = 0; r < rows; ++r) {
        const float *xr = x + r * ldx;
        const float *rr = residual != NULL ? residual + r * ld_residual : NULL;
        float *yr = y + r * ldy;
        float *sr = sum_out != NULL ? sum_out + r * ld_sum : NULL;

        /* Fast path: ONE statistics pass on d = s - K with K = the mean of the first vector (a cheap
         * estimate of the row mean): mean = K + sum(d)/n, var = sum(d^2)/n - (sum(d)/n)^2 in double. Taken
         * only when that correction is small (md^2 <= q/4, so var >= 3q/4 and the subtraction loses at most
         * a factor 4/3 of relative accuracy against the two-pass form), the sums are finite and q = sum(d^2)/n
         * is far above the fp32 underflow range; otherwise (constant rows, overflow, tiny spreads, rows whose
         * first vector is far off the mean) the three-pass algorithm below runs from scratch. */
        float mean0 = 0.0f, dscale = 1.0f, mu = 0.0f, rs = 0.0f, xshift = 0.0f;
        int fast = 0, constant = 0;
        if (next_ready) {
            next_ready = 0;
            fast = next_fast;
            mean0 = next_m0; rs = next_rs; xshift = next_sh; mu = mean0;
        }
#if CKV_LN_PAIR_MAX_COLS > 0
        else if (r + 1 < rows && n <= CKV_LN_PAIR_MAX_COLS) {
            float Ka, sda, qa, Kb, sdb, qb;
            CKV_SUFFIX(ck_ln_stats2)(nv, rem, tm, inv_nd, xr, rr, sr, x + (r + 1) * ldx,
                                     residual != NULL ? residual + (r + 1) * ld_residual : NULL,
                                     sum_out != NULL ? sum_out + (r + 1) * ld_sum : NULL,
                                     &Ka, &sda, &qa, &Kb, &sdb, &qb);
            fast = ck_ln_fast_finish(Ka, sda, qa, inv_nd, eps, &mean0, &rs, &xshift);
            mu = mean0;
            next_fast = ck_ln_fast_finish(Kb, sdb, qb, inv_nd, eps, &next_m0, &next_rs, &next_sh);
            next_ready = 1;
        }
#endif
        else {
            const float K = nv > 0 ? CKV_HSUM(CK_LN_S(0)) * (1.0f / (float)CKW)
                                   : (float)((double)CKV_HSUM(CK_LN_SM(0, tm)) * inv_nd);
            const CKV vk = CKV_SET1(K);
            /* accumulators in the same order as ck_ln_stats2: a row's result does not depend on whether it
             * was paired with a neighbour */
            CKV sd0 = CKV_SET1(0.0f), sd1 = sd0, q0 = sd0, q1 = sd0;
            int64_t j = 0;
            for (; j + 2 * CKW <= nv; j += 2 * CKW) {
                CKV a = CK_LN_S(j), b = CK_LN_S(j + CKW);
                if (sr != NULL) { CKV_STORE(sr + j, a); CKV_STORE(sr + j + CKW, b); }
                CKV da = CKV_SUB(a, vk), db = CKV_SUB(b, vk);
                sd0 = CKV_ADD(sd0, da);
                sd1 = CKV_ADD(sd1, db);
                q0 = CKV_FMA(da, da, q0);
                q1 = CKV_FMA(db, db, q1);
            }
            for (; j < nv; j += CKW) {
                CKV a = CK_LN_S(j);
                if (sr != NULL) CKV_STORE(sr + j, a);
                CKV da = CKV_SUB(a, vk);
                sd0 = CKV_ADD(sd0, da);
                q0 = CKV_FMA(da, da, q0);
            }
            if (rem > 0) {
                CKV a = CK_LN_SM(nv, tm);
                if (sr != NULL) CKV_STOREM(sr + nv, tm, a);
                CKV db = CKV_ZEROM(tm, CKV_SUB(a, vk));
                sd1 = CKV_ADD(sd1, db);
                q1 = CKV_FMA(db, db, q1);
            }
            fast = ck_ln_fast_finish(K, CKV_HSUM(CKV_ADD(sd0, sd1)), CKV_HSUM(CKV_ADD(q0, q1)), inv_nd, eps, &mean0,
                                     &rs, &xshift);
            mu = mean0;
        }
        if (!fast) {
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

            if (ck_ln_row_pass1(n, inv_nd, sum, shift, lo, hi, &mean0, &dscale)) {
                constant = 1;
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
            }
        }
        if (!constant) {
            /* pass 3: y = xhat * gamma + beta, xhat = (s - mean0) * rstd + shift (see ck_ln_row_pass2) */
            const CKV vm0 = CKV_SET1(mean0), vrs = CKV_SET1(rs), vsh = CKV_SET1(xshift), one = CKV_SET1(1.0f), z = CKV_SET1(0.0f);
            for (int64_t j = 0; j < nv; j += CKW) {
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

/* ---- register-chunked forward -----------------------------------------------------------------
 * A row of nv = ceil(n / CKW) vectors is cut into chunks of CKV_SM_CHUNK vectors (the last one may be
 * shorter). Each chunk is loaded ONCE into registers: z, chunk max m_c, e = exp(z - m_c), chunk sum s_c.
 * All chunks but the last are stored to y unnormalised; the last stays in registers. Then
 * M = max m_c, S = sum s_c e^(m_c - M) (double), f_c = e^(m_c - M) / S, and y = e * f_c: the last chunk
 * straight from registers, the others by one load/multiply/store over their (L1-hot) part of y. A row of
 * <= CKV_SM_CHUNK vectors (e.g. 128 columns) therefore reads x once and writes y once; f = 1/S then, as in
 * the plain three-pass form. Rows longer than CKV_SM_CHUNK * CK_SM_MAXCHUNKS vectors use the three-pass
 * loop below. Each chunk reads its x before it writes its y, so y may alias x. */
#if CKV_SM_CHUNK > 0
#define CK_SM_MAXCHUNKS 64
#define CK_SM_ALWAYS_INLINE __attribute__((always_inline)) static inline

/* NV vectors (a compile-time constant after inlining) from column 0 of xr/mr; the last vector uses lane
 * mask lm. On return e[0..NV) holds exp(z - m) (inactive lanes 0), *cm = m and *cs = the sum (m = -inf and
 * e = 0, *cs = 0 when every logit is -inf). */
CKV_TARGET CK_SM_ALWAYS_INLINE void CKV_SUFFIX(ck_sm_chunk)(const int NV, const float *xr, const float *mr, CKM lm,
                                                           CKV vscale, CKV *e, float *cm, float *cs) {
    const CKV ninf = CKV_SET1(-INFINITY);
    CKV m0 = ninf, m1 = ninf;
    _Pragma("unroll") for (int i = 0; i < NV - 1; ++i) {
        e[i] = CK_SM_Z(i * CKW);
        if (i & 1) m1 = CKV_MAX(m1, e[i]); else m0 = CKV_MAX(m0, e[i]);
    }
    e[NV - 1] = CKV_SELM(lm, ninf, CK_SM_ZM((NV - 1) * CKW, lm));
    m1 = CKV_MAX(m1, e[NV - 1]);
    const float m = CKV_HMAX(CKV_MAX(m0, m1));
    *cm = m;
    if (m == -INFINITY) {
        _Pragma("unroll") for (int i = 0; i < NV; ++i) e[i] = CKV_SET1(0.0f);
        *cs = 0.0f;
        return;
    }
    const CKV vm = CKV_SET1(m);
    CKV s0 = CKV_SET1(0.0f), s1 = CKV_SET1(0.0f);
    _Pragma("unroll") for (int i = 0; i < NV; ++i) {
        e[i] = CKV_EXP_NONPOS(CKV_SUB(e[i], vm));
        if (i & 1) s1 = CKV_ADD(s1, e[i]); else s0 = CKV_ADD(s0, e[i]);
    }
    *cs = CKV_HSUM(CKV_ADD(s0, s1));
}

/* Two whole rows of NV <= CKV_SM_CHUNK / 2 vectors each, interleaved step by step so the two rows' reduction
 * chains (max, horizontal max, exp, sum, horizontal sum, reciprocal) overlap. Same arithmetic as one
 * single-chunk row through ck_sm_chunk (bitwise identical results). */
CKV_TARGET CK_SM_ALWAYS_INLINE void CKV_SUFFIX(ck_sm_pair)(const int NV, const float *xa, const float *ma, float *ya,
                                                          const float *xb, const float *mb, float *yb, CKM lm,
                                                          CKV vscale) {
    const CKV ninf = CKV_SET1(-INFINITY), z0 = CKV_SET1(0.0f);
    CKV ea[CKV_SM_CHUNK / 2], eb[CKV_SM_CHUNK / 2];
    CKV a0 = ninf, a1 = ninf, b0 = ninf, b1 = ninf;
    const float *xr, *mr;
    _Pragma("unroll") for (int i = 0; i < NV - 1; ++i) {
        xr = xa; mr = ma;
        ea[i] = CK_SM_Z(i * CKW);
        xr = xb; mr = mb;
        eb[i] = CK_SM_Z(i * CKW);
        if (i & 1) { a1 = CKV_MAX(a1, ea[i]); b1 = CKV_MAX(b1, eb[i]); }
        else { a0 = CKV_MAX(a0, ea[i]); b0 = CKV_MAX(b0, eb[i]); }
    }
    xr = xa; mr = ma;
    ea[NV - 1] = CKV_SELM(lm, ninf, CK_SM_ZM((NV - 1) * CKW, lm));
    xr = xb; mr = mb;
    eb[NV - 1] = CKV_SELM(lm, ninf, CK_SM_ZM((NV - 1) * CKW, lm));
    const float mxa = CKV_HMAX(CKV_MAX(a0, CKV_MAX(a1, ea[NV - 1])));
    const float mxb = CKV_HMAX(CKV_MAX(b0, CKV_MAX(b1, eb[NV - 1])));
    /* a row whose logits are all -inf becomes zeros: exp(-inf - 0) = 0 and the factor is forced to 0 */
    const CKV vma = CKV_SET1(mxa == -INFINITY ? 0.0f : mxa), vmb = CKV_SET1(mxb == -INFINITY ? 0.0f : mxb);
    CKV sa0 = z0, sa1 = z0, sb0 = z0, sb1 = z0;
    _Pragma("unroll") for (int i = 0; i < NV; ++i) {
        ea[i] = CKV_EXP_NONPOS(CKV_SUB(ea[i], vma));
        eb[i] = CKV_EXP_NONPOS(CKV_SUB(eb[i], vmb));
        if (i & 1) { sa1 = CKV_ADD(sa1, ea[i]); sb1 = CKV_ADD(sb1, eb[i]); }
        else { sa0 = CKV_ADD(sa0, ea[i]); sb0 = CKV_ADD(sb0, eb[i]); }
    }
    const float sa = CKV_HSUM(CKV_ADD(sa0, sa1)), sb = CKV_HSUM(CKV_ADD(sb0, sb1));
    const CKV fa = CKV_SET1(mxa == -INFINITY ? 0.0f : 1.0f / sa), fb = CKV_SET1(mxb == -INFINITY ? 0.0f : 1.0f / sb);
    _Pragma("unroll") for (int i = 0; i < NV - 1; ++i) {
        CKV_STORE(ya + i * CKW, CKV_MUL(ea[i], fa));
        CKV_STORE(yb + i * CKW, CKV_MUL(eb[i], fb));
    }
    CKV_STOREM(ya + (NV - 1) * CKW, lm, CKV_MUL(ea[NV - 1], fa));
    CKV_STOREM(yb + (NV - 1) * CKW, lm, CKV_MUL(eb[NV - 1], fb));
}

/* All rows whose last chunk has NVL vectors (compile-time constant) after nch full chunks. */
CKV_TARGET CK_SM_ALWAYS_INLINE void CKV_SUFFIX(ck_sm_rows)(const int NVL, int64_t nch, CK_SM_FWD_ARGS) {
    enum { CH = CKV_SM_CHUNK };
    const int64_t n = cols;
    const int64_t rem = n % CKW;
    const CKM full = CKV_TAIL(CKW), lm = CKV_TAIL(rem > 0 ? rem : CKW);
    const CKV vscale = CKV_SET1(scale);
    const int64_t c_last = nch * CH * CKW; /* first column of the last chunk */
    int64_t r = 0;
    if (nch == 0 && 2 * NVL <= CH) {
        for (; r + 2 <= rows; r += 2) {
            CKV_SUFFIX(ck_sm_pair)(NVL, x + r * ldx, mask != NULL ? mask + (r / mask_group) * ldm : NULL, y + r * ldy,
                                   x + (r + 1) * ldx, mask != NULL ? mask + ((r + 1) / mask_group) * ldm : NULL,
                                   y + (r + 1) * ldy, lm, vscale);
        }
    }
    for (; r < rows; ++r) {
        const float *xr0 = x + r * ldx;
        const float *mr0 = mask != NULL ? mask + (r / mask_group) * ldm : NULL;
        float *yr0 = y + r * ldy;
        float cmx[CK_SM_MAXCHUNKS], csm[CK_SM_MAXCHUNKS];
        CKV e[CH];
        for (int64_t c = 0; c < nch; ++c) {
            const int64_t c0 = c * CH * CKW;
            const float *xr = xr0 + c0, *mr = mr0 != NULL ? mr0 + c0 : NULL;
            CKV_SUFFIX(ck_sm_chunk)(CH, xr, mr, full, vscale, e, &cmx[c], &csm[c]);
            _Pragma("unroll") for (int i = 0; i < CH; ++i) CKV_STORE(yr0 + c0 + i * CKW, e[i]);
        }
        float ml, sl;
        {
            const float *xr = xr0 + c_last, *mr = mr0 != NULL ? mr0 + c_last : NULL;
            CKV_SUFFIX(ck_sm_chunk)(NVL, xr, mr, lm, vscale, e, &ml, &sl);
        }
        float mxv = ml;
        for (int64_t c = 0; c < nch; ++c) mxv = cmx[c] > mxv ? cmx[c] : mxv;
        float *yl = yr0 + c_last;
        if (mxv == -INFINITY) { /* every logit -inf: defined as a zero row */
            const CKV z = CKV_SET1(0.0f);
            for (int64_t j = 0; j < c_last; j += CKW) CKV_STORE(yr0 + j, z);
            _Pragma("unroll") for (int i = 0; i < NVL - 1; ++i) CKV_STORE(yl + i * CKW, z);
            CKV_STOREM(yl + (NVL - 1) * CKW, lm, z);
            continue;
        }
        float fl;
        if (nch == 0) {
            fl = 1.0f / sl;
        } else {
            double S = (double)sl * exp((double)ml - (double)mxv);
            for (int64_t c = 0; c < nch; ++c) S += (double)csm[c] * exp((double)cmx[c] - (double)mxv);
            const double inv = 1.0 / S;
            for (int64_t c = 0; c < nch; ++c) {
                const CKV f = CKV_SET1((float)(exp((double)cmx[c] - (double)mxv) * inv));
                float *yc = yr0 + c * CH * CKW;
                _Pragma("unroll") for (int i = 0; i < CH; ++i) CKV_STORE(yc + i * CKW, CKV_MUL(CKV_LOAD(yc + i * CKW), f));
            }
            fl = (float)(exp((double)ml - (double)mxv) * inv);
        }
        const CKV f = CKV_SET1(fl);
        _Pragma("unroll") for (int i = 0; i < NVL - 1; ++i) CKV_STORE(yl + i * CKW, CKV_MUL(e[i], f));
        CKV_STOREM(yl + (NVL - 1) * CKW, lm, CKV_MUL(e[NVL - 1], f));
    }
}

#endif /* CKV_SM_CHUNK > 0 */

CKV_TARGET static void CKV_SUFFIX(ck_softmax_fwd_3pass)(CK_SM_FWD_ARGS);

CKV_TARGET void CKV_SUFFIX(ck_softmax_fwd)(CK_SM_FWD_ARGS) {
#if CKV_SM_CHUNK == 0
    CKV_SUFFIX(ck_softmax_fwd_3pass)(rows, cols, x, ldx, mask, ldm, mask_group, y, ldy, scale);
#else
    const int64_t nvec = (cols + CKW - 1) / CKW;
    if (nvec > (int64_t)CKV_SM_CHUNK * CK_SM_MAXCHUNKS) {
        CKV_SUFFIX(ck_softmax_fwd_3pass)(rows, cols, x, ldx, mask, ldm, mask_group, y, ldy, scale);
        return;
    }
    const int64_t nch = (nvec - 1) / CKV_SM_CHUNK;
    const int nvl = (int)(nvec - nch * CKV_SM_CHUNK);
#define CK_SM_CASE(k) \
    case k: CKV_SUFFIX(ck_sm_rows)(k, nch, rows, cols, x, ldx, mask, ldm, mask_group, y, ldy, scale); break;
    switch (nvl) {
    CK_SM_CASE(1) CK_SM_CASE(2) CK_SM_CASE(3) CK_SM_CASE(4) CK_SM_CASE(5) CK_SM_CASE(6) CK_SM_CASE(7) CK_SM_CASE(8)
#if CKV_SM_CHUNK > 8
    CK_SM_CASE(9) CK_SM_CASE(10) CK_SM_CASE(11) CK_SM_CASE(12) CK_SM_CASE(13) CK_SM_CASE(14) CK_SM_CASE(15)
    CK_SM_CASE(16)
#endif
    default: break;
    }
#undef CK_SM_CASE
#endif
}

/* Plain three passes (max; exp into y and sum; scale) for very long rows. */
CKV_TARGET static void CKV_SUFFIX(ck_softmax_fwd_3pass)(CK_SM_FWD_ARGS) {
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
            CKV e0 = CKV_EXP_NONPOS(CKV_SUB(CK_SM_Z(j), vmx));
            CKV e1 = CKV_EXP_NONPOS(CKV_SUB(CK_SM_Z(j + CKW), vmx));
            CKV_STORE(yr + j, e0);
            CKV_STORE(yr + j + CKW, e1);
            s0 = CKV_ADD(s0, e0);
            s1 = CKV_ADD(s1, e1);
        }
        for (; j < nv; j += CKW) {
            CKV e0 = CKV_EXP_NONPOS(CKV_SUB(CK_SM_Z(j), vmx));
            CKV_STORE(yr + j, e0);
            s0 = CKV_ADD(s0, e0);
        }
        if (rem > 0) {
            CKV e1 = CKV_ZEROM(tm, CKV_EXP_NONPOS(CKV_SUB(CK_SM_ZM(nv, tm), vmx)));
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

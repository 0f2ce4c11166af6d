/* Scalar reference LayerNorm (fp32 storage and accumulation, sequential sums), the same three-pass
 * algorithm as the SIMD kernels (see layernorm.c for the row statistics and docs/numerics.md). */
#include <math.h>

#include "internal/eltwise.h"

void ck_layernorm_fwd_kernel_ref(CK_LN_FWD_ARGS) {
    const int64_t n = cols;
    const double inv_n = n > 0 ? 1.0 / (double)n : 0.0;
    for (int64_t r = 0; r < rows; ++r) {
        const float *xr = x + r * ldx;
        const float *rr = residual != NULL ? residual + r * ld_residual : NULL;
        float *yr = y + r * ldy;
        float *sr = sum_out != NULL ? sum_out + r * ld_sum : NULL;
        if (n == 0) {
            if (mean != NULL) mean[r] = 0.0f;
            if (rstd != NULL) rstd[r] = (float)(1.0 / sqrt((double)eps));
            continue;
        }
        /* pass 1: s, sum, min, max */
        float sum = 0.0f, lo = INFINITY, hi = -INFINITY;
        for (int64_t j = 0; j < n; ++j) {
            float s = rr != NULL ? xr[j] + rr[j] : xr[j];
            if (sr != NULL) sr[j] = s;
            sum += s;
            lo = s < lo ? s : lo;
            hi = s > hi ? s : hi;
        }
        int shift = 0;
        if (!isfinite(sum) && isfinite(lo) && isfinite(hi)) { /* the plain sum overflowed: rescale */
            shift = 64;
            sum = 0.0f;
            for (int64_t j = 0; j < n; ++j) {
                float s = rr != NULL ? xr[j] + rr[j] : xr[j];
                sum += s * 0x1p-64f;
            }
        }
        float mean0, dscale, mu, rs, xshift;
        if (ck_ln_row_pass1(n, inv_n, sum, shift, lo, hi, &mean0, &dscale)) {
            mu = mean0;
            rs = (float)(1.0 / sqrt((double)eps));
            for (int64_t j = 0; j < n; ++j) yr[j] = beta != NULL ? beta[j] : 0.0f; /* xhat == 0 */
        } else {
            /* pass 2: deviations from the first-pass mean, scaled by a power of two */
            float sd = 0.0f, sd2 = 0.0f;
            for (int64_t j = 0; j < n; ++j) {
                float s = rr != NULL ? xr[j] + rr[j] : xr[j];
                float d = (s - mean0) * dscale;
                sd += d;
                sd2 += d * d;
            }
            ck_ln_row_pass2(inv_n, mean0, dscale, sd, sd2, eps, &mu, &rs, &xshift);
            /* pass 3: normalise */
            for (int64_t j = 0; j < n; ++j) {
                float s = rr != NULL ? xr[j] + rr[j] : xr[j];
                float t0 = (s - mean0) * rs;
                float xhat = t0 + xshift;
                float g = gamma != NULL ? gamma[j] : 1.0f;
                float b = beta != NULL ? beta[j] : 0.0f;
                float t = xhat * g;
                yr[j] = t + b;
            }
        }
        if (mean != NULL) mean[r] = mu;
        if (rstd != NULL) rstd[r] = rs;
    }
}

void ck_layernorm_bwd_kernel_ref(CK_LN_BWD_ARGS) {
    const int64_t n = cols;
    if (n == 0) return;
    const float inv_n = (float)(1.0 / (double)n);
    for (int64_t r = 0; r < rows; ++r) {
        const float *sr = s + r * lds, *dyr = dy + r * lddy;
        const float mu = mean[r], rs = rstd[r];
        float sg = 0.0f, sgx = 0.0f;
        for (int64_t j = 0; j < n; ++j) {
            float xhat = (sr[j] - mu) * rs;
            float g = gamma != NULL ? dyr[j] * gamma[j] : dyr[j];
            sg += g;
            float gx = g * xhat;
            sgx += gx;
        }
        const float mg = sg * inv_n, mgx = sgx * inv_n;
        float *dxr = dx != NULL ? dx + r * lddx : NULL;
        for (int64_t j = 0; j < n; ++j) {
            float xhat = (sr[j] - mu) * rs;
            if (dxr != NULL) {
                float g = gamma != NULL ? dyr[j] * gamma[j] : dyr[j];
                float t = xhat * mgx;
                float v = rs * ((g - mg) - t);
                dxr[j] = beta_dx == 0.0f ? v : dxr[j] + v;
            }
            if (dgamma != NULL) {
                float p = dyr[j] * xhat;
                dgamma[j] += p;
            }
            if (dbeta != NULL) dbeta[j] += dyr[j];
        }
    }
}

ck_status ck_layernorm_fwd_f32_ref(CK_LN_FWD_ARGS) {
    ck_status st = ck_layernorm_fwd_check(rows, cols, x, ldx, residual, ld_residual, y, ldy, sum_out, ld_sum, eps);
    if (st != CK_OK) return st;
    ck_layernorm_fwd_kernel_ref(rows, cols, x, ldx, residual, ld_residual, gamma, beta, y, ldy, sum_out, ld_sum,
                                mean, rstd, eps);
    return CK_OK;
}

ck_status ck_layernorm_bwd_f32_ref(CK_LN_BWD_ARGS) {
    ck_status st = ck_layernorm_bwd_check(rows, cols, s, lds, mean, rstd, dy, lddy, dx, lddx, beta_dx);
    if (st != CK_OK) return st;
    ck_layernorm_bwd_kernel_ref(rows, cols, s, lds, gamma, mean, rstd, dy, lddy, dx, lddx, dgamma, dbeta, beta_dx);
    return CK_OK;
}

/* LayerNorm entry points (validate, dispatch) and the per-row statistics every ISA shares.
 *
 * Algorithm per row (n = cols, s = x + residual):
 *   pass 1  sum(s), min(s), max(s)            (if the fp32 sum overflows while min/max are finite,
 *                                              the sum is redone on s * 2^-64)
 *           min == max -> constant row: mean = s[0], var = 0, y = beta exactly
 *   pass 2  d = (s - mean0) * 2^-k; sum(d), sum(d^2)   (corrected two-pass; 2^-k keeps d^2 in range
 *                                              for |s| up to ~1.7e38 and for tiny spreads)
 *           mean = mean0 + 2^k sum(d)/n,  var = 2^2k (sum(d^2)/n - (sum(d)/n)^2)   (in double)
 *   pass 3  y = ((s - mean0) * rstd + shift) * gamma + beta,  shift = -(mean - mean0) * rstd
 *           (so the fp32 rounding of the saved mean does not enter y)
 * Never E[x^2] - E[x]^2 on the raw values. The row statistics helpers are in internal/eltwise.h. */
#include "internal/dispatch.h"
#include "internal/eltwise.h"

ck_status ck_layernorm_fwd_f32(CK_LN_FWD_ARGS) {
    ck_status st = ck_layernorm_fwd_check(rows, cols, x, ldx, residual, ld_residual, y, ldy, sum_out, ld_sum, eps);
    if (st != CK_OK || rows == 0) return st;
    ck_isa isa = cols == 0 ? CK_ISA_REF : ck_dispatch_isa();
    switch (isa) {
    case CK_ISA_AVX512:
        ck_layernorm_fwd_avx512(rows, cols, x, ldx, residual, ld_residual, gamma, beta, y, ldy, sum_out, ld_sum,
                                mean, rstd, eps);
        break;
    case CK_ISA_AVX2:
        ck_layernorm_fwd_avx2(rows, cols, x, ldx, residual, ld_residual, gamma, beta, y, ldy, sum_out, ld_sum,
                              mean, rstd, eps);
        break;
    default:
        ck_layernorm_fwd_kernel_ref(rows, cols, x, ldx, residual, ld_residual, gamma, beta, y, ldy, sum_out, ld_sum,
                                    mean, rstd, eps);
        break;
    }
    return CK_OK;
}

ck_status ck_layernorm_bwd_f32(CK_LN_BWD_ARGS) {
    ck_status st = ck_layernorm_bwd_check(rows, cols, s, lds, mean, rstd, dy, lddy, dx, lddx, beta_dx);
    if (st != CK_OK || rows == 0 || cols == 0) return st;
    switch (ck_dispatch_isa()) {
    case CK_ISA_AVX512:
        ck_layernorm_bwd_avx512(rows, cols, s, lds, gamma, mean, rstd, dy, lddy, dx, lddx, dgamma, dbeta, beta_dx);
        break;
    case CK_ISA_AVX2:
        ck_layernorm_bwd_avx2(rows, cols, s, lds, gamma, mean, rstd, dy, lddy, dx, lddx, dgamma, dbeta, beta_dx);
        break;
    default:
        ck_layernorm_bwd_kernel_ref(rows, cols, s, lds, gamma, mean, rstd, dy, lddy, dx, lddx, dgamma, dbeta, beta_dx);
        break;
    }
    return CK_OK;
}

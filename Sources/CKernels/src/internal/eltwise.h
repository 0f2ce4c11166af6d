/* Internal: argument checks and per-ISA kernel prototypes for the elementwise and row-wise ops
 * (activations, LayerNorm, softmax). The public entry points validate, then call an unchecked kernel:
 * the ck_*_ref functions in src/ref/, or the _avx2 / _avx512 ones in src/x86/. Unchecked kernels
 * assume valid arguments (sizes >= 0, ld >= cols, required pointers non-NULL, beta in {0, 1}). */
#ifndef CK_INTERNAL_ELTWISE_H
#define CK_INTERNAL_ELTWISE_H

#include <float.h>
#include <stdint.h>

#include "ckernels.h"

/* ---- argument checks ------------------------------------------------------------------------ */

static inline int ck_act_valid(ck_act act) { return (int)act >= (int)CK_ACT_NONE && (int)act <= (int)CK_ACT_LEAKY_RELU; }
static inline int ck_beta_valid(float beta) { return beta == 0.0f || beta == 1.0f; }

/* A [rows, cols] matrix with leading dimension ld: CK_ERR_BAD_LD if ld < cols, CK_ERR_BAD_SIZE if the
 * last element's offset (rows-1)*ld + cols overflows int64. Assumes rows, cols >= 0 (checked first). */
static inline ck_status ck_check_matrix(int64_t rows, int64_t cols, int64_t ld) {
    if (ld < cols) return CK_ERR_BAD_LD;
    if (rows > 1 && ld > 0 && rows - 1 > (INT64_MAX - cols) / ld) return CK_ERR_BAD_SIZE;
    return CK_OK;
}

static inline ck_status ck_act_fwd_check(int64_t n, const float *x, const float *y, ck_act act) {
    if (n < 0) return CK_ERR_BAD_SIZE;
    if (!ck_act_valid(act)) return CK_ERR_BAD_ARG;
    if (n > 0 && (x == NULL || y == NULL)) return CK_ERR_NULL_POINTER;
    return CK_OK;
}

/* dx may alias dy only with beta == 0 (the header's rule); anything else is CK_ERR_BAD_ARG. */
static inline ck_status ck_act_bwd_check(int64_t n, const float *x, const float *dy, const float *dx, float beta,
                                         ck_act act) {
    if (n < 0) return CK_ERR_BAD_SIZE;
    if (!ck_act_valid(act) || !ck_beta_valid(beta)) return CK_ERR_BAD_ARG;
    if (n > 0 && (x == NULL || dy == NULL || dx == NULL)) return CK_ERR_NULL_POINTER;
    if (n > 0 && beta != 0.0f && dx == dy) return CK_ERR_BAD_ARG;
    return CK_OK;
}

static inline ck_status ck_bias_act_check(int64_t m, int64_t n, const float *c, int64_t ldc, ck_act act) {
    if (m < 0 || n < 0) return CK_ERR_BAD_SIZE;
    if (!ck_act_valid(act)) return CK_ERR_BAD_ARG;
    ck_status st = ck_check_matrix(m, n, ldc);
    if (st != CK_OK) return st;
    if (m > 0 && n > 0 && c == NULL) return CK_ERR_NULL_POINTER;
    return CK_OK;
}

static inline ck_status ck_layernorm_fwd_check(int64_t rows, int64_t cols, const float *x, int64_t ldx,
                                               const float *residual, int64_t ld_residual, const float *y,
                                               int64_t ldy, const float *sum_out, int64_t ld_sum, float eps) {
    if (rows < 0 || cols < 0) return CK_ERR_BAD_SIZE;
    if (!(eps >= 0.0f && eps <= FLT_MAX)) return CK_ERR_BAD_ARG; /* negative, NaN or inf eps */
    ck_status st = ck_check_matrix(rows, cols, ldx);
    if (st == CK_OK) st = ck_check_matrix(rows, cols, ldy);
    if (st == CK_OK && residual != NULL) st = ck_check_matrix(rows, cols, ld_residual);
    if (st == CK_OK && sum_out != NULL) st = ck_check_matrix(rows, cols, ld_sum);
    if (st != CK_OK) return st;
    if (rows > 0 && cols > 0 && (x == NULL || y == NULL)) return CK_ERR_NULL_POINTER;
    return CK_OK;
}

static inline ck_status ck_layernorm_bwd_check(int64_t rows, int64_t cols, const float *s, int64_t lds,
                                               const float *mean, const float *rstd, const float *dy,
                                               int64_t lddy, const float *dx, int64_t lddx, float beta_dx) {
    if (rows < 0 || cols < 0) return CK_ERR_BAD_SIZE;
    if (!ck_beta_valid(beta_dx)) return CK_ERR_BAD_ARG;
    ck_status st = ck_check_matrix(rows, cols, lds);
    if (st == CK_OK) st = ck_check_matrix(rows, cols, lddy);
    if (st == CK_OK && dx != NULL) st = ck_check_matrix(rows, cols, lddx);
    if (st != CK_OK) return st;
    if (rows > 0 && cols > 0 && (s == NULL || mean == NULL || rstd == NULL || dy == NULL)) return CK_ERR_NULL_POINTER;
    return CK_OK;
}

static inline ck_status ck_softmax_fwd_check(int64_t rows, int64_t cols, const float *x, int64_t ldx,
                                             const float *mask, int64_t ldm, int64_t mask_group,
                                             const float *y, int64_t ldy) {
    if (rows < 0 || cols < 0) return CK_ERR_BAD_SIZE;
    if (mask != NULL && mask_group < 1) return CK_ERR_BAD_ARG;
    ck_status st = ck_check_matrix(rows, cols, ldx);
    if (st == CK_OK) st = ck_check_matrix(rows, cols, ldy);
    if (st == CK_OK && mask != NULL) st = ck_check_matrix(rows > 0 ? (rows - 1) / mask_group + 1 : 0, cols, ldm);
    if (st != CK_OK) return st;
    if (rows > 0 && cols > 0 && (x == NULL || y == NULL)) return CK_ERR_NULL_POINTER;
    return CK_OK;
}

static inline ck_status ck_softmax_bwd_check(int64_t rows, int64_t cols, const float *y, int64_t ldy,
                                             const float *dy, int64_t lddy, const float *dx, int64_t lddx,
                                             float beta) {
    if (rows < 0 || cols < 0) return CK_ERR_BAD_SIZE;
    if (!ck_beta_valid(beta)) return CK_ERR_BAD_ARG;
    ck_status st = ck_check_matrix(rows, cols, ldy);
    if (st == CK_OK) st = ck_check_matrix(rows, cols, lddy);
    if (st == CK_OK) st = ck_check_matrix(rows, cols, lddx);
    if (st != CK_OK) return st;
    if (rows > 0 && cols > 0 && (y == NULL || dy == NULL || dx == NULL)) return CK_ERR_NULL_POINTER;
    if (rows > 0 && cols > 0 && beta != 0.0f && dx == dy) return CK_ERR_BAD_ARG;
    return CK_OK;
}

/* ---- unchecked kernels ---------------------------------------------------------------------- */

void ck_act_fwd_kernel_ref(int64_t n, const float *x, float *y, ck_act act, float act_param);
void ck_act_bwd_kernel_ref(int64_t n, const float *x, const float *dy, float *dx, float beta, ck_act act, float act_param);
void ck_bias_act_kernel_ref(int64_t m, int64_t n, const float *bias, float *c, int64_t ldc, ck_act act, float act_param);

void ck_act_fwd_avx512(int64_t n, const float *x, float *y, ck_act act, float act_param);
void ck_act_bwd_avx512(int64_t n, const float *x, const float *dy, float *dx, float beta, ck_act act, float act_param);
void ck_bias_act_avx512(int64_t m, int64_t n, const float *bias, float *c, int64_t ldc, ck_act act, float act_param);
void ck_act_fwd_avx2(int64_t n, const float *x, float *y, ck_act act, float act_param);
void ck_act_bwd_avx2(int64_t n, const float *x, const float *dy, float *dx, float beta, ck_act act, float act_param);
void ck_bias_act_avx2(int64_t m, int64_t n, const float *bias, float *c, int64_t ldc, ck_act act, float act_param);

#define CK_LN_FWD_ARGS int64_t rows, int64_t cols, const float *x, int64_t ldx, const float *residual, \
    int64_t ld_residual, const float *gamma, const float *beta, float *y, int64_t ldy, float *sum_out, \
    int64_t ld_sum, float *mean, float *rstd, float eps
#define CK_LN_BWD_ARGS int64_t rows, int64_t cols, const float *s, int64_t lds, const float *gamma, \
    const float *mean, const float *rstd, const float *dy, int64_t lddy, float *dx, int64_t lddx, \
    float *dgamma, float *dbeta, float beta_dx
void ck_layernorm_fwd_kernel_ref(CK_LN_FWD_ARGS);
void ck_layernorm_bwd_kernel_ref(CK_LN_BWD_ARGS);
void ck_layernorm_fwd_avx512(CK_LN_FWD_ARGS);
void ck_layernorm_bwd_avx512(CK_LN_BWD_ARGS);
void ck_layernorm_fwd_avx2(CK_LN_FWD_ARGS);
void ck_layernorm_bwd_avx2(CK_LN_BWD_ARGS);

#define CK_SM_FWD_ARGS int64_t rows, int64_t cols, const float *x, int64_t ldx, const float *mask, \
    int64_t ldm, int64_t mask_group, float *y, int64_t ldy, float scale
#define CK_SM_BWD_ARGS int64_t rows, int64_t cols, const float *y, int64_t ldy, const float *dy, \
    int64_t lddy, float *dx, int64_t lddx, float beta, float scale
void ck_softmax_fwd_kernel_ref(CK_SM_FWD_ARGS);
void ck_softmax_bwd_kernel_ref(CK_SM_BWD_ARGS);
void ck_softmax_fwd_avx512(CK_SM_FWD_ARGS);
void ck_softmax_bwd_avx512(CK_SM_BWD_ARGS);
void ck_softmax_fwd_avx2(CK_SM_FWD_ARGS);
void ck_softmax_bwd_avx2(CK_SM_BWD_ARGS);

/* ---- LayerNorm row statistics shared by every ISA ------------------------------------------- */
/* Inline (no libm calls on the common path): they sit on each row's critical path between passes. */

#include <math.h>

/* Finishes one row's first pass: n = cols > 0, sum1 = sum(s) (already multiplied by 2^-sum_shift
 * when the plain fp32 sum overflowed), lo/hi = min/max(s). Returns 1 for a constant row (lo == hi:
 * *mean0 = lo, var = 0, y = beta). Else 0 with *mean0 (fp32 first-pass mean) and *dscale, the power
 * of two the second pass multiplies deviations by (1 unless the spread is outside [2^-40, 2^40]) so
 * their squares neither overflow nor lose precision to underflow. */
static inline int ck_ln_row_pass1(int64_t n, double inv_n, double sum1, int sum_shift, float lo, float hi,
                                  float *mean0, float *dscale) {
    if (lo == hi) {
        *mean0 = lo;
        *dscale = 1.0f;
        return 1;
    }
    double m = sum1 * inv_n;
    if (sum_shift != 0) m = ldexp(m, sum_shift);
    if (m < (double)lo) m = lo; /* rounding can push the mean just outside [lo, hi] */
    if (m > (double)hi) m = hi;
    float m0 = (float)m;
    *mean0 = m0;
    double dev = fmax((double)hi - (double)m0, (double)m0 - (double)lo);
    *dscale = 1.0f;
    if (!(dev >= 0x1p-40 && dev <= 0x1p40) && isfinite(dev) && dev > 0.0) {
        int e = ilogb(dev);
        if (e < -100) e = -100;
        *dscale = (float)ldexp(1.0, -e);
    }
    (void)n;
    return 0;
}

/* From the second pass (sd = sum(d), sd2 = sum(d^2), d = (s - mean0) * dscale): the final mean and
 * rstd = 1/sqrt(var + eps), computed in double and rounded to fp32, and *shift = -(mean - mean0) * rstd
 * so pass 3 forms xhat = (s - mean0) * rstd + shift: s - mean0 is exact for s near the mean
 * (Sterbenz) and the correction is tiny, so xhat does not inherit the rounding of the fp32 mean
 * (ulp(mean)/2 * rstd, i.e. 4e-4 for rows offset by 1e4 with unit spread). */
static inline void ck_ln_row_pass2(double inv_n, float mean0, float dscale, double sd, double sd2, float eps,
                                   float *mean, float *rstd, float *shift) {
    double inv = 1.0 / (double)dscale; /* exact: a power of two */
    double md = sd * inv_n;
    double var = (sd2 * inv_n - md * md) * inv * inv;
    if (var < 0.0) var = 0.0; /* cancellation in the correction term; NaN stays NaN */
    double rs = 1.0 / sqrt(var + (double)eps);
    *mean = (float)((double)mean0 + md * inv);
    *rstd = (float)rs;
    *shift = (float)(-md * inv * rs);
}

#endif

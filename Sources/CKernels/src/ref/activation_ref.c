/* Scalar reference activations. Each value is computed in double with libm and rounded once to fp32,
 * so the reference is within 0.5 ulp of the exact function (a few ulp for the derivatives), which is
 * what the vector kernels are tested against. Limits at +-inf are defined explicitly (same values as
 * the vector kernels): GELU/SiLU(-inf) = -0, their derivatives 0 at -inf and 1 at +inf. */
#include <math.h>

#include "internal/eltwise.h"

static const double ck_sqrt1_2 = 0.70710678118654752440;
static const double ck_inv_sqrt_2pi = 0.39894228040143267794;
static const double ck_gelu_k0 = 0.79788456080286535588; /* sqrt(2/pi) */
static const double ck_gelu_k1 = 0.044715;

static double ck_sigmoid_d(double x) { return 1.0 / (1.0 + exp(-x)); }

static float ck_act1_ref(float xf, ck_act act, float act_param) {
    double x = xf;
    switch (act) {
    case CK_ACT_GELU_ERF:
        if (isinf(x)) return x > 0 ? xf : -0.0f;
        return (float)(0.5 * x * erfc(-x * ck_sqrt1_2));
    case CK_ACT_GELU_TANH: {
        if (isinf(x)) return x > 0 ? xf : -0.0f;
        double u = ck_gelu_k0 * (x + ck_gelu_k1 * x * x * x);
        return (float)(x * ck_sigmoid_d(2.0 * u)); /* == 0.5 x (1 + tanh u) */
    }
    case CK_ACT_RELU: return isnan(xf) ? xf : (xf > 0.0f ? xf : 0.0f);
    case CK_ACT_SILU:
        if (isinf(x)) return x > 0 ? xf : -0.0f;
        return (float)(x * ck_sigmoid_d(x));
    case CK_ACT_TANH: return (float)tanh(x);
    case CK_ACT_SIGMOID: return (float)ck_sigmoid_d(x);
    case CK_ACT_LEAKY_RELU: return xf >= 0.0f ? xf : act_param * xf;
    case CK_ACT_NONE:
    default: return xf;
    }
}

/* act'(x) in double. */
static double ck_act_grad1_ref(float xf, ck_act act, float act_param) {
    double x = xf;
    switch (act) {
    case CK_ACT_GELU_ERF:
        if (isinf(x)) return x > 0 ? 1.0 : 0.0;
        return 0.5 * erfc(-x * ck_sqrt1_2) + x * ck_inv_sqrt_2pi * exp(-0.5 * x * x);
    case CK_ACT_GELU_TANH: {
        if (isinf(x)) return x > 0 ? 1.0 : 0.0;
        double u = ck_gelu_k0 * (x + ck_gelu_k1 * x * x * x);
        double du = ck_gelu_k0 * (1.0 + 3.0 * ck_gelu_k1 * x * x);
        double s = ck_sigmoid_d(2.0 * u), sm = ck_sigmoid_d(-2.0 * u);
        return s + x * s * sm * 2.0 * du;
    }
    case CK_ACT_RELU: return xf > 0.0f ? 1.0 : 0.0;
    case CK_ACT_SILU: {
        if (isinf(x)) return x > 0 ? 1.0 : 0.0;
        double s = ck_sigmoid_d(x), sm = ck_sigmoid_d(-x);
        return s + x * s * sm;
    }
    case CK_ACT_TANH: {
        double e = exp(-2.0 * fabs(x));
        return 4.0 * e / ((1.0 + e) * (1.0 + e));
    }
    case CK_ACT_SIGMOID: return ck_sigmoid_d(x) * ck_sigmoid_d(-x);
    case CK_ACT_LEAKY_RELU: return xf > 0.0f ? 1.0 : (double)act_param;
    case CK_ACT_NONE:
    default: return 1.0;
    }
}

void ck_act_fwd_kernel_ref(int64_t n, const float *x, float *y, ck_act act, float act_param) {
    for (int64_t i = 0; i < n; ++i) y[i] = ck_act1_ref(x[i], act, act_param);
}

void ck_act_bwd_kernel_ref(int64_t n, const float *x, const float *dy, float *dx, float beta, ck_act act,
                           float act_param) {
    for (int64_t i = 0; i < n; ++i) {
        float g;
        if (act == CK_ACT_RELU) g = x[i] > 0.0f ? dy[i] : 0.0f; /* exact select, like the vector kernels */
        else if (act == CK_ACT_NONE) g = dy[i];
        else g = (float)((double)dy[i] * ck_act_grad1_ref(x[i], act, act_param));
        dx[i] = beta == 0.0f ? g : dx[i] + g;
    }
}

void ck_bias_act_kernel_ref(int64_t m, int64_t n, const float *bias, float *c, int64_t ldc, ck_act act,
                            float act_param) {
    for (int64_t i = 0; i < m; ++i) {
        float *row = c + i * ldc;
        for (int64_t j = 0; j < n; ++j) {
            float t = bias != NULL ? row[j] + bias[j] : row[j];
            row[j] = ck_act1_ref(t, act, act_param);
        }
    }
}

/* ---- public reference entry points (validate, then run the kernel above) ---------------------- */

ck_status ck_act_fwd_f32_ref(int64_t n, const float *x, float *y, ck_act act, float act_param) {
    ck_status st = ck_act_fwd_check(n, x, y, act);
    if (st != CK_OK) return st;
    ck_act_fwd_kernel_ref(n, x, y, act, act_param);
    return CK_OK;
}

ck_status ck_act_bwd_f32_ref(int64_t n, const float *x, const float *dy, float *dx, float beta, ck_act act,
                             float act_param) {
    ck_status st = ck_act_bwd_check(n, x, dy, dx, beta, act);
    if (st != CK_OK) return st;
    ck_act_bwd_kernel_ref(n, x, dy, dx, beta, act, act_param);
    return CK_OK;
}

ck_status ck_bias_act_fwd_f32_ref(int64_t m, int64_t n, const float *bias, float *c, int64_t ldc, ck_act act,
                                  float act_param) {
    ck_status st = ck_bias_act_check(m, n, c, ldc, act);
    if (st != CK_OK) return st;
    ck_bias_act_kernel_ref(m, n, bias, c, ldc, act, act_param);
    return CK_OK;
}

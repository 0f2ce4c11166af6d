/* Activation entry points: validate (internal/eltwise.h), then run the kernel of the active ISA. */
#include "internal/dispatch.h"
#include "internal/eltwise.h"

ck_status ck_act_fwd_f32(int64_t n, const float *x, float *y, ck_act act, float act_param) {
    ck_status st = ck_act_fwd_check(n, x, y, act);
    if (st != CK_OK || n == 0) return st;
    switch (ck_dispatch_isa()) {
    case CK_ISA_AVX512: ck_act_fwd_avx512(n, x, y, act, act_param); break;
    case CK_ISA_AVX2: ck_act_fwd_avx2(n, x, y, act, act_param); break;
    default: ck_act_fwd_kernel_ref(n, x, y, act, act_param); break;
    }
    return CK_OK;
}

ck_status ck_act_bwd_f32(int64_t n, const float *x, const float *dy, float *dx, float beta, ck_act act,
                         float act_param) {
    ck_status st = ck_act_bwd_check(n, x, dy, dx, beta, act);
    if (st != CK_OK || n == 0) return st;
    switch (ck_dispatch_isa()) {
    case CK_ISA_AVX512: ck_act_bwd_avx512(n, x, dy, dx, beta, act, act_param); break;
    case CK_ISA_AVX2: ck_act_bwd_avx2(n, x, dy, dx, beta, act, act_param); break;
    default: ck_act_bwd_kernel_ref(n, x, dy, dx, beta, act, act_param); break;
    }
    return CK_OK;
}

ck_status ck_bias_act_fwd_f32(int64_t m, int64_t n, const float *bias, float *c, int64_t ldc, ck_act act,
                              float act_param) {
    ck_status st = ck_bias_act_check(m, n, c, ldc, act);
    if (st != CK_OK || m == 0 || n == 0) return st;
    switch (ck_dispatch_isa()) {
    case CK_ISA_AVX512: ck_bias_act_avx512(m, n, bias, c, ldc, act, act_param); break;
    case CK_ISA_AVX2: ck_bias_act_avx2(m, n, bias, c, ldc, act, act_param); break;
    default: ck_bias_act_kernel_ref(m, n, bias, c, ldc, act, act_param); break;
    }
    return CK_OK;
}

/* STUB: placeholder so the package builds; replaced by the real kernels. */
#include "ckernels.h"

ck_status ck_act_fwd_f32(int64_t n, const float *x, float *y, ck_act act, float act_param) {
    return CK_ERR_UNSUPPORTED;
}

ck_status ck_act_fwd_f32_ref(int64_t n, const float *x, float *y, ck_act act, float act_param) {
    return CK_ERR_UNSUPPORTED;
}

ck_status ck_act_bwd_f32(int64_t n, const float *x, const float *dy, float *dx, float beta, ck_act act, float act_param) {
    return CK_ERR_UNSUPPORTED;
}

ck_status ck_act_bwd_f32_ref(int64_t n, const float *x, const float *dy, float *dx, float beta, ck_act act, float act_param) {
    return CK_ERR_UNSUPPORTED;
}

ck_status ck_bias_act_fwd_f32(int64_t m, int64_t n, const float *bias, float *c, int64_t ldc, ck_act act, float act_param) {
    return CK_ERR_UNSUPPORTED;
}

ck_status ck_bias_act_fwd_f32_ref(int64_t m, int64_t n, const float *bias, float *c, int64_t ldc, ck_act act, float act_param) {
    return CK_ERR_UNSUPPORTED;
}

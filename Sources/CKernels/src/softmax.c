/* STUB: placeholder so the package builds; replaced by the real kernels. */
#include "ckernels.h"

ck_status ck_softmax_fwd_f32(int64_t rows, int64_t cols, const float *x, int64_t ldx, const float *mask, int64_t ldm, int64_t mask_group, float *y, int64_t ldy, float scale) {
    return CK_ERR_UNSUPPORTED;
}

ck_status ck_softmax_fwd_f32_ref(int64_t rows, int64_t cols, const float *x, int64_t ldx, const float *mask, int64_t ldm, int64_t mask_group, float *y, int64_t ldy, float scale) {
    return CK_ERR_UNSUPPORTED;
}

ck_status ck_softmax_bwd_f32(int64_t rows, int64_t cols, const float *y, int64_t ldy, const float *dy, int64_t lddy, float *dx, int64_t lddx, float beta, float scale) {
    return CK_ERR_UNSUPPORTED;
}

ck_status ck_softmax_bwd_f32_ref(int64_t rows, int64_t cols, const float *y, int64_t ldy, const float *dy, int64_t lddy, float *dx, int64_t lddx, float beta, float scale) {
    return CK_ERR_UNSUPPORTED;
}

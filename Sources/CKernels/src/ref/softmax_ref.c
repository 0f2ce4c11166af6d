/* Scalar reference softmax: z = scale*x (rounded) + mask (rounded, no FMA, like PyTorch's separate
 * ops), max from -inf, e = exp(z - max) in double rounded to fp32, fp32 sequential sum, y = e / sum.
 * A row whose max is -inf (every logit -inf) is all zeros. */
#include <math.h>

#include "internal/eltwise.h"

void ck_softmax_fwd_kernel_ref(CK_SM_FWD_ARGS) {
    for (int64_t r = 0; r < rows; ++r) {
        const float *xr = x + r * ldx;
        const float *mr = mask != NULL ? mask + (r / mask_group) * ldm : NULL;
        float *yr = y + r * ldy;
        float mx = -INFINITY;
        for (int64_t j = 0; j < cols; ++j) {
            float z = scale * xr[j];
            if (mr != NULL) z += mr[j];
            mx = z > mx ? z : mx;
        }
        if (mx == -INFINITY) {
            for (int64_t j = 0; j < cols; ++j) yr[j] = 0.0f;
            continue;
        }
        float sum = 0.0f;
        for (int64_t j = 0; j < cols; ++j) {
            float z = scale * xr[j];
            if (mr != NULL) z += mr[j];
            float e = (float)exp((double)(z - mx));
            yr[j] = e;
            sum += e;
        }
        for (int64_t j = 0; j < cols; ++j) yr[j] = yr[j] / sum;
    }
}

void ck_softmax_bwd_kernel_ref(CK_SM_BWD_ARGS) {
    for (int64_t r = 0; r < rows; ++r) {
        const float *yr = y + r * ldy, *dyr = dy + r * lddy;
        float *dxr = dx + r * lddx;
        float dot = 0.0f;
        for (int64_t j = 0; j < cols; ++j) {
            float p = dyr[j] * yr[j];
            dot += p;
        }
        for (int64_t j = 0; j < cols; ++j) {
            float v = scale * yr[j];
            v = v * (dyr[j] - dot);
            dxr[j] = beta == 0.0f ? v : dxr[j] + v;
        }
    }
}

ck_status ck_softmax_fwd_f32_ref(CK_SM_FWD_ARGS) {
    ck_status st = ck_softmax_fwd_check(rows, cols, x, ldx, mask, ldm, mask_group, y, ldy);
    if (st != CK_OK) return st;
    ck_softmax_fwd_kernel_ref(rows, cols, x, ldx, mask, ldm, mask_group, y, ldy, scale);
    return CK_OK;
}

ck_status ck_softmax_bwd_f32_ref(CK_SM_BWD_ARGS) {
    ck_status st = ck_softmax_bwd_check(rows, cols, y, ldy, dy, lddy, dx, lddx, beta);
    if (st != CK_OK) return st;
    ck_softmax_bwd_kernel_ref(rows, cols, y, ldy, dy, lddy, dx, lddx, beta, scale);
    return CK_OK;
}

/* Softmax entry points: validate (internal/eltwise.h), then run the kernel of the active ISA. */
#include "internal/dispatch.h"
#include "internal/eltwise.h"

ck_status ck_softmax_fwd_f32(CK_SM_FWD_ARGS) {
    ck_status st = ck_softmax_fwd_check(rows, cols, x, ldx, mask, ldm, mask_group, y, ldy);
    if (st != CK_OK || rows == 0 || cols == 0) return st;
    switch (ck_dispatch_isa()) {
    case CK_ISA_AVX512: ck_softmax_fwd_avx512(rows, cols, x, ldx, mask, ldm, mask_group, y, ldy, scale); break;
    case CK_ISA_AVX2: ck_softmax_fwd_avx2(rows, cols, x, ldx, mask, ldm, mask_group, y, ldy, scale); break;
    default: ck_softmax_fwd_kernel_ref(rows, cols, x, ldx, mask, ldm, mask_group, y, ldy, scale); break;
    }
    return CK_OK;
}

ck_status ck_softmax_bwd_f32(CK_SM_BWD_ARGS) {
    ck_status st = ck_softmax_bwd_check(rows, cols, y, ldy, dy, lddy, dx, lddx, beta);
    if (st != CK_OK || rows == 0 || cols == 0) return st;
    switch (ck_dispatch_isa()) {
    case CK_ISA_AVX512: ck_softmax_bwd_avx512(rows, cols, y, ldy, dy, lddy, dx, lddx, beta, scale); break;
    case CK_ISA_AVX2: ck_softmax_bwd_avx2(rows, cols, y, ldy, dy, lddy, dx, lddx, beta, scale); break;
    default: ck_softmax_bwd_kernel_ref(rows, cols, y, ldy, dy, lddy, dx, lddx, beta, scale); break;
    }
    return CK_OK;
}

/* STUB: placeholder so the package builds; replaced by the real kernels. */
#include "ckernels.h"

size_t ck_gemm_workspace_size(int64_t m, int64_t n, int64_t k) {
    return 0;
}

ck_status ck_gemm_f32(const ck_workspace *ws, ck_trans transa, ck_trans transb, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const float *b, int64_t ldb, float *c, int64_t ldc, float alpha, float beta, const ck_epilogue *epilogue) {
    return CK_ERR_UNSUPPORTED;
}

ck_status ck_gemm_f32_ref(const ck_workspace *ws, ck_trans transa, ck_trans transb, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const float *b, int64_t ldb, float *c, int64_t ldc, float alpha, float beta, const ck_epilogue *epilogue) {
    return CK_ERR_UNSUPPORTED;
}

ck_status ck_gemm_f32_cblas(const ck_workspace *ws, ck_trans transa, ck_trans transb, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const float *b, int64_t ldb, float *c, int64_t ldc, float alpha, float beta, const ck_epilogue *epilogue) {
    return CK_ERR_UNSUPPORTED;
}

int ck_cblas_set_num_threads(int threads) {
    return 0;
}

/* Reference GEMM: a plain triple loop with exactly the arithmetic every optimised path follows
 * (docs/kernels.md, "GEMM"): per output element one fp32 FMA chain over p = 0..k-1 starting from
 * beta*C, with alpha applied to A, then bias, pre-activation store, activation, residual. */
#include "internal/gemm_internal.h"

#include <math.h>

ck_status ck_gemm_f32_ref(const ck_workspace *ws, ck_trans transa, ck_trans transb,
                          int64_t m, int64_t n, int64_t k,
                          const float *a, int64_t lda, const float *b, int64_t ldb,
                          float *c, int64_t ldc,
                          float alpha, float beta, const ck_epilogue *epilogue) {
    (void)ws;
    ck_status st = ck_gemm_check_args(transa, transb, m, n, k, a, lda, b, ldb, c, ldc, epilogue);
    if (st != CK_OK) return st;
    if (m == 0 || n == 0) return CK_OK;
    const ck_epilogue none = {0};
    const ck_epilogue *ep = epilogue ? epilogue : &none;
    for (int64_t i = 0; i < m; ++i) {
        for (int64_t j = 0; j < n; ++j) {
            float acc = 0.0f;
            if (beta == 1.0f) acc = c[i * ldc + j];
            else if (beta != 0.0f) acc = beta * c[i * ldc + j];
            for (int64_t p = 0; p < k; ++p) {
                const float av = transa == CK_NO_TRANS ? a[i * lda + p] : a[p * lda + i];
                const float bv = transb == CK_NO_TRANS ? b[p * ldb + j] : b[j * ldb + p];
                acc = fmaf(alpha * av, bv, acc);
            }
            float t = ep->bias ? acc + ep->bias[j] : acc;
            if (ep->preact) ep->preact[i * ep->ld_preact + j] = t;
            float y = ck_act_scalar(t, ep->act, ep->act_param);
            if (ep->residual) y += ep->residual[i * ep->ld_residual + j];
            c[i * ldc + j] = y;
        }
    }
    return CK_OK;
}

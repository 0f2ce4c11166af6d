/* GEMM through the system CBLAS (cblas_sgemm), followed by a separate epilogue pass. This is the
 * baseline the fused kernels are measured against, and a correct fallback.
 *
 * Differences from the fused path (documented in ckernels.h): the rounding order inside sgemm is
 * the provider's, and the epilogue runs as separate passes over C (bias + activation via
 * ck_bias_act_fwd_f32, then the residual add). When the residual shares memory with C, the
 * residual is first copied into the workspace, which then must hold m*n floats. */
#define _GNU_SOURCE
#include "internal/gemm_internal.h"

#include <cblas.h>
#include <dlfcn.h>
#include <limits.h>
#include <string.h>

int ck_cblas_set_num_threads(int threads) {
    /* Looked up at run time so that linking against a provider without it (netlib, BLIS) works. */
    typedef void (*set_fn)(int);
    set_fn f = (set_fn)dlsym(RTLD_DEFAULT, "openblas_set_num_threads");
    if (f == NULL || threads < 1) return 0;
    f(threads);
    return 1;
}

/* bias + activation in place over [m, n]: the vectorized pass when available, else scalar. */
static void ck_cblas_bias_act(int64_t m, int64_t n, const float *bias, float *c, int64_t ldc,
                              ck_act act, float act_param) {
    if (bias == NULL && act == CK_ACT_NONE) return;
    if (ck_bias_act_fwd_f32(m, n, bias, c, ldc, act, act_param) == CK_OK) return;
    /* Vectorized pass not available (e.g. not built): same semantics, scalar. */
    for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) {
            float t = c[i * ldc + j];
            if (bias) t += bias[j];
            c[i * ldc + j] = ck_act_scalar(t, act, act_param);
        }
}

ck_status ck_gemm_f32_cblas(const ck_workspace *ws, ck_trans transa, ck_trans transb,
                            int64_t m, int64_t n, int64_t k,
                            const float *a, int64_t lda, const float *b, int64_t ldb,
                            float *c, int64_t ldc,
                            float alpha, float beta, const ck_epilogue *epilogue) {
    ck_status st = ck_gemm_check_args(transa, transb, m, n, k, a, lda, b, ldb, c, ldc, epilogue);
    if (st != CK_OK) return st;
    if (m == 0 || n == 0) return CK_OK;
    /* CBLAS takes int sizes. */
    if (m > INT_MAX || n > INT_MAX || k > INT_MAX || lda > INT_MAX || ldb > INT_MAX || ldc > INT_MAX)
        return CK_ERR_BAD_SIZE;
    const ck_epilogue none = {0};
    const ck_epilogue *ep = epilogue ? epilogue : &none;

    const float *residual = ep->residual;
    int64_t ld_res = ep->ld_residual;
    if (residual != NULL && ck_gemm_residual_overlaps_c(m, n, c, ldc, ep)) {
        const size_t need = (size_t)m * (size_t)n * sizeof(float);
        if (ws == NULL || ws->ptr == NULL || ws->bytes < need || ((uintptr_t)ws->ptr & 63u) != 0)
            return CK_ERR_WORKSPACE;
        float *copy = (float *)ws->ptr;
        for (int64_t i = 0; i < m; ++i) memcpy(copy + i * n, residual + i * ld_res, (size_t)n * sizeof(float));
        residual = copy;
        ld_res = n;
    }

    if (k == 0) {
        /* No product: C = beta*C (beta == 0 never reads C). CBLAS would reject lda = 0. */
        for (int64_t i = 0; i < m; ++i)
            for (int64_t j = 0; j < n; ++j)
                c[i * ldc + j] = beta == 0.0f ? 0.0f : (beta == 1.0f ? c[i * ldc + j] : beta * c[i * ldc + j]);
    } else {
        /* BLAS semantics: beta == 0 overwrites C without reading it (OpenBLAS, BLIS and netlib
         * all honour this; the tests check NaN-filled C). */
        cblas_sgemm(CblasRowMajor, transa == CK_TRANS ? CblasTrans : CblasNoTrans,
                    transb == CK_TRANS ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k, alpha, a,
                    (int)lda, b, (int)ldb, beta, c, (int)ldc);
    }

    if (ep->preact != NULL) {
        ck_cblas_bias_act(m, n, ep->bias, c, ldc, CK_ACT_NONE, 0.0f);
        for (int64_t i = 0; i < m; ++i)
            memcpy(ep->preact + i * ep->ld_preact, c + i * ldc, (size_t)n * sizeof(float));
        ck_cblas_bias_act(m, n, NULL, c, ldc, ep->act, ep->act_param);
    } else {
        ck_cblas_bias_act(m, n, ep->bias, c, ldc, ep->act, ep->act_param);
    }
    if (residual != NULL) {
        for (int64_t i = 0; i < m; ++i) {
            float *cr = c + i * ldc;
            const float *rr = residual + i * ld_res;
            for (int64_t j = 0; j < n; ++j) cr[j] += rr[j];
        }
    }
    return CK_OK;
}

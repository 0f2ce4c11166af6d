/*
 * ckernels.h — the one public header of the CKernels target.
 *
 * Conventions (see docs/kernels.md):
 *   - fp32 storage and accumulation, row-major, leading dimensions in elements, all sizes int64_t.
 *   - Argument order: context, sizes, then each matrix pointer followed by its leading dimension
 *     (inputs before outputs), then scalars (alpha, beta, eps, activation kind) last.
 *   - Every entry point returns a ck_status and never prints, exits, aborts or allocates.
 *     Bad arguments (NULL where a pointer is required, negative sizes, ld < row width, unknown enum
 *     values, too small or misaligned workspace) return an error status and touch no output.
 *   - Gradient rule, everywhere: parameter gradients ACCUMULATE (dW += ..., dgamma += ...);
 *     input gradients take beta in {0, 1}: dx = beta*dx + (gradient). With beta == 0 the destination
 *     is never read, so NaN already stored there cannot leak (BLIS's beta-zero rule).
 *   - Kernels are single-threaded and reentrant. The Swift layer (AdapterCore) splits work across
 *     threads so that every output element is reduced by exactly one call in a fixed order.
 *   - Each op has a plain scalar reference with the same signature, suffixed _ref. The un-suffixed
 *     entry point dispatches to the best ISA the CPU and OS support (or the one forced with the
 *     CK_ISA environment variable / ck_isa_force).
 *   - In-place use (output pointer == input pointer) only where a function's comment allows it.
 */
#ifndef CKERNELS_H
#define CKERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------------ */
/* Status codes                                                                                */
/* ------------------------------------------------------------------------------------------ */

typedef enum ck_status {
    CK_OK = 0,
    CK_ERR_NULL_POINTER = 1,  /* a required pointer was NULL */
    CK_ERR_BAD_SIZE = 2,      /* a size was negative (or overflowed int64 arithmetic) */
    CK_ERR_BAD_LD = 3,        /* a leading dimension was smaller than the row it must hold */
    CK_ERR_BAD_ARG = 4,       /* an enum value or scalar was out of range (e.g. beta not 0 or 1) */
    CK_ERR_WORKSPACE = 5,     /* workspace NULL, too small, or not 64-byte aligned */
    CK_ERR_UNSUPPORTED = 6    /* ISA not supported by this CPU/OS, or feature not built */
} ck_status;

/** A static, human-readable name for a status code (never NULL). */
const char *ck_status_string(ck_status status);

/* ------------------------------------------------------------------------------------------ */
/* ISA dispatch                                                                                */
/* ------------------------------------------------------------------------------------------ */

typedef enum ck_isa {
    CK_ISA_REF = 0,     /* portable scalar C */
    CK_ISA_AVX2 = 1,    /* AVX2 + FMA (x86-64) */
    CK_ISA_AVX512 = 2   /* AVX-512 F/BW/VL/DQ (x86-64) */
} ck_isa;

/** 1 when this CPU and OS can run `isa` (CPUID + XCR0 on x86-64), else 0. CK_ISA_REF is always 1. */
int ck_isa_supported(ck_isa isa);
/** The best supported ISA, ignoring any override. */
ck_isa ck_isa_detected(void);
/** The ISA the dispatching entry points use now: CK_ISA from the environment (ref|avx2|avx512) read
 *  once at first use, else ck_isa_detected(); changed by ck_isa_force. */
ck_isa ck_isa_active(void);
/** Force the ISA used by dispatching entry points (for tests and benchmarks). Thread-safe (atomic),
 *  but callers should not change it while kernels run. CK_ERR_UNSUPPORTED if the CPU cannot run it. */
ck_status ck_isa_force(ck_isa isa);
/** Force the ISA used by dispatching entry points called from the CALLING THREAD only (a
 *  thread-local override that takes precedence over ck_isa_force / CK_ISA); pass -1 to clear it.
 *  For tests that compare ISAs while other tests run kernels concurrently in the same process.
 *  CK_ERR_UNSUPPORTED if the CPU cannot run `isa` (the override is then unchanged). */
ck_status ck_isa_force_thread(int isa);
/** "ref", "avx2", "avx512"; "unknown" for other values. */
const char *ck_isa_name(ck_isa isa);

/* ------------------------------------------------------------------------------------------ */
/* Activations                                                                                 */
/* ------------------------------------------------------------------------------------------ */

typedef enum ck_act {
    CK_ACT_NONE = 0,       /* identity */
    CK_ACT_GELU_ERF = 1,   /* 0.5 x (1 + erf(x / sqrt 2)); BERT "gelu" */
    CK_ACT_GELU_TANH = 2,  /* 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))); "gelu_new" */
    CK_ACT_RELU = 3,       /* max(x, 0); derivative at 0 is 0 (PyTorch) */
    CK_ACT_SILU = 4,       /* x * sigmoid(x); "silu"/"swish" */
    CK_ACT_TANH = 5,
    CK_ACT_SIGMOID = 6,
    CK_ACT_LEAKY_RELU = 7  /* x >= 0 ? x : slope * x; slope is the `act_param` argument */
} ck_act;

/** y = act(x) elementwise over n contiguous floats. In place (y == x) allowed.
 *  `act_param` is the leaky-ReLU slope (ignored by other kinds; PyTorch's default is 0.01). */
ck_status ck_act_fwd_f32(int64_t n, const float *x, float *y, ck_act act, float act_param);
ck_status ck_act_fwd_f32_ref(int64_t n, const float *x, float *y, ck_act act, float act_param);

/** dx = beta*dx + dy * act'(x), where x is the PRE-activation input. beta in {0,1}.
 *  dx may alias dy (then beta must be 0). */
ck_status ck_act_bwd_f32(int64_t n, const float *x, const float *dy, float *dx, float beta,
                         ck_act act, float act_param);
ck_status ck_act_bwd_f32_ref(int64_t n, const float *x, const float *dy, float *dx, float beta,
                             ck_act act, float act_param);

/** In place over an [m, n] matrix C (leading dimension ldc):
 *  C[i,j] = act(C[i,j] + bias[j]). bias may be NULL (no bias). The separate (unfused) pass that
 *  follows a BLAS sgemm; also the baseline the fused GEMM epilogue is benchmarked against. */
ck_status ck_bias_act_fwd_f32(int64_t m, int64_t n, const float *bias, float *c, int64_t ldc,
                              ck_act act, float act_param);
ck_status ck_bias_act_fwd_f32_ref(int64_t m, int64_t n, const float *bias, float *c, int64_t ldc,
                                  ck_act act, float act_param);

/* ------------------------------------------------------------------------------------------ */
/* GEMM with fused epilogue                                                                    */
/* ------------------------------------------------------------------------------------------ */

typedef enum ck_trans {
    CK_NO_TRANS = 0, /* op(X) = X */
    CK_TRANS = 1     /* op(X) = X^T */
} ck_trans;

/** What happens to each output tile in registers before its single store:
 *      t        = alpha * op(A) op(B) + beta * C + bias[j]        (bias term only if bias != NULL)
 *      preact   = t                                               (stored only if preact != NULL)
 *      C        = act(t) + residual[i, j]                         (residual term only if != NULL)
 *  A zero-initialised struct (or a NULL pointer) means "no epilogue". `residual` may alias C only
 *  when beta == 0. */
typedef struct ck_epilogue {
    const float *bias;      /* [n] or NULL */
    ck_act act;             /* CK_ACT_NONE for no activation */
    float act_param;        /* leaky-ReLU slope */
    const float *residual;  /* [m, n] with leading dimension ld_residual, or NULL */
    int64_t ld_residual;
    float *preact;          /* [m, n] with leading dimension ld_preact, or NULL */
    int64_t ld_preact;
} ck_epilogue;

/** Workspace for a GEMM call: caller-owned, 64-byte aligned, at least ck_gemm_workspace_size bytes. */
typedef struct ck_workspace {
    void *ptr;
    size_t bytes;
} ck_workspace;

/** Bytes of workspace ck_gemm_f32 needs for these sizes (an upper bound valid for every ISA).
 *  0 when m, n or k is 0 (then ws may be NULL) or when a size is negative. */
size_t ck_gemm_workspace_size(int64_t m, int64_t n, int64_t k);

/** C[m,n] = epilogue(alpha * op(A) op(B) + beta * C).
 *  op(A) is [m,k] (A stored [m,k] with lda >= k, or [k,m] with lda >= m when transa == CK_TRANS);
 *  op(B) is [k,n] (B stored [k,n] with ldb >= n, or [n,k] with ldb >= k when transb == CK_TRANS).
 *  k == 0 gives C = epilogue(beta*C). beta == 0 never reads C. m == 0 or n == 0 is a no-op.
 *  Pointers may be NULL only for empty operands. ws: see ck_gemm_workspace_size.
 *
 *  Arithmetic (every ISA and ck_gemm_f32_ref alike): for each element, one fp32 FMA chain
 *      acc = (beta == 0 ? 0 : beta * C[i,j]);  for p = 0..k-1: acc = fma(alpha * A[i,p], B[p,j], acc)
 *  then the epilogue. Hence:
 *  Determinism: results are bitwise identical across ISAs (for activations computed exactly:
 *  none, ReLU, leaky ReLU; the vectorized transcendental activations differ from the scalar ones by
 *  a few ulps) and independent of cache block sizes. Computing a sub-block of rows or columns of C
 *  with its own call (offset pointers, the same lds) gives bitwise the same values as one call for
 *  the whole C, so callers may split M or N across threads freely.
 *  The residual may be C itself (same pointer and ldc) when beta == 0. */
ck_status ck_gemm_f32(const ck_workspace *ws, ck_trans transa, ck_trans transb,
                      int64_t m, int64_t n, int64_t k,
                      const float *a, int64_t lda, const float *b, int64_t ldb,
                      float *c, int64_t ldc,
                      float alpha, float beta, const ck_epilogue *epilogue);
/** Naive triple loop with the same contract (needs no workspace; ws may be NULL). */
ck_status ck_gemm_f32_ref(const ck_workspace *ws, ck_trans transa, ck_trans transb,
                          int64_t m, int64_t n, int64_t k,
                          const float *a, int64_t lda, const float *b, int64_t ldb,
                          float *c, int64_t ldc,
                          float alpha, float beta, const ck_epilogue *epilogue);
/** The same contract computed by the system CBLAS (cblas_sgemm) followed by a separate vectorized
 *  epilogue pass (ck_bias_act_fwd_f32, then the residual add). The summation order is the
 *  provider's (not bitwise equal to _ref). ws may be NULL, except when the residual shares memory
 *  with C: then ws must hold m*n floats (64-byte aligned) or CK_ERR_WORKSPACE is returned.
 *  Sizes and leading dimensions above INT_MAX return CK_ERR_BAD_SIZE (CBLAS takes int). */
ck_status ck_gemm_f32_cblas(const ck_workspace *ws, ck_trans transa, ck_trans transb,
                            int64_t m, int64_t n, int64_t k,
                            const float *a, int64_t lda, const float *b, int64_t ldb,
                            float *c, int64_t ldc,
                            float alpha, float beta, const ck_epilogue *epilogue);
/* Pre-packed B (weights reused across calls). ck_gemm_pack_b lays op(B) out once in the
 * micro-panel format of the ISA active at packing time (recorded in the buffer, whose first 64
 * bytes are a header); ck_gemm_f32_prepacked then skips packing B. Results are bitwise identical
 * to ck_gemm_f32 with the same ISA (same arithmetic contract). */

/** Bytes of a pre-packed op(B) of shape [k, n] (an upper bound valid for every ISA); 0 if a size
 *  is negative. */
size_t ck_gemm_pack_b_size(int64_t n, int64_t k);

/** Packs op(B) [k, n] (B stored [k, n] with ldb >= n, or [n, k] with ldb >= k when transb ==
 *  CK_TRANS; a weight W [out, in] used as x W^T is transb == CK_TRANS, n = out, k = in) into
 *  `packed` (64-byte aligned, at least ck_gemm_pack_b_size(n, k) bytes, else CK_ERR_WORKSPACE). */
ck_status ck_gemm_pack_b(ck_trans transb, int64_t n, int64_t k, const float *b, int64_t ldb,
                         void *packed, size_t bytes);

/** Column granule of a pre-packed B: a sub-range of columns passed to ck_gemm_f32_prepacked must
 *  start at a multiple of it (48 for AVX-512, 16 for AVX2, 1 for ref). 0 if `packed` is not a
 *  packed B. */
int64_t ck_gemm_pack_b_granule(const void *packed);

/** Restore the matrix a pre-packed B was made from: with transb == CK_NO_TRANS, op(B) [k, n] into
 *  b (row-major, ldb >= n); with CK_TRANS, its transpose [n, k] (ldb >= k), i.e. the B that
 *  ck_gemm_pack_b(CK_TRANS, ...) read. Packing copies values, so the round trip is exact. Lets a
 *  caller keep only the packed copy of a weight and rebuild the plain one on demand.
 *  Errors: CK_ERR_NULL_POINTER, CK_ERR_BAD_ARG (not a packed B, bad transb), CK_ERR_BAD_LD. */
ck_status ck_gemm_unpack_b(const void *packed, ck_trans transb, float *b, int64_t ldb);

/** C[m,n] = epilogue(alpha * op(A) * Bp[:, j0 : j0+n] + beta * C), where Bp is the op(B) [k, n_total]
 *  packed by ck_gemm_pack_b. j0 must be a multiple of ck_gemm_pack_b_granule(packed) and
 *  j0 + n <= n_total; k must equal the packed k (else CK_ERR_BAD_ARG). The epilogue's bias is indexed
 *  like C (bias[0] belongs to column j0 of Bp). ws: at least ck_gemm_workspace_size(m, n, k) bytes.
 *  Same contract, determinism and row/column split guarantee as ck_gemm_f32 (split columns at
 *  multiples of the granule). Uses the ISA recorded at packing time. */
ck_status ck_gemm_f32_prepacked(const ck_workspace *ws, ck_trans transa,
                                int64_t m, int64_t n, int64_t k,
                                const float *a, int64_t lda, const void *packed_b, int64_t j0,
                                float *c, int64_t ldc,
                                float alpha, float beta, const ck_epilogue *epilogue);

/** Set the CBLAS provider's own thread count when it is OpenBLAS (no-op otherwise). Returns 1 if
 *  the provider accepted it, 0 if it has no such control. */
int ck_cblas_set_num_threads(int threads);

/* ------------------------------------------------------------------------------------------ */
/* LayerNorm                                                                                   */
/* ------------------------------------------------------------------------------------------ */

/** Row-wise LayerNorm with optional fused residual add, over `rows` rows of `cols` features:
 *      s    = x + residual          (residual may be NULL: s = x)
 *      mean = mean(s), rstd = 1/sqrt(var(s) + eps)   (biased variance, two-pass)
 *      y    = (s - mean) * rstd * gamma + beta
 *  Optional outputs (NULL to skip): sum_out = s (needed for backward of the fused op),
 *  mean[rows], rstd[rows]. gamma and beta may be NULL (treated as 1 and 0).
 *  y may alias x or residual (row-wise in place). A zero-variance row gives y = beta. */
ck_status ck_layernorm_fwd_f32(int64_t rows, int64_t cols,
                               const float *x, int64_t ldx,
                               const float *residual, int64_t ld_residual,
                               const float *gamma, const float *beta,
                               float *y, int64_t ldy,
                               float *sum_out, int64_t ld_sum,
                               float *mean, float *rstd, float eps);
ck_status ck_layernorm_fwd_f32_ref(int64_t rows, int64_t cols,
                                   const float *x, int64_t ldx,
                                   const float *residual, int64_t ld_residual,
                                   const float *gamma, const float *beta,
                                   float *y, int64_t ldy,
                                   float *sum_out, int64_t ld_sum,
                                   float *mean, float *rstd, float eps);

/** Backward of y = LN(s) given s (the normalised input, i.e. x or x+residual), the saved mean and
 *  rstd, and dy:
 *      dx      = beta_dx*dx + rstd * (g - mean(g) - xhat * mean(g * xhat)),  g = dy * gamma
 *      dgamma += sum_rows(dy * xhat)     (skipped if dgamma == NULL)
 *      dbeta  += sum_rows(dy)            (skipped if dbeta == NULL)
 *  gamma may be NULL (treated as 1). dx may be NULL (only parameter gradients wanted). For the
 *  fused residual form, dx is the gradient of both x and residual. */
ck_status ck_layernorm_bwd_f32(int64_t rows, int64_t cols,
                               const float *s, int64_t lds,
                               const float *gamma, const float *mean, const float *rstd,
                               const float *dy, int64_t lddy,
                               float *dx, int64_t lddx,
                               float *dgamma, float *dbeta, float beta_dx);
ck_status ck_layernorm_bwd_f32_ref(int64_t rows, int64_t cols,
                                   const float *s, int64_t lds,
                                   const float *gamma, const float *mean, const float *rstd,
                                   const float *dy, int64_t lddy,
                                   float *dx, int64_t lddx,
                                   float *dgamma, float *dbeta, float beta_dx);

/* ------------------------------------------------------------------------------------------ */
/* Softmax                                                                                     */
/* ------------------------------------------------------------------------------------------ */

/** Row-wise y = softmax(scale * x + mask) over `rows` rows of `cols`.
 *  mask (may be NULL) is additive; row r uses mask row (r / mask_group), i.e. mask + (r/mask_group)*ldm.
 *  For attention scores [batch, heads, q, k] flattened to rows = batch*heads*q, a key-padding mask
 *  [batch, k] uses mask_group = heads*q.  mask_group must be >= 1 when mask != NULL.
 *  Fully masked row (every logit -inf): y is all zeros (documented; no NaN).
 *  A finite large negative mask (e.g. -FLT_MAX as Hugging Face uses) gives whatever the arithmetic
 *  gives, exactly like PyTorch: a uniform row when every position carries it.
 *  y may alias x. */
ck_status ck_softmax_fwd_f32(int64_t rows, int64_t cols,
                             const float *x, int64_t ldx,
                             const float *mask, int64_t ldm, int64_t mask_group,
                             float *y, int64_t ldy, float scale);
ck_status ck_softmax_fwd_f32_ref(int64_t rows, int64_t cols,
                                 const float *x, int64_t ldx,
                                 const float *mask, int64_t ldm, int64_t mask_group,
                                 float *y, int64_t ldy, float scale);

/** dx = beta*dx + scale * y * (dy - sum(dy * y)) row-wise (gradient w.r.t. the un-scaled x; the
 *  mask gets no gradient). dx may alias dy (then beta must be 0). */
ck_status ck_softmax_bwd_f32(int64_t rows, int64_t cols,
                             const float *y, int64_t ldy,
                             const float *dy, int64_t lddy,
                             float *dx, int64_t lddx, float beta, float scale);
ck_status ck_softmax_bwd_f32_ref(int64_t rows, int64_t cols,
                                 const float *y, int64_t ldy,
                                 const float *dy, int64_t lddy,
                                 float *dx, int64_t lddx, float beta, float scale);

#ifdef __cplusplus
}
#endif

#endif /* CKERNELS_H */

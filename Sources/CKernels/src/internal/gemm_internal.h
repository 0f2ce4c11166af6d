/* Internal: shared pieces of the GEMM kernels (see docs/kernels.md, "GEMM").
 *
 *   - ck_gemm_check_args: the argument validation every GEMM entry point runs first.
 *   - ck_act_scalar: the scalar activation used by the reference epilogue and by edge fallbacks.
 *   - The micro-kernel contract (ck_gemm_ukr_fn), the packing routines and the block-size table
 *     of each ISA (ck_gemm_blocking), used by the blocking loops in gemm.c.
 *
 * Arithmetic contract shared by every path (what makes every ISA and every M/N split agree):
 *   for each output element, acc starts at (beta == 0 ? 0 : beta == 1 ? C : beta*C), then
 *   acc = fma(alpha*a[i,p], b[p,j], acc) for p = 0, 1, ..., k-1 in that order (one fp32 FMA chain),
 *   then t = acc + bias[j]. K blocking stores acc (unrounded beyond fp32) into C between K blocks
 *   and reloads it, which changes nothing bitwise.
 */
#ifndef CK_INTERNAL_GEMM_INTERNAL_H
#define CK_INTERNAL_GEMM_INTERNAL_H

#include "ckernels.h"

#include <math.h>
#include <stdint.h>

/* ------------------------------------------------------------------------------------------ */
/* Scalar activation (reference semantics, the formulas of ckernels.h)                         */
/* ------------------------------------------------------------------------------------------ */

static inline float ck_act_scalar(float x, ck_act act, float param) {
    switch (act) {
    case CK_ACT_NONE: return x;
    case CK_ACT_GELU_ERF: return 0.5f * x * (1.0f + erff(x * 0.70710678118654752440f));
    case CK_ACT_GELU_TANH: {
        const float u = 0.79788456080286535588f * (x + 0.044715f * x * x * x);
        return 0.5f * x * (1.0f + tanhf(u));
    }
    case CK_ACT_RELU: return isnan(x) ? x : (x > 0.0f ? x : 0.0f); /* NaN passes, -0 -> +0 */
    case CK_ACT_SILU: return x / (1.0f + expf(-x));
    case CK_ACT_TANH: return tanhf(x);
    case CK_ACT_SIGMOID: return 1.0f / (1.0f + expf(-x));
    case CK_ACT_LEAKY_RELU: return x >= 0.0f ? x : param * x;
    }
    return x;
}

/* ------------------------------------------------------------------------------------------ */
/* Argument validation                                                                         */
/* ------------------------------------------------------------------------------------------ */

/* Checks everything but the workspace. Returns CK_OK or the status to return (nothing written). */
ck_status ck_gemm_check_args(ck_trans transa, ck_trans transb, int64_t m, int64_t n, int64_t k,
                             const float *a, int64_t lda, const float *b, int64_t ldb,
                             const float *c, int64_t ldc, const ck_epilogue *ep);

/* 1 if the residual of `ep` shares memory with the [m, n] block of C (ldc). */
int ck_gemm_residual_overlaps_c(int64_t m, int64_t n, const float *c, int64_t ldc,
                                const ck_epilogue *ep);

/* ------------------------------------------------------------------------------------------ */
/* Micro-kernel contract                                                                       */
/* ------------------------------------------------------------------------------------------ */

enum {
    CK_UKR_FIRST = 1, /* first K block: acc starts from beta*C (or 0 when beta == 0) */
    CK_UKR_LAST = 2   /* last K block: apply the epilogue; otherwise store acc to C */
};

/* Everything a micro-kernel needs besides the packed panels. Pointers are already offset to the
 * tile's first row/column (bias to column j0, residual/preact to (i0, j0)). */
typedef struct ck_ukr_args {
    int flags;              /* CK_UKR_FIRST | CK_UKR_LAST */
    float beta;             /* used only with CK_UKR_FIRST */
    const float *bias;      /* NULL or bias + j0 */
    const float *residual;  /* NULL or residual tile */
    int64_t ld_residual;
    float *preact;          /* NULL or preact tile */
    int64_t ld_preact;
    ck_act act;
    float act_param;
} ck_ukr_args;

/* C tile [mr, nr] (mr <= MR, nr <= NR, ldc) from a packed A micro-panel (kc x MR, k-major, zero
 * padded to MR rows, alpha already applied) and a packed B micro-panel (kc x NR, k-major, zero
 * padded to NR columns). Reads and writes only the mr x nr tile of C/residual/preact, and bias[0..nr). */
typedef void (*ck_gemm_ukr_fn)(int64_t kc, const float *ap, const float *bp, float *c, int64_t ldc,
                               int64_t mr, int64_t nr, const ck_ukr_args *args);

/* Pack the [mc, kc] block of op(A) starting at (i0, p0) into ceil(mc/MR) micro-panels of MR x kc,
 * each k-major (dst[p*MR + r]), scaled by alpha, zero padded to MR rows. */
typedef void (*ck_gemm_pack_a_fn)(ck_trans transa, const float *a, int64_t lda, int64_t i0,
                                  int64_t p0, int64_t mc, int64_t kc, float alpha, float *dst);
/* Pack the [kc, nc] block of op(B) starting at (p0, j0) into ceil(nc/NR) micro-panels of kc x NR,
 * each k-major (dst[p*NR + c]), zero padded to NR columns. */
typedef void (*ck_gemm_pack_b_fn)(ck_trans transb, const float *b, int64_t ldb, int64_t p0,
                                  int64_t j0, int64_t kc, int64_t nc, float *dst);

/* One table entry per ISA: register tile, cache blocks and the routines. The blocks of one call
 * are derived by ck_gemm_plan (gemm.c); none of them changes any result bit. */
typedef struct ck_gemm_blocking {
    int64_t mr, nr;      /* micro-tile: rows of C (broadcast A), columns of C (vector B) */
    int64_t mc;          /* rows of the packed A block (multiple of mr): L2 resident */
    int64_t kc;          /* deepest K block: K is cut into ceil(K/kc) equal blocks */
    int64_t nc;          /* columns of the packed B block when M spans several A blocks */
    int64_t l2_b_bytes;  /* when M fits one A block: B block bytes consumed from L2 */
    ck_gemm_ukr_fn ukr;
    ck_gemm_pack_a_fn pack_a;
    ck_gemm_pack_b_fn pack_b;
} ck_gemm_blocking;

/* The cache blocks of one call. */
typedef struct ck_gemm_blocks {
    int64_t mc, kc, nc;
} ck_gemm_blocks;

/* Portable packing (gemm.c), used by every ISA that has no faster version. */
void ck_gemm_pack_a_generic(ck_trans transa, const float *a, int64_t lda, int64_t i0, int64_t p0,
                            int64_t mc, int64_t kc, float alpha, float *dst, int64_t mr);
void ck_gemm_pack_b_generic(ck_trans transb, const float *b, int64_t ldb, int64_t p0, int64_t j0,
                            int64_t kc, int64_t nc, float *dst, int64_t nr);

/* Per-ISA tables (NULL ukr when the ISA is not compiled in). CK_GEMM_TUNABLE (defined only by
 * out-of-tree tuning drivers) makes them writable. */
#ifdef CK_GEMM_TUNABLE
#define CK_GEMM_TABLE_CONST
#else
#define CK_GEMM_TABLE_CONST const
#endif
extern CK_GEMM_TABLE_CONST ck_gemm_blocking ck_gemm_blocking_avx512;
extern CK_GEMM_TABLE_CONST ck_gemm_blocking ck_gemm_blocking_avx2;

/* Workspace bytes the blocked path of one ISA table needs (0 for a NULL table). */
size_t ck_gemm_workspace_bytes_for(const ck_gemm_blocking *t, int64_t m, int64_t n, int64_t k);

#endif

/* GEMM entry points: argument checks, workspace sizing, ISA dispatch and the cache-blocking loops
 * around the per-ISA micro-kernels (docs/kernels.md, "GEMM").
 *
 * Loop nest (BLIS order), for one ISA table {MR, NR, MC, KC, NC}:
 *   for jc in N by NC:                       B block [KC x NC] packed once, reused for all of M
 *     for pc in K by KC:
 *       pack B[pc:pc+KC, jc:jc+NC]
 *       for ic in M by MC:
 *         pack alpha*A[ic:ic+MC, pc:pc+KC]
 *         for jr in NC by NR: for ir in MC by MR: micro-kernel on the MR x NR tile
 * The micro-kernel accumulates one FMA chain per element; between K blocks the running sum is
 * stored to C and reloaded, so results are bitwise independent of every block size and of how the
 * caller splits M or N across calls. */
#include "internal/dispatch.h"
#include "internal/gemm_internal.h"

#include <string.h>

/* ------------------------------------------------------------------------------------------ */
/* Argument checks                                                                             */
/* ------------------------------------------------------------------------------------------ */

/* Extent in elements of a row-major [rows, cols] operand with leading dimension ld, or -1 on
 * overflow. */
static int64_t ck_extent(int64_t rows, int64_t cols, int64_t ld) {
    if (rows == 0 || cols == 0) return 0;
    int64_t e;
    if (__builtin_mul_overflow(rows - 1, ld, &e) || __builtin_add_overflow(e, cols, &e)) return -1;
    if (e > INT64_MAX / 8) return -1; /* keep byte offsets representable */
    return e;
}

static ck_status ck_check_operand(const float *p, int64_t rows, int64_t cols, int64_t ld, int required) {
    if (ld < 0) return CK_ERR_BAD_LD;
    if (rows == 0 || cols == 0) return CK_OK;
    if (required && p == NULL) return CK_ERR_NULL_POINTER;
    if (ld < cols) return CK_ERR_BAD_LD;
    if (ck_extent(rows, cols, ld) < 0) return CK_ERR_BAD_SIZE;
    return CK_OK;
}

ck_status ck_gemm_check_args(ck_trans transa, ck_trans transb, int64_t m, int64_t n, int64_t k,
                             const float *a, int64_t lda, const float *b, int64_t ldb,
                             const float *c, int64_t ldc, const ck_epilogue *ep) {
    if ((transa != CK_NO_TRANS && transa != CK_TRANS) || (transb != CK_NO_TRANS && transb != CK_TRANS))
        return CK_ERR_BAD_ARG;
    if (ep != NULL && ((int)ep->act < (int)CK_ACT_NONE || (int)ep->act > (int)CK_ACT_LEAKY_RELU))
        return CK_ERR_BAD_ARG;
    if (m < 0 || n < 0 || k < 0) return CK_ERR_BAD_SIZE;
    /* NULL pointers first (all of them), then leading dimensions. */
    if (m > 0 && k > 0 && a == NULL) return CK_ERR_NULL_POINTER;
    if (k > 0 && n > 0 && b == NULL) return CK_ERR_NULL_POINTER;
    if (m > 0 && n > 0 && c == NULL) return CK_ERR_NULL_POINTER;
    ck_status st;
    if (transa == CK_NO_TRANS) st = ck_check_operand(a, m, k, lda, 1);
    else st = ck_check_operand(a, k, m, lda, 1);
    if (st != CK_OK) return st;
    if (transb == CK_NO_TRANS) st = ck_check_operand(b, k, n, ldb, 1);
    else st = ck_check_operand(b, n, k, ldb, 1);
    if (st != CK_OK) return st;
    if ((st = ck_check_operand(c, m, n, ldc, 1)) != CK_OK) return st;
    if (ep != NULL && ep->residual != NULL &&
        (st = ck_check_operand(ep->residual, m, n, ep->ld_residual, 0)) != CK_OK)
        return st;
    if (ep != NULL && ep->preact != NULL &&
        (st = ck_check_operand(ep->preact, m, n, ep->ld_preact, 0)) != CK_OK)
        return st;
    return CK_OK;
}

int ck_gemm_residual_overlaps_c(int64_t m, int64_t n, const float *c, int64_t ldc,
                                const ck_epilogue *ep) {
    if (ep == NULL || ep->residual == NULL || m == 0 || n == 0) return 0;
    const uintptr_t c0 = (uintptr_t)c, c1 = c0 + (uintptr_t)ck_extent(m, n, ldc) * sizeof(float);
    const uintptr_t r0 = (uintptr_t)ep->residual,
                    r1 = r0 + (uintptr_t)ck_extent(m, n, ep->ld_residual) * sizeof(float);
    return r0 < c1 && c0 < r1;
}

/* ------------------------------------------------------------------------------------------ */
/* Workspace                                                                                   */
/* ------------------------------------------------------------------------------------------ */

static int64_t ck_round_up(int64_t x, int64_t to) { return (x + to - 1) / to * to; }
static int64_t ck_min64(int64_t a, int64_t b) { return a < b ? a : b; }
static size_t ck_align64(size_t bytes) { return (bytes + 63u) & ~(size_t)63u; }

/* Cache blocks for one call (any choice gives the same bits, see the file comment):
 *   kc: K cut into ceil(K / t->kc) blocks of equal depth (rounded up to 8), so that K = 768 runs
 *       in one block (no partial sums through C) and K = 3072 in four;
 *   nc: with a pre-packed B there is no B block: all of N (A packed once per K block);
 *       when M fits one A block, B is packed and consumed at once, so the block is sized for L2;
 *       otherwise t->nc (A is repacked N/nc times).
 *   mc: t->mc. */
static ck_gemm_blocks ck_gemm_plan(const ck_gemm_blocking *t, int64_t m, int64_t n, int64_t k, int prepacked) {
    ck_gemm_blocks b;
    const int64_t nkb = k <= 0 ? 1 : (k + t->kc - 1) / t->kc;
    b.kc = k <= 0 ? 0 : ck_min64(ck_round_up((k + nkb - 1) / nkb, 8), k);
    b.mc = t->mc;
    if (prepacked) {
        b.nc = ck_round_up(n > 0 ? n : 1, t->nr);
    } else if (m <= t->mc) {
        int64_t nc = b.kc > 0 ? t->l2_b_bytes / (b.kc * (int64_t)sizeof(float)) / t->nr * t->nr : t->nc;
        b.nc = nc < t->nr ? t->nr : (nc > t->nc ? t->nc : nc);
    } else {
        b.nc = t->nc;
    }
    return b;
}

/* Layout: [packed B block: kc x round_up(nc, NR)] [packed A block: round_up(mc, MR) x kc], each
 * starting on a 64-byte boundary (no B block with a pre-packed B). The full-K fallback (residual
 * aliasing C with more than one K block) uses [K x NR][MR x K]. The bound covers both the packed
 * and the pre-packed plan. */
size_t ck_gemm_workspace_bytes_for(const ck_gemm_blocking *t, int64_t m, int64_t n, int64_t k) {
    if (t == NULL || t->ukr == NULL || m <= 0 || n <= 0 || k <= 0) return 0;
    size_t need = 0;
    for (int pre = 0; pre < 2; ++pre) {
        const ck_gemm_blocks b = ck_gemm_plan(t, m, n, k, pre);
        const int64_t nc = pre ? 0 : ck_round_up(ck_min64(b.nc, n), t->nr);
        const int64_t mc = ck_round_up(ck_min64(b.mc, m), t->mr);
        size_t bytes = ck_align64((size_t)(b.kc * nc) * sizeof(float)) + ck_align64((size_t)(mc * b.kc) * sizeof(float));
        if (k > b.kc) {
            size_t full = ck_align64((size_t)k * (size_t)t->nr * sizeof(float)) +
                          ck_align64((size_t)k * (size_t)t->mr * sizeof(float));
            if (full > bytes) bytes = full;
        }
        if (bytes > need) need = bytes;
    }
    return need;
}

size_t ck_gemm_workspace_size(int64_t m, int64_t n, int64_t k) {
    if (m <= 0 || n <= 0 || k <= 0) return 0;
    if (m > (INT64_MAX >> 8) || n > (INT64_MAX >> 8) || k > (INT64_MAX >> 8)) return SIZE_MAX;
    size_t a = ck_gemm_workspace_bytes_for(&ck_gemm_blocking_avx512, m, n, k);
    size_t b = ck_gemm_workspace_bytes_for(&ck_gemm_blocking_avx2, m, n, k);
    return a > b ? a : b;
}

/* ------------------------------------------------------------------------------------------ */
/* Portable packing                                                                            */
/* ------------------------------------------------------------------------------------------ */

void ck_gemm_pack_a_generic(ck_trans transa, const float *a, int64_t lda, int64_t i0, int64_t p0,
                            int64_t mc, int64_t kc, float alpha, float *dst, int64_t mr) {
    for (int64_t ir = 0; ir < mc; ir += mr) {
        const int64_t rows = ck_min64(mr, mc - ir);
        float *d = dst + ir * kc;
        for (int64_t p = 0; p < kc; ++p) {
            for (int64_t r = 0; r < rows; ++r) {
                const int64_t i = i0 + ir + r, q = p0 + p;
                const float v = transa == CK_NO_TRANS ? a[i * lda + q] : a[q * lda + i];
                d[p * mr + r] = alpha * v;
            }
            for (int64_t r = rows; r < mr; ++r) d[p * mr + r] = 0.0f;
        }
    }
}

void ck_gemm_pack_b_generic(ck_trans transb, const float *b, int64_t ldb, int64_t p0, int64_t j0,
                            int64_t kc, int64_t nc, float *dst, int64_t nr) {
    for (int64_t jr = 0; jr < nc; jr += nr) {
        const int64_t cols = ck_min64(nr, nc - jr);
        float *d = dst + jr * kc;
        for (int64_t p = 0; p < kc; ++p) {
            const int64_t q = p0 + p;
            if (transb == CK_NO_TRANS) {
                const float *s = b + q * ldb + j0 + jr;
                for (int64_t cidx = 0; cidx < cols; ++cidx) d[p * nr + cidx] = s[cidx];
            } else {
                const float *s = b + (j0 + jr) * ldb + q;
                for (int64_t cidx = 0; cidx < cols; ++cidx) d[p * nr + cidx] = s[cidx * ldb];
            }
            for (int64_t cidx = cols; cidx < nr; ++cidx) d[p * nr + cidx] = 0.0f;
        }
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Blocked driver                                                                              */
/* ------------------------------------------------------------------------------------------ */

static inline void ck_prefetch_tile(const float *c, int64_t ldc, int64_t rows, int64_t cols) {
    for (int64_t r = 0; r < rows; ++r) {
        const float *row = c + r * ldc;
        for (int64_t j = 0; j < cols; j += 16) __builtin_prefetch(row + j, 1, 3);
        __builtin_prefetch(row + cols - 1, 1, 3);
    }
}

static void ck_tile_args(ck_ukr_args *args, const ck_epilogue *ep, int64_t i, int64_t j) {
    args->bias = ep->bias ? ep->bias + j : NULL;
    args->residual = ep->residual ? ep->residual + i * ep->ld_residual + j : NULL;
    args->ld_residual = ep->ld_residual;
    args->preact = ep->preact ? ep->preact + i * ep->ld_preact + j : NULL;
    args->ld_preact = ep->ld_preact;
}

/* All MR x NR tiles of the [mc, nc] block at (ic, jc) for the K block [pc, pc + kc): A from the
 * packed block, B from the packed block or the pre-packed panels. */
static void ck_gemm_tiles(const ck_gemm_blocking *t, ck_ukr_args *args, const ck_epilogue *ep,
                          const float *apack, const float *bpre, const float *bpack, int64_t k,
                          int64_t pc, int64_t kc, int64_t ic, int64_t mc, int64_t jc, int64_t nc,
                          float *c, int64_t ldc) {
    const int64_t MR = t->mr, NR = t->nr;
    for (int64_t jr = 0; jr < nc; jr += NR) {
        const int64_t nr = ck_min64(NR, nc - jr);
        const float *bp = bpre ? bpre + (jc + jr) * k + pc * NR : bpack + jr * kc;
        for (int64_t ir = 0; ir < mc; ir += MR) {
            const int64_t mr = ck_min64(MR, mc - ir);
            /* The next tile's C rows (read first thing by the next K block's micro-kernel, or at
             * least written) come in while this tile computes. */
            if (ir + MR < mc)
                ck_prefetch_tile(c + (ic + ir + MR) * ldc + jc + jr, ldc, ck_min64(MR, mc - ir - MR), nr);
            else if (jr + NR < nc)
                ck_prefetch_tile(c + ic * ldc + jc + jr + NR, ldc, ck_min64(MR, mc), ck_min64(NR, nc - jr - NR));
            ck_tile_args(args, ep, ic + ir, jc + jr);
            t->ukr(kc, apack + ir * kc, bp, c + (ic + ir) * ldc + jc + jr, ldc, mr, nr, args);
        }
    }
}

/* bpre: NULL (pack B from b/ldb here) or a pre-packed op(B) (ck_gemm_pack_b layout, already
 * offset to the first column): the K x NR panel of columns [j, j + NR) starts at bpre + j*k. */
static void ck_gemm_blocked(const ck_gemm_blocking *t, void *wsp, ck_trans transa, ck_trans transb,
                            int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
                            const float *b, int64_t ldb, const float *bpre, float *c, int64_t ldc,
                            float alpha, float beta, const ck_epilogue *ep) {
    const int64_t MR = t->mr, NR = t->nr;
    ck_ukr_args args = {0};
    args.beta = beta;
    args.act = ep->act;
    args.act_param = ep->act_param;
    float *ws = (float *)wsp;

    if (k == 0) { /* C = epilogue(beta*C): the micro-kernel with an empty K loop */
        args.flags = CK_UKR_FIRST | CK_UKR_LAST;
        for (int64_t j = 0; j < n; j += NR)
            for (int64_t i = 0; i < m; i += MR) {
                ck_tile_args(&args, ep, i, j);
                t->ukr(0, NULL, NULL, c + i * ldc + j, ldc, ck_min64(MR, m - i), ck_min64(NR, n - j), &args);
            }
        return;
    }

    const ck_gemm_blocks blk = ck_gemm_plan(t, m, n, k, bpre != NULL);
    if (k > blk.kc && ck_gemm_residual_overlaps_c(m, n, c, ldc, ep)) {
        /* The residual lives in C, so C cannot hold partial sums: one K block per tile, panels
         * packed over the full depth (slower, bitwise identical). */
        float *bp = ws;
        float *ap = ws + ck_align64((size_t)k * (size_t)NR * sizeof(float)) / sizeof(float);
        args.flags = CK_UKR_FIRST | CK_UKR_LAST;
        for (int64_t j = 0; j < n; j += NR) {
            const int64_t nr = ck_min64(NR, n - j);
            if (bpre) bp = (float *)(bpre + j * k);
            else t->pack_b(transb, b, ldb, 0, j, k, nr, bp);
            for (int64_t i = 0; i < m; i += MR) {
                const int64_t mr = ck_min64(MR, m - i);
                t->pack_a(transa, a, lda, i, 0, mr, k, alpha, ap);
                ck_tile_args(&args, ep, i, j);
                t->ukr(k, ap, bp, c + i * ldc + j, ldc, mr, nr, &args);
            }
        }
        return;
    }

    const int64_t ncmax = bpre ? 0 : ck_round_up(ck_min64(blk.nc, n), NR);
    float *bpack = ws;
    float *apack = ws + ck_align64((size_t)(blk.kc * ncmax) * sizeof(float)) / sizeof(float);

    if (m <= blk.mc) {
        /* One A block: pack it once per K block and stream the B blocks past it. */
        for (int64_t pc = 0; pc < k; pc += blk.kc) {
            const int64_t kc = ck_min64(blk.kc, k - pc);
            t->pack_a(transa, a, lda, 0, pc, m, kc, alpha, apack);
            args.flags = (pc == 0 ? CK_UKR_FIRST : 0) | (pc + kc == k ? CK_UKR_LAST : 0);
            for (int64_t jc = 0; jc < n; jc += blk.nc) {
                const int64_t nc = ck_min64(blk.nc, n - jc);
                if (!bpre) t->pack_b(transb, b, ldb, pc, jc, kc, nc, bpack);
                ck_gemm_tiles(t, &args, ep, apack, bpre, bpack, k, pc, kc, 0, m, jc, nc, c, ldc);
            }
        }
        return;
    }
    for (int64_t jc = 0; jc < n; jc += blk.nc) {
        const int64_t nc = ck_min64(blk.nc, n - jc);
        for (int64_t pc = 0; pc < k; pc += blk.kc) {
            const int64_t kc = ck_min64(blk.kc, k - pc);
            if (!bpre) t->pack_b(transb, b, ldb, pc, jc, kc, nc, bpack);
            args.flags = (pc == 0 ? CK_UKR_FIRST : 0) | (pc + kc == k ? CK_UKR_LAST : 0);
            for (int64_t ic = 0; ic < m; ic += blk.mc) {
                const int64_t mc = ck_min64(blk.mc, m - ic);
                t->pack_a(transa, a, lda, ic, pc, mc, kc, alpha, apack);
                ck_gemm_tiles(t, &args, ep, apack, bpre, bpack, k, pc, kc, ic, mc, jc, nc, c, ldc);
            }
        }
    }
}

ck_status ck_gemm_f32(const ck_workspace *ws, ck_trans transa, ck_trans transb,
                      int64_t m, int64_t n, int64_t k,
                      const float *a, int64_t lda, const float *b, int64_t ldb,
                      float *c, int64_t ldc,
                      float alpha, float beta, const ck_epilogue *epilogue) {
    ck_status st = ck_gemm_check_args(transa, transb, m, n, k, a, lda, b, ldb, c, ldc, epilogue);
    if (st != CK_OK) return st;
    const size_t need = ck_gemm_workspace_size(m, n, k);
    if (need > 0 && (ws == NULL || ws->ptr == NULL || ws->bytes < need || ((uintptr_t)ws->ptr & 63u) != 0))
        return CK_ERR_WORKSPACE;
    if (m == 0 || n == 0) return CK_OK;

    const ck_gemm_blocking *t = NULL;
    switch (ck_dispatch_isa()) {
    case CK_ISA_AVX512: t = &ck_gemm_blocking_avx512; break;
    case CK_ISA_AVX2: t = &ck_gemm_blocking_avx2; break;
    default: t = NULL; break;
    }
    if (t == NULL || t->ukr == NULL)
        return ck_gemm_f32_ref(ws, transa, transb, m, n, k, a, lda, b, ldb, c, ldc, alpha, beta, epilogue);
    const ck_epilogue none = {0};
    ck_gemm_blocked(t, ws ? ws->ptr : NULL, transa, transb, m, n, k, a, lda, b, ldb, NULL, c, ldc, alpha,
                    beta, epilogue ? epilogue : &none);
    return CK_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Pre-packed B                                                                                */
/* ------------------------------------------------------------------------------------------ */

#define CK_PACKED_B_MAGIC 0x42504B43u /* "CKPB" */

/* The first 64 bytes of a pre-packed B; the panels follow. */
typedef struct ck_packed_b_header {
    uint32_t magic;
    uint32_t isa;    /* ck_isa used for the layout */
    int64_t nr;      /* panel width (1 for ref: plain row-major [k, n]) */
    int64_t n, k;
    int64_t reserved[4];
} ck_packed_b_header;

_Static_assert(sizeof(ck_packed_b_header) == 64, "packed B header is one cache line");

static const ck_gemm_blocking *ck_gemm_table_for(ck_isa isa) {
    const ck_gemm_blocking *t = NULL;
    if (isa == CK_ISA_AVX512) t = &ck_gemm_blocking_avx512;
    else if (isa == CK_ISA_AVX2) t = &ck_gemm_blocking_avx2;
    return (t != NULL && t->ukr != NULL) ? t : NULL;
}

size_t ck_gemm_pack_b_size(int64_t n, int64_t k) {
    if (n < 0 || k < 0) return 0;
    if (n > (INT64_MAX >> 8) || k > (INT64_MAX >> 8)) return SIZE_MAX;
    int64_t elems;
    if (__builtin_mul_overflow(ck_round_up(n, 48), k, &elems) || elems > (INT64_MAX >> 3)) return SIZE_MAX;
    return sizeof(ck_packed_b_header) + (size_t)elems * sizeof(float);
}

ck_status ck_gemm_pack_b(ck_trans transb, int64_t n, int64_t k, const float *b, int64_t ldb,
                         void *packed, size_t bytes) {
    if (transb != CK_NO_TRANS && transb != CK_TRANS) return CK_ERR_BAD_ARG;
    if (n < 0 || k < 0) return CK_ERR_BAD_SIZE;
    if (n > 0 && k > 0 && b == NULL) return CK_ERR_NULL_POINTER;
    if (packed == NULL) return CK_ERR_NULL_POINTER;
    ck_status st = transb == CK_NO_TRANS ? ck_check_operand(b, k, n, ldb, 1) : ck_check_operand(b, n, k, ldb, 1);
    if (st != CK_OK) return st;
    const size_t need = ck_gemm_pack_b_size(n, k);
    if (need == SIZE_MAX) return CK_ERR_BAD_SIZE;
    if (bytes < need || ((uintptr_t)packed & 63u) != 0) return CK_ERR_WORKSPACE;

    const ck_isa isa = ck_dispatch_isa();
    const ck_gemm_blocking *t = ck_gemm_table_for(isa);
    ck_packed_b_header *h = (ck_packed_b_header *)packed;
    memset(h, 0, sizeof *h);
    h->magic = CK_PACKED_B_MAGIC;
    h->isa = t ? (uint32_t)isa : (uint32_t)CK_ISA_REF;
    h->nr = t ? t->nr : 1;
    h->n = n;
    h->k = k;
    float *data = (float *)(h + 1);
    if (n == 0 || k == 0) return CK_OK;
    if (t) {
        t->pack_b(transb, b, ldb, 0, 0, k, n, data);
    } else {
        for (int64_t p = 0; p < k; ++p)
            for (int64_t j = 0; j < n; ++j)
                data[p * n + j] = transb == CK_NO_TRANS ? b[p * ldb + j] : b[j * ldb + p];
    }
    return CK_OK;
}

int64_t ck_gemm_pack_b_granule(const void *packed) {
    const ck_packed_b_header *h = (const ck_packed_b_header *)packed;
    if (h == NULL || h->magic != CK_PACKED_B_MAGIC) return 0;
    return h->nr;
}

ck_status ck_gemm_unpack_b(const void *packed, ck_trans transb, float *b, int64_t ldb) {
    if (packed == NULL) return CK_ERR_NULL_POINTER;
    if (transb != CK_NO_TRANS && transb != CK_TRANS) return CK_ERR_BAD_ARG;
    const ck_packed_b_header *h = (const ck_packed_b_header *)packed;
    if (h->magic != CK_PACKED_B_MAGIC || h->nr < 1) return CK_ERR_BAD_ARG;
    const int64_t n = h->n, k = h->k, nr = h->nr;
    if (n == 0 || k == 0) return CK_OK;
    if (b == NULL) return CK_ERR_NULL_POINTER;
    if (ldb < (transb == CK_NO_TRANS ? n : k)) return CK_ERR_BAD_LD;
    const float *data = (const float *)(h + 1);
    /* ref layout: plain [k, n] (nr == 1 and every "panel" is one column, so the general loop below
     * would read it wrongly). */
    const int ref = h->isa == (uint32_t)CK_ISA_REF;
    for (int64_t j0 = 0; j0 < n; j0 += (ref ? n : nr)) {
        const int64_t w = ref ? n : ck_min64(nr, n - j0);
        for (int64_t p = 0; p < k; ++p) {
            const float *src = ref ? data + p * n : data + j0 * k + p * nr;
            if (transb == CK_NO_TRANS) {
                memcpy(b + p * ldb + j0, src, (size_t)w * sizeof(float));
            } else {
                for (int64_t c = 0; c < w; ++c) b[(j0 + c) * ldb + p] = src[c];
            }
        }
    }
    return CK_OK;
}

ck_status ck_gemm_f32_prepacked(const ck_workspace *ws, ck_trans transa,
                                int64_t m, int64_t n, int64_t k,
                                const float *a, int64_t lda, const void *packed_b, int64_t j0,
                                float *c, int64_t ldc,
                                float alpha, float beta, const ck_epilogue *epilogue) {
    if (packed_b == NULL) return CK_ERR_NULL_POINTER;
    const ck_packed_b_header *h = (const ck_packed_b_header *)packed_b;
    if (h->magic != CK_PACKED_B_MAGIC || ((uintptr_t)packed_b & 63u) != 0) return CK_ERR_BAD_ARG;
    const float *data = (const float *)(h + 1);
    /* Validate as a [k, n_total] no-trans B (ldb = n_total). */
    ck_status st = ck_gemm_check_args(transa, CK_NO_TRANS, m, n, k, a, lda, data, h->n, c, ldc, epilogue);
    if (st != CK_OK) return st;
    if (k != h->k || j0 < 0 || n > h->n || j0 > h->n - n || j0 % h->nr != 0) return CK_ERR_BAD_ARG;
    const size_t need = ck_gemm_workspace_size(m, n, k);
    if (need > 0 && (ws == NULL || ws->ptr == NULL || ws->bytes < need || ((uintptr_t)ws->ptr & 63u) != 0))
        return CK_ERR_WORKSPACE;
    if (m == 0 || n == 0) return CK_OK;

    if (h->isa == (uint32_t)CK_ISA_REF)
        return ck_gemm_f32_ref(ws, transa, CK_NO_TRANS, m, n, k, a, lda, data + j0, h->n, c, ldc, alpha, beta,
                               epilogue);
    if (!ck_isa_supported((ck_isa)h->isa)) return CK_ERR_UNSUPPORTED;
    const ck_gemm_blocking *t = ck_gemm_table_for((ck_isa)h->isa);
    if (t == NULL) return CK_ERR_UNSUPPORTED;
    const ck_epilogue none = {0};
    ck_gemm_blocked(t, ws ? ws->ptr : NULL, transa, CK_NO_TRANS, m, n, k, a, lda, NULL, 0, data + j0 * k, c,
                    ldc, alpha, beta, epilogue ? epilogue : &none);
    return CK_OK;
}

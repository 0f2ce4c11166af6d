/* AVX-512 instantiation of the rowops_simd.h vocabulary (see that file). */
#ifndef CK_INTERNAL_ROWOPS_AVX512_DEFS_H
#define CK_INTERNAL_ROWOPS_AVX512_DEFS_H
#include "internal/eltwise.h"
#include "internal/vmath_avx512.h"

#define CKV __m512
#define CKM __mmask16
#define CKW 16
#define CKV_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq")))
#define CKV_SUFFIX(name) name##_avx512
#define CKV_TAIL(r) ((__mmask16)((1u << (r)) - 1u))
#define CKV_LOAD(p) _mm512_loadu_ps(p)
#define CKV_STORE(p, v) _mm512_storeu_ps((p), (v))
#define CKV_LOADM(p, m) _mm512_maskz_loadu_ps((m), (p))
#define CKV_STOREM(p, m, v) _mm512_mask_storeu_ps((p), (m), (v))
#define CKV_ZEROM(m, v) _mm512_maskz_mov_ps((m), (v))
#define CKV_SELM(m, a, b) _mm512_mask_blend_ps((m), (a), (b))
#define CKV_SET1(f) _mm512_set1_ps(f)
#define CKV_ADD(a, b) _mm512_add_ps((a), (b))
#define CKV_SUB(a, b) _mm512_sub_ps((a), (b))
#define CKV_MUL(a, b) _mm512_mul_ps((a), (b))
#define CKV_MAX(a, b) _mm512_max_ps((a), (b))
#define CKV_MIN(a, b) _mm512_min_ps((a), (b))
#define CKV_FMA(a, b, c) _mm512_fmadd_ps((a), (b), (c))
#define CKV_FNMA(a, b, c) _mm512_fnmadd_ps((a), (b), (c))
#define CKV_HSUM(v) _mm512_reduce_add_ps(v)
#define CKV_HMAX(v) _mm512_reduce_max_ps(v)
#define CKV_HMIN(v) _mm512_reduce_min_ps(v)
#define CKV_LN_PAIR_MAX_COLS 512 /* layernorm: pair rows up to this many columns */
#define CKV_EXP(v) ck_v16_exp(v)
#define CKV_EXP_NONPOS(v) ck_v16_exp_nonpos(v) /* softmax: arguments z - max <= 0 */
#define CKV_SM_CHUNK 16 /* softmax: vectors per register chunk */
#endif

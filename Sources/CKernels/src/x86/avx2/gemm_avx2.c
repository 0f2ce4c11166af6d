/* AVX2+FMA GEMM micro-kernel and packing (in progress: NULL ukr falls back to the reference). */
#include "internal/gemm_internal.h"

CK_GEMM_TABLE_CONST ck_gemm_blocking ck_gemm_blocking_avx2 = {6, 16, 120, 256, 3072, NULL, NULL, NULL};

/* AVX-512 GEMM micro-kernel and packing (in progress: NULL ukr falls back to the reference). */
#include "internal/gemm_internal.h"

const ck_gemm_blocking ck_gemm_blocking_avx512 = {8, 48, 128, 256, 3072, NULL, NULL, NULL};

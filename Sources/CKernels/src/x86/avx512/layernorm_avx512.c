/* AVX-512 LayerNorm forward/backward: the kernels are written once in internal/rowops_simd.h. */
#include "internal/rowops_avx512_defs.h"
#define CK_ROWOPS_LAYERNORM
#include "internal/rowops_simd.h"

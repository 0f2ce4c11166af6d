/* AVX-512 softmax forward/backward: the kernels are written once in internal/rowops_simd.h. */
#include "internal/rowops_avx512_defs.h"
#define CK_ROWOPS_SOFTMAX
#include "internal/rowops_simd.h"

/* Internal: run-time ISA selection shared by every op's entry point. */
#ifndef CK_INTERNAL_DISPATCH_H
#define CK_INTERNAL_DISPATCH_H

#include "ckernels.h"

/* CPU + OS feature bits, detected once (cpu_features.c). */
int ck_cpu_has_avx2_fma(void);
int ck_cpu_has_avx512(void);   /* F, BW, VL, DQ and OS-enabled ZMM/opmask state */

/* The ISA dispatching entry points should use now (dispatch.c). */
ck_isa ck_dispatch_isa(void);

#endif

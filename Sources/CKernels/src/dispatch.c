/* ISA selection: the best supported ISA, or the one named by CK_ISA=ref|avx2|avx512 (read once),
 * or the one forced by ck_isa_force. An unsupported or unknown CK_ISA value falls back to detection. */
#include "internal/dispatch.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static _Atomic int ck_active = -1;

int ck_isa_supported(ck_isa isa) {
    switch (isa) {
    case CK_ISA_REF: return 1;
    case CK_ISA_AVX2: return ck_cpu_has_avx2_fma();
    case CK_ISA_AVX512: return ck_cpu_has_avx512();
    default: return 0;
    }
}

ck_isa ck_isa_detected(void) {
    if (ck_cpu_has_avx512()) return CK_ISA_AVX512;
    if (ck_cpu_has_avx2_fma()) return CK_ISA_AVX2;
    return CK_ISA_REF;
}

static ck_isa ck_isa_from_env(void) {
    const char *v = getenv("CK_ISA");
    if (v != NULL) {
        ck_isa want = (ck_isa)-1;
        if (strcmp(v, "ref") == 0) want = CK_ISA_REF;
        else if (strcmp(v, "avx2") == 0) want = CK_ISA_AVX2;
        else if (strcmp(v, "avx512") == 0) want = CK_ISA_AVX512;
        if ((int)want >= 0 && ck_isa_supported(want)) return want;
    }
    return ck_isa_detected();
}

ck_isa ck_isa_active(void) {
    int cur = atomic_load_explicit(&ck_active, memory_order_relaxed);
    if (cur < 0) {
        int expected = -1;
        atomic_compare_exchange_strong(&ck_active, &expected, (int)ck_isa_from_env());
        cur = atomic_load_explicit(&ck_active, memory_order_relaxed);
    }
    return (ck_isa)cur;
}

/* Per-thread override (ck_isa_force_thread), -1 when unset. */
static _Thread_local int ck_thread_isa = -1;

ck_isa ck_dispatch_isa(void) {
    const int t = ck_thread_isa;
    return t >= 0 ? (ck_isa)t : ck_isa_active();
}

ck_status ck_isa_force_thread(int isa) {
    if (isa < 0) {
        ck_thread_isa = -1;
        return CK_OK;
    }
    if (!ck_isa_supported((ck_isa)isa)) return CK_ERR_UNSUPPORTED;
    ck_thread_isa = isa;
    return CK_OK;
}

ck_status ck_isa_force(ck_isa isa) {
    if (!ck_isa_supported(isa)) return CK_ERR_UNSUPPORTED;
    atomic_store_explicit(&ck_active, (int)isa, memory_order_relaxed);
    return CK_OK;
}

const char *ck_isa_name(ck_isa isa) {
    switch (isa) {
    case CK_ISA_REF: return "ref";
    case CK_ISA_AVX2: return "avx2";
    case CK_ISA_AVX512: return "avx512";
    default: return "unknown";
    }
}

const char *ck_status_string(ck_status status) {
    switch (status) {
    case CK_OK: return "ok";
    case CK_ERR_NULL_POINTER: return "a required pointer was NULL";
    case CK_ERR_BAD_SIZE: return "a size was negative or too large";
    case CK_ERR_BAD_LD: return "a leading dimension was smaller than its row";
    case CK_ERR_BAD_ARG: return "an argument was out of range";
    case CK_ERR_WORKSPACE: return "workspace missing, too small or not 64-byte aligned";
    case CK_ERR_UNSUPPORTED: return "not supported on this CPU or build";
    default: return "unknown status";
    }
}

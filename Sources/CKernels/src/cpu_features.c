/* CPU feature detection: CPUID for what the processor implements, XGETBV(XCR0) for what the OS
 * saves and restores on a context switch. A feature counts only when both say yes. */
#include "internal/dispatch.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>

static unsigned long long ck_xgetbv0(void) {
    unsigned int eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((unsigned long long)edx << 32) | eax;
}

static int ck_detect(int want_avx512) {
    unsigned int eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return 0;
    const int osxsave = (ecx >> 27) & 1, avx = (ecx >> 28) & 1, fma = (ecx >> 12) & 1;
    if (!osxsave || !avx) return 0;
    const unsigned long long xcr0 = ck_xgetbv0();
    if ((xcr0 & 0x6) != 0x6) return 0; /* XMM and YMM state */
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return 0;
    const int avx2 = (ebx >> 5) & 1;
    if (!want_avx512) return avx2 && fma;
    const int f = (ebx >> 16) & 1, dq = (ebx >> 17) & 1, bw = (ebx >> 30) & 1, vl = (ebx >> 31) & 1;
    if ((xcr0 & 0xE0) != 0xE0) return 0; /* opmask, ZMM_Hi256, Hi16_ZMM state */
    return avx2 && fma && f && dq && bw && vl;
}

int ck_cpu_has_avx2_fma(void) {
    static int cached = -1;
    if (cached < 0) cached = ck_detect(0);
    return cached;
}

int ck_cpu_has_avx512(void) {
    static int cached = -1;
    if (cached < 0) cached = ck_detect(1);
    return cached;
}
#else
int ck_cpu_has_avx2_fma(void) { return 0; }
int ck_cpu_has_avx512(void) { return 0; }
#endif

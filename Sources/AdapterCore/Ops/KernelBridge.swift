// The only Swift file that imports the C kernels. Everything else in AdapterCore calls through here.
internal import CKernels

/// The instruction set the C kernels dispatch to in this process.
///
/// Reads `CK_ISA` (`ref`, `avx2`, `avx512`) once; otherwise the best set the CPU and OS support.
public enum KernelISA: String, Sendable, CaseIterable {
    case reference = "ref"
    case avx2
    case avx512

    /// The set in use now.
    public static var active: KernelISA {
        switch ck_isa_active() {
        case CK_ISA_AVX512: return .avx512
        case CK_ISA_AVX2: return .avx2
        default: return .reference
        }
    }
}

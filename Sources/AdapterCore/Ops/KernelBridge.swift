// The only Swift file that imports the C kernels. Everything else in AdapterCore calls through the
// `KernelBridge` wrappers below, which take Swift types and turn a non-OK status into a precondition
// failure naming the kernel and `ck_status_string`.
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

    /// The best set this CPU and OS support (ignoring `CK_ISA` and `force`).
    public static var detected: KernelISA {
        switch ck_isa_detected() {
        case CK_ISA_AVX512: return .avx512
        case CK_ISA_AVX2: return .avx2
        default: return .reference
        }
    }

    /// Whether this CPU and OS can run `isa`.
    public var isSupported: Bool { ck_isa_supported(cValue) == 1 }

    /// Makes every dispatching kernel use `isa` from now on (tests and benchmarks; do not call while
    /// kernels run). Returns `false` (and changes nothing) when the CPU cannot run it.
    @discardableResult
    public static func force(_ isa: KernelISA) -> Bool {
        ck_isa_force(isa.cValue) == CK_OK
    }

    var cValue: ck_isa {
        switch self {
        case .reference: return CK_ISA_REF
        case .avx2: return CK_ISA_AVX2
        case .avx512: return CK_ISA_AVX512
        }
    }
}

/// Pointers and parameters of the fused GEMM epilogue (see `ck_epilogue` in ckernels.h).
struct GemmEpilogue {
    var bias: UnsafePointer<Float>? = nil
    var activation: Activation = .identity
    var residual: UnsafePointer<Float>? = nil
    var residualLD: Int = 0
    var preactivation: UnsafeMutablePointer<Float>? = nil
    var preactivationLD: Int = 0
}

/// Thin wrappers over the C entry points: Swift integer and pointer types in, status checked.
enum KernelBridge {
    @inline(__always)
    static func check(_ status: ck_status, _ op: @autoclosure () -> String) {
        if status != CK_OK {
            preconditionFailure("\(op()): kernel returned \(String(cString: ck_status_string(status)))")
        }
    }

    static func cActivation(_ a: Activation) -> (ck_act, Float) {
        switch a {
        case .identity: return (CK_ACT_NONE, 0)
        case .gelu: return (CK_ACT_GELU_ERF, 0)
        case .geluTanh: return (CK_ACT_GELU_TANH, 0)
        case .relu: return (CK_ACT_RELU, 0)
        case .silu: return (CK_ACT_SILU, 0)
        case .tanh: return (CK_ACT_TANH, 0)
        case .sigmoid: return (CK_ACT_SIGMOID, 0)
        case .leakyReLU(let slope): return (CK_ACT_LEAKY_RELU, slope)
        }
    }

    /// Pins OpenBLAS to one thread (the context splits the work itself). Safe to call repeatedly.
    static func pinCBLASThreads() {
        _ = ck_cblas_set_num_threads(1)
    }

    static func gemmWorkspaceSize(m: Int, n: Int, k: Int) -> Int {
        Int(ck_gemm_workspace_size(Int64(m), Int64(n), Int64(k)))
    }

    /// C[m,n] = epilogue(alpha · op(A) op(B) + beta · C). `ws` is the caller's workspace.
    static func gemm(
        backend: GemmBackend, workspace ws: UnsafeMutableRawBufferPointer,
        transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
        a: UnsafePointer<Float>?, lda: Int, b: UnsafePointer<Float>?, ldb: Int,
        c: UnsafeMutablePointer<Float>, ldc: Int, alpha: Float, beta: Float,
        epilogue: GemmEpilogue = GemmEpilogue(), op: @autoclosure () -> String
    ) {
        let (act, param) = cActivation(epilogue.activation)
        var e = ck_epilogue(bias: epilogue.bias, act: act, act_param: param,
                            residual: epilogue.residual, ld_residual: Int64(epilogue.residualLD),
                            preact: epilogue.preactivation, ld_preact: Int64(epilogue.preactivationLD))
        var w = ck_workspace(ptr: ws.baseAddress, bytes: ws.count)
        let ta = transposeA ? CK_TRANS : CK_NO_TRANS, tb = transposeB ? CK_TRANS : CK_NO_TRANS
        let status: ck_status
        switch backend {
        case .kernels:
            status = ck_gemm_f32(&w, ta, tb, Int64(m), Int64(n), Int64(k), a, Int64(lda), b, Int64(ldb),
                                 c, Int64(ldc), alpha, beta, &e)
        case .cblas:
            status = ck_gemm_f32_cblas(&w, ta, tb, Int64(m), Int64(n), Int64(k), a, Int64(lda), b, Int64(ldb),
                                       c, Int64(ldc), alpha, beta, &e)
        case .reference:
            status = ck_gemm_f32_ref(&w, ta, tb, Int64(m), Int64(n), Int64(k), a, Int64(lda), b, Int64(ldb),
                                     c, Int64(ldc), alpha, beta, &e)
        }
        check(status, "\(op()) (ck_gemm_f32, \(backend), m \(m) n \(n) k \(k))")
    }

    static func activationForward(count: Int, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
                                  activation: Activation, op: @autoclosure () -> String) {
        let (act, param) = cActivation(activation)
        check(ck_act_fwd_f32(Int64(count), x, y, act, param), "\(op()) (ck_act_fwd_f32)")
    }

    static func activationBackward(count: Int, x: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                                   dx: UnsafeMutablePointer<Float>, beta: Float, activation: Activation,
                                   op: @autoclosure () -> String) {
        let (act, param) = cActivation(activation)
        check(ck_act_bwd_f32(Int64(count), x, dy, dx, beta, act, param), "\(op()) (ck_act_bwd_f32)")
    }

    static func biasActivation(rows: Int, cols: Int, bias: UnsafePointer<Float>?,
                               c: UnsafeMutablePointer<Float>, ldc: Int, activation: Activation,
                               op: @autoclosure () -> String) {
        let (act, param) = cActivation(activation)
        check(ck_bias_act_fwd_f32(Int64(rows), Int64(cols), bias, c, Int64(ldc), act, param),
              "\(op()) (ck_bias_act_fwd_f32)")
    }

    static func layerNormForward(
        rows: Int, cols: Int, x: UnsafePointer<Float>, ldx: Int, residual: UnsafePointer<Float>?, ldResidual: Int,
        gamma: UnsafePointer<Float>?, beta: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>, ldy: Int,
        sum: UnsafeMutablePointer<Float>?, ldSum: Int, mean: UnsafeMutablePointer<Float>?,
        rstd: UnsafeMutablePointer<Float>?, eps: Float, op: @autoclosure () -> String
    ) {
        check(ck_layernorm_fwd_f32(Int64(rows), Int64(cols), x, Int64(ldx), residual, Int64(ldResidual),
                                   gamma, beta, y, Int64(ldy), sum, Int64(ldSum), mean, rstd, eps),
              "\(op()) (ck_layernorm_fwd_f32)")
    }

    static func layerNormBackward(
        rows: Int, cols: Int, s: UnsafePointer<Float>, lds: Int, gamma: UnsafePointer<Float>?,
        mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>, dy: UnsafePointer<Float>, lddy: Int,
        dx: UnsafeMutablePointer<Float>?, lddx: Int, dGamma: UnsafeMutablePointer<Float>?,
        dBeta: UnsafeMutablePointer<Float>?, betaDX: Float, op: @autoclosure () -> String
    ) {
        check(ck_layernorm_bwd_f32(Int64(rows), Int64(cols), s, Int64(lds), gamma, mean, rstd, dy, Int64(lddy),
                                   dx, Int64(lddx), dGamma, dBeta, betaDX),
              "\(op()) (ck_layernorm_bwd_f32)")
    }

    static func softmaxForward(
        rows: Int, cols: Int, x: UnsafePointer<Float>, ldx: Int, mask: UnsafePointer<Float>?, ldm: Int,
        maskGroup: Int, y: UnsafeMutablePointer<Float>, ldy: Int, scale: Float, op: @autoclosure () -> String
    ) {
        check(ck_softmax_fwd_f32(Int64(rows), Int64(cols), x, Int64(ldx), mask, Int64(ldm), Int64(maskGroup),
                                 y, Int64(ldy), scale),
              "\(op()) (ck_softmax_fwd_f32)")
    }

    static func softmaxBackward(
        rows: Int, cols: Int, y: UnsafePointer<Float>, ldy: Int, dy: UnsafePointer<Float>, lddy: Int,
        dx: UnsafeMutablePointer<Float>, lddx: Int, beta: Float, scale: Float, op: @autoclosure () -> String
    ) {
        check(ck_softmax_bwd_f32(Int64(rows), Int64(cols), y, Int64(ldy), dy, Int64(lddy), dx, Int64(lddx),
                                 beta, scale),
              "\(op()) (ck_softmax_bwd_f32)")
    }
}

extension GemmBackend {
    /// Sets the CBLAS provider's own thread count (OpenBLAS `openblas_set_num_threads`), for benchmarks
    /// that compare against the provider's internal threading. A `.cblas` `ComputeContext` pins it to 1
    /// when created, so call this after creating the context.
    /// - Returns: false if the provider has no such control (e.g. reference BLAS).
    @discardableResult
    public static func setCBLASThreads(_ threads: Int) -> Bool {
        ck_cblas_set_num_threads(Int32(max(threads, 1))) == 1
    }
}

// MARK: Pre-packed GEMM operands

extension KernelBridge {
    /// Bytes needed to pre-pack op(B) `[k, n]`.
    static func packedBSize(n: Int, k: Int) -> Int {
        Int(ck_gemm_pack_b_size(Int64(n), Int64(k)))
    }

    /// Packs op(B) `[k, n]` into `packed` (64-byte aligned, `packedBSize` bytes) for the ISA active now.
    static func packB(transposeB: Bool, n: Int, k: Int, b: UnsafePointer<Float>, ldb: Int,
                      packed: UnsafeMutableRawPointer, bytes: Int, op: @autoclosure () -> String) {
        check(ck_gemm_pack_b(transposeB ? CK_TRANS : CK_NO_TRANS, Int64(n), Int64(k), b, Int64(ldb), packed, bytes),
              "\(op()) (ck_gemm_pack_b)")
    }

    /// Restores the matrix a packed B was made from: op(B) `[k, n]` (`transposeB` false) or B stored
    /// `[n, k]` (`transposeB` true) into `b` with leading dimension `ldb` (exact copy of the values).
    static func unpackB(_ packed: UnsafeRawPointer, transposeB: Bool, b: UnsafeMutablePointer<Float>, ldb: Int,
                        op: @autoclosure () -> String) {
        check(ck_gemm_unpack_b(packed, transposeB ? CK_TRANS : CK_NO_TRANS, b, Int64(ldb)), "\(op()) (ck_gemm_unpack_b)")
    }

    /// Column granule of a packed B (tiles must start at multiples of it).
    static func packedBGranule(_ packed: UnsafeRawPointer) -> Int {
        Int(ck_gemm_pack_b_granule(packed))
    }

    /// C[m,n] = epilogue(alpha · op(A) · Bp[:, j0 ..< j0+n] + beta · C) with a pre-packed B.
    static func gemmPrepacked(
        workspace ws: UnsafeMutableRawBufferPointer, transposeA: Bool, m: Int, n: Int, k: Int,
        a: UnsafePointer<Float>?, lda: Int, packedB: UnsafeRawPointer, column j0: Int,
        c: UnsafeMutablePointer<Float>, ldc: Int, alpha: Float, beta: Float, epilogue: GemmEpilogue,
        op: @autoclosure () -> String
    ) {
        let (act, param) = cActivation(epilogue.activation)
        var e = ck_epilogue(bias: epilogue.bias, act: act, act_param: param,
                            residual: epilogue.residual, ld_residual: Int64(epilogue.residualLD),
                            preact: epilogue.preactivation, ld_preact: Int64(epilogue.preactivationLD))
        var w = ck_workspace(ptr: ws.baseAddress, bytes: ws.count)
        check(ck_gemm_f32_prepacked(&w, transposeA ? CK_TRANS : CK_NO_TRANS, Int64(m), Int64(n), Int64(k),
                                    a, Int64(lda), packedB, Int64(j0), c, Int64(ldc), alpha, beta, &e),
              "\(op()) (ck_gemm_f32_prepacked, m \(m) n \(n) k \(k) j0 \(j0))")
    }
}

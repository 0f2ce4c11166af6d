// Tests of the fused-epilogue GEMM (ck_gemm_f32 and its _ref / _cblas variants).
//
// Tiers (docs/numerics.md, "GEMM"):
//   A  exact: small-integer data, every ISA bitwise equal to ck_gemm_f32_ref. Because every path
//      follows the same per-element FMA chain (docs/kernels.md), random data must be bitwise equal
//      too whenever the activation is exact (none, ReLU, leaky ReLU); that is tested as well.
//   B  accuracy against a Double reference with a per-element bound (see `gemmTolerance`).
import CKernels
import Foundation
import Testing
import TestSupport

// MARK: - Problem description and runners

/// One GEMM call: C[m,n] = epilogue(alpha * op(A) op(B) + beta * C), row-major with explicit
/// leading dimensions. Buffers include the padding beyond each row (filled with NaN by `make`).
struct GemmCase: CustomStringConvertible {
    var m: Int, n: Int, k: Int
    var transA = false, transB = false
    var lda: Int, ldb: Int, ldc: Int
    var a: [Float], b: [Float], c: [Float]
    var alpha: Float = 1, beta: Float = 0
    var bias: [Float]? = nil
    var act: ck_act = CK_ACT_NONE
    var actParam: Float = 0
    var residual: [Float]? = nil
    var ldr = 0
    var preact = false
    var ldp = 0

    var description: String {
        "m\(m) n\(n) k\(k) \(transA ? "T" : "N")\(transB ? "T" : "N") lda\(lda) ldb\(ldb) ldc\(ldc) "
            + "alpha\(alpha) beta\(beta) bias\(bias != nil) act\(act.rawValue) res\(residual != nil) pre\(preact)"
    }

    /// Stored shape of A and B.
    var aRows: Int { transA ? k : m }
    var aCols: Int { transA ? m : k }
    var bRows: Int { transB ? n : k }
    var bCols: Int { transB ? k : n }

    /// Random case. `pad` extra elements per row (NaN filled) test ld > cols. `ints` gives small
    /// integers (tier A), else uniform [-scale, scale).
    static func make(
        m: Int, n: Int, k: Int, transA: Bool = false, transB: Bool = false, pad: Int = 0,
        ints: Bool = false, scale: Float = 1, seed: UInt64 = 1
    ) -> GemmCase {
        var rng = TestRNG(seed: seed)
        func fill(_ rows: Int, _ cols: Int, _ ld: Int) -> [Float] {
            var out = nanFilled(max(rows * ld, 0))
            for i in 0..<rows {
                for j in 0..<cols {
                    out[i * ld + j] = ints ? rng.smallIntegers(1)[0] : rng.uniform(-scale, scale)
                }
            }
            return out
        }
        let aRows = transA ? k : m, aCols = transA ? m : k
        let bRows = transB ? n : k, bCols = transB ? k : n
        let lda = aCols + pad, ldb = bCols + pad, ldc = n + pad
        return GemmCase(
            m: m, n: n, k: k, transA: transA, transB: transB, lda: lda, ldb: ldb, ldc: ldc,
            a: fill(aRows, aCols, lda), b: fill(bRows, bCols, ldb), c: fill(m, n, ldc))
    }
}

enum GemmBackend: CustomStringConvertible {
    case dispatch(ck_isa)
    case reference
    case cblas

    var description: String {
        switch self {
        case .dispatch(let isa): return String(cString: ck_isa_name(isa))
        case .reference: return "ref"
        case .cblas: return "cblas"
        }
    }

    /// Every backend this CPU can run.
    static var all: [GemmBackend] {
        var out: [GemmBackend] = [.reference, .cblas]
        for isa in [CK_ISA_REF, CK_ISA_AVX2, CK_ISA_AVX512] where ck_isa_supported(isa) == 1 {
            out.append(.dispatch(isa))
        }
        return out
    }

    /// The ISAs ck_gemm_f32 can be forced to.
    static var isas: [ck_isa] {
        [CK_ISA_REF, CK_ISA_AVX2, CK_ISA_AVX512].filter { ck_isa_supported($0) == 1 }
    }
}

/// Runs `body` with GEMM (and every dispatching entry point) forced to `isa` on this thread only,
/// so that tests running concurrently in the same process keep their ISA.
func withISA<R>(_ isa: ck_isa, _ body: () throws -> R) rethrows -> R {
    let status = ck_isa_force_thread(Int32(isa.rawValue))
    precondition(status == CK_OK, "ck_isa_force_thread(\(isa)) failed")
    defer { _ = ck_isa_force_thread(-1) }
    return try body()
}

/// A 64-byte aligned buffer of `bytes` bytes.
final class AlignedWorkspace {
    let ptr: UnsafeMutableRawPointer
    let bytes: Int
    init(bytes: Int) {
        self.bytes = bytes
        ptr = UnsafeMutableRawPointer.allocate(byteCount: max(bytes, 64), alignment: 64)
    }
    deinit { ptr.deallocate() }
}

struct GemmResult {
    var status: ck_status
    var c: [Float]
    var preact: [Float]?
}

/// Runs `cs` on `backend`. `residualIsC` passes C itself as the residual (aliasing).
/// `preactFill` is what the pre-activation buffer holds before the call.
func runGemm(
    _ cs: GemmCase, _ backend: GemmBackend, residualIsC: Bool = false, workspaceBytes: Int? = nil
) -> GemmResult {
    var c = cs.c
    var preact: [Float]? = cs.preact ? nanFilled(cs.m * cs.ldp) : nil
    let wsBytes = workspaceBytes ?? ck_gemm_workspace_size(Int64(cs.m), Int64(cs.n), Int64(cs.k))
        + (residualIsC ? cs.m * cs.n * 4 : 0)
    let ws = AlignedWorkspace(bytes: wsBytes)
    var workspace = ck_workspace(ptr: ws.ptr, bytes: wsBytes)
    var status = CK_OK
    cs.a.withUnsafeBufferPointer { a in
        cs.b.withUnsafeBufferPointer { b in
            c.withUnsafeMutableBufferPointer { c in
                let bias = cs.bias
                let residual = cs.residual
                withOptionalPointer(bias) { biasPtr in
                    withOptionalPointer(residual) { resPtr in
                        withOptionalMutablePointer(&preact) { prePtr in
                            var ep = ck_epilogue()
                            ep.bias = biasPtr
                            ep.act = cs.act
                            ep.act_param = cs.actParam
                            ep.residual = residualIsC ? UnsafePointer(c.baseAddress) : resPtr
                            ep.ld_residual = Int64(residualIsC ? cs.ldc : cs.ldr)
                            ep.preact = prePtr
                            ep.ld_preact = Int64(cs.ldp)
                            let args = (
                                Int64(cs.m), Int64(cs.n), Int64(cs.k), a.baseAddress, Int64(cs.lda),
                                b.baseAddress, Int64(cs.ldb), c.baseAddress, Int64(cs.ldc)
                            )
                            let ta = cs.transA ? CK_TRANS : CK_NO_TRANS
                            let tb = cs.transB ? CK_TRANS : CK_NO_TRANS
                            switch backend {
                            case .reference:
                                status = ck_gemm_f32_ref(
                                    &workspace, ta, tb, args.0, args.1, args.2, args.3, args.4, args.5,
                                    args.6, args.7, args.8, cs.alpha, cs.beta, &ep)
                            case .cblas:
                                status = ck_gemm_f32_cblas(
                                    &workspace, ta, tb, args.0, args.1, args.2, args.3, args.4, args.5,
                                    args.6, args.7, args.8, cs.alpha, cs.beta, &ep)
                            case .dispatch(let isa):
                                status = withISA(isa) {
                                    ck_gemm_f32(
                                        &workspace, ta, tb, args.0, args.1, args.2, args.3, args.4, args.5,
                                        args.6, args.7, args.8, cs.alpha, cs.beta, &ep)
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    return GemmResult(status: status, c: c, preact: preact)
}

/// Packs op(B) of `cs` with ck_gemm_pack_b under `isa` and runs ck_gemm_f32_prepacked on the
/// columns [j0, j0 + n) (C, bias etc. of `cs` describe that sub-range; `full` is the whole B).
func runPrepacked(_ cs: GemmCase, fullB: [Float], nTotal: Int, ldb: Int, j0: Int, isa: ck_isa) -> GemmResult {
    _ = ck_isa_force_thread(Int32(isa.rawValue))
    defer { _ = ck_isa_force_thread(-1) }
    let pbytes = ck_gemm_pack_b_size(Int64(nTotal), Int64(cs.k))
    let packed = AlignedWorkspace(bytes: pbytes)
    let st = fullB.withUnsafeBufferPointer { b in
        ck_gemm_pack_b(cs.transB ? CK_TRANS : CK_NO_TRANS, Int64(nTotal), Int64(cs.k), b.baseAddress, Int64(ldb),
                       packed.ptr, pbytes)
    }
    #expect(st == CK_OK)
    var c = cs.c
    var preact: [Float]? = cs.preact ? nanFilled(cs.m * cs.ldp) : nil
    let wsBytes = ck_gemm_workspace_size(Int64(cs.m), Int64(cs.n), Int64(cs.k))
    let ws = AlignedWorkspace(bytes: wsBytes)
    var workspace = ck_workspace(ptr: ws.ptr, bytes: wsBytes)
    var status = CK_OK
    cs.a.withUnsafeBufferPointer { a in
        c.withUnsafeMutableBufferPointer { cp in
            withOptionalPointer(cs.bias) { biasPtr in
                withOptionalPointer(cs.residual) { resPtr in
                    withOptionalMutablePointer(&preact) { prePtr in
                        var ep = ck_epilogue()
                        ep.bias = biasPtr
                        ep.act = cs.act
                        ep.act_param = cs.actParam
                        ep.residual = resPtr
                        ep.ld_residual = Int64(cs.ldr)
                        ep.preact = prePtr
                        ep.ld_preact = Int64(cs.ldp)
                        status = ck_gemm_f32_prepacked(
                            &workspace, cs.transA ? CK_TRANS : CK_NO_TRANS, Int64(cs.m), Int64(cs.n), Int64(cs.k),
                            a.baseAddress, Int64(cs.lda), packed.ptr, Int64(j0), cp.baseAddress, Int64(cs.ldc),
                            cs.alpha, cs.beta, &ep)
                    }
                }
            }
        }
    }
    return GemmResult(status: status, c: c, preact: preact)
}

func withOptionalPointer<R>(_ array: [Float]?, _ body: (UnsafePointer<Float>?) -> R) -> R {
    guard let array else { return body(nil) }
    return array.withUnsafeBufferPointer { body($0.baseAddress) }
}

func withOptionalMutablePointer<R>(_ array: inout [Float]?, _ body: (UnsafeMutablePointer<Float>?) -> R) -> R {
    guard array != nil else { return body(nil) }
    return array!.withUnsafeMutableBufferPointer { body($0.baseAddress) }
}

// MARK: - Double reference

func actDouble(_ x: Double, _ act: ck_act, _ p: Double) -> Double {
    switch act {
    case CK_ACT_GELU_ERF: return 0.5 * x * (1 + erf(x / 2.0.squareRoot()))
    case CK_ACT_GELU_TANH: return 0.5 * x * (1 + tanh((2 / Double.pi).squareRoot() * (x + 0.044715 * x * x * x)))
    case CK_ACT_RELU: return x < 0 ? 0 : x
    case CK_ACT_SILU: return x / (1 + exp(-x))
    case CK_ACT_TANH: return tanh(x)
    case CK_ACT_SIGMOID: return 1 / (1 + exp(-x))
    case CK_ACT_LEAKY_RELU: return x >= 0 ? x : p * x
    default: return x
    }
}

/// Double-precision expected C and pre-activation, plus per-element magnitude
/// |beta*c| + sum_p |alpha*a*b| + |bias| that bounds the rounding error of the fp32 chain.
func gemmDouble(_ cs: GemmCase) -> (c: [Double], preact: [Double], magnitude: [Double]) {
    var out = [Double](repeating: .nan, count: cs.m * cs.ldc)
    var pre = [Double](repeating: 0, count: cs.m * cs.n)
    var mag = [Double](repeating: 0, count: cs.m * cs.n)
    for i in 0..<cs.m {
        for j in 0..<cs.n {
            var s = 0.0, sAbs = 0.0
            for p in 0..<cs.k {
                let av = Double(cs.transA ? cs.a[p * cs.lda + i] : cs.a[i * cs.lda + p])
                let bv = Double(cs.transB ? cs.b[j * cs.ldb + p] : cs.b[p * cs.ldb + j])
                s += av * bv
                sAbs += abs(av * bv)
            }
            var t = Double(cs.alpha) * s
            var m = abs(Double(cs.alpha)) * sAbs
            if cs.beta != 0 {
                t += Double(cs.beta) * Double(cs.c[i * cs.ldc + j])
                m += abs(Double(cs.beta) * Double(cs.c[i * cs.ldc + j]))
            }
            if let bias = cs.bias {
                t += Double(bias[j])
                m += abs(Double(bias[j]))
            }
            pre[i * cs.n + j] = t
            mag[i * cs.n + j] = m
            var y = actDouble(t, cs.act, Double(cs.actParam))
            if let r = cs.residual { y += Double(r[i * cs.ldr + j]) }
            out[i * cs.ldc + j] = y
        }
    }
    return (out, pre, mag)
}

/// Per-element bound for tier B, from the standard FMA-chain error analysis (Higham, Accuracy and
/// Stability of Numerical Algorithms, 2nd ed., §3.1): the fp32 chain of k FMAs after the beta*C
/// and alpha*a roundings has |fl(t) - t| <= gamma_{k+3} * magnitude, gamma_n = n*u/(1-n*u),
/// u = 2^-24, where magnitude = |beta c| + sum |alpha a b| + |bias|. The activation can amplify an
/// input error by at most max|act'| (1.13 for GELU, 1 for the others here) and adds its own few-ulp
/// error (8 ulps of max(|y|, 1e-30) allowed, the accuracy eltwise documents for the vector
/// activations is tighter); the residual add rounds once more (1 ulp of the result).
func gemmTolerance(k: Int, magnitude: Double, result: Double) -> Double {
    let u = 0x1p-24
    let n = Double(k + 3)
    let gamma = n * u / (1 - n * u)
    return 1.13 * gamma * magnitude + 8 * u * abs(result) + 1e-37
}

struct AccuracyReport {
    var failures = 0
    var maxAbs = 0.0
    var maxRatio = 0.0  // max err / tolerance
    var maxRelToMagnitude = 0.0  // max err / magnitude, in units of k*u
    var first: [String] = []
}

/// Tier-B check of C (valid region; padding must stay NaN) and of the pre-activation output.
@discardableResult
func checkAccuracy(_ cs: GemmCase, _ r: GemmResult, _ what: String, sourceLocation: SourceLocation = #_sourceLocation)
    -> AccuracyReport
{
    let (expected, pre, mag) = gemmDouble(cs)
    var rep = AccuracyReport()
    func check(_ got: Float, _ want: Double, _ m: Double, _ label: String) {
        let err = abs(Double(got) - want)
        let tol = gemmTolerance(k: cs.k, magnitude: m, result: want)
        if !(err <= tol) {
            rep.failures += 1
            if rep.first.count < 4 { rep.first.append("\(label): \(got) vs \(want) (tol \(tol))") }
        }
        if err.isFinite {
            rep.maxAbs = max(rep.maxAbs, err)
            rep.maxRatio = max(rep.maxRatio, err / tol)
            if m > 0 && cs.k > 0 { rep.maxRelToMagnitude = max(rep.maxRelToMagnitude, err / m / (Double(cs.k) * 0x1p-24)) }
        }
    }
    for i in 0..<cs.m {
        for j in 0..<cs.n {
            let idx = i * cs.n + j
            check(r.c[i * cs.ldc + j], expected[i * cs.ldc + j], mag[idx], "C[\(i),\(j)]")
            if let p = r.preact { check(p[i * cs.ldp + j], pre[idx], mag[idx], "preact[\(i),\(j)]") }
        }
        for j in cs.n..<cs.ldc where !r.c[i * cs.ldc + j].isNaN {
            rep.failures += 1
            rep.first.append("padding C[\(i),\(j)] written")
        }
        if let p = r.preact {
            for j in cs.n..<cs.ldp where !p[i * cs.ldp + j].isNaN {
                rep.failures += 1
                rep.first.append("padding preact[\(i),\(j)] written")
            }
        }
    }
    if rep.failures > 0 {
        Issue.record("\(what) \(cs): \(rep.failures) failures, max abs \(rep.maxAbs): \(rep.first)",
                     sourceLocation: sourceLocation)
    }
    return rep
}

/// Equal as values (NaN == NaN, -0 == +0): for the cblas backend, whose summation order is the
/// provider's, on exact data.
func expectEqualValues(_ actual: [Float], _ expected: [Float], _ what: String,
                       sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(actual.count == expected.count)
    for i in 0..<min(actual.count, expected.count) where !(actual[i] == expected[i] || (actual[i].isNaN && expected[i].isNaN)) {
        Issue.record("\(what): first difference at [\(i)]: \(actual[i]) vs \(expected[i])", sourceLocation: sourceLocation)
        return
    }
}

/// Adds a bias / activation / residual / pre-activation epilogue to a case.
func withEpilogue(_ base: GemmCase, bias: Bool, act: ck_act, residual: Bool, preact: Bool, ints: Bool = false,
                  seed: UInt64 = 7) -> GemmCase {
    var cs = base
    var rng = TestRNG(seed: seed)
    if bias { cs.bias = ints ? rng.smallIntegers(cs.n) : rng.uniformArray(cs.n) }
    cs.act = act
    cs.actParam = act == CK_ACT_LEAKY_RELU ? 0.25 : 0
    if residual {
        cs.ldr = cs.n + 3
        var r = nanFilled(cs.m * cs.ldr)
        for i in 0..<cs.m {
            for j in 0..<cs.n { r[i * cs.ldr + j] = ints ? rng.smallIntegers(1)[0] : rng.uniform() }
        }
        cs.residual = r
    }
    if preact {
        cs.preact = true
        cs.ldp = cs.n + 2
    }
    return cs
}

let allActs: [ck_act] = [
    CK_ACT_NONE, CK_ACT_GELU_ERF, CK_ACT_GELU_TANH, CK_ACT_RELU, CK_ACT_SILU, CK_ACT_TANH,
    CK_ACT_SIGMOID, CK_ACT_LEAKY_RELU,
]
/// Activations every path computes with exactly the same fp32 operations.
let exactActs: [ck_act] = [CK_ACT_NONE, CK_ACT_RELU, CK_ACT_LEAKY_RELU]

/// Edge sizes: 0, 1, vector widths (8, 16) and micro-tile sizes (MR in {6, 8}, NR in {16, 48})
/// plus and minus one, and primes.
let edgeSizes = [0, 1, 2, 5, 6, 7, 8, 9, 13, 15, 16, 17, 31, 47, 48, 49, 53]

// MARK: - Tests

@Suite struct GemmTests {
    // Tier A: exact small-integer data; every backend bitwise equal to the reference. Sums stay
    // below 2^24 (|a b| <= 16, k <= 600), so cblas must agree bitwise too.
    @Test func tierAExactSmallIntegers() {
        var checked = 0
        for (idx, (m, n, k)) in [(1, 1, 1), (7, 17, 5), (8, 48, 33), (9, 49, 64), (17, 97, 300), (33, 50, 600),
                                  (130, 100, 257)].enumerated() {
            for ta in [false, true] {
                for tb in [false, true] {
                    var cs = GemmCase.make(m: m, n: n, k: k, transA: ta, transB: tb, pad: 3, ints: true,
                                           seed: UInt64(idx * 4 + (ta ? 2 : 0) + (tb ? 1 : 0)))
                    cs.beta = [0, 1, -2, 0.5][idx % 4]
                    cs.alpha = [1, 2, 0.5, -1][(idx + 1) % 4]
                    let ref = runGemm(cs, .reference)
                    #expect(ref.status == CK_OK)
                    for backend in GemmBackend.all {
                        let r = runGemm(cs, backend)
                        #expect(r.status == CK_OK, "\(backend) \(cs)")
                        if case .cblas = backend {
                            // The provider's summation order may turn an exact 0 into -0.
                            expectEqualValues(r.c, ref.c, "\(backend) \(cs)")
                        } else {
                            expectBitwiseEqual(r.c, ref.c, "\(backend) \(cs)")
                        }
                        checked += 1
                    }
                }
            }
        }
        #expect(checked > 0)
    }

    // Tier A with epilogues: exact activations and integer bias/residual.
    @Test func tierAExactEpilogues() {
        let base = GemmCase.make(m: 19, n: 53, k: 70, transB: true, pad: 2, ints: true, seed: 11)
        for act in exactActs {
            for bias in [false, true] {
                for residual in [false, true] {
                    for preact in [false, true] {
                        var cs = withEpilogue(base, bias: bias, act: act, residual: residual, preact: preact, ints: true)
                        cs.beta = residual ? 1 : 0
                        let ref = runGemm(cs, .reference)
                        for backend in GemmBackend.all {
                            let r = runGemm(cs, backend)
                            #expect(r.status == CK_OK)
                            expectEqualValues(r.c, ref.c, "\(backend) C \(cs)")
                            if preact { expectEqualValues(r.preact!, ref.preact!, "\(backend) preact \(cs)") }
                            if case .cblas = backend { continue }
                            expectBitwiseEqual(r.c, ref.c, "\(backend) C \(cs)")
                            if preact { expectBitwiseEqual(r.preact!, ref.preact!, "\(backend) preact \(cs)") }
                        }
                    }
                }
            }
        }
    }

    // The shared arithmetic contract (docs/kernels.md): random (non-integer) data, every ISA of
    // ck_gemm_f32 bitwise equal to the reference for exact activations, including K > KC.
    @Test func everyIsaFollowsTheReferenceChainBitwise() {
        for (m, n, k) in [(5, 7, 3), (17, 49, 300), (33, 97, 1100), (150, 60, 1700)] {
            for ta in [false, true] {
                for tb in [false, true] {
                    var cs = GemmCase.make(m: m, n: n, k: k, transA: ta, transB: tb, pad: 1, seed: UInt64(m + n))
                    cs.alpha = 0.7
                    cs.beta = 1.3
                    cs = withEpilogue(cs, bias: true, act: CK_ACT_LEAKY_RELU, residual: true, preact: true)
                    let ref = runGemm(cs, .reference)
                    for isa in GemmBackend.isas {
                        let r = runGemm(cs, .dispatch(isa))
                        expectBitwiseEqual(r.c, ref.c, "\(GemmBackend.dispatch(isa)) \(cs)")
                        expectBitwiseEqual(r.preact!, ref.preact!, "preact \(GemmBackend.dispatch(isa)) \(cs)")
                    }
                }
            }
        }
    }

    // Tier B: every trans combination and edge shapes against Double.
    @Test func tierBEdgeShapes() {
        var worst = AccuracyReport()
        var seed: UInt64 = 100
        for m in edgeSizes {
            for n in [0, 1, 15, 16, 17, 47, 48, 49] {
                for k in [0, 1, 7, 16, 33] {
                    seed += 1
                    let ta = seed % 2 == 0, tb = (seed / 2) % 2 == 0
                    var cs = GemmCase.make(m: m, n: n, k: k, transA: ta, transB: tb, pad: 2, seed: seed)
                    cs.beta = seed % 3 == 0 ? 0 : 0.5
                    for backend in GemmBackend.all {
                        let r = runGemm(cs, backend)
                        #expect(r.status == CK_OK, "\(backend) \(cs)")
                        let rep = checkAccuracy(cs, r, "\(backend)")
                        worst.maxRelToMagnitude = max(worst.maxRelToMagnitude, rep.maxRelToMagnitude)
                        worst.maxRatio = max(worst.maxRatio, rep.maxRatio)
                    }
                }
            }
        }
        print("GEMM tier B edge shapes: max err/(k u magnitude) = \(worst.maxRelToMagnitude), max err/tol = \(worst.maxRatio)")
    }

    // Tier B: every epilogue combination (all activations, bias, residual, preact) on every backend.
    @Test func tierBEveryEpilogue() {
        let base = GemmCase.make(m: 23, n: 50, k: 129, transA: false, transB: true, pad: 1, scale: 1, seed: 5)
        var worstPerAct: [String: (abs: Double, ratio: Double)] = [:]
        for act in allActs {
            for bias in [false, true] {
                for residual in [false, true] {
                    for preact in [false, true] {
                        var cs = withEpilogue(base, bias: bias, act: act, residual: residual, preact: preact)
                        cs.beta = bias ? 1 : 0
                        for backend in GemmBackend.all {
                            let r = runGemm(cs, backend)
                            #expect(r.status == CK_OK)
                            let rep = checkAccuracy(cs, r, "\(backend)")
                            let key = "\(backend) act \(act.rawValue)"
                            let w = worstPerAct[key, default: (0, 0)]
                            worstPerAct[key] = (max(w.abs, rep.maxAbs), max(w.ratio, rep.maxRatio))
                        }
                    }
                }
            }
        }
        for (key, w) in worstPerAct.sorted(by: { $0.key < $1.key }) {
            print("GEMM tier B epilogue \(key): max abs err \(w.abs), max err/tol \(w.ratio)")
        }
    }

    // Tier B: large magnitudes (values near +-1e4) and long K.
    @Test func tierBLargeMagnitudesAndLongK() {
        for (m, n, k, scale) in [(9, 33, 1000, Float(1e4)), (16, 48, 3072, Float(1)), (3, 5, 5000, Float(1e4))] {
            var cs = GemmCase.make(m: m, n: n, k: k, transB: true, scale: scale, seed: UInt64(k))
            cs = withEpilogue(cs, bias: true, act: CK_ACT_GELU_ERF, residual: false, preact: true)
            for backend in GemmBackend.all {
                let r = runGemm(cs, backend)
                let rep = checkAccuracy(cs, r, "\(backend)")
                print("GEMM tier B m\(m) n\(n) k\(k) scale \(scale) \(backend): max abs err \(rep.maxAbs), max err/(k u magnitude) \(rep.maxRelToMagnitude)")
            }
        }
    }

    // beta == 0 never reads C (NaN there must not leak), K == 0 gives epilogue(beta*C), and NaN
    // padding beyond each row of A, B and C never leaks (make() pads with NaN).
    @Test func betaZeroAndKZero() {
        for backend in GemmBackend.all {
            var cs = GemmCase.make(m: 10, n: 20, k: 9, pad: 3, seed: 3)
            cs.c = nanFilled(cs.c.count)
            cs.beta = 0
            let r = runGemm(cs, backend)
            checkAccuracy(cs, r, "\(backend) beta 0 into NaN C")

            var k0 = GemmCase.make(m: 10, n: 20, k: 0, pad: 3, seed: 4)
            k0.beta = 0.5
            k0 = withEpilogue(k0, bias: true, act: CK_ACT_GELU_TANH, residual: true, preact: true)
            checkAccuracy(k0, runGemm(k0, backend), "\(backend) k 0")
            var k0b = GemmCase.make(m: 10, n: 20, k: 0, pad: 3, seed: 4)
            k0b.c = nanFilled(k0b.c.count)
            k0b.beta = 0
            let r0 = runGemm(k0b, backend)
            for i in 0..<10 { for j in 0..<20 { #expect(r0.c[i * k0b.ldc + j] == 0, "\(backend) k0 beta0") } }
        }
    }

    // The residual may be C itself (beta == 0), also when K spans several K blocks.
    @Test func residualAliasingC() {
        for k in [40, 1500] {
            var cs = GemmCase.make(m: 21, n: 37, k: k, transB: true, pad: 1, seed: UInt64(k))
            cs.beta = 0
            cs.act = CK_ACT_RELU
            var expectedCase = cs
            expectedCase.residual = cs.c
            expectedCase.ldr = cs.ldc
            let ref = runGemm(expectedCase, .reference)
            for backend in GemmBackend.all {
                let r = runGemm(cs, backend, residualIsC: true)
                #expect(r.status == CK_OK)
                if case .cblas = backend {
                    checkAccuracy(expectedCase, r, "cblas residual aliasing C")
                } else {
                    expectBitwiseEqual(r.c, ref.c, "\(backend) residual aliasing C k\(k)")
                }
            }
        }
    }

    // Splitting M or N across calls (what the Swift threading layer does) is bitwise identical to
    // one call, for every ISA.
    @Test func splittingRowsOrColumnsIsBitwiseIdentical() {
        for isa in GemmBackend.isas {
            for (m, n, k) in [(128, 96, 768), (37, 101, 300)] {
                var cs = GemmCase.make(m: m, n: n, k: k, transB: true, seed: UInt64(m * n))
                cs = withEpilogue(cs, bias: true, act: CK_ACT_GELU_ERF, residual: false, preact: false)
                let full = runGemm(cs, .dispatch(isa)).c
                for splitRows in [true, false] {
                    let cut = splitRows ? m / 2 : n / 2
                    var parts = cs.c
                    for half in 0..<2 {
                        var sub = cs
                        let lo = half == 0 ? 0 : cut, hi = half == 0 ? cut : (splitRows ? m : n)
                        if splitRows {
                            sub.m = hi - lo
                            sub.a = Array(cs.a[(lo * cs.lda)..<(hi * cs.lda)])
                            sub.c = Array(cs.c[(lo * cs.ldc)..<(hi * cs.ldc)])
                            let r = runGemm(sub, .dispatch(isa))
                            parts.replaceSubrange((lo * cs.ldc)..<(hi * cs.ldc), with: r.c)
                        } else {
                            // B is [n, k] (trans): rows lo..<hi of B, columns lo..<hi of C and bias.
                            sub.n = hi - lo
                            sub.b = Array(cs.b[(lo * cs.ldb)..<(hi * cs.ldb)])
                            sub.bias = Array(cs.bias![lo..<hi])
                            sub.ldc = sub.n
                            sub.c = (0..<m).flatMap { i in cs.c[(i * cs.ldc + lo)..<(i * cs.ldc + hi)] }
                            let r = runGemm(sub, .dispatch(isa))
                            for i in 0..<m {
                                parts.replaceSubrange((i * cs.ldc + lo)..<(i * cs.ldc + hi),
                                                      with: r.c[(i * sub.ldc)..<((i + 1) * sub.ldc)])
                            }
                        }
                    }
                    expectBitwiseEqual(parts, full, "\(GemmBackend.dispatch(isa)) split \(splitRows ? "rows" : "columns") m\(m) n\(n) k\(k)")
                }
            }
        }
    }

    // Argument validation: every bad argument returns its status and writes nothing.
    @Test func argumentValidation() {
        let cs = GemmCase.make(m: 4, n: 5, k: 3, seed: 9)
        let wsBytes = ck_gemm_workspace_size(4, 5, 3)
        let ws = AlignedWorkspace(bytes: wsBytes + 128)
        var c = cs.c
        let before = c
        func call(_ backend: Int, ta: ck_trans = CK_NO_TRANS, tb: ck_trans = CK_NO_TRANS,
                  m: Int64 = 4, n: Int64 = 5, k: Int64 = 3, lda: Int64 = 3, ldb: Int64 = 5, ldc: Int64 = 5,
                  nullA: Bool = false, nullB: Bool = false, nullC: Bool = false,
                  wsPtr: UnsafeMutableRawPointer? = nil, wsSize: Int? = nil, act: ck_act = CK_ACT_NONE,
                  ldr: Int64 = 5) -> ck_status {
            var workspace = ck_workspace(ptr: wsPtr ?? ws.ptr, bytes: wsSize ?? wsBytes)
            var ep = ck_epilogue()
            ep.act = act
            return cs.a.withUnsafeBufferPointer { a in
                cs.b.withUnsafeBufferPointer { b in
                    cs.c.withUnsafeBufferPointer { r in
                        c.withUnsafeMutableBufferPointer { cp in
                            ep.residual = r.baseAddress
                            ep.ld_residual = ldr
                            let ap = nullA ? nil : a.baseAddress, bp = nullB ? nil : b.baseAddress
                            let cptr = nullC ? nil : cp.baseAddress
                            switch backend {
                            case 0: return ck_gemm_f32(&workspace, ta, tb, m, n, k, ap, lda, bp, ldb, cptr, ldc, 1, 0, &ep)
                            case 1: return ck_gemm_f32_ref(&workspace, ta, tb, m, n, k, ap, lda, bp, ldb, cptr, ldc, 1, 0, &ep)
                            default: return ck_gemm_f32_cblas(&workspace, ta, tb, m, n, k, ap, lda, bp, ldb, cptr, ldc, 1, 0, &ep)
                            }
                        }
                    }
                }
            }
        }
        for backend in 0..<3 {
            #expect(call(backend, m: -1) == CK_ERR_BAD_SIZE)
            #expect(call(backend, k: -2) == CK_ERR_BAD_SIZE)
            #expect(call(backend, ta: ck_trans(rawValue: 2)) == CK_ERR_BAD_ARG)
            #expect(call(backend, tb: ck_trans(rawValue: 7)) == CK_ERR_BAD_ARG)
            #expect(call(backend, act: ck_act(rawValue: 99)) == CK_ERR_BAD_ARG)
            #expect(call(backend, nullA: true) == CK_ERR_NULL_POINTER)
            #expect(call(backend, nullB: true) == CK_ERR_NULL_POINTER)
            #expect(call(backend, nullC: true) == CK_ERR_NULL_POINTER)
            #expect(call(backend, lda: 2) == CK_ERR_BAD_LD)
            #expect(call(backend, ldb: 4) == CK_ERR_BAD_LD)
            #expect(call(backend, ldc: 4) == CK_ERR_BAD_LD)
            #expect(call(backend, ldc: -1) == CK_ERR_BAD_LD)
            #expect(call(backend, ta: CK_TRANS, lda: 3) == CK_ERR_BAD_LD)  // A^T stored [3, 4]: lda >= 4
            #expect(call(backend, ldr: 4) == CK_ERR_BAD_LD)
        }
        if wsBytes > 0 {
            #expect(call(0, wsSize: wsBytes - 1) == CK_ERR_WORKSPACE)
            #expect(call(0, wsPtr: ws.ptr + 4) == CK_ERR_WORKSPACE)
            var nullWs = ck_workspace(ptr: nil, bytes: 0)
            let st = cs.a.withUnsafeBufferPointer { a in
                cs.b.withUnsafeBufferPointer { b in
                    c.withUnsafeMutableBufferPointer { cp in
                        ck_gemm_f32(&nullWs, CK_NO_TRANS, CK_NO_TRANS, 4, 5, 3, a.baseAddress, 3, b.baseAddress, 5,
                                    cp.baseAddress, 5, 1, 0, nil)
                    }
                }
            }
            #expect(st == CK_ERR_WORKSPACE)
        }
        expectBitwiseEqual(c, before, "validation failures wrote to C")
        // Empty problems: NULL operands allowed, C untouched.
        #expect(call(0, m: 0, nullA: true) == CK_OK)
        #expect(call(0, k: 0, nullA: true, nullB: true) == CK_OK)
        #expect(ck_gemm_workspace_size(0, 5, 5) == 0)
        #expect(ck_gemm_workspace_size(-1, 5, 5) == 0)
    }

    // Pre-packed B: bitwise equal to ck_gemm_f32 on the same ISA (every ISA, every trans, edge
    // sizes, K over several K blocks), including column sub-ranges starting at the granule.
    @Test func prepackedMatchesUnpackedBitwise() {
        for isa in GemmBackend.isas {
            for (m, n, k) in [(1, 1, 1), (9, 49, 17), (37, 101, 700), (8, 96, 0)] {
                for ta in [false, true] {
                    for tb in [false, true] {
                        var cs = GemmCase.make(m: m, n: n, k: k, transA: ta, transB: tb, pad: 1, seed: UInt64(m * 7 + n))
                        cs.alpha = 0.75
                        cs.beta = 0.5
                        cs = withEpilogue(cs, bias: true, act: CK_ACT_GELU_TANH, residual: true, preact: true)
                        let want = runGemm(cs, .dispatch(isa))
                        let got = runPrepacked(cs, fullB: cs.b, nTotal: n, ldb: cs.ldb, j0: 0, isa: isa)
                        #expect(got.status == CK_OK)
                        expectBitwiseEqual(got.c, want.c, "prepacked \(GemmBackend.dispatch(isa)) \(cs)")
                        expectBitwiseEqual(got.preact!, want.preact!, "prepacked preact \(GemmBackend.dispatch(isa)) \(cs)")
                    }
                }
            }
            // Column halves at a granule boundary, as a threading layer would split N.
            let (m, n, k) = (20, 3 * 48 + 5, 300)
            var cs = GemmCase.make(m: m, n: n, k: k, transB: true, seed: 77)
            cs = withEpilogue(cs, bias: true, act: CK_ACT_RELU, residual: false, preact: false)
            let full = runGemm(cs, .dispatch(isa)).c
            let probe = AlignedWorkspace(bytes: ck_gemm_pack_b_size(Int64(n), Int64(k)))
            let probeStatus = withISA(isa) {
                cs.b.withUnsafeBufferPointer {
                    ck_gemm_pack_b(CK_TRANS, Int64(n), Int64(k), $0.baseAddress, Int64(cs.ldb), probe.ptr, probe.bytes)
                }
            }
            #expect(probeStatus == CK_OK)
            let granule = Int(ck_gemm_pack_b_granule(probe.ptr))
            #expect(granule >= 1)
            let cut = max(granule, (n / 2) / granule * granule)
            var parts = cs.c
            for (lo, hi) in [(0, cut), (cut, n)] {
                var sub = cs
                sub.n = hi - lo
                sub.bias = Array(cs.bias![lo..<hi])
                sub.ldc = sub.n
                sub.c = (0..<m).flatMap { i in cs.c[(i * cs.ldc + lo)..<(i * cs.ldc + hi)] }
                let r = runPrepacked(sub, fullB: cs.b, nTotal: n, ldb: cs.ldb, j0: lo, isa: isa)
                #expect(r.status == CK_OK)
                for i in 0..<m {
                    parts.replaceSubrange((i * cs.ldc + lo)..<(i * cs.ldc + hi), with: r.c[(i * sub.ldc)..<((i + 1) * sub.ldc)])
                }
            }
            expectBitwiseEqual(parts, full, "prepacked column split \(GemmBackend.dispatch(isa))")
            if granule > 1 {
                // A sub-range that does not start at the granule is rejected, writing nothing.
                var sub = cs
                sub.n = 4
                sub.ldc = 4
                sub.bias = Array(cs.bias![1..<5])
                sub.c = nanFilled(m * 4)
                let r = runPrepacked(sub, fullB: cs.b, nTotal: n, ldb: cs.ldb, j0: 1, isa: isa)
                #expect(r.status == CK_ERR_BAD_ARG)
                #expect(r.c.allSatisfy { $0.isNaN })
            }
        }
    }

    @Test func prepackedValidation() {
        let pbytes = ck_gemm_pack_b_size(10, 8)
        #expect(pbytes >= 64 + 10 * 8 * 4)
        #expect(ck_gemm_pack_b_size(-1, 8) == 0)
        let packed = AlignedWorkspace(bytes: pbytes + 64)
        let b = [Float](repeating: 1, count: 80)
        b.withUnsafeBufferPointer { bp in
            #expect(ck_gemm_pack_b(CK_TRANS, 10, 8, bp.baseAddress, 8, packed.ptr, pbytes - 1) == CK_ERR_WORKSPACE)
            #expect(ck_gemm_pack_b(CK_TRANS, 10, 8, bp.baseAddress, 8, packed.ptr + 4, pbytes) == CK_ERR_WORKSPACE)
            #expect(ck_gemm_pack_b(CK_TRANS, 10, 8, bp.baseAddress, 7, packed.ptr, pbytes) == CK_ERR_BAD_LD)
            #expect(ck_gemm_pack_b(CK_TRANS, 10, 8, nil, 8, packed.ptr, pbytes) == CK_ERR_NULL_POINTER)
            #expect(ck_gemm_pack_b(ck_trans(rawValue: 3), 10, 8, bp.baseAddress, 8, packed.ptr, pbytes) == CK_ERR_BAD_ARG)
            #expect(ck_gemm_pack_b(CK_TRANS, 10, 8, bp.baseAddress, 8, packed.ptr, pbytes) == CK_OK)
        }
        let a = [Float](repeating: 1, count: 3 * 8)
        var c = nanFilled(3 * 10)
        let ws = AlignedWorkspace(bytes: ck_gemm_workspace_size(3, 10, 8))
        ws.ptr.initializeMemory(as: UInt8.self, repeating: 0, count: ws.bytes)  // not a packed B
        var w = ck_workspace(ptr: ws.ptr, bytes: ws.bytes)
        a.withUnsafeBufferPointer { ap in
            c.withUnsafeMutableBufferPointer { cp in
                // k must match the packed k; n + j0 must fit; garbage is not a packed B.
                #expect(ck_gemm_f32_prepacked(&w, CK_NO_TRANS, 3, 10, 7, ap.baseAddress, 8, packed.ptr, 0, cp.baseAddress, 10, 1, 0, nil) == CK_ERR_BAD_ARG)
                #expect(ck_gemm_f32_prepacked(&w, CK_NO_TRANS, 3, 10, 8, ap.baseAddress, 8, packed.ptr, 48, cp.baseAddress, 10, 1, 0, nil) == CK_ERR_BAD_ARG)
                #expect(ck_gemm_f32_prepacked(&w, CK_NO_TRANS, 3, 10, 8, ap.baseAddress, 8, ws.ptr, 0, cp.baseAddress, 10, 1, 0, nil) == CK_ERR_BAD_ARG)
                #expect(ck_gemm_f32_prepacked(&w, CK_NO_TRANS, 3, 10, 8, ap.baseAddress, 8, nil, 0, cp.baseAddress, 10, 1, 0, nil) == CK_ERR_NULL_POINTER)
            }
        }
        #expect(c.allSatisfy { $0.isNaN })
        a.withUnsafeBufferPointer { ap in
            c.withUnsafeMutableBufferPointer { cp in
                #expect(ck_gemm_f32_prepacked(&w, CK_NO_TRANS, 3, 10, 8, ap.baseAddress, 8, packed.ptr, 0, cp.baseAddress, 10, 1, 0, nil) == CK_OK)
            }
        }
        #expect(c.allSatisfy { $0 == 8 })
    }

    // The per-thread ISA override leaves the process-wide choice alone.
    @Test func perThreadIsaOverride() {
        let global = ck_isa_active()
        #expect(ck_isa_force_thread(99) == CK_ERR_UNSUPPORTED)
        withISA(CK_ISA_REF) {
            #expect(ck_isa_active() == global)
        }
        #expect(ck_isa_force_thread(-1) == CK_OK)
    }

    @Test func cblasThreadControl() {
        // OpenBLAS is the provider installed by scripts/setup.sh.
        #expect(ck_cblas_set_num_threads(1) == 1)
        #expect(ck_cblas_set_num_threads(0) == 0)
    }
}

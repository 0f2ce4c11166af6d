// Tests of the activation kernels (ck_act_fwd_f32, ck_act_bwd_f32, ck_bias_act_fwd_f32 and _ref).
//
// Tiers (docs/numerics.md, "Activations, LayerNorm, softmax"):
//   A  exact: identity, ReLU and leaky ReLU are one rounding at most, so every ISA equals _ref bitwise.
//   B  every ISA (and _ref) against a Double evaluation of the same formula at the same fp32 input.
//   C  backward against central finite differences of the Double forward.
// The small helpers prefixed `elt` are shared with LayerNormTests.swift and SoftmaxTests.swift.
import CKernels
import Foundation
import Testing
import TestSupport

// MARK: - Shared helpers (activations, LayerNorm, softmax tests)

/// The ISAs this CPU can run, reference first.
let eltISAs: [ck_isa] = [CK_ISA_REF, CK_ISA_AVX2, CK_ISA_AVX512].filter { ck_isa_supported($0) == 1 }

/// fp32 machine epsilon 2^-23 (one ulp at 1).
let eltEps = Double(Float.ulpOfOne)

/// Runs `body` with the dispatching entry points forced to `isa` on this thread only
/// (ck_isa_force_thread), so tests running concurrently elsewhere in the process keep their ISA.
func eltWithISA<R>(_ isa: ck_isa, _ body: () throws -> R) rethrows -> R {
    let status = ck_isa_force_thread(Int32(isa.rawValue))
    precondition(status == CK_OK, "ck_isa_force_thread(\(isa)) failed")
    defer { _ = ck_isa_force_thread(-1) }
    return try body()
}

func eltName(_ isa: ck_isa) -> String { String(cString: ck_isa_name(isa)) }

/// Records an issue unless every element of `buffer` outside the [rows, cols] block (leading
/// dimension ld) is still a NaN, i.e. the kernel wrote nothing into the padding.
func eltExpectPaddingUntouched(_ buffer: [Float], rows: Int, cols: Int, ld: Int, _ what: String,
                               sourceLocation: SourceLocation = #_sourceLocation) {
    for r in 0..<rows {
        for j in cols..<ld where !buffer[r * ld + j].isNaN {
            Issue.record("\(what): padding [\(r), \(j)] overwritten with \(buffer[r * ld + j])",
                         sourceLocation: sourceLocation)
            return
        }
    }
}

/// Calls `body` with the array's base address, or nil for a nil array.
func eltOptionalPointer<R>(_ array: [Float]?, _ body: (UnsafePointer<Float>?) -> R) -> R {
    guard let array else { return body(nil) }
    return array.withUnsafeBufferPointer { body($0.baseAddress) }
}

/// The [rows, cols] block of a padded buffer, row-major and contiguous.
func eltBlock(_ buffer: [Float], rows: Int, cols: Int, ld: Int) -> [Float] {
    var out = [Float]()
    out.reserveCapacity(rows * cols)
    for r in 0..<rows { out.append(contentsOf: buffer[(r * ld)..<(r * ld + cols)]) }
    return out
}

/// A [rows, cols] matrix in a buffer of leading dimension ld whose padding is NaN.
func eltPadded(_ values: [Float], rows: Int, cols: Int, ld: Int) -> [Float] {
    var out = nanFilled(max(rows * ld, 1))
    for r in 0..<rows { for j in 0..<cols { out[r * ld + j] = values[r * cols + j] } }
    return out
}

// MARK: - Double references for the activations

let eltAllActs: [ck_act] = [CK_ACT_NONE, CK_ACT_GELU_ERF, CK_ACT_GELU_TANH, CK_ACT_RELU, CK_ACT_SILU,
                            CK_ACT_TANH, CK_ACT_SIGMOID, CK_ACT_LEAKY_RELU]
let eltExactActs: [ck_act] = [CK_ACT_NONE, CK_ACT_RELU, CK_ACT_LEAKY_RELU]

func eltActName(_ act: ck_act) -> String {
    ["none", "gelu_erf", "gelu_tanh", "relu", "silu", "tanh", "sigmoid", "leaky_relu"][Int(act.rawValue)]
}

private let geluK0 = (2.0 / Double.pi).squareRoot()  // sqrt(2/pi)
private let geluK1 = 0.044715

private func sigmoidD(_ x: Double) -> Double { 1 / (1 + exp(-x)) }

/// act(x) in Double (the header's formulas; GELU-tanh as 0.5 x (1 + tanh u)).
func eltActDouble(_ x: Double, _ act: ck_act, _ slope: Double) -> Double {
    switch act {
    case CK_ACT_GELU_ERF: return 0.5 * x * erfc(-x / 2.0.squareRoot())
    case CK_ACT_GELU_TANH:
        let u = geluK0 * (x + geluK1 * x * x * x)
        return x * sigmoidD(2 * u)  // == 0.5 x (1 + tanh u), without the cancellation of 1 + tanh u for u << 0
    case CK_ACT_RELU: return max(x, 0)
    case CK_ACT_SILU: return x * sigmoidD(x)
    case CK_ACT_TANH: return tanh(x)
    case CK_ACT_SIGMOID: return sigmoidD(x)
    case CK_ACT_LEAKY_RELU: return x >= 0 ? x : slope * x
    default: return x
    }
}

/// act'(x) in Double (analytic).
func eltActGradDouble(_ x: Double, _ act: ck_act, _ slope: Double) -> Double {
    switch act {
    case CK_ACT_GELU_ERF:
        return 0.5 * erfc(-x / 2.0.squareRoot()) + x * exp(-0.5 * x * x) / (2 * Double.pi).squareRoot()
    case CK_ACT_GELU_TANH:
        let u = geluK0 * (x + geluK1 * x * x * x)
        let du = geluK0 * (1 + 3 * geluK1 * x * x)
        let s = sigmoidD(2 * u), sm = sigmoidD(-2 * u)
        return s + x * s * sm * 2 * du
    case CK_ACT_RELU: return x > 0 ? 1 : 0
    case CK_ACT_SILU: return sigmoidD(x) + x * sigmoidD(x) * sigmoidD(-x)
    case CK_ACT_TANH: return 1 / (cosh(x) * cosh(x))
    case CK_ACT_SIGMOID: return sigmoidD(x) * sigmoidD(-x)
    case CK_ACT_LEAKY_RELU: return x > 0 ? 1 : slope
    default: return 1
    }
}

/// Tolerance |y - ref| <= atol + rtol |ref| for `act` at x (forward, or the derivative factor).
/// - exact kinds: half an ulp (one rounding of slope * x at most).
/// - smooth kinds: rtol 6e-7 (~5 ulp): polynomial errors <= 3e-9, exp <= 1.1 ulp, up to four more
///   roundings, and the 1 + erf cancellation just inside |x| = sqrt 2 (measured max 6.6 ulp there).
///   The GELU-tanh forward forms 2u = 2 sqrt(2/pi)(x + 0.044715 x^3) in double-float, but its
///   derivative forms 2u in plain fp32, which perturbs sigmoid(2u) by up to 4 |2u| 2^-24 relative
///   (input conditioning, not an algorithm error): that term is added for the gradient only.
///   atol 3e-38 max(1, |x|): the vector exp flushes results below 2.7e-38 to 0 (docs/numerics.md),
///   and x sigmoid(.) multiplies that floor by |x|.
func eltActTolerance(_ x: Double, _ act: ck_act, gradient: Bool = false) -> (atol: Double, rtol: Double) {
    if !x.isFinite { return (0, 0) }  // the limits are exact
    let floor = 3e-38 * max(1, abs(x))
    switch act {
    case CK_ACT_NONE, CK_ACT_RELU, CK_ACT_LEAKY_RELU: return (0, eltEps / 2)
    case CK_ACT_GELU_TANH where gradient:
        let twoU = abs(2 * geluK0 * (x + geluK1 * x * x * x))
        return (floor, 6e-7 + 4 * twoU * eltEps / 2)
    default: return (floor, 6e-7)
    }
}

/// Records an issue for every element of y = act(x) outside eltActTolerance of `expected`
/// (NaN must meet NaN, infinities must match exactly); returns the number of failures.
@discardableResult
func eltExpectAct(_ y: [Float], _ expected: [Double], inputs x: [Float], _ act: ck_act, _ what: String,
                  gradient: Bool = false, sourceLocation: SourceLocation = #_sourceLocation) -> Int {
    var failures = 0
    for i in 0..<y.count {
        let a = Double(y[i]), e = expected[i]
        var ok: Bool
        if a.isNaN || e.isNaN { ok = a.isNaN && e.isNaN }
        else if a.isInfinite || e.isInfinite { ok = a == e }
        else {
            var (atol, rtol) = eltActTolerance(Double(x[i]), act, gradient: gradient)
            if gradient && !eltExactActs.contains(act) { atol += 4e-7; if act == CK_ACT_GELU_TANH { rtol *= 3 } }
            ok = abs(a - e) <= atol + rtol * abs(e)
        }
        if !ok {
            failures += 1
            if failures <= 3 { Issue.record("\(what) [\(i)] x=\(x[i]): \(y[i]) vs \(e)", sourceLocation: sourceLocation) }
        }
    }
    return failures
}

// MARK: - Runners

private func actForward(_ x: [Float], _ act: ck_act, _ slope: Float, ref: Bool = false) -> (ck_status, [Float]) {
    var y = nanFilled(x.count)
    let st = x.withUnsafeBufferPointer { xp in
        y.withUnsafeMutableBufferPointer { yp in
            ref ? ck_act_fwd_f32_ref(Int64(x.count), xp.baseAddress, yp.baseAddress, act, slope)
                : ck_act_fwd_f32(Int64(x.count), xp.baseAddress, yp.baseAddress, act, slope)
        }
    }
    return (st, y)
}

private func actBackward(_ x: [Float], _ dy: [Float], _ dxInit: [Float], beta: Float, _ act: ck_act,
                         _ slope: Float, ref: Bool = false) -> (ck_status, [Float]) {
    var dx = dxInit
    let st = x.withUnsafeBufferPointer { xp in
        dy.withUnsafeBufferPointer { dyp in
            dx.withUnsafeMutableBufferPointer { dxp in
                ref ? ck_act_bwd_f32_ref(Int64(x.count), xp.baseAddress, dyp.baseAddress, dxp.baseAddress, beta, act, slope)
                    : ck_act_bwd_f32(Int64(x.count), xp.baseAddress, dyp.baseAddress, dxp.baseAddress, beta, act, slope)
            }
        }
    }
    return (st, dx)
}

/// Dense sweep over [-12, 12] plus the points around the GELU-erf branch switch |x| = sqrt 2.
private func sweepInputs() -> [Float] {
    var xs = (0..<4801).map { Float(-12.0 + 24.0 * Double($0) / 4800.0) }
    let r2 = Float(2.0.squareRoot())
    var v = r2
    for _ in 0..<20 { xs.append(v); xs.append(-v); v = v.nextUp }
    v = r2
    for _ in 0..<20 { v = v.nextDown; xs.append(v); xs.append(-v) }
    return xs
}

// MARK: - Tests

@Suite(.serialized) struct ActivationTests {
    static let slope: Float = 0.01

    @Test func forwardMatchesDoubleOnEveryISA() {
        let xs = sweepInputs()
        for isa in eltISAs {
            for act in eltAllActs {
                let (st, y) = eltWithISA(isa) { actForward(xs, act, Self.slope) }
                #expect(st == CK_OK)
                var worstUlp = 0.0, failures = 0
                for i in 0..<xs.count {
                    let r = eltActDouble(Double(xs[i]), act, Double(Self.slope))
                    let (atol, rtol) = eltActTolerance(Double(xs[i]), act)
                    let err = abs(Double(y[i]) - r)
                    if abs(r) > 1e-30 { worstUlp = max(worstUlp, err / (Double(Float(abs(r)).ulp))) }
                    if !(err <= atol + rtol * abs(r)) {
                        failures += 1
                        if failures <= 3 {
                            Issue.record("\(eltName(isa)) \(eltActName(act)) fwd x=\(xs[i]): \(y[i]) vs \(r)")
                        }
                    }
                }
                print("act fwd \(eltName(isa)) \(eltActName(act)): max error \(String(format: "%.2f", worstUlp)) ulp over [-12, 12]")
            }
        }
    }

    @Test func backwardMatchesDoubleOnEveryISA() {
        let xs = sweepInputs()
        var rng = TestRNG(seed: 11)
        let dy = rng.uniformArray(xs.count, 0.5, 2)
        for isa in eltISAs {
            for act in eltAllActs {
                let (st, dx) = eltWithISA(isa) { actBackward(xs, dy, nanFilled(xs.count), beta: 0, act, Self.slope) }
                #expect(st == CK_OK)
                var worst = 0.0, failures = 0
                for i in 0..<xs.count {
                    let x = Double(xs[i])
                    let r = Double(dy[i]) * eltActGradDouble(x, act, Double(Self.slope))
                    // Derivatives are O(1) and have roots (GELU at x = -0.75, SiLU at -1.28), so the
                    // bound is absolute, 4e-7 |dy| (~3 ulp of 1), plus the forward rtol.
                    var (_, rtol) = eltActTolerance(x, act, gradient: true)
                    if act == CK_ACT_GELU_TANH { rtol *= 3 }  // s + x s (1 - s) 2u': the conditioned factor appears twice
                    let atol = eltExactActs.contains(act) ? 0 : 4e-7 * Double(dy[i])
                    let err = abs(Double(dx[i]) - r)
                    worst = max(worst, err / Double(dy[i]))
                    if !(err <= atol + rtol * abs(r)) {
                        failures += 1
                        if failures <= 3 {
                            Issue.record("\(eltName(isa)) \(eltActName(act)) bwd x=\(xs[i]): \(dx[i]) vs \(r)")
                        }
                    }
                }
                print("act bwd \(eltName(isa)) \(eltActName(act)): max |dx - dy f'(x)| / dy = \(String(format: "%.3g", worst))")
            }
        }
    }

    /// Tier C: the kernel's derivative matches central differences of the Double forward, so the
    /// backward formulas belong to the forward ones (h = 1e-4 max(1, |x|): truncation ~h^2 f'''/6
    /// < 1e-8, rounding ~1e-12; tolerance 2e-6 absolute + 2e-6 relative).
    @Test func backwardMatchesFiniteDifferences() {
        var rng = TestRNG(seed: 12)
        var xs = rng.uniformArray(257, -6, 6).map { abs($0) < 1e-3 ? $0 + 0.01 : $0 }  // keep off ReLU's kink
        xs += [-9, -4.5, 4.5, 9]
        let dy = [Float](repeating: 1, count: xs.count)
        for isa in eltISAs {
            for act in eltAllActs {
                let (st, dx) = eltWithISA(isa) { actBackward(xs, dy, nanFilled(xs.count), beta: 0, act, Self.slope) }
                #expect(st == CK_OK)
                var fd = [Double]()
                for x in xs.map(Double.init) {
                    let h = 1e-4 * max(1, abs(x))
                    fd.append((eltActDouble(x + h, act, Double(Self.slope)) - eltActDouble(x - h, act, Double(Self.slope))) / (2 * h))
                }
                let report = expectClose(dx, fd, atol: 2e-6, rtol: 2e-6, "\(eltName(isa)) \(eltActName(act)) vs finite differences")
                print("act bwd vs FD \(eltName(isa)) \(eltActName(act)): \(report.maxAbsError)")
            }
        }
    }

    /// Tier A: identity, ReLU and leaky ReLU are bitwise equal to the reference on every ISA,
    /// including -0 (ReLU gives +0, leaky keeps -0), forward and backward.
    @Test func exactKindsAreBitwiseEqualToReference() {
        var rng = TestRNG(seed: 13)
        var xs = rng.uniformArray(203, -3, 3)
        xs += [0, -0.0, 1e-40, -1e-40, .infinity, -.infinity, 3e38, -3e38]
        let dy = rng.uniformArray(xs.count, -2, 2)
        for act in eltExactActs {
            let (_, yRef) = actForward(xs, act, 0.37, ref: true)
            let (_, gRef) = actBackward(xs, dy, nanFilled(xs.count), beta: 0, act, 0.37, ref: true)
            for isa in eltISAs {
                let (_, y) = eltWithISA(isa) { actForward(xs, act, 0.37) }
                expectBitwiseEqual(y, yRef, "\(eltName(isa)) \(eltActName(act)) fwd")
                let (_, g) = eltWithISA(isa) { actBackward(xs, dy, nanFilled(xs.count), beta: 0, act, 0.37) }
                expectBitwiseEqual(g, gRef, "\(eltName(isa)) \(eltActName(act)) bwd")
            }
        }
        let (_, relu) = actForward([-0.0], CK_ACT_RELU, 0)
        #expect(relu[0].bitPattern == Float(0).bitPattern)
    }

    /// Special values (±inf, NaN, ±0, ±1e30, ±1e4, ±100, around the exp flush at -86.5): NaN propagates,
    /// infinities go to the mathematical limits, huge finite inputs
    /// saturate without NaN; every ISA agrees with the reference.
    @Test func specialValues() {
        let xs: [Float] = [.infinity, -.infinity, .nan, 0, -0.0, 1e30, -1e30, 100, -100, 1e-30, -1e-30,
                           88.8, -88.8, 87.4, -87.4, 20, -20, 1e4, -1e4]
        for act in eltAllActs {
            let (_, yRef) = actForward(xs, act, Self.slope, ref: true)
            let (_, gRef) = actBackward(xs, [Float](repeating: 1, count: xs.count), nanFilled(xs.count), beta: 0, act,
                                        Self.slope, ref: true)
            #expect(yRef[2].isNaN, "\(eltActName(act))(NaN) must be NaN")
            for (i, x) in xs.enumerated() where !x.isNaN {
                #expect(!yRef[i].isNaN && !gRef[i].isNaN, "\(eltActName(act)) at \(x)")
            }
            for isa in eltISAs {
                let (_, y) = eltWithISA(isa) { actForward(xs, act, Self.slope) }
                eltExpectAct(y, yRef.map(Double.init), inputs: xs, act, "\(eltName(isa)) \(eltActName(act)) specials fwd")
                let (_, g) = eltWithISA(isa) {
                    actBackward(xs, [Float](repeating: 1, count: xs.count), nanFilled(xs.count), beta: 0, act, Self.slope)
                }
                eltExpectAct(g, gRef.map(Double.init), inputs: xs, act, "\(eltName(isa)) \(eltActName(act)) specials bwd",
                             gradient: true)
            }
        }
    }

    /// Sizes around the vector widths: nothing past n is written, beta == 0 ignores NaN in dx,
    /// beta == 1 accumulates, in-place forward and dx == dy (beta 0) give the out-of-place result.
    @Test(arguments: [0, 1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33, 97])
    func edgeSizes(n: Int) {
        var rng = TestRNG(seed: UInt64(100 + n))
        let x = rng.uniformArray(n, -5, 5)
        let dy = rng.uniformArray(n, -2, 2)
        for isa in eltISAs {
            for act in eltAllActs {
                eltWithISA(isa) {
                    // Forward into a buffer with NaN sentinels past n.
                    var y = nanFilled(n + 17)
                    let st = x.withUnsafeBufferPointer { xp in
                        y.withUnsafeMutableBufferPointer { ck_act_fwd_f32(Int64(n), xp.baseAddress, $0.baseAddress, act, 0.1) }
                    }
                    #expect(st == CK_OK)
                    eltExpectPaddingUntouched(y, rows: 1, cols: n, ld: n + 17, "\(eltName(isa)) \(eltActName(act)) n=\(n)")
                    let expect = x.map { eltActDouble(Double($0), act, Double(Float(0.1))) }
                    eltExpectAct(Array(y[0..<n]), expect, inputs: x, act, "\(eltName(isa)) \(eltActName(act)) n=\(n)")
                    // In place.
                    var inPlace = x
                    _ = inPlace.withUnsafeMutableBufferPointer { p in ck_act_fwd_f32(Int64(n), p.baseAddress, p.baseAddress, act, 0.1) }
                    expectBitwiseEqual(inPlace, Array(y[0..<n]), "in-place fwd")
                    // Backward: beta 0 into NaN, beta 1 accumulating onto 0.25, dx == dy.
                    var dx = nanFilled(n + 17)
                    _ = x.withUnsafeBufferPointer { xp in
                        dy.withUnsafeBufferPointer { dyp in
                            dx.withUnsafeMutableBufferPointer {
                                ck_act_bwd_f32(Int64(n), xp.baseAddress, dyp.baseAddress, $0.baseAddress, 0, act, 0.1)
                            }
                        }
                    }
                    eltExpectPaddingUntouched(dx, rows: 1, cols: n, ld: n + 17, "bwd \(eltActName(act)) n=\(n)")
                    let g = Array(dx[0..<n])
                    #expect(!g.contains { $0.isNaN }, "beta 0 read NaN from dx")
                    let (_, acc) = actBackward(x, dy, [Float](repeating: 0.25, count: n), beta: 1, act, 0.1)
                    expectClose(acc, g.map { Double($0) + 0.25 }, atol: 1e-7, rtol: 1e-7, "beta 1 accumulates")
                    var alias = dy
                    _ = x.withUnsafeBufferPointer { xp in
                        alias.withUnsafeMutableBufferPointer { p in
                            ck_act_bwd_f32(Int64(n), xp.baseAddress, p.baseAddress, p.baseAddress, 0, act, 0.1)
                        }
                    }
                    expectBitwiseEqual(alias, g, "dx == dy")
                }
            }
        }
    }

    /// ck_bias_act_fwd_f32 over [m, n] with ldc > n: C = act(C + bias), padding untouched.
    @Test func biasActivation() {
        for (m, n) in [(1, 1), (3, 13), (4, 33), (2, 768)] {
            let ldc = n + 3
            var rng = TestRNG(seed: UInt64(m * 1000 + n))
            let c0 = rng.uniformArray(m * n, -4, 4)
            let bias = rng.uniformArray(n, -1, 1)
            for isa in eltISAs {
                for act in eltAllActs {
                    for useBias in [true, false] {
                        var c = eltPadded(c0, rows: m, cols: n, ld: ldc)
                        let st = eltWithISA(isa) {
                            bias.withUnsafeBufferPointer { bp in
                                c.withUnsafeMutableBufferPointer { cp in
                                    ck_bias_act_fwd_f32(Int64(m), Int64(n), useBias ? bp.baseAddress : nil, cp.baseAddress,
                                                        Int64(ldc), act, 0.2)
                                }
                            }
                        }
                        #expect(st == CK_OK)
                        eltExpectPaddingUntouched(c, rows: m, cols: n, ld: ldc, "bias_act \(eltActName(act))")
                        var t = [Float]()
                        for i in 0..<m {
                            for j in 0..<n { t.append(useBias ? c0[i * n + j] + bias[j] : c0[i * n + j]) }  // fp32 add, as the kernel
                        }
                        eltExpectAct(eltBlock(c, rows: m, cols: n, ld: ldc), t.map { eltActDouble(Double($0), act, Double(Float(0.2))) },
                                     inputs: t, act, "\(eltName(isa)) bias_act \(eltActName(act)) [\(m),\(n)] bias \(useBias)")
                    }
                }
            }
        }
    }

    /// Bad arguments return the documented status and write nothing.
    @Test func badArgumentsAreRejected() {
        let x: [Float] = [1, 2, 3, 4]
        var y = nanFilled(4)
        let dy: [Float] = [1, 1, 1, 1]
        func check(_ expected: ck_status, _ what: String, _ call: (UnsafeMutablePointer<Float>, UnsafePointer<Float>) -> ck_status) {
            y = nanFilled(4)
            let st = x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { call($0.baseAddress!, xp.baseAddress!) } }
            #expect(st == expected, "\(what)")
            #expect(y.allSatisfy { $0.isNaN }, "\(what) wrote output")
        }
        check(CK_ERR_BAD_SIZE, "n < 0") { ck_act_fwd_f32(-1, $1, $0, CK_ACT_RELU, 0) }
        check(CK_ERR_BAD_SIZE, "n < 0 ref") { ck_act_fwd_f32_ref(-1, $1, $0, CK_ACT_RELU, 0) }
        check(CK_ERR_BAD_ARG, "unknown act") { ck_act_fwd_f32(4, $1, $0, ck_act(rawValue: 99), 0) }
        check(CK_ERR_BAD_ARG, "unknown act ref") { ck_act_fwd_f32_ref(4, $1, $0, ck_act(rawValue: 99), 0) }
        check(CK_ERR_NULL_POINTER, "NULL x") { y, _ in ck_act_fwd_f32(4, nil, y, CK_ACT_RELU, 0) }
        check(CK_ERR_BAD_ARG, "beta 0.5") { y, x in dy.withUnsafeBufferPointer { ck_act_bwd_f32(4, x, $0.baseAddress, y, 0.5, CK_ACT_RELU, 0) } }
        check(CK_ERR_BAD_ARG, "beta 0.5 ref") { y, x in dy.withUnsafeBufferPointer { ck_act_bwd_f32_ref(4, x, $0.baseAddress, y, 0.5, CK_ACT_RELU, 0) } }
        check(CK_ERR_NULL_POINTER, "NULL dy") { y, x in ck_act_bwd_f32(4, x, nil, y, 0, CK_ACT_RELU, 0) }
        check(CK_ERR_BAD_ARG, "dx == dy with beta 1") { y, x in ck_act_bwd_f32(4, x, UnsafePointer(y), y, 1, CK_ACT_TANH, 0) }
        check(CK_ERR_BAD_LD, "ldc < n") { y, _ in ck_bias_act_fwd_f32(2, 2, nil, y, 1, CK_ACT_RELU, 0) }
        check(CK_ERR_BAD_LD, "ldc < n ref") { y, _ in ck_bias_act_fwd_f32_ref(2, 2, nil, y, 1, CK_ACT_RELU, 0) }
        check(CK_ERR_BAD_SIZE, "m < 0") { y, _ in ck_bias_act_fwd_f32(-2, 2, nil, y, 2, CK_ACT_RELU, 0) }
        check(CK_ERR_BAD_SIZE, "rows * ldc overflows") { y, _ in ck_bias_act_fwd_f32(Int64.max / 2, 2, nil, y, 4, CK_ACT_RELU, 0) }
        check(CK_ERR_NULL_POINTER, "NULL c") { _, _ in ck_bias_act_fwd_f32(2, 2, nil, nil, 2, CK_ACT_RELU, 0) }
        // Empty operands may be NULL.
        #expect(ck_act_fwd_f32(0, nil, nil, CK_ACT_GELU_ERF, 0) == CK_OK)
        #expect(ck_act_bwd_f32(0, nil, nil, nil, 0, CK_ACT_GELU_ERF, 0) == CK_OK)
        #expect(ck_bias_act_fwd_f32(0, 5, nil, nil, 5, CK_ACT_GELU_ERF, 0) == CK_OK)
    }
}

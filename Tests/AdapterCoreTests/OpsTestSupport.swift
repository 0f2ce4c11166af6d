// Double-precision references and finite-difference helpers for the op tests.
import AdapterCore
import Foundation
import TestSupport
import Testing

/// Every activation the ops support (for sweeps).
let allActivations: [Activation] = [.identity, .gelu, .geluTanh, .relu, .silu, .tanh, .sigmoid,
                                    .leakyReLU(slope: 0.1)]

/// The activation in Double, from its textbook formula (written independently of the kernels).
func referenceActivation(_ a: Activation, _ x: Double) -> Double {
    switch a {
    case .identity: return x
    case .gelu: return 0.5 * x * (1 + erf(x / 2.0.squareRoot()))
    case .geluTanh: return 0.5 * x * (1 + Foundation.tanh((2 / Double.pi).squareRoot() * (x + 0.044715 * x * x * x)))
    case .relu: return max(x, 0)
    case .silu: return x / (1 + exp(-x))
    case .tanh: return Foundation.tanh(x)
    case .sigmoid: return 1 / (1 + exp(-x))
    case .leakyReLU(let s): return x >= 0 ? x : Double(s) * x
    }
}

/// A random tensor from the shared test generator, uniform in [lo, hi).
func randomTensor(_ shape: [Int], _ rng: inout TestRNG, _ lo: Float = -1, _ hi: Float = 1) -> Tensor {
    Tensor(shape: shape, scalars: rng.uniformArray(shape.reduce(1, *), lo, hi))
}

/// Double copy of a tensor's elements in row-major order.
func doubles(_ t: Tensor) -> [Double] { t.scalars.map(Double.init) }

/// Row-major Double matrix product: [m, k] × [k, n].
func referenceMatmul(_ a: [Double], _ b: [Double], m: Int, n: Int, k: Int) -> [Double] {
    var c = [Double](repeating: 0, count: m * n)
    for i in 0..<m {
        for p in 0..<k {
            let av = a[i * k + p]
            for j in 0..<n { c[i * n + j] += av * b[p * n + j] }
        }
    }
    return c
}

/// Transpose of a row-major [rows, cols] Double matrix.
func referenceTranspose(_ a: [Double], rows: Int, cols: Int) -> [Double] {
    var t = [Double](repeating: 0, count: rows * cols)
    for i in 0..<rows { for j in 0..<cols { t[j * rows + i] = a[i * cols + j] } }
    return t
}

/// Central finite-difference gradient of a Double function of one parameter vector:
/// g[i] ≈ (f(θ + h·e_i) − f(θ − h·e_i)) / 2h.
func finiteDifferenceGradient(_ theta: [Double], h: Double = 1e-5, _ f: ([Double]) -> Double) -> [Double] {
    var g = [Double](repeating: 0, count: theta.count)
    var t = theta
    for i in 0..<theta.count {
        let saved = t[i]
        t[i] = saved + h
        let up = f(t)
        t[i] = saved - h
        let down = f(t)
        t[i] = saved
        g[i] = (up - down) / (2 * h)
    }
    return g
}

/// Σ y ⊙ r: the scalar loss whose gradient with respect to y is r (a fixed random projection).
func projectedLoss(_ y: [Double], _ r: [Double]) -> Double {
    var s = 0.0
    for i in 0..<y.count { s += y[i] * r[i] }
    return s
}

/// Bit patterns, for bitwise comparisons that print nicely.
func bits(_ t: Tensor) -> [UInt32] { t.scalars.map(\.bitPattern) }

/// `expectClose` that also prints the measured errors when `ADAPTERCORE_REPORT_ERRORS=1` (the
/// numbers collected in docs/numerics.md).
@discardableResult
func checkClose(_ actual: [Float], _ expected: [Double], atol: Double, rtol: Double, _ what: String,
                sourceLocation: SourceLocation = #_sourceLocation) -> CloseReport {
    let report = expectClose(actual, expected, atol: atol, rtol: rtol, what, sourceLocation: sourceLocation)
    if ProcessInfo.processInfo.environment["ADAPTERCORE_REPORT_ERRORS"] == "1" {
        print("ERRORS \(what): max abs \(report.maxAbsError), max rel \(report.maxRelError) (atol \(atol), rtol \(rtol))")
    }
    return report
}

/// Float-expectation overload of `checkClose`.
@discardableResult
func checkClose(_ actual: [Float], _ expected: [Float], atol: Double, rtol: Double, _ what: String,
                sourceLocation: SourceLocation = #_sourceLocation) -> CloseReport {
    checkClose(actual, expected.map(Double.init), atol: atol, rtol: rtol, what, sourceLocation: sourceLocation)
}

import AdapterCore
import Foundation
import TestSupport
import Testing

/// Double reference LayerNorm of s = x (+ residual) per row.
private func referenceLayerNorm(_ s: [Double], gamma: [Double], beta: [Double], rows: Int, cols: Int,
                                eps: Double) -> [Double] {
    var y = [Double](repeating: 0, count: s.count)
    for r in 0..<rows {
        let row = Array(s[(r * cols)..<((r + 1) * cols)])
        let mean = row.reduce(0, +) / Double(cols)
        let variance = row.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(cols)
        let rstd = 1 / (variance + eps).squareRoot()
        for j in 0..<cols { y[r * cols + j] = (row[j] - mean) * rstd * gamma[j] + beta[j] }
    }
    return y
}

/// Double reference of softmax(scale · x + mask) with a [maskRows, cols] mask.
private func referenceSoftmax(_ x: [Double], mask: [Double]?, maskRows: Int, rows: Int, cols: Int,
                              scale: Double) -> [Double] {
    var y = [Double](repeating: 0, count: x.count)
    let group = rows / maskRows
    for r in 0..<rows {
        var z = (0..<cols).map { scale * x[r * cols + $0] + (mask?[(r / group) * cols + $0] ?? 0) }
        let m = z.max()!
        if m == -.infinity { continue }
        z = z.map { exp($0 - m) }
        let s = z.reduce(0, +)
        for j in 0..<cols { y[r * cols + j] = z[j] / s }
    }
    return y
}

@Suite struct LayerNormTests {
    /// Tier B: output, mean and rstd against Double (features 97: SIMD body + tail). fp32 two-pass
    /// statistics over 97 values and a few roundings per element: atol/rtol 1e-5 for unit-scale data.
    @Test func forwardMatchesDoubleReference() {
        var rng = TestRNG(seed: 51)
        let context = ComputeContext(threads: 2)
        let rows = 70, cols = 97
        let x = randomTensor([2, 35, cols], &rng, -2, 2), res = randomTensor([2, 35, cols], &rng)
        let g = randomTensor([cols], &rng, 0.5, 1.5), b = randomTensor([cols], &rng)
        for useResidual in [false, true] {
            let out = layerNorm(x, residual: useResidual ? res : nil, weight: g, bias: b, eps: 1e-5, context: context)
            let s = useResidual ? zip(doubles(x), doubles(res)).map { $0 + $1 } : doubles(x)
            checkClose(out.output.scalars, referenceLayerNorm(s, gamma: doubles(g), beta: doubles(b), rows: rows,
                                                               cols: cols, eps: 1e-5),
                        atol: 1e-5, rtol: 1e-5, "layerNorm residual \(useResidual)")
            checkClose(out.normalizedInput.scalars, s, atol: 0, rtol: 1e-7, "sum")
            #expect(out.mean.shape == [rows] && out.rstd.shape == [rows] && out.output.shape == x.shape)
        }
        // A zero-variance row gives y = bias.
        let flat = layerNorm(Tensor(shape: [1, cols], repeating: 3), weight: g, bias: b, eps: 1e-12, context: context)
        #expect(flat.output.scalars == b.scalars)
    }

    /// Tier C: ds, dγ, dβ against finite differences of the Double reference (cols 11, 5 rows;
    /// O(1) values: fp32 reductions over 11 features plus O(h²) ≈ 1e-10; atol 1e-5, rtol 1e-4,
    /// measured ≤ 4e-7).
    @Test func backwardMatchesFiniteDifferences() {
        var rng = TestRNG(seed: 52)
        let context = ComputeContext(threads: 2)
        let rows = 5, cols = 11, eps = 1e-5
        let x = randomTensor([rows, cols], &rng, -2, 2)
        let g = randomTensor([cols], &rng, 0.5, 1.5), b = randomTensor([cols], &rng)
        let dy = randomTensor([rows, cols], &rng)
        let fwd = layerNorm(x, weight: g, bias: b, eps: Float(eps), context: context)
        var dx = Tensor(shape: x.shape, scalars: nanFilled(x.count))
        let dg0 = randomTensor([cols], &rng), db0 = randomTensor([cols], &rng)
        var dg = dg0, db = db0
        layerNormBackward(dy, input: fwd.normalizedInput, weight: g, mean: fwd.mean, rstd: fwd.rstd,
                          inputGradient: &dx, beta: 0, weightGradient: &dg, biasGradient: &db, context: context)
        let xd = doubles(x), gd = doubles(g), bd = doubles(b), r = doubles(dy)
        func loss(_ xv: [Double], _ gv: [Double], _ bv: [Double]) -> Double {
            projectedLoss(referenceLayerNorm(xv, gamma: gv, beta: bv, rows: rows, cols: cols, eps: eps), r)
        }
        checkClose(dx.scalars, finiteDifferenceGradient(xd) { loss($0, gd, bd) }, atol: 1e-5, rtol: 1e-4, "dx")
        checkClose(dg.scalars, zip(finiteDifferenceGradient(gd) { loss(xd, $0, bd) }, dg0.scalars).map { $0 + Double($1) },
                    atol: 1e-5, rtol: 1e-4, "dgamma")
        checkClose(db.scalars, zip(finiteDifferenceGradient(bd) { loss(xd, gd, $0) }, db0.scalars).map { $0 + Double($1) },
                    atol: 1e-5, rtol: 1e-4, "dbeta")
        let frozen = layerNormBackward(dy, input: fwd.normalizedInput, weight: g, mean: fwd.mean, rstd: fwd.rstd,
                                       context: context)
        #expect(bits(frozen) == bits(dx))
    }

    /// Forward and backward bitwise equal at 1, 2 and 3 threads, with enough rows for several
    /// 64-row chunks (so dγ/dβ combine several partials).
    @Test func threadCountDoesNotChangeBits() {
        var rng = TestRNG(seed: 53)
        let x = randomTensor([300, 130], &rng), res = randomTensor([300, 130], &rng), dy = randomTensor([300, 130], &rng)
        let g = randomTensor([130], &rng), b = randomTensor([130], &rng)
        let runs = (1...3).map { t -> [[UInt32]] in
            let c = ComputeContext(threads: t)
            let f = layerNorm(x, residual: res, weight: g, bias: b, context: c)
            var dx = Tensor(zeros: x.shape), dg = Tensor(zeros: [130]), db = Tensor(zeros: [130])
            layerNormBackward(dy, input: f.normalizedInput, weight: g, mean: f.mean, rstd: f.rstd, inputGradient: &dx,
                              weightGradient: &dg, biasGradient: &db, context: c)
            return [bits(f.output), bits(f.mean), bits(f.rstd), bits(dx), bits(dg), bits(db)]
        }
        #expect(runs[0] == runs[1] && runs[0] == runs[2])
    }
}

@Suite struct SoftmaxTests {
    /// Tier B: attention-shaped scores [batch 2, heads 3, q 5, k 19] with a key-padding mask
    /// [batch, k] broadcast over heads and queries (chunks of 128 rows straddle mask groups when the
    /// row count is large; here 30 rows, plus the 600-row case below). fp32 exp and a length-19 sum:
    /// atol 1e-6, rtol 1e-5.
    @Test func forwardWithMaskMatchesDoubleReference() {
        var rng = TestRNG(seed: 61)
        let context = ComputeContext(threads: 2)
        for (batch, heads, q, k) in [(2, 3, 5, 19), (3, 4, 50, 33)] {
            let x = randomTensor([batch, heads, q, k], &rng, -4, 4)
            var maskValues = [Float](repeating: 0, count: batch * k)
            for bi in 0..<batch { for j in (k - 3 - bi)..<k { maskValues[bi * k + j] = -.infinity } }
            let mask = Tensor(shape: [batch, k], scalars: maskValues)
            let y = softmax(x, scale: 0.5, mask: mask, context: context)
            let rows = batch * heads * q
            checkClose(y.scalars, referenceSoftmax(doubles(x), mask: maskValues.map(Double.init), maskRows: batch,
                                                    rows: rows, cols: k, scale: 0.5),
                        atol: 1e-6, rtol: 1e-5, "softmax \(x.shape)")
        }
        // Fully masked rows give zeros, not NaN.
        let dead = softmax(Tensor(shape: [2, 4], repeating: 1),
                           mask: Tensor(shape: [1, 4], repeating: -.infinity), context: context)
        #expect(dead.scalars == [Float](repeating: 0, count: 8))
    }

    /// Tier C: dx against finite differences of the Double reference, with scale and mask.
    @Test func backwardMatchesFiniteDifferences() {
        var rng = TestRNG(seed: 62)
        let context = ComputeContext(threads: 2)
        let rows = 6, cols = 7
        let x = randomTensor([rows, cols], &rng, -2, 2), dy = randomTensor([rows, cols], &rng)
        let maskValues: [Float] = [0, 0, -1e4, 0, 0, 0, 0, 0, 0, 0, 0, 0, -1e4, -1e4]
        let mask = Tensor(shape: [2, cols], scalars: maskValues)
        let y = softmax(x, scale: 0.8, mask: mask, context: context)
        var dx = Tensor(shape: x.shape, scalars: nanFilled(x.count))
        softmaxBackward(dy, output: y, scale: 0.8, into: &dx, beta: 0, context: context)
        let r = doubles(dy)
        let fd = finiteDifferenceGradient(doubles(x)) {
            projectedLoss(referenceSoftmax($0, mask: maskValues.map(Double.init), maskRows: 2, rows: rows,
                                           cols: cols, scale: 0.8), r)
        }
        checkClose(dx.scalars, fd, atol: 1e-5, rtol: 1e-4, "softmax dx")
        #expect(bits(softmaxBackward(dy, output: y, scale: 0.8, context: context)) == bits(dx))
    }

    @Test func threadCountDoesNotChangeBits() {
        var rng = TestRNG(seed: 63)
        let x = randomTensor([3, 4, 70, 70], &rng, -4, 4), dy = randomTensor([3, 4, 70, 70], &rng)
        let mask = Tensor(shape: [3, 70], scalars: (0..<210).map { $0 % 70 > 60 ? -10_000 : 0 })
        let runs = (1...3).map { t -> [[UInt32]] in
            let c = ComputeContext(threads: t)
            let y = softmax(x, scale: 0.125, mask: mask, context: c)
            return [bits(y), bits(softmaxBackward(dy, output: y, scale: 0.125, context: c))]
        }
        #expect(runs[0] == runs[1] && runs[0] == runs[2])
    }
}

import AdapterCore
import Foundation
import TestSupport
import Testing

@Suite struct ElementwiseTests {
    /// Activation forward (tier B) and backward (tier C against finite differences of the Double
    /// formula). The vectorised erf/exp/tanh are accurate to a few ulp: rtol 2e-6 plus atol 1e-6
    /// (around zero crossings); derivatives through finite differences: atol/rtol 1e-4.
    @Test(arguments: allActivations)
    func activationForwardAndBackward(act: Activation) {
        var rng = TestRNG(seed: 31)
        let context = ComputeContext(threads: 2)
        // Spans the SIMD body and tail (37 elements) and large magnitudes.
        let x = Tensor(shape: [37], scalars: rng.uniformArray(32, -4, 4) + [-30, -0.5, 0.25, 9, 30])
        let y = activation(x, act, context: context)
        checkClose(y.scalars, doubles(x).map { referenceActivation(act, $0) }, atol: 1e-6, rtol: 2e-6, "\(act) forward")
        let dy = randomTensor([37], &rng)
        let dx = activationBackward(dy, preactivation: x, activation: act, context: context)
        let fd = doubles(x).enumerated().map { i, xv in
            (referenceActivation(act, xv + 1e-5) - referenceActivation(act, xv - 1e-5)) / 2e-5 * Double(dy.scalars[i])
        }
        checkClose(dx.scalars, fd, atol: 1e-4, rtol: 1e-4, "\(act) backward")
        var acc = dx
        activationBackward(dy, preactivation: x, activation: act, into: &acc, beta: 1, context: context)
        checkClose(acc.scalars, dx.scalars.map { 2 * Double($0) }, atol: 0, rtol: 1e-7, "\(act) beta 1")
    }

    @Test func activationNamesFromHuggingFace() {
        #expect(Activation(huggingFaceName: "gelu") == .gelu)
        #expect(Activation(huggingFaceName: "gelu_new") == .geluTanh)
        #expect(Activation(huggingFaceName: "Swish") == .silu)
        #expect(Activation(huggingFaceName: "leakyrelu") == .leakyReLU(slope: 0.01))
        #expect(Activation(huggingFaceName: "linear") == Activation.none)
        #expect(Activation(huggingFaceName: "softsign") == nil)
    }

    @Test func addMultiplyScaleAccumulate() {
        let context = ComputeContext(threads: 2)
        let a = Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])
        let row = Tensor(shape: [3], scalars: [10, 20, 30])
        #expect(add(a, row, context: context).scalars == [11, 22, 33, 14, 25, 36])
        #expect(add(a, a, context: context).scalars == [2, 4, 6, 8, 10, 12])
        #expect(multiply(a, row, context: context).scalars == [10, 40, 90, 40, 100, 180])
        #expect(scaled(a, by: -0.5, context: context).scalars == [-0.5, -1, -1.5, -2, -2.5, -3])
        #expect(add(a.transposed(), Tensor(shape: [2], scalars: [0, 100]), context: context).scalars
                == [1, 104, 2, 105, 3, 106])
        var acc = a
        accumulate(a, into: &acc, alpha: 2, context: context)
        #expect(acc.scalars == [3, 6, 9, 12, 15, 18] && a.scalars == [1, 2, 3, 4, 5, 6])
    }

    /// Column sums are reduced in fixed 128-row chunks: bitwise equal at any thread count, and
    /// within fp32 rounding of the Double sum (rows ≤ 1000 of |x| ≤ 1: atol 1e-4).
    @Test func columnSumsAreDeterministic() {
        var rng = TestRNG(seed: 32)
        let x = randomTensor([1000, 37], &rng)
        var expected = [Double](repeating: 0, count: 37)
        for (i, v) in x.scalars.enumerated() { expected[i % 37] += Double(v) }
        let sums = (1...3).map { columnSums(x, context: ComputeContext(threads: $0)) }
        checkClose(sums[0].scalars, expected, atol: 1e-4, rtol: 0, "column sums")
        #expect(bits(sums[0]) == bits(sums[1]) && bits(sums[0]) == bits(sums[2]))
    }

    @Test func elementwiseThreadCountDoesNotChangeBits() {
        var rng = TestRNG(seed: 33)
        let x = randomTensor([70_001], &rng, -5, 5), dy = randomTensor([70_001], &rng)
        let runs = (1...3).map { t -> [[UInt32]] in
            let c = ComputeContext(threads: t)
            return [bits(activation(x, .gelu, context: c)),
                    bits(activationBackward(dy, preactivation: x, activation: .silu, context: c)),
                    bits(add(x, dy, context: c))]
        }
        #expect(runs[0] == runs[1] && runs[0] == runs[2])
    }
}

@Suite struct LossTests {
    /// Tier B/C: loss against a Double reference and gradient against finite differences.
    @Test func crossEntropyWithIgnoreIndex() {
        var rng = TestRNG(seed: 41)
        let logits = randomTensor([5, 4], &rng, -3, 3)
        let labels = [2, -100, 0, 3, 1]
        let result = crossEntropyLoss(logits: logits, labels: labels)
        func reference(_ x: [Double]) -> Double {
            var total = 0.0, n = 0.0
            for r in 0..<5 where labels[r] != -100 {
                let row = Array(x[(r * 4)..<(r * 4 + 4)])
                total += log(row.map { exp($0) }.reduce(0, +)) - row[labels[r]]
                n += 1
            }
            return total / n
        }
        let xd = doubles(logits)
        checkClose([result.loss], [reference(xd)], atol: 1e-6, rtol: 1e-6, "loss")
        checkClose(result.gradient.scalars, finiteDifferenceGradient(xd, reference), atol: 1e-6, rtol: 1e-5, "dlogits")
        #expect(Array(result.gradient.scalars[4..<8]) == [0, 0, 0, 0])
        let allIgnored = crossEntropyLoss(logits: logits, labels: [Int](repeating: -100, count: 5))
        #expect(allIgnored.loss == 0 && allIgnored.gradient.scalars.allSatisfy { $0 == 0 })
        // Huge logits stay finite (log-sum-exp with the max subtracted).
        let huge = crossEntropyLoss(logits: Tensor(shape: [1, 2], scalars: [1e30, -1e30]), labels: [1])
        #expect(huge.loss.isFinite && huge.gradient.scalars.allSatisfy(\.isFinite))
    }

    @Test func meanSquaredError() {
        var rng = TestRNG(seed: 42)
        let p = randomTensor([3, 2], &rng), t = randomTensor([3, 2], &rng)
        let result = mseLoss(prediction: p, target: t)
        let td = doubles(t)
        func reference(_ x: [Double]) -> Double { zip(x, td).map { ($0 - $1) * ($0 - $1) }.reduce(0, +) / 6 }
        checkClose([result.loss], [reference(doubles(p))], atol: 1e-7, rtol: 1e-6, "mse")
        checkClose(result.gradient.scalars, finiteDifferenceGradient(doubles(p), reference), atol: 1e-6,
                    rtol: 1e-5, "dmse")
    }
}

@Suite struct EmbeddingTests {
    @Test func gatherAndScatterAdd() {
        var rng = TestRNG(seed: 71)
        let table = randomTensor([10, 300], &rng)
        let indices = [3, 0, 9, 3, 3, 7]
        let rows = gatherRows(table, indices: indices, context: ComputeContext(threads: 2))
        #expect(rows.shape == [6, 300])
        for (i, index) in indices.enumerated() {
            #expect(Array(rows.scalars[(i * 300)..<((i + 1) * 300)]) == Array(table.scalars[(index * 300)..<((index + 1) * 300)]))
        }
        let g = randomTensor([6, 300], &rng)
        var expected = [Double](repeating: 1, count: 3000)
        for (i, index) in indices.enumerated() { for j in 0..<300 { expected[index * 300 + j] += Double(g.scalars[i * 300 + j]) } }
        let results = (1...3).map { threads -> Tensor in
            var dTable = Tensor(shape: [10, 300], repeating: 1)
            scatterAddRows(g, indices: indices, into: &dTable, context: ComputeContext(threads: threads))
            return dTable
        }
        // Three fp32 additions of |x| ≤ 1 per element at most: 4 ulp of 4.
        checkClose(results[0].scalars, expected, atol: 2e-6, rtol: 0, "scatterAddRows")
        #expect(bits(results[0]) == bits(results[1]) && bits(results[0]) == bits(results[2]))
    }
}

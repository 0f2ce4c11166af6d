// Tier A-style equality for the row-group ops (groupedLinear, layerNorm over a row range, copyRows): bitwise the
// values of the general ops on the same rows, rows and columns outside the groups untouched, any thread count.
import AdapterCore
import TestSupport
import Testing

@Suite struct RowGroupOpsTests {
    /// Groups of different widths, activations and residuals (including an empty group, a group of one row,
    /// groups around the 16-row granule and above the 256-row chunk), written into a NaN-filled wider output whose
    /// uncovered rows and columns must stay NaN.
    @Test(arguments: [1, 2, 3])
    func groupedLinearMatchesLinearPerGroup(threads: Int) {
        var rng = TestRNG(seed: 5)
        let context = ComputeContext(threads: threads)
        let rows = 1 + 17 + 300 + 33 + 5, inCols = 40, outCols = 50
        let x = randomTensor([rows, inCols], &rng)
        let residual = randomTensor([rows, outCols], &rng)
        // (rows, in_g, out_g, activation, residual?)
        let specs: [(Range<Int>, Int, Int, Activation, Bool)] = [
            (0..<1, 40, 50, .relu, true), (1..<18, 33, 48, .gelu, false), (18..<18, 40, 7, .none, false),
            (18..<318, 40, 49, .silu, true), (318..<351, 16, 1, .identity, true),
        ]   // rows 351..<356 are in no group
        var groups: [RowGroupLinear] = []
        for (r, k, n, act, res) in specs {
            groups.append(RowGroupLinear(rows: r, weight: randomTensor([n, k], &rng, -0.3, 0.3), bias: randomTensor([n], &rng),
                                         activation: act, residual: res ? residual : nil))
        }
        var y = Tensor(shape: [rows, outCols], repeating: .nan)
        groupedLinear(x, groups: groups, into: &y, context: context)
        let got = y.scalars
        var covered = Set<Int>()
        for g in groups where !g.rows.isEmpty {
            let n = g.weight.shape[0], k = g.weight.shape[1]
            let xs = Tensor(shape: [g.rows.count, k], scalars: g.rows.flatMap { r in Array(x.scalars[r * inCols ..< r * inCols + k]) })
            let rs = g.residual.map { t in Tensor(shape: [g.rows.count, n], scalars: g.rows.flatMap { r in Array(t.scalars[r * outCols ..< r * outCols + n]) }) }
            let expected = linear(xs, weight: g.weight, bias: g.bias, activation: g.activation, residual: rs, context: context)
            let actual = g.rows.flatMap { r in Array(got[r * outCols ..< r * outCols + n]) }
            expectBitwiseEqual(actual, expected.scalars, "group \(g.rows) threads \(threads)")
            for r in g.rows { for c in 0..<n { covered.insert(r * outCols + c) } }
        }
        #expect(got.indices.allSatisfy { covered.contains($0) || got[$0].isNaN }, "untouched elements stay NaN")
    }

    @Test(arguments: [1, 2])
    func layerNormOverRowsMatchesLayerNorm(threads: Int) {
        var rng = TestRNG(seed: 6)
        let context = ComputeContext(threads: threads)
        let rows = 150, cols = 37
        let x = randomTensor([rows, cols], &rng, -3, 3), r = randomTensor([rows, cols], &rng)
        let w = randomTensor([cols], &rng), b = randomTensor([cols], &rng)
        for (range, residual) in [(0..<150, true), (3..<131, true), (70..<71, false), (0..<0, true)] {
            var y = Tensor(shape: [rows, cols], repeating: .nan)
            layerNorm(x, residual: residual ? r : nil, weight: w, bias: b, eps: 1e-5, rows: range, into: &y, context: context)
            let full = layerNorm(x, residual: residual ? r : nil, weight: w, bias: b, eps: 1e-5, context: context).output.scalars
            let got = y.scalars
            expectBitwiseEqual(Array(got[range.lowerBound * cols ..< range.upperBound * cols]),
                               Array(full[range.lowerBound * cols ..< range.upperBound * cols]), "rows \(range)")
            #expect(got[0 ..< range.lowerBound * cols].allSatisfy(\.isNaN) && got[range.upperBound * cols ..< rows * cols].allSatisfy(\.isNaN))
        }
    }

    @Test func copyRowsRepeatsAndKeepsTheRest() {
        let source = Tensor(shape: [3, 2], scalars: [1, 2, 3, 4, 5, 6])
        var destination = Tensor(shape: [6, 2], repeating: -1)
        let alias = destination   // copy-on-write: the alias keeps the old values
        copyRows(source, rows: 1..<3, into: &destination, at: 1, copies: 2)
        #expect(destination.scalars == [-1, -1, 3, 4, 5, 6, 3, 4, 5, 6, -1, -1])
        #expect(alias.scalars == [Float](repeating: -1, count: 12))
    }
}

// Tier A-style equality: the inference ops (tiledLinear, the packed-weight variant, fusedSelfAttention,
// layerNorm(into:)) must give bitwise the same values as the general ops they replace, at every thread count,
// because the C kernels' per-element arithmetic does not depend on how the output is tiled.
import AdapterCore
import TestSupport
import Testing

private func random(_ shape: [Int], _ rng: inout TestRNG, _ lo: Float = -1, _ hi: Float = 1) -> Tensor {
    Tensor(shape: shape, scalars: rng.uniformArray(shape.reduce(1, *), lo, hi))
}

@Suite struct AttentionOpsTests {
    /// Edge shapes: one row, rows and columns around the 16-row and 48-column split granules, primes.
    static let linearShapes: [(m: Int, k: Int, n: Int)] = [
        (1, 7, 5), (17, 33, 49), (128, 64, 96), (47, 20, 200), (300, 16, 47), (96, 48, 144),
    ]

    @Test(arguments: [1, 2, 3])
    func tiledLinearMatchesLinearBitwise(threads: Int) {
        var rng = TestRNG(seed: 11)
        let context = ComputeContext(threads: threads)
        for s in Self.linearShapes {
            let x = random([s.m, s.k], &rng), w = random([s.n, s.k], &rng, -0.3, 0.3)
            let b = random([s.n], &rng), r = random([s.m, s.n], &rng)
            let expected = linear(x, weight: w, bias: b, activation: .gelu, residual: r, context: context)
            let plain = tiledLinear(x, weight: w, bias: b, activation: .gelu, residual: r, context: context)
            expectBitwiseEqual(plain.scalars, expected.scalars, "tiledLinear \(s) threads \(threads)")
            let packed = PackedWeight(w)
            var into = Tensor(shape: [s.m, s.n], repeating: .nan)   // overwritten, never read
            tiledLinear(x, weight: packed, bias: b, activation: .gelu, residual: r, into: &into, context: context)
            expectBitwiseEqual(into.scalars, expected.scalars, "packed tiledLinear \(s) threads \(threads)")
            // A row view of a larger weight (as the encoder's fused Q/K/V rows are).
            let big = Tensor(concatenating: [w, random([3, s.k], &rng)])
            let view = tiledLinear(x, weight: big.slice(rows: 0..<s.n), bias: b, context: context)
            expectBitwiseEqual(view.scalars, linear(x, weight: w, bias: b, context: context).scalars,
                               "row-view weight \(s)")
        }
    }

    @Test(arguments: [1, 2])
    func fusedSelfAttentionMatchesMatmulSoftmaxMatmul(threads: Int) {
        var rng = TestRNG(seed: 5)
        let context = ComputeContext(threads: threads)
        for (batch, seq, heads, d) in [(2, 7, 3, 4), (3, 17, 2, 16), (1, 1, 1, 8)] {
            let hidden = heads * d
            let qkv = random([batch * seq, 3 * hidden], &rng, -2, 2)
            // Key padding: the last two keys of sequence 0 (when it has them) are masked out.
            var maskValues = [Float](repeating: 0, count: batch * seq)
            if seq > 2 { maskValues[seq - 1] = -Float.greatestFiniteMagnitude; maskValues[seq - 2] = -Float.greatestFiniteMagnitude }
            let mask = Tensor(shape: [batch, seq], scalars: maskValues)
            let scale = 1 / Float(d).squareRoot()
            func part(_ i: Int) -> Tensor {
                let cols = Tensor(shape: [batch * seq, hidden]) { buffer in
                    for r in 0..<(batch * seq) { for c in 0..<hidden { buffer[r * hidden + c] = qkv[r, i * hidden + c] } }
                }
                return cols.reshaped([batch, seq, heads, d]).permuted([0, 2, 1, 3])
            }
            let p = softmax(matmul(part(0), part(1), transposeB: true, context: context), scale: scale, mask: mask,
                            context: context)
            let expected = matmul(p, part(2), context: context).permuted([0, 2, 1, 3]).contiguous()
            let got = fusedSelfAttention(qkv: qkv, mask: mask, batch: batch, sequenceLength: seq, heads: heads,
                                         scale: scale, context: context)
            #expect(got.shape == [batch * seq, hidden])
            expectBitwiseEqual(got.scalars, expected.scalars, "attention b\(batch) s\(seq) h\(heads) d\(d) threads \(threads)")
        }
    }

    @Test func layerNormIntoMatchesLayerNorm() {
        var rng = TestRNG(seed: 3)
        let context = ComputeContext(threads: 2)
        let x = random([130, 48], &rng, -3, 3), g = random([48], &rng), b = random([48], &rng)
        var y = Tensor(shape: [130, 48], repeating: .nan)
        layerNorm(x, weight: g, bias: b, eps: 1e-12, into: &y, context: context)
        expectBitwiseEqual(y.scalars, layerNorm(x, weight: g, bias: b, eps: 1e-12, context: context).output.scalars,
                           "layerNorm(into:)")
    }
}

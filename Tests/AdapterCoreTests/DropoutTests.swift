// `dropout(_:rate:using:context:)` and `applyDropoutMask`: the one-pass training dropout.
import AdapterCore
import TestSupport
import Testing

@Suite struct DropoutTests {
    /// Rate and scale: 10⁶ elements at rate 0.1 keep 90 % ± 0.3 % (≈ 10 standard deviations of a binomial,
    /// σ = 0.03 %), kept values are exactly `x / 0.9`, and `output == x ⊙ mask` bitwise.
    @Test func rateScaleAndOutput() {
        var r = SeededRNG(seed: 3)
        let x = Tensor.randomNormal(shape: [1000, 1000], using: &r)
        var rng = SeededRNG(seed: 9)
        let (y, m) = dropout(x, rate: 0.1, using: &rng, context: ComputeContext(threads: 1))
        let keep = 1 / (1 - Float(0.1))
        let ms = m.scalars
        #expect(ms.allSatisfy { $0 == 0 || $0 == keep })
        let kept = Double(ms.filter { $0 != 0 }.count) / Double(ms.count)
        #expect(abs(kept - 0.9) < 0.003, "kept fraction \(kept)")
        expectBitwiseEqual(y.scalars, zip(x.scalars, ms).map { $0 * $1 }, "output = x ⊙ mask")
    }

    /// Reproducible from the generator state, independent of the thread count (blocks are seeded by index),
    /// one draw taken from `rng`, neighbouring blocks and the two halves of a draw not identical, odd counts.
    @Test func deterministicAcrossThreadsAndConsumesOneDraw() {
        let x = Tensor(shape: [3, 40_001], repeating: 1)
        var a = SeededRNG(seed: 4), b = SeededRNG(seed: 4)
        let one = dropout(x, rate: 0.5, using: &a, context: ComputeContext(threads: 1))
        let two = dropout(x, rate: 0.5, using: &b, context: ComputeContext(threads: 2))
        expectBitwiseEqual(two.mask.scalars, one.mask.scalars, "1 vs 2 threads")
        var c = SeededRNG(seed: 4)
        _ = c.next()
        #expect(a.next() == c.next(), "exactly one draw consumed")
        let s = one.mask.scalars
        #expect(Array(s[0..<16384]) != Array(s[16384..<32768]), "blocks draw from different streams")
        #expect(stride(from: 0, to: 1000, by: 2).contains { s[$0] != s[$0 + 1] }, "both halves of a draw are used")
        var d = SeededRNG(seed: 5)
        #expect(dropout(x, rate: 0.5, using: &d, context: ComputeContext(threads: 1)).mask.scalars != s, "other seed")
    }

    /// Rate 0 keeps everything (mask all ones); `applyDropoutMask` multiplies in place and leaves a shared copy alone.
    @Test func rateZeroAndInPlaceBackward() {
        var r = SeededRNG(seed: 1)
        let x = Tensor.randomNormal(shape: [7, 5], using: &r)
        let (y, m) = dropout(x, rate: 0, using: &r, context: ComputeContext(threads: 1))
        #expect(m.scalars == [Float](repeating: 1, count: 35) && y.scalars == x.scalars)
        let (_, mask) = dropout(x, rate: 0.4, using: &r, context: ComputeContext(threads: 1))
        var g = x
        applyDropoutMask(mask, to: &g, context: ComputeContext(threads: 2))
        expectBitwiseEqual(g.scalars, zip(x.scalars, mask.scalars).map { $0 * $1 }, "in place")
        #expect(x.scalars != g.scalars, "the original is not changed (copy-on-write)")
    }
}

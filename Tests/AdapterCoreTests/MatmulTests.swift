import AdapterCore
import TestSupport
import Testing

/// Double reference of alpha · op(A) · op(B) per batch item. `a`, `b` are row-major batches of the
/// stored matrices.
private func referenceBatchedMatmul(_ a: [Double], _ b: [Double], batch: Int, aRows: Int, aCols: Int,
                                    bRows: Int, bCols: Int, ta: Bool, tb: Bool, alpha: Double,
                                    broadcastA: Bool = false, broadcastB: Bool = false) -> [Double] {
    let m = ta ? aCols : aRows, k = ta ? aRows : aCols, n = tb ? bRows : bCols
    var out = [Double]()
    for i in 0..<batch {
        let aItem = Array(a[(broadcastA ? 0 : i * aRows * aCols)..<((broadcastA ? 0 : i * aRows * aCols) + aRows * aCols)])
        let bItem = Array(b[(broadcastB ? 0 : i * bRows * bCols)..<((broadcastB ? 0 : i * bRows * bCols) + bRows * bCols)])
        let opA = ta ? referenceTranspose(aItem, rows: aRows, cols: aCols) : aItem
        let opB = tb ? referenceTranspose(bItem, rows: bRows, cols: bCols) : bItem
        out += referenceMatmul(opA, opB, m: m, n: n, k: k).map { $0 * alpha }
    }
    return out
}

@Suite struct MatmulTests {
    /// Tier B forward for all four transpose combinations (tolerance as for linear: length-k fp32 sums).
    @Test(arguments: [(false, false), (false, true), (true, false), (true, true)])
    func forwardAllTransposes(flags: (Bool, Bool)) {
        let (ta, tb) = flags
        var rng = TestRNG(seed: 21)
        let context = ComputeContext(threads: 2)
        let batch = 3, m = 17, n = 13, k = 10
        let a = randomTensor(ta ? [batch, k, m] : [batch, m, k], &rng)
        let b = randomTensor(tb ? [batch, n, k] : [batch, k, n], &rng)
        let c = matmul(a, b, transposeA: ta, transposeB: tb, alpha: 0.5, context: context)
        #expect(c.shape == [batch, m, n])
        let e = referenceBatchedMatmul(doubles(a), doubles(b), batch: batch, aRows: a.shape[1], aCols: a.shape[2],
                                       bRows: b.shape[1], bCols: b.shape[2], ta: ta, tb: tb, alpha: 0.5)
        checkClose(c.scalars, e, atol: Double(k * k) * 0x1p-24, rtol: 1e-5, "matmul \(flags)")
    }

    /// Attention layout: Q, K, V as permuted views of [batch, seq, heads, headDim] buffers, context
    /// written straight into a permuted view of a token-major output, all without copies.
    @Test func attentionWithPermutedViews() {
        var rng = TestRNG(seed: 22)
        let context = ComputeContext(threads: 3)
        let batch = 2, seq = 5, heads = 3, headDim = 4
        let q = randomTensor([batch, seq, heads * headDim], &rng).reshaped([batch, seq, heads, headDim]).permuted([0, 2, 1, 3])
        let k = randomTensor([batch, seq, heads * headDim], &rng).reshaped([batch, seq, heads, headDim]).permuted([0, 2, 1, 3])
        let v = randomTensor([batch, seq, heads * headDim], &rng).reshaped([batch, seq, heads, headDim]).permuted([0, 2, 1, 3])
        let scores = matmul(q, k, transposeB: true, alpha: 0.5, context: context)
        #expect(scores.shape == [batch, heads, seq, seq])
        let expected = matmul(q.contiguous(), k.contiguous(), transposeB: true, alpha: 0.5, context: context)
        #expect(bits(scores) == bits(expected))
        // P · V into a permuted view of [batch, seq, heads, headDim].
        var out = Tensor(shape: [batch, seq, heads, headDim], scalars: nanFilled(batch * seq * heads * headDim))
            .permuted([0, 2, 1, 3])
        matmul(scores, v, into: &out, beta: 0, context: context)
        let direct = matmul(scores, v.contiguous(), context: context)
        #expect(out.scalars == direct.scalars)
        let merged = out.permuted([0, 2, 1, 3])
        #expect(merged.isContiguous)
        #expect(merged.reshaped([batch, seq, heads * headDim]).shape == [batch, seq, heads * headDim])
    }

    /// Tier C: dA, dB against finite differences for every transpose combination, plus a broadcast
    /// 2-D operand whose gradient sums over the batch. Tolerance as for linear backward.
    @Test(arguments: [(false, false), (false, true), (true, false), (true, true)])
    func backwardMatchesFiniteDifferences(flags: (Bool, Bool)) {
        let (ta, tb) = flags
        var rng = TestRNG(seed: 23)
        let context = ComputeContext(threads: 2)
        let batch = 2, m = 4, n = 5, k = 3
        let aShape = ta ? [batch, k, m] : [batch, m, k], bShape = tb ? [batch, n, k] : [batch, k, n]
        let a = randomTensor(aShape, &rng), b = randomTensor(bShape, &rng)
        let dc = randomTensor([batch, m, n], &rng)
        let (da, db) = matmulBackward(dc, a: a, b: b, transposeA: ta, transposeB: tb, alpha: 0.7, context: context)
        let ad = doubles(a), bd = doubles(b), r = doubles(dc)
        func loss(_ av: [Double], _ bv: [Double]) -> Double {
            projectedLoss(referenceBatchedMatmul(av, bv, batch: batch, aRows: aShape[1], aCols: aShape[2],
                                                 bRows: bShape[1], bCols: bShape[2], ta: ta, tb: tb, alpha: 0.7), r)
        }
        checkClose(da.scalars, finiteDifferenceGradient(ad) { loss($0, bd) }, atol: 1e-5, rtol: 1e-4, "dA \(flags)")
        checkClose(db.scalars, finiteDifferenceGradient(bd) { loss(ad, $0) }, atol: 1e-5, rtol: 1e-4, "dB \(flags)")

        // Broadcast B (2-D): its gradient is summed over the batch.
        let b2 = randomTensor(Array(bShape.dropFirst()), &rng)
        var dA2 = Tensor(zeros: a.shape), dB2 = Tensor(shape: b2.shape, repeating: 1)
        matmulBackward(dc, a: a, b: b2, transposeA: ta, transposeB: tb, alpha: 0.7, aGradient: &dA2, aBeta: 0,
                       bGradient: &dB2, bBeta: 1, context: context)
        let b2d = doubles(b2)
        func loss2(_ bv: [Double]) -> Double {
            projectedLoss(referenceBatchedMatmul(ad, bv, batch: batch, aRows: aShape[1], aCols: aShape[2],
                                                 bRows: bShape[1], bCols: bShape[2], ta: ta, tb: tb, alpha: 0.7,
                                                 broadcastB: true), r)
        }
        checkClose(dB2.scalars, finiteDifferenceGradient(b2d, loss2).map { $0 + 1 }, atol: 1e-5, rtol: 1e-4,
                    "broadcast dB \(flags)")
    }

    /// Destinations that cannot be written as row-major matrices (unit stride in the wrong
    /// dimension) and shared destinations are handled by copying, with the beta rule intact.
    @Test func awkwardDestinations() {
        var rng = TestRNG(seed: 26)
        let context = ComputeContext(threads: 2)
        let a = randomTensor([6, 4], &rng), b = randomTensor([4, 5], &rng)
        let expected = matmul(a, b, context: context)
        // A transposed view as destination (column-major storage).
        var cT = Tensor(shape: [5, 6], scalars: nanFilled(30)).transposed()
        matmul(a, b, into: &cT, beta: 0, context: context)
        #expect(cT.scalars == expected.scalars)
        // beta 1 into a shared tensor: the other owner is untouched.
        let base = Tensor(shape: [6, 5], repeating: 1)
        var shared = base
        matmul(a, b, into: &shared, beta: 1, context: context)
        #expect(base.scalars == [Float](repeating: 1, count: 30))
        checkClose(shared.scalars, expected.scalars.map { Double($0) + 1 }, atol: 1e-6, rtol: 1e-6, "beta 1")
        // A strided row-slice view as destination (ld > n) in a uniquely owned buffer.
        // [6, 5] columns 1..<6 of a [6, 8] buffer (ld 8); the temporary is gone, so the view owns it.
        var window = Tensor(shape: [6, 8], scalars: nanFilled(48)).transposed().slice(rows: 1..<6).transposed()
        matmul(a, b, into: &window, beta: 0, context: context)
        #expect(window.scalars == expected.scalars && window.strides == [8, 1])
    }

    @Test func threadCountDoesNotChangeBits() {
        var rng = TestRNG(seed: 24)
        let a = randomTensor([4, 130, 64], &rng), b = randomTensor([4, 130, 64], &rng)
        let big = randomTensor([1, 400, 96], &rng), w = randomTensor([96, 150], &rng)
        var results: [[[UInt32]]] = []
        for threads in [1, 2, 3] {
            let context = ComputeContext(threads: threads)
            let c = matmul(a, b, transposeB: true, context: context)
            let (da, db) = matmulBackward(c, a: a, b: b, transposeB: true, context: context)
            let c2 = matmul(big, w, context: context)
            results.append([bits(c), bits(da), bits(db), bits(c2)])
        }
        #expect(results[0] == results[1])
        #expect(results[0] == results[2])
    }

    @Test func backendsAgree() {
        var rng = TestRNG(seed: 25)
        let a = randomTensor([12, 64, 32], &rng), b = randomTensor([12, 64, 32], &rng)
        let k = matmul(a, b, transposeB: true, context: ComputeContext(threads: 2))
        let r = matmul(a, b, transposeB: true, context: ComputeContext(threads: 2, gemmBackend: .reference))
        let c = matmul(a, b, transposeB: true, context: ComputeContext(threads: 2, gemmBackend: .cblas))
        #expect(bits(k) == bits(r))
        checkClose(c.scalars, k.scalars, atol: 32 * 32 * 0x1p-24, rtol: 1e-5, "cblas vs kernels")
    }
}

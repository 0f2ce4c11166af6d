import AdapterCore
import TestSupport
import Testing

/// Double reference of y = act(x Wᵀ + b) + residual; returns (y, preactivation).
private func referenceLinear(x: [Double], w: [Double], b: [Double]?, residual: [Double]?, act: Activation,
                             rows: Int, inFeatures: Int, outFeatures: Int) -> ([Double], [Double]) {
    var pre = referenceMatmul(x, referenceTranspose(w, rows: outFeatures, cols: inFeatures),
                              m: rows, n: outFeatures, k: inFeatures)
    if let b { for i in 0..<rows { for j in 0..<outFeatures { pre[i * outFeatures + j] += b[j] } } }
    var y = pre.map { referenceActivation(act, $0) }
    if let residual { for i in 0..<y.count { y[i] += residual[i] } }
    return (y, pre)
}

@Suite struct LinearTests {
    /// Tier B: forward against a Double reference for every activation, with and without bias and
    /// residual, on shapes that hit one tile (7 rows) and a multi-tile grid (300 × 200, k 64).
    /// Tolerance: an fp32 FMA chain of length k has error ≤ k·2⁻²⁴·Σ|aᵢbᵢ| ≤ k²·2⁻²⁴ for |x|, |w| ≤ 1
    /// (the worst-case bound; measured errors are ~60× smaller), plus 1e-6 and rtol 1e-5 for the
    /// vectorised activation's few-ulp error.
    @Test(arguments: [(7, 33, 50), (300, 64, 200), (1, 5, 3)])
    func forwardMatchesDoubleReference(shape: (Int, Int, Int)) {
        let (rows, inF, outF) = shape
        var rng = TestRNG(seed: 11)
        let context = ComputeContext(threads: 2)
        let x = randomTensor([rows, inF], &rng), w = randomTensor([outF, inF], &rng)
        let b = randomTensor([outF], &rng), r = randomTensor([rows, outF], &rng)
        for act in allActivations {
            for (useBias, useResidual) in [(false, false), (true, false), (true, true)] {
                let out = linear(x, weight: w, bias: useBias ? b : nil, activation: act,
                                 residual: useResidual ? r : nil, savePreactivation: true, context: context)
                let (ey, ep) = referenceLinear(x: doubles(x), w: doubles(w), b: useBias ? doubles(b) : nil,
                                               residual: useResidual ? doubles(r) : nil, act: act,
                                               rows: rows, inFeatures: inF, outFeatures: outF)
                let atol = Double(inF * inF) * 0x1p-24 + 1e-6
                checkClose(out.output.scalars, ey, atol: atol, rtol: 1e-5, "linear \(shape) \(act) y")
                checkClose(out.preactivation!.scalars, ep, atol: atol, rtol: 1e-5, "linear \(shape) \(act) preact")
                #expect(out.output.shape == [rows, outF])
            }
        }
    }

    @Test func leadingDimensionsAndViews() {
        var rng = TestRNG(seed: 12)
        let context = ComputeContext(threads: 3)
        let x = randomTensor([2, 3, 8], &rng), w = randomTensor([5, 8], &rng)
        let y = linear(x, weight: w, context: context)
        #expect(y.shape == [2, 3, 5])
        let flat = linear(x.reshaped([6, 8]), weight: w, context: context)
        #expect(bits(y) == bits(flat))
        // A transposed view of an [in, out] matrix is a valid [out, in] weight (no copy needed).
        let wT = w.transposed().contiguous().transposed()
        #expect(!wT.isContiguous)
        #expect(bits(linear(x, weight: wT, context: context)) == bits(y))
        // A strided 2-D view (the first token of every sequence) as input, and its gradients.
        let cls = x.permuted([1, 0, 2]).slice(rows: 0..<1).reshaped([2, 8])
        let clsView = x.selecting(0, alongAxis: 1)
        #expect(!clsView.isContiguous)
        #expect(bits(linear(clsView, weight: w, context: context)) == bits(linear(cls, weight: w, context: context)))
        let g = randomTensor([2, 5], &rng)
        var dw1 = Tensor(zeros: w.shape), dw2 = Tensor(zeros: w.shape)
        linearWeightGradient(g, input: clsView, accumulatingInto: &dw1, context: context)
        linearWeightGradient(g, input: cls, accumulatingInto: &dw2, context: context)
        #expect(bits(dw1) == bits(dw2))
    }

    /// Tier C: every gradient against central finite differences of the Double reference of
    /// L = Σ y ⊙ R. The fp32 backward differs from the exact gradient by rounding of length-k sums
    /// (k ≤ 9 here, bound k²·2⁻²⁴ ≈ 5e-6) and from the finite difference by O(h²) ≈ 1e-10;
    /// atol 1e-5, rtol 1e-4 (measured ≤ 4e-7).
    @Test(arguments: allActivations)
    func backwardMatchesFiniteDifferences(act: Activation) {
        var rng = TestRNG(seed: 13)
        let context = ComputeContext(threads: 2)
        let rows = 6, inF = 9, outF = 7
        let x = randomTensor([rows, inF], &rng), w = randomTensor([outF, inF], &rng)
        let b = randomTensor([outF], &rng), r = randomTensor([rows, outF], &rng)
        let dyD = doubles(r)
        let fwd = linear(x, weight: w, bias: b, activation: act, savePreactivation: true, context: context)
        // Start from non-zero gradients to check accumulation (+=) and NaN input gradient (beta 0).
        var dx = Tensor(shape: x.shape, scalars: nanFilled(x.count))
        let dw0 = randomTensor(w.shape, &rng), db0 = randomTensor(b.shape, &rng)
        var dw = dw0, db = db0
        linearBackward(r, input: x, weight: w, activation: act, preactivation: fwd.preactivation,
                       inputGradient: &dx, beta: 0, weightGradient: &dw, biasGradient: &db, context: context)
        func loss(_ xv: [Double], _ wv: [Double], _ bv: [Double]) -> Double {
            projectedLoss(referenceLinear(x: xv, w: wv, b: bv, residual: nil, act: act, rows: rows,
                                          inFeatures: inF, outFeatures: outF).0, dyD)
        }
        let xd = doubles(x), wd = doubles(w), bd = doubles(b)
        let gx = finiteDifferenceGradient(xd) { loss($0, wd, bd) }
        let gw = finiteDifferenceGradient(wd) { loss(xd, $0, bd) }
        let gb = finiteDifferenceGradient(bd) { loss(xd, wd, $0) }
        checkClose(dx.scalars, gx, atol: 1e-5, rtol: 1e-4, "dx \(act)")
        checkClose(dw.scalars, zip(gw, dw0.scalars).map { $0 + Double($1) }, atol: 1e-5, rtol: 1e-4, "dW \(act)")
        checkClose(db.scalars, zip(gb, db0.scalars).map { $0 + Double($1) }, atol: 1e-5, rtol: 1e-4, "db \(act)")
        // beta = 1 adds to dx; the frozen-layer overload returns the same dx.
        var dx2 = dx
        var dwUnused = dw0, dbUnused = db0
        linearBackward(r, input: x, weight: w, activation: act, preactivation: fwd.preactivation,
                       inputGradient: &dx2, beta: 1, weightGradient: &dwUnused, biasGradient: &dbUnused,
                       context: context)
        checkClose(dx2.scalars, dx.scalars.map { 2 * Double($0) }, atol: 1e-6, rtol: 1e-6, "dx beta 1 \(act)")
        let frozen = linearBackward(r, input: x, weight: w, activation: act, preactivation: fwd.preactivation,
                                    context: context)
        #expect(bits(frozen) == bits(dx))
    }

    /// Results are bitwise identical at 1, 2 and 3 threads, forward and backward, on a shape that
    /// the GEMM driver splits into several tiles (and several row chunks for db).
    @Test func threadCountDoesNotChangeBits() {
        var rng = TestRNG(seed: 14)
        let rows = 517, inF = 96, outF = 130
        let x = randomTensor([rows, inF], &rng), w = randomTensor([outF, inF], &rng)
        let b = randomTensor([outF], &rng), res = randomTensor([rows, outF], &rng), dy = randomTensor([rows, outF], &rng)
        var results: [[[UInt32]]] = []
        for threads in [1, 2, 3] {
            let context = ComputeContext(threads: threads)
            let out = linear(x, weight: w, bias: b, activation: .gelu, residual: res, savePreactivation: true,
                             context: context)
            var dx = Tensor(zeros: x.shape), dw = Tensor(zeros: w.shape), db = Tensor(zeros: b.shape)
            linearBackward(dy, input: x, weight: w, activation: .gelu, preactivation: out.preactivation,
                           inputGradient: &dx, weightGradient: &dw, biasGradient: &db, context: context)
            results.append([bits(out.output), bits(out.preactivation!), bits(dx), bits(dw), bits(db)])
        }
        #expect(results[0] == results[1])
        #expect(results[0] == results[2])
    }

    /// The three GEMM backends agree: kernels and the scalar reference follow the same per-element
    /// FMA chain (bitwise equal without activation); CBLAS sums in its own order (tier B tolerance).
    @Test func backendsAgree() {
        var rng = TestRNG(seed: 15)
        let x = randomTensor([300, 70], &rng), w = randomTensor([90, 70], &rng), b = randomTensor([90], &rng)
        let kernels = linear(x, weight: w, bias: b, context: ComputeContext(threads: 2, gemmBackend: .kernels))
        let reference = linear(x, weight: w, bias: b, context: ComputeContext(threads: 2, gemmBackend: .reference))
        let cblas = linear(x, weight: w, bias: b, context: ComputeContext(threads: 2, gemmBackend: .cblas))
        #expect(bits(kernels) == bits(reference))
        checkClose(cblas.scalars, kernels.scalars, atol: 70 * 70 * 0x1p-24 + 1e-6, rtol: 1e-5, "cblas vs kernels")
        let act = linear(x, weight: w, bias: b, activation: .gelu, context: ComputeContext(threads: 2, gemmBackend: .cblas))
        let actK = linear(x, weight: w, bias: b, activation: .gelu, context: ComputeContext(threads: 2))
        checkClose(act.scalars, actK.scalars, atol: 70 * 70 * 0x1p-24 + 1e-6, rtol: 1e-5, "cblas vs kernels gelu")
    }
}

@Suite struct PackedWeightTests {
    /// Pre-packed weights give bitwise the same results as plain weights, for one tile and for a
    /// multi-tile grid (column tiles start at multiples of the packing granule), with the full
    /// epilogue, at 1 and 3 threads; other backends fall back to the plain weight.
    @Test(arguments: [(5, 33, 50), (300, 64, 200), (40, 768, 3072 / 16)])
    func packedMatchesPlain(shape: (Int, Int, Int)) {
        let (rows, inF, outF) = shape
        var rng = TestRNG(seed: 16)
        let x = randomTensor([rows, inF], &rng), w = randomTensor([outF, inF], &rng)
        let b = randomTensor([outF], &rng), r = randomTensor([rows, outF], &rng)
        let packed = PackedWeight(w)
        #expect(packed.shape == [outF, inF])
        for threads in [1, 3] {
            let context = ComputeContext(threads: threads)
            let plain = linear(x, weight: w, bias: b, activation: .gelu, residual: r, savePreactivation: true, context: context)
            let fast = linear(x, weight: packed, bias: b, activation: .gelu, residual: r, savePreactivation: true, context: context)
            #expect(bits(plain.output) == bits(fast.output))
            #expect(bits(plain.preactivation!) == bits(fast.preactivation!))
        }
        // Backward packing: dx = g·W bitwise equal to the plain path.
        let both = PackedWeight(w, packForBackward: true)
        for threads in [1, 3] {
            let context = ComputeContext(threads: threads)
            let plain = linearBackward(r, input: x, weight: w, context: context)
            #expect(bits(linearBackward(r, input: x, weight: both, context: context)) == bits(plain))
            #expect(bits(linearBackward(r, input: x, weight: packed, context: context)) == bits(plain))
            var dx = Tensor(shape: x.shape, repeating: 1), dxPlain = dx
            linearInputGradient(r, weight: both, into: &dx, beta: 1, context: context)
            linearInputGradient(r, weight: w, into: &dxPlain, beta: 1, context: context)
            #expect(bits(dx) == bits(dxPlain))
        }
        let cblas = ComputeContext(threads: 2, gemmBackend: .cblas)
        #expect(bits(linear(x, weight: packed, bias: b, context: cblas)) == bits(linear(x, weight: w, bias: b, context: cblas)))
        // A transposed view is packed from its contiguous copy.
        let wT = w.transposed().contiguous().transposed()
        #expect(bits(linear(x, weight: PackedWeight(wT), context: ComputeContext(threads: 2)))
                == bits(linear(x, weight: w, context: ComputeContext(threads: 2))))
    }
}

@Suite struct EmptyShapeTests {
    /// Empty batches and zero inner sizes follow the GEMM contract: k == 0 gives the epilogue of 0.
    @Test func zeroSizes() {
        let context = ComputeContext(threads: 2)
        let empty = linear(Tensor(zeros: [0, 8]), weight: Tensor(zeros: [3, 8]), context: context)
        #expect(empty.shape == [0, 3])
        let bias = Tensor(shape: [3], scalars: [1, -2, 3])
        let noInputs = linear(Tensor(zeros: [2, 0]), weight: Tensor(zeros: [3, 0]), bias: bias, activation: .relu,
                              context: context)
        #expect(noInputs.shape == [2, 3] && noInputs.scalars == [1, 0, 3, 1, 0, 3])
        var dw = Tensor(zeros: [3, 8]), db = Tensor(zeros: [3]), dx = Tensor(zeros: [0, 8])
        linearBackward(Tensor(zeros: [0, 3]), input: Tensor(zeros: [0, 8]), weight: Tensor(zeros: [3, 8]),
                       inputGradient: &dx, weightGradient: &dw, biasGradient: &db, context: context)
        #expect(dw.scalars.allSatisfy { $0 == 0 } && db.scalars == [0, 0, 0])
        let c = matmul(Tensor(zeros: [2, 4, 0]), Tensor(zeros: [2, 0, 5]), context: context)
        #expect(c.shape == [2, 4, 5] && c.scalars.allSatisfy { $0 == 0 })
        #expect(softmax(Tensor(zeros: [0, 4]), context: context).shape == [0, 4])
        #expect(layerNorm(Tensor(zeros: [0, 4]), weight: nil, bias: nil, context: context).output.shape == [0, 4])
    }
}

// Tests of ck_softmax_fwd_f32 / ck_softmax_bwd_f32 (and _ref) on every ISA.
//
// The Double reference takes the logits exactly as the contract forms them in fp32,
// z = fl(fl(scale * x) + mask) (two roundings, like PyTorch's separate ops), and does the rest in
// Double. Tolerances (docs/numerics.md, "Softmax"):
//   y:  |y - ref| <= ((8 + 2 sqrt(n)) eps + |z - max| eps/2) ref + 3e-38
//       - exp is good to ~1 ulp (the softmax exps ck_v16_exp_nonpos / ck_v8_exp_nonpos: <= 1.9 eps
//         plus |z - max| * 2.8e-9 <= 2 eps more at the flush limit 87.3), the normalising sum of n terms
//         to ~sqrt(n) eps (SIMD keeps 32 partial sums), the reciprocal and multiply to 1 ulp:
//         8 + 2 sqrt(n) covers them;
//       - z - max is rounded to fp32 before exp: a relative error of |z - max| eps/2 in e^(z-max),
//         an input-conditioning term (the reference kernel has it too);
//       - 3e-38: exp flushes results below 2.7e-38 to 0.
//   dx: |dx - FD| <= 4 (8 + 2 sqrt(n)) eps |scale| max|dy| (the fp32 y fed to backward, the
//       row dot product and two roundings; central differences in Double add < 1e-10).
import CKernels
import Foundation
import Testing
import TestSupport

// MARK: - Double reference

private struct SMCase {
    var rows: Int, cols: Int, ld: Int
    var x: [Float]                 // [rows, cols]
    var mask: [Float]? = nil       // [maskRows, cols]
    var maskGroup = 1
    var ldm = 0
    var scale: Float = 1

    var maskRows: Int { rows == 0 ? 0 : (rows - 1) / maskGroup + 1 }

    /// The fp32 logits the contract defines.
    func z(_ r: Int, _ j: Int) -> Float {
        let t = scale * x[r * cols + j]
        guard let mask else { return t }
        return t + mask[(r / maskGroup) * cols + j]
    }
}

/// Softmax of the fp32 logits in Double; a row whose max is -inf is all zeros.
private func smDouble(_ c: SMCase) -> (y: [Double], zmax: [Double]) {
    var y = [Double](), zmax = [Double]()
    for r in 0..<c.rows {
        let z = (0..<c.cols).map { Double(c.z(r, $0)) }
        let m = z.max() ?? -.infinity
        zmax.append(m)
        if m == -.infinity { y += [Double](repeating: 0, count: c.cols); continue }
        let e = z.map { exp($0 - m) }
        let s = e.reduce(0, +)
        y += e.map { $0 / s }
    }
    return (y, zmax)
}

private func smForward(_ c: SMCase, ref: Bool = false) -> (ck_status, [Float]) {
    let xp = eltPadded(c.x, rows: c.rows, cols: c.cols, ld: c.ld)
    let mp = c.mask.map { eltPadded($0, rows: c.maskRows, cols: c.cols, ld: c.ldm) }
    var y = nanFilled(max(c.rows * c.ld, 1))
    let st = xp.withUnsafeBufferPointer { xb in
        eltOptionalPointer(mp) { mb in
            y.withUnsafeMutableBufferPointer { yb in
                (ref ? ck_softmax_fwd_f32_ref : ck_softmax_fwd_f32)(
                    Int64(c.rows), Int64(c.cols), xb.baseAddress, Int64(c.ld), mb, Int64(c.ldm), Int64(c.maskGroup),
                    yb.baseAddress, Int64(c.ld), c.scale)
            }
        }
    }
    return (st, y)
}

/// Checks y against the Double reference; returns the max of |y - ref| / (ref * eps).
@discardableResult
private func checkSoftmax(_ c: SMCase, _ st: ck_status, _ yPadded: [Float], _ what: String,
                          sourceLocation: SourceLocation = #_sourceLocation) -> Double {
    #expect(st == CK_OK, "\(what)", sourceLocation: sourceLocation)
    let (ref, zmax) = smDouble(c)
    let y = eltBlock(yPadded, rows: c.rows, cols: c.cols, ld: c.ld)
    let base = (8 + 2 * Double(c.cols).squareRoot()) * eltEps
    var worst = 0.0, failures = 0
    for r in 0..<c.rows {
        for j in 0..<c.cols {
            let i = r * c.cols + j
            let dz = zmax[r].isFinite ? abs(Double(c.z(r, j)) - zmax[r]) : 0
            let bound = (base + (dz.isFinite ? dz : 0) * eltEps / 2) * ref[i] + 3e-38
            let err = abs(Double(y[i]) - ref[i])
            if ref[i] > 1e-30 { worst = max(worst, err / (ref[i] * eltEps)) }
            if !(err <= bound) {
                failures += 1
                if failures <= 3 { Issue.record("\(what): y[\(r),\(j)] = \(y[i]) vs \(ref[i])", sourceLocation: sourceLocation) }
            }
        }
    }
    eltExpectPaddingUntouched(yPadded, rows: c.rows, cols: c.cols, ld: c.ld, "\(what) y", sourceLocation: sourceLocation)
    return worst
}

private func randomCase(rows: Int, cols: Int, seed: UInt64, spread: Float = 4, mask: Bool = false,
                        maskGroup: Int = 1, scale: Float = 1) -> SMCase {
    var rng = TestRNG(seed: seed)
    var c = SMCase(rows: rows, cols: cols, ld: cols + 3, x: rng.uniformArray(rows * cols, -spread, spread))
    c.scale = scale
    if mask {
        c.maskGroup = maskGroup
        c.ldm = cols + 2
        c.mask = (0..<(c.maskRows * cols)).map { _ in
            let u = rng.uniform(0, 1)
            return u < 0.2 ? -.infinity : (u < 0.3 ? -1e4 : rng.uniform(-1, 1))
        }
    }
    return c
}

// MARK: - Tests

@Suite(.serialized) struct SoftmaxTests {
    static let shapes = [(1, 1), (2, 2), (2, 7), (3, 8), (2, 9), (2, 15), (3, 16), (2, 17), (2, 31), (2, 33), (3, 97),
                         (4, 128), (2, 768)]

    @Test func forwardMatchesDoubleOnEveryISA() {
        var worst = [String: Double]()
        for (rows, cols) in Self.shapes {
            for (mask, group, scale) in [(false, 1, Float(1)), (true, 1, Float(0.125)), (true, 2, Float(1))] {
                let c = randomCase(rows: rows, cols: cols, seed: UInt64(rows * 1000 + cols), mask: mask, maskGroup: group, scale: scale)
                let label = "[\(rows),\(cols)] mask \(mask) group \(group) scale \(scale)"
                for isa in eltISAs {
                    let (st, y) = eltWithISA(isa) { smForward(c) }
                    let w = checkSoftmax(c, st, y, "\(eltName(isa)) \(label)")
                    worst[eltName(isa), default: 0] = max(worst[eltName(isa), default: 0], w)
                }
                let (st, y) = smForward(c, ref: true)
                worst["ref-entry", default: 0] = max(worst["ref-entry", default: 0], checkSoftmax(c, st, y, "_ref \(label)"))
            }
        }
        for (k, v) in worst.sorted(by: { $0.key < $1.key }) {
            print("softmax fwd \(k): max |y - ref| / ref = \(String(format: "%.2f", v)) eps")
        }
    }

    /// Rows whose every logit is -inf (by mask or by input) are all zeros, never NaN; masked
    /// positions of partly masked rows are exactly 0 and those rows still sum to 1.
    @Test func fullyAndPartlyMaskedRows() {
        for cols in [1, 7, 16, 17, 33, 128] {
            var rng = TestRNG(seed: UInt64(cols))
            var c = SMCase(rows: 4, cols: cols, ld: cols, x: rng.uniformArray(4 * cols, -3, 3))
            c.ldm = cols
            var mask = [Float](repeating: 0, count: 4 * cols)
            for j in 0..<cols { mask[j] = -.infinity }                              // row 0: fully masked
            for j in 0..<cols where j % 3 == 1 { mask[cols + j] = -.infinity }       // row 1: partly masked
            for j in 0..<cols { c.x[2 * cols + j] = -.infinity }                     // row 2: -inf inputs
            c.mask = mask
            for isa in eltISAs {
                let (st, y) = eltWithISA(isa) { smForward(c) }
                #expect(st == CK_OK)
                #expect(!y.contains { $0.isNaN }, "\(eltName(isa)) NaN in output")
                expectBitwiseEqual(Array(y[0..<cols]), [Float](repeating: 0, count: cols), "\(eltName(isa)) fully masked row")
                expectBitwiseEqual(Array(y[(2 * cols)..<(3 * cols)]), [Float](repeating: 0, count: cols), "\(eltName(isa)) -inf row")
                for j in 0..<cols where j % 3 == 1 { #expect(y[cols + j] == 0, "masked position must be exactly 0") }
                if cols > 1 {
                    let sum = y[cols..<(2 * cols)].reduce(0) { $0 + Double($1) }
                    #expect(abs(sum - 1) < 1e-6, "partly masked row sums to \(sum)")
                }
                checkSoftmax(c, st, y, "\(eltName(isa)) masked rows")
            }
        }
    }

    /// Hugging Face masks with the most negative finite float: when every position carries it the
    /// logits all become -FLT_MAX and the row is uniform (1/n exactly), as in PyTorch; when only some
    /// do, they get exactly 0.
    @Test func finiteLargeNegativeMaskBehavesLikePyTorch() {
        for cols in [3, 16, 17, 64] {
            var rng = TestRNG(seed: UInt64(cols + 500))
            var c = SMCase(rows: 2, cols: cols, ld: cols, x: rng.uniformArray(2 * cols, -5, 5))
            c.ldm = cols
            c.mask = [Float](repeating: -.greatestFiniteMagnitude, count: cols)
                + (0..<cols).map { $0 % 2 == 0 ? 0 : -.greatestFiniteMagnitude }
            for isa in eltISAs + [CK_ISA_REF] {
                let (st, y) = eltWithISA(isa) { smForward(c) }
                #expect(st == CK_OK)
                expectBitwiseEqual(Array(y[0..<cols]), [Float](repeating: 1 / Float(cols), count: cols),
                                   "\(eltName(isa)) all -FLT_MAX: uniform")
                for j in 0..<cols where j % 2 == 1 { #expect(y[cols + j] == 0) }
                checkSoftmax(c, st, y, "\(eltName(isa)) -FLT_MAX mask")
            }
        }
    }

    /// Attention layout: scores [batch, heads, q, k] as rows = batch*heads*q, key-padding mask
    /// [batch, k] (with ldm > k) broadcast with mask_group = heads*q.
    @Test func maskGroupBroadcastsOverHeadsAndQueries() {
        let batch = 2, heads = 3, q = 4, k = 9
        var rng = TestRNG(seed: 42)
        var c = SMCase(rows: batch * heads * q, cols: k, ld: k + 1, x: rng.uniformArray(batch * heads * q * k, -3, 3))
        c.maskGroup = heads * q
        c.ldm = k + 4
        c.scale = 1 / Float(8).squareRoot()
        c.mask = (0..<(batch * k)).map { i in (i / k == 1 && i % k >= 6) ? -.infinity : 0 }  // batch 1: last 3 keys padded
        for isa in eltISAs {
            let (st, y) = eltWithISA(isa) { smForward(c) }
            checkSoftmax(c, st, y, "\(eltName(isa)) grouped mask")
            for r in (heads * q)..<(batch * heads * q) {
                for j in 6..<k { #expect(y[r * c.ld + j] == 0, "batch 1 padded key \(j) in row \(r)") }
            }
            for r in 0..<(heads * q) { #expect(y[r * c.ld + 8] > 0, "batch 0 is not masked") }
        }
    }

    /// Large logits (1e4, 1e30): the max subtraction keeps exp in range; no inf or NaN.
    @Test func largeLogits() {
        for spread: Float in [1e4, 1e30] {
            let c = randomCase(rows: 3, cols: 37, seed: 7, spread: spread)
            for isa in eltISAs {
                let (st, y) = eltWithISA(isa) { smForward(c) }
                #expect(!y.prefix(37).contains { $0.isNaN || $0.isInfinite })
                checkSoftmax(c, st, y, "\(eltName(isa)) spread \(spread)")
            }
        }
    }

    /// Logits spread over [-44, 44] (z - max down to -88, the exp's flush limit): entries far below the
    /// row max keep their relative accuracy. Rows of 128 (paired register rows), 200 (one register chunk),
    /// 768 columns (three chunks) and 16 400 columns (AVX-512's three-pass loop; AVX2 always uses it).
    @Test func wideLogitRangeKeepsRelativeAccuracy() {
        var worst = [String: Double]()
        for cols in [16, 128, 200, 768, 16_400] {
            let c = randomCase(rows: cols > 1000 ? 2 : 4, cols: cols, seed: UInt64(cols + 900), spread: 44)
            for isa in eltISAs {
                let (st, y) = eltWithISA(isa) { smForward(c) }
                let w = checkSoftmax(c, st, y, "\(eltName(isa)) spread 44, \(cols) cols")
                worst[eltName(isa), default: 0] = max(worst[eltName(isa), default: 0], w)
            }
        }
        for (k, v) in worst.sorted(by: { $0.key < $1.key }) {
            print("softmax fwd spread 44 \(k): max |y - ref| / ref = \(String(format: "%.2f", v)) eps")
        }
    }

    /// y may alias x.
    @Test func inPlace() {
        for isa in eltISAs {
            for cols in [7, 33, 128] {
                let c = randomCase(rows: 3, cols: cols, seed: UInt64(cols), mask: true, scale: 0.5)
                var c2 = c
                c2.ld = cols
                let expected = eltWithISA(isa) { smForward(c2).1 }
                var buf = c.x
                let st = eltWithISA(isa) {
                    buf.withUnsafeMutableBufferPointer { b in
                        eltOptionalPointer(c.mask.map { eltPadded($0, rows: c.maskRows, cols: cols, ld: c.ldm) }) { mb in
                            ck_softmax_fwd_f32(3, Int64(cols), b.baseAddress, Int64(cols), mb, Int64(c.ldm), 1, b.baseAddress,
                                               Int64(cols), c.scale)
                        }
                    }
                }
                #expect(st == CK_OK)
                expectBitwiseEqual(buf, expected, "\(eltName(isa)) in place")
            }
        }
    }

    /// Tier C: backward against central differences of L = sum(dy * softmax(scale x + mask)) in
    /// Double; beta 0 into NaN, beta 1 accumulates, dx == dy (beta 0) equals the out-of-place result.
    @Test func backwardMatchesFiniteDifferences() {
        var worst = [String: Double]()
        for (rows, cols) in [(1, 1), (2, 7), (2, 16), (3, 17), (2, 33), (2, 64)] {
            for (mask, scale) in [(false, Float(1)), (true, Float(0.35))] {
                var c = randomCase(rows: rows, cols: cols, seed: UInt64(300 + cols), spread: 2, mask: mask, scale: scale)
                c.ld = cols + 2
                var rng = TestRNG(seed: UInt64(400 + cols))
                let dy = rng.uniformArray(rows * cols, -1, 1)
                // FD of the Double softmax of Double logits scale*x + mask (the gradient w.r.t. x).
                func loss(_ x: [Double]) -> Double {
                    var total = 0.0
                    for r in 0..<rows {
                        let z = (0..<cols).map { j in Double(scale) * x[r * cols + j] + Double(c.mask?[(r / c.maskGroup) * cols + j] ?? 0) }
                        let m = z.max()!
                        if m == -.infinity { continue }
                        let e = z.map { exp($0 - m) }
                        let s = e.reduce(0, +)
                        for j in 0..<cols { total += Double(dy[r * cols + j]) * e[j] / s }
                    }
                    return total
                }
                let x = c.x.map(Double.init)
                let h = 1e-6
                let fd = (0..<(rows * cols)).map { i -> Double in
                    var p = x, m = x
                    p[i] += h; m[i] -= h
                    return (loss(p) - loss(m)) / (2 * h)
                }
                let tol = 4 * (8 + 2 * Double(cols).squareRoot()) * eltEps * Double(abs(scale)) * 1.0 + 1e-9
                for (isa, useRef) in eltISAs.map({ ($0, false) }) + [(CK_ISA_REF, true)] {
                    let label = "\(useRef ? "_ref" : eltName(isa)) [\(rows),\(cols)] mask \(mask)"
                    let (_, y) = eltWithISA(isa) { smForward(c) }
                    let dyp = eltPadded(dy, rows: rows, cols: cols, ld: c.ld)
                    for beta: Float in [0, 1] {
                        let dx0 = beta == 0 ? nanFilled(rows * c.ld) : eltPadded(rng.uniformArray(rows * cols, -1, 1), rows: rows, cols: cols, ld: c.ld)
                        var dx = dx0
                        let st = eltWithISA(isa) {
                            y.withUnsafeBufferPointer { yb in
                                dyp.withUnsafeBufferPointer { db in
                                    dx.withUnsafeMutableBufferPointer { xb in
                                        (useRef ? ck_softmax_bwd_f32_ref : ck_softmax_bwd_f32)(
                                            Int64(rows), Int64(cols), yb.baseAddress, Int64(c.ld), db.baseAddress, Int64(c.ld),
                                            xb.baseAddress, Int64(c.ld), beta, scale)
                                    }
                                }
                            }
                        }
                        #expect(st == CK_OK)
                        let base = beta == 0 ? [Double](repeating: 0, count: rows * cols) : eltBlock(dx0, rows: rows, cols: cols, ld: c.ld).map(Double.init)
                        let rep = expectClose(eltBlock(dx, rows: rows, cols: cols, ld: c.ld), zip(base, fd).map { $0 + $1 },
                                              atol: tol, rtol: 0, "\(label) beta \(beta)")
                        eltExpectPaddingUntouched(dx, rows: rows, cols: cols, ld: c.ld, "\(label) dx padding")
                        let key = useRef ? "ref-entry" : eltName(isa)
                        worst[key] = max(worst[key] ?? 0, rep.maxAbsError / Double(abs(scale)))
                        if beta == 0 {
                            // dx aliasing dy (beta 0) gives the same bits.
                            var alias = dyp
                            _ = eltWithISA(isa) {
                                y.withUnsafeBufferPointer { yb in
                                    alias.withUnsafeMutableBufferPointer { ab in
                                        (useRef ? ck_softmax_bwd_f32_ref : ck_softmax_bwd_f32)(
                                            Int64(rows), Int64(cols), yb.baseAddress, Int64(c.ld), ab.baseAddress, Int64(c.ld),
                                            ab.baseAddress, Int64(c.ld), 0, scale)
                                    }
                                }
                            }
                            expectBitwiseEqual(eltBlock(alias, rows: rows, cols: cols, ld: c.ld), eltBlock(dx, rows: rows, cols: cols, ld: c.ld),
                                               "\(label) dx == dy")
                        }
                    }
                }
            }
        }
        for (k, v) in worst.sorted(by: { $0.key < $1.key }) {
            print("softmax bwd \(k): max |dx - FD| / |scale| = \(String(format: "%.3g", v))")
        }
    }

    /// Empty shapes are valid no-ops; bad arguments return the documented status and write nothing.
    @Test func emptyShapesAndBadArguments() {
        #expect(ck_softmax_fwd_f32(0, 5, nil, 5, nil, 0, 0, nil, 5, 1) == CK_OK)
        #expect(ck_softmax_fwd_f32(3, 0, nil, 0, nil, 0, 0, nil, 0, 1) == CK_OK)
        #expect(ck_softmax_bwd_f32(0, 5, nil, 5, nil, 5, nil, 5, 0, 1) == CK_OK)
        let x: [Float] = [1, 2, 3, 4, 5, 6]
        func fwd(_ expected: ck_status, _ what: String, rows: Int64 = 2, cols: Int64 = 3, ldx: Int64 = 3, mask: Bool = false,
                 ldm: Int64 = 3, group: Int64 = 1, ldy: Int64 = 3, xNil: Bool = false) {
            for ref in [false, true] {
                var y = nanFilled(6)
                let st = x.withUnsafeBufferPointer { xb in
                    y.withUnsafeMutableBufferPointer { yb in
                        (ref ? ck_softmax_fwd_f32_ref : ck_softmax_fwd_f32)(rows, cols, xNil ? nil : xb.baseAddress, ldx,
                                                                            mask ? xb.baseAddress : nil, ldm, group, yb.baseAddress, ldy, 1)
                    }
                }
                #expect(st == expected, "\(what) (ref \(ref))")
                #expect(y.allSatisfy { $0.isNaN }, "\(what) wrote output")
            }
        }
        fwd(CK_ERR_BAD_SIZE, "rows < 0", rows: -1)
        fwd(CK_ERR_BAD_SIZE, "cols < 0", cols: -3)
        fwd(CK_ERR_BAD_LD, "ldx < cols", ldx: 2)
        fwd(CK_ERR_BAD_LD, "ldy < cols", ldy: 1)
        fwd(CK_ERR_BAD_LD, "ldm < cols", mask: true, ldm: 2)
        fwd(CK_ERR_BAD_ARG, "mask_group 0", mask: true, group: 0)
        fwd(CK_ERR_NULL_POINTER, "x NULL", xNil: true)
        fwd(CK_ERR_BAD_SIZE, "rows * ld overflows", rows: Int64.max / 2, ldx: 4, ldy: 4)
        var y = nanFilled(6)
        #expect(ck_softmax_fwd_f32(2, 3, x, 3, nil, 0, 0, &y, 3, 1) == CK_OK, "mask_group is ignored without a mask")
        func bwd(_ expected: ck_status, _ what: String, lddx: Int64 = 3, beta: Float = 0, alias: Bool = false) {
            for ref in [false, true] {
                var dx = nanFilled(6)
                let st = x.withUnsafeBufferPointer { xb in
                    dx.withUnsafeMutableBufferPointer { db in
                        (ref ? ck_softmax_bwd_f32_ref : ck_softmax_bwd_f32)(2, 3, xb.baseAddress, 3, alias ? UnsafePointer(db.baseAddress) : xb.baseAddress, 3,
                                                                            db.baseAddress, lddx, beta, 1)
                    }
                }
                #expect(st == expected, "\(what) (ref \(ref))")
                #expect(dx.allSatisfy { $0.isNaN }, "\(what) wrote output")
            }
        }
        bwd(CK_ERR_BAD_LD, "lddx < cols", lddx: 2)
        bwd(CK_ERR_BAD_ARG, "beta 0.5", beta: 0.5)
        bwd(CK_ERR_BAD_ARG, "dx == dy with beta 1", beta: 1, alias: true)
    }
}

// Tests of ck_layernorm_fwd_f32 / ck_layernorm_bwd_f32 (and _ref) on every ISA.
//
// Tolerances (docs/numerics.md, "LayerNorm"): with c(n) = (16 + 2 sqrt(n)) * 2^-23 — a sum of n
// fp32 terms whose roundings are independent grows like sqrt(n) eps (the SIMD kernels keep 32-64
// partial sums, the reference one); 2 sqrt(n) is well beyond the observed spread and 16 covers the
// fixed per-element roundings (subtract, two multiplies, FMA, the mean/rstd roundings):
//   y:     |y - ref| <= c(n) (|gamma| (1 + |xhat|) + |beta|)
//   mean:  |mean - ref| <= c(n) max|s|,   rstd: relative c(n)
//   grads: |g - ref| <= 4 c(n) rstd max|dy gamma| (1 + max|xhat|)^2  (dx, three cancelling terms)
//          |g - ref| <= 4 c(n) max|dy| (1 + max|xhat|) * rows       (dgamma, dbeta: row sums)
import CKernels
import Foundation
import Testing
import TestSupport

// MARK: - Double reference

private struct LNCase {
    var rows: Int, cols: Int
    var ld: Int
    var x: [Float]            // [rows, cols]
    var residual: [Float]?    // [rows, cols]
    var gamma: [Float]?, beta: [Float]?
    var eps: Float = 1e-5

    /// s = x + residual in fp32 (the kernel's first operation), as Double.
    var s: [Double] {
        (0..<(rows * cols)).map { i in Double(residual.map { x[i] + $0[i] } ?? x[i]) }
    }
}

private struct LNDouble {
    var y: [Double], mean: [Double], rstd: [Double], xhat: [Double]
}

/// Two-pass LayerNorm in Double over s.
private func lnDouble(_ s: [Double], rows: Int, cols: Int, gamma: [Float]?, beta: [Float]?, eps: Double) -> LNDouble {
    var out = LNDouble(y: [], mean: [], rstd: [], xhat: [])
    for r in 0..<rows {
        let row = s[(r * cols)..<(r * cols + cols)]
        let mean = row.reduce(0, +) / Double(cols)
        let variance = row.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(cols)
        let rstd = 1 / (variance + eps).squareRoot()
        out.mean.append(mean)
        out.rstd.append(rstd)
        for (j, v) in row.enumerated() {
            let xhat = (v - mean) * rstd
            out.xhat.append(xhat)
            out.y.append(xhat * Double(gamma?[j] ?? 1) + Double(beta?[j] ?? 0))
        }
    }
    return out
}

private func cOf(_ n: Int) -> Double { (16 + 2 * Double(n).squareRoot()) * eltEps }

// MARK: - Runners

private struct LNOut {
    var status: ck_status
    var y: [Float], sum: [Float], mean: [Float], rstd: [Float]
}

/// Runs the forward with x, residual, y and sum_out all padded to `ld` (padding NaN).
private func lnForward(_ c: LNCase, ref: Bool = false, wantSum: Bool = true, wantStats: Bool = true) -> LNOut {
    let xp = eltPadded(c.x, rows: c.rows, cols: c.cols, ld: c.ld)
    let rp = c.residual.map { eltPadded($0, rows: c.rows, cols: c.cols, ld: c.ld) }
    var out = LNOut(status: CK_OK, y: nanFilled(c.rows * c.ld), sum: nanFilled(c.rows * c.ld),
                    mean: nanFilled(c.rows), rstd: nanFilled(c.rows))
    let ld = Int64(c.ld)
    out.status = xp.withUnsafeBufferPointer { xb in
        eltOptionalPointer(rp) { rb in
            eltOptionalPointer(c.gamma) { gb in
                eltOptionalPointer(c.beta) { bb in
                    out.y.withUnsafeMutableBufferPointer { yb in
                        out.sum.withUnsafeMutableBufferPointer { sb in
                            out.mean.withUnsafeMutableBufferPointer { mb in
                                out.rstd.withUnsafeMutableBufferPointer { rsb in
                                    let f = ref ? ck_layernorm_fwd_f32_ref : ck_layernorm_fwd_f32
                                    return f(Int64(c.rows), Int64(c.cols), xb.baseAddress, ld, rb, ld, gb, bb,
                                             yb.baseAddress, ld, wantSum ? sb.baseAddress : nil, ld,
                                             wantStats ? mb.baseAddress : nil, wantStats ? rsb.baseAddress : nil, c.eps)
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    return out
}

/// Checks one forward result against the Double reference; returns max |y - ref| / scale.
@discardableResult
private func checkForward(_ c: LNCase, _ o: LNOut, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) -> Double {
    #expect(o.status == CK_OK, "\(what)", sourceLocation: sourceLocation)
    let ref = lnDouble(c.s, rows: c.rows, cols: c.cols, gamma: c.gamma, beta: c.beta, eps: Double(c.eps))
    let y = eltBlock(o.y, rows: c.rows, cols: c.cols, ld: c.ld)
    let tol = cOf(c.cols)
    var worst = 0.0, failures = 0
    for r in 0..<c.rows {
        for j in 0..<c.cols {
            let i = r * c.cols + j
            let scale = abs(Double(c.gamma?[j] ?? 1)) * (1 + abs(ref.xhat[i])) + abs(Double(c.beta?[j] ?? 0))
            let err = abs(Double(y[i]) - ref.y[i])
            worst = max(worst, err / scale)
            if !(err <= tol * scale) {
                failures += 1
                if failures <= 3 { Issue.record("\(what): y[\(r),\(j)] = \(y[i]) vs \(ref.y[i])", sourceLocation: sourceLocation) }
            }
        }
        let maxS = c.s[(r * c.cols)..<(r * c.cols + c.cols)].map(abs).max() ?? 0
        if !(abs(Double(o.mean[r]) - ref.mean[r]) <= tol * maxS) {
            Issue.record("\(what): mean[\(r)] = \(o.mean[r]) vs \(ref.mean[r])", sourceLocation: sourceLocation)
        }
        if !(abs(Double(o.rstd[r]) - ref.rstd[r]) <= tol * ref.rstd[r]) {
            Issue.record("\(what): rstd[\(r)] = \(o.rstd[r]) vs \(ref.rstd[r])", sourceLocation: sourceLocation)
        }
    }
    eltExpectPaddingUntouched(o.y, rows: c.rows, cols: c.cols, ld: c.ld, "\(what) y", sourceLocation: sourceLocation)
    return worst
}

private func randomCase(rows: Int, cols: Int, residual: Bool, affine: Bool, seed: UInt64,
                        scale: Float = 1, offset: Float = 0) -> LNCase {
    var rng = TestRNG(seed: seed)
    let x = rng.uniformArray(rows * cols, -2, 2).map { $0 * scale + offset }
    return LNCase(rows: rows, cols: cols, ld: cols + 3, x: x,
                  residual: residual ? rng.uniformArray(rows * cols, -1, 1).map { $0 * scale } : nil,
                  gamma: affine ? rng.uniformArray(cols, 0.5, 1.5) : nil,
                  beta: affine ? rng.uniformArray(cols, -0.5, 0.5) : nil)
}

// MARK: - Tests

@Suite(.serialized) struct LayerNormTests {
    static let shapes = [(1, 1), (2, 2), (2, 7), (3, 8), (2, 9), (2, 15), (3, 16), (2, 17), (2, 31), (2, 33), (3, 97), (4, 768)]

    @Test func forwardMatchesDoubleOnEveryISA() {
        var worst = [String: Double]()
        for (rows, cols) in Self.shapes {
            for residual in [false, true] {
                for affine in [false, true] {
                    let c = randomCase(rows: rows, cols: cols, residual: residual, affine: affine,
                                       seed: UInt64(rows * 10_000 + cols * 4 + (residual ? 2 : 0) + (affine ? 1 : 0)))
                    for isa in eltISAs {
                        let o = eltWithISA(isa) { lnForward(c) }
                        let w = checkForward(c, o, "\(eltName(isa)) [\(rows),\(cols)] res \(residual) affine \(affine)")
                        worst[eltName(isa), default: 0] = max(worst[eltName(isa), default: 0], w)
                        // sum_out is exactly x + residual (fp32), padding untouched.
                        let sum = eltBlock(o.sum, rows: rows, cols: cols, ld: c.ld)
                        expectBitwiseEqual(sum, c.s.map { Float($0) }, "sum_out")
                        eltExpectPaddingUntouched(o.sum, rows: rows, cols: cols, ld: c.ld, "sum_out")
                    }
                    let r = lnForward(c, ref: true)
                    worst["ref-entry", default: 0] = max(worst["ref-entry", default: 0], checkForward(c, r, "_ref [\(rows),\(cols)]"))
                }
            }
        }
        for (k, v) in worst.sorted(by: { $0.key < $1.key }) {
            print("layernorm fwd \(k): max |y - ref| / (|gamma|(1+|xhat|)+|beta|) = \(String(format: "%.3g", v)) (= \(String(format: "%.2f", v / eltEps)) eps)")
        }
    }

    /// Magnitudes: offsets of 1e4 (variance small against mean^2), 1e30 (squares overflow fp32
    /// unless rescaled), 1e-30 (squares underflow), and a row spanning -1.5e38..1.5e38.
    @Test func extremeMagnitudes() {
        var cases: [(String, LNCase)] = [
            ("1e4 offset", randomCase(rows: 3, cols: 768, residual: false, affine: true, seed: 1, offset: 1e4)),
            ("1e30 scale", randomCase(rows: 3, cols: 33, residual: false, affine: true, seed: 2, scale: 1e30)),
            ("-1e30 offset", randomCase(rows: 2, cols: 17, residual: false, affine: false, seed: 3, scale: 1e29, offset: -1e30)),
            ("1e-30 scale", randomCase(rows: 3, cols: 31, residual: true, affine: true, seed: 4, scale: 1e-30)),
        ]
        var wide = randomCase(rows: 1, cols: 16, residual: false, affine: false, seed: 5)
        wide.x = (0..<16).map { Float($0 % 2 == 0 ? 1.5e38 : -1.5e38) * (1 - Float($0) * 0.01) }
        cases.append(("+-1.5e38", wide))
        cases[3].1.eps = 0  // with eps 1e-5 the 1e-30 rows would normalise to ~0; eps 0 tests the rescaling
        for (name, c) in cases {
            for isa in eltISAs {
                let o = eltWithISA(isa) { lnForward(c) }
                #expect(!o.y.prefix(c.cols).contains { $0.isNaN || $0.isInfinite }, "\(eltName(isa)) \(name): non-finite y")
                let w = checkForward(c, o, "\(eltName(isa)) \(name)")
                print("layernorm fwd \(eltName(isa)) \(name): max scaled error \(String(format: "%.2f", w / eltEps)) eps")
            }
            checkForward(c, lnForward(c, ref: true), "_ref \(name)")
        }
    }

    /// Zero-variance rows give y = beta exactly (and mean = the value, rstd = 1/sqrt(eps)), even when
    /// the value is not representable as a mean of itself (0.1) and eps is tiny (BERT's 1e-12).
    @Test(arguments: [1, 7, 16, 17, 768])
    func constantRowsGiveBeta(cols: Int) {
        var rng = TestRNG(seed: UInt64(cols))
        let beta = rng.uniformArray(cols, -1, 1)
        let gamma = rng.uniformArray(cols, 0.5, 2)
        for value: Float in [0.1, -3.7, 0, 1e30, 1e-30] {
            for eps: Float in [1e-12, 1e-5] {
                let c = LNCase(rows: 2, cols: cols, ld: cols + 1, x: [Float](repeating: value, count: 2 * cols),
                               residual: nil, gamma: gamma, beta: beta, eps: eps)
                for isa in eltISAs {
                    let o = eltWithISA(isa) { lnForward(c) }
                    let y = eltBlock(o.y, rows: 2, cols: cols, ld: c.ld)
                    expectBitwiseEqual(y, beta + beta, "\(eltName(isa)) constant \(value) eps \(eps)")
                    #expect(o.mean == [value, value])
                    #expect(o.rstd[0] == Float(1 / Double(eps).squareRoot()))
                }
            }
        }
    }

    /// y may alias x or residual (row-wise in place): same bits as out of place.
    @Test func inPlace() {
        for isa in eltISAs {
            for cols in [9, 33, 768] {
                let c = randomCase(rows: 3, cols: cols, residual: true, affine: true, seed: UInt64(cols))
                let expected = eltWithISA(isa) { eltBlock(lnForward(c).y, rows: 3, cols: cols, ld: c.ld) }
                for aliasResidual in [false, true] {
                    var a = c.x, b = c.residual!
                    let st = eltWithISA(isa) {
                        a.withUnsafeMutableBufferPointer { ap in
                            b.withUnsafeMutableBufferPointer { bp in
                                c.gamma!.withUnsafeBufferPointer { gp in
                                    c.beta!.withUnsafeBufferPointer { betap in
                                        ck_layernorm_fwd_f32(3, Int64(cols), ap.baseAddress, Int64(cols), bp.baseAddress, Int64(cols),
                                                             gp.baseAddress, betap.baseAddress,
                                                             aliasResidual ? bp.baseAddress : ap.baseAddress, Int64(cols),
                                                             nil, 0, nil, nil, c.eps)
                                    }
                                }
                            }
                        }
                    }
                    #expect(st == CK_OK)
                    expectBitwiseEqual(aliasResidual ? b : a, expected, "\(eltName(isa)) in place (alias residual \(aliasResidual))")
                }
            }
        }
    }

    /// Tier C: backward against central finite differences of the Double forward of
    /// L = sum(dy * LN(s)), for dx (= dL/ds, also the gradient of x and of residual), dgamma, dbeta;
    /// beta_dx = 0 into NaN and beta_dx = 1 accumulation; dgamma/dbeta accumulate onto 0.5.
    @Test func backwardMatchesFiniteDifferences() {
        var worst = [String: Double]()
        for (rows, cols) in [(1, 1), (2, 7), (3, 16), (2, 17), (2, 33)] {
            for affine in [true, false] {
                var c = randomCase(rows: rows, cols: cols, residual: true, affine: affine, seed: UInt64(77 + cols))
                c.ld = cols + 2
                var rng = TestRNG(seed: UInt64(99 + cols))
                let dy = rng.uniformArray(rows * cols, -1, 1)
                let s = c.s
                let eps = Double(c.eps)
                func loss(_ s: [Double], _ gamma: [Float]?, _ beta: [Float]?) -> Double {
                    let y = lnDouble(s, rows: rows, cols: cols, gamma: gamma, beta: beta, eps: eps).y
                    return zip(y, dy).reduce(0) { $0 + $1.0 * Double($1.1) }
                }
                // Central differences, h relative to the row scale (truncation ~h^2, rounding ~1e-16/h).
                let h = 1e-5
                var fdX = [Double](), fdG = [Double](repeating: 0, count: cols), fdB = [Double](repeating: 0, count: cols)
                for i in 0..<(rows * cols) {
                    var sp = s, sm = s
                    sp[i] += h; sm[i] -= h
                    fdX.append((loss(sp, c.gamma, c.beta) - loss(sm, c.gamma, c.beta)) / (2 * h))
                }
                if affine {
                    for j in 0..<cols {
                        var gp = c.gamma!, gm = c.gamma!
                        let hg = Float(1.0 / 1024)  // exact in fp32, so the Double difference is exact
                        gp[j] += hg; gm[j] -= hg
                        fdG[j] = (loss(s, gp, c.beta) - loss(s, gm, c.beta)) / (2 * Double(hg))
                        var bp = c.beta!, bm = c.beta!
                        bp[j] += hg; bm[j] -= hg
                        fdB[j] = (loss(s, c.gamma, bp) - loss(s, c.gamma, bm)) / (2 * Double(hg))
                    }
                } else {
                    let ref = lnDouble(s, rows: rows, cols: cols, gamma: nil, beta: nil, eps: eps)
                    for r in 0..<rows { for j in 0..<cols { fdG[j] += Double(dy[r * cols + j]) * ref.xhat[r * cols + j]; fdB[j] += Double(dy[r * cols + j]) } }
                }
                let ref = lnDouble(s, rows: rows, cols: cols, gamma: c.gamma, beta: c.beta, eps: eps)
                let maxXhat = ref.xhat.map(abs).max() ?? 0
                let maxG = (0..<(rows * cols)).map { abs(Double(dy[$0]) * Double(c.gamma?[$0 % cols] ?? 1)) }.max() ?? 0
                let maxRstd = ref.rstd.max() ?? 1
                let tolX = 4 * cOf(cols) * maxRstd * maxG * (1 + maxXhat) * (1 + maxXhat) + 1e-7
                let tolP = 4 * cOf(cols) * (1 + maxXhat) * Double(rows) + 1e-7

                for (isa, useRefEntry) in eltISAs.map({ ($0, false) }) + [(CK_ISA_REF, true)] {
                    let fwd = eltWithISA(isa) { lnForward(c) }
                    let sp = eltPadded(s.map { Float($0) }, rows: rows, cols: cols, ld: c.ld)
                    let dyp = eltPadded(dy, rows: rows, cols: cols, ld: c.ld)
                    for betaDx: Float in [0, 1] {
                        let dx0 = betaDx == 0 ? nanFilled(rows * c.ld) : eltPadded(rng.uniformArray(rows * cols, -1, 1), rows: rows, cols: cols, ld: c.ld)
                        var dx = dx0
                        var dgamma = [Float](repeating: 0.5, count: cols), dbeta = [Float](repeating: 0.5, count: cols)
                        let st = eltWithISA(isa) {
                            sp.withUnsafeBufferPointer { sb in
                                dyp.withUnsafeBufferPointer { db in
                                    eltOptionalPointer(c.gamma) { gb in
                                        fwd.mean.withUnsafeBufferPointer { mb in
                                            fwd.rstd.withUnsafeBufferPointer { rb in
                                                dx.withUnsafeMutableBufferPointer { xb in
                                                    dgamma.withUnsafeMutableBufferPointer { gg in
                                                        dbeta.withUnsafeMutableBufferPointer { bg in
                                                            let f = useRefEntry ? ck_layernorm_bwd_f32_ref : ck_layernorm_bwd_f32
                                                            return f(Int64(rows), Int64(cols), sb.baseAddress, Int64(c.ld), gb,
                                                                     mb.baseAddress, rb.baseAddress, db.baseAddress, Int64(c.ld),
                                                                     xb.baseAddress, Int64(c.ld), gg.baseAddress, bg.baseAddress, betaDx)
                                                        }
                                                    }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                        let label = "\(useRefEntry ? "_ref" : eltName(isa)) [\(rows),\(cols)] affine \(affine) beta_dx \(betaDx)"
                        #expect(st == CK_OK, "\(label)")
                        let base = betaDx == 0 ? [Double](repeating: 0, count: rows * cols) : eltBlock(dx0, rows: rows, cols: cols, ld: c.ld).map(Double.init)
                        let rx = expectClose(eltBlock(dx, rows: rows, cols: cols, ld: c.ld), zip(base, fdX).map { $0 + $1 },
                                             atol: tolX, rtol: 0, "\(label) dx")
                        eltExpectPaddingUntouched(dx, rows: rows, cols: cols, ld: c.ld, "\(label) dx")
                        let rg = expectClose(dgamma, fdG.map { $0 + 0.5 }, atol: tolP, rtol: 0, "\(label) dgamma")
                        let rb = expectClose(dbeta, fdB.map { $0 + 0.5 }, atol: tolP, rtol: 0, "\(label) dbeta")
                        let key = useRefEntry ? "ref-entry" : eltName(isa)
                        worst[key] = max(worst[key] ?? 0, rx.maxAbsError / max(maxRstd * maxG, 1e-30))
                        _ = (rg, rb)
                    }
                }
            }
        }
        for (k, v) in worst.sorted(by: { $0.key < $1.key }) {
            print("layernorm bwd \(k): max |dx - FD| / (rstd max|dy gamma|) = \(String(format: "%.3g", v))")
        }
    }

    /// dx == NULL (parameter gradients only), dgamma/dbeta NULL, gamma NULL: each output on its own
    /// equals what the full call produces (bitwise: the same arithmetic per element).
    @Test func optionalGradients() {
        let rows = 3, cols = 33
        let c = randomCase(rows: rows, cols: cols, residual: false, affine: true, seed: 5)
        var rng = TestRNG(seed: 6)
        let dy = rng.uniformArray(rows * cols, -1, 1)
        for isa in eltISAs {
            eltWithISA(isa) {
                let fwd = lnForward(LNCase(rows: rows, cols: cols, ld: cols, x: c.x, residual: nil, gamma: c.gamma, beta: c.beta))
                func run(dx: Bool, dg: Bool, db: Bool) -> ([Float], [Float], [Float]) {
                    var dxv = nanFilled(rows * cols), dgv = [Float](repeating: 0, count: cols), dbv = [Float](repeating: 0, count: cols)
                    let st = c.x.withUnsafeBufferPointer { sb in
                        dy.withUnsafeBufferPointer { db_ in
                            c.gamma!.withUnsafeBufferPointer { gb in
                                fwd.mean.withUnsafeBufferPointer { mb in
                                    fwd.rstd.withUnsafeBufferPointer { rb in
                                        dxv.withUnsafeMutableBufferPointer { xb in
                                            dgv.withUnsafeMutableBufferPointer { gg in
                                                dbv.withUnsafeMutableBufferPointer { bg in
                                                    ck_layernorm_bwd_f32(Int64(rows), Int64(cols), sb.baseAddress, Int64(cols), gb.baseAddress,
                                                                         mb.baseAddress, rb.baseAddress, db_.baseAddress, Int64(cols),
                                                                         dx ? xb.baseAddress : nil, Int64(cols),
                                                                         dg ? gg.baseAddress : nil, db ? bg.baseAddress : nil, 0)
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    #expect(st == CK_OK)
                    return (dxv, dgv, dbv)
                }
                let full = run(dx: true, dg: true, db: true)
                let onlyParams = run(dx: false, dg: true, db: true)
                #expect(onlyParams.0.allSatisfy { $0.isNaN }, "dx NULL must not be written")
                expectBitwiseEqual(onlyParams.1, full.1, "dgamma without dx")
                expectBitwiseEqual(onlyParams.2, full.2, "dbeta without dx")
                let onlyDx = run(dx: true, dg: false, db: false)
                expectBitwiseEqual(onlyDx.0, full.0, "dx without parameter gradients")
                #expect(onlyDx.1.allSatisfy { $0 == 0 } && onlyDx.2.allSatisfy { $0 == 0 })
            }
        }
    }

    /// cols == 0 and rows == 0 are valid; bad arguments return the documented status and write nothing.
    @Test func emptyShapesAndBadArguments() {
        var mean: [Float] = [.nan, .nan], rstd: [Float] = [.nan, .nan]
        #expect(ck_layernorm_fwd_f32(2, 0, nil, 0, nil, 0, nil, nil, nil, 0, nil, 0, &mean, &rstd, 0.25) == CK_OK)
        #expect(mean == [0, 0] && rstd == [2, 2], "empty rows: mean 0, rstd 1/sqrt(eps)")
        #expect(ck_layernorm_fwd_f32(0, 5, nil, 5, nil, 5, nil, nil, nil, 5, nil, 5, nil, nil, 1e-5) == CK_OK)
        #expect(ck_layernorm_bwd_f32(0, 5, nil, 5, nil, nil, nil, nil, 5, nil, 5, nil, nil, 0) == CK_OK)

        let x: [Float] = [1, 2, 3, 4, 5, 6]
        var y = nanFilled(6), m = nanFilled(2), r = nanFilled(2)
        func fwd(_ expected: ck_status, _ what: String, rows: Int64 = 2, cols: Int64 = 3, ldx: Int64 = 3, res: Bool = false,
                 ldr: Int64 = 3, ldy: Int64 = 3, sum: Bool = false, lds: Int64 = 3, xNil: Bool = false, eps: Float = 1e-5) {
            for ref in [false, true] {
                y = nanFilled(6); m = nanFilled(2); r = nanFilled(2)
                var s = nanFilled(6)
                let st = x.withUnsafeBufferPointer { xb in
                    y.withUnsafeMutableBufferPointer { yb in
                        s.withUnsafeMutableBufferPointer { sb in
                            m.withUnsafeMutableBufferPointer { mb in
                                r.withUnsafeMutableBufferPointer { rb in
                                    (ref ? ck_layernorm_fwd_f32_ref : ck_layernorm_fwd_f32)(
                                        rows, cols, xNil ? nil : xb.baseAddress, ldx, res ? xb.baseAddress : nil, ldr, nil, nil,
                                        yb.baseAddress, ldy, sum ? sb.baseAddress : nil, lds, mb.baseAddress, rb.baseAddress, eps)
                                }
                            }
                        }
                    }
                }
                #expect(st == expected, "\(what) (ref \(ref))")
                #expect((y + s + m + r).allSatisfy { $0.isNaN }, "\(what) wrote output")
            }
        }
        fwd(CK_ERR_BAD_SIZE, "rows < 0", rows: -1)
        fwd(CK_ERR_BAD_SIZE, "cols < 0", cols: -1)
        fwd(CK_ERR_BAD_LD, "ldx < cols", ldx: 2)
        fwd(CK_ERR_BAD_LD, "ldy < cols", ldy: 2)
        fwd(CK_ERR_BAD_LD, "ld_residual < cols", res: true, ldr: 1)
        fwd(CK_ERR_BAD_LD, "ld_sum < cols", sum: true, lds: 0)
        fwd(CK_ERR_BAD_ARG, "eps < 0", eps: -1e-5)
        fwd(CK_ERR_BAD_ARG, "eps NaN", eps: .nan)
        fwd(CK_ERR_NULL_POINTER, "x NULL", xNil: true)
        fwd(CK_ERR_BAD_SIZE, "rows * ld overflows", rows: Int64.max / 2, ldx: 4, ldy: 4)

        func bwd(_ expected: ck_status, _ what: String, lds: Int64 = 3, lddx: Int64 = 3, meanNil: Bool = false, beta: Float = 0) {
            for ref in [false, true] {
                var dx = nanFilled(6), dg = nanFilled(3)
                let st = x.withUnsafeBufferPointer { xb in
                    dx.withUnsafeMutableBufferPointer { db in
                        dg.withUnsafeMutableBufferPointer { gb in
                            (ref ? ck_layernorm_bwd_f32_ref : ck_layernorm_bwd_f32)(
                                2, 3, xb.baseAddress, lds, nil, meanNil ? nil : xb.baseAddress, xb.baseAddress, xb.baseAddress, 3,
                                db.baseAddress, lddx, gb.baseAddress, nil, beta)
                        }
                    }
                }
                #expect(st == expected, "\(what) (ref \(ref))")
                #expect((dx + dg).allSatisfy { $0.isNaN }, "\(what) wrote output")
            }
        }
        bwd(CK_ERR_BAD_LD, "lds < cols", lds: 2)
        bwd(CK_ERR_BAD_LD, "lddx < cols", lddx: 1)
        bwd(CK_ERR_NULL_POINTER, "mean NULL", meanNil: true)
        bwd(CK_ERR_BAD_ARG, "beta_dx 0.5", beta: 0.5)
    }
}

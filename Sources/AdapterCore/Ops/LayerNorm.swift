// LayerNorm over the last dimension, with an optional fused residual add; forward and backward.

/// Rows per LayerNorm task (fixed, independent of the thread count).
let layerNormRowChunk = 64

/// Result of `layerNorm`.
public struct LayerNormOutput: Sendable {
    /// `y = (s − mean) · rstd · weight + bias`, same shape as the input `[…, features]`.
    public var output: Tensor
    /// The normalised input `s`: `x + residual` when a residual was given, else `x` itself. The
    /// backward pass needs it.
    public var normalizedInput: Tensor
    /// Per-row mean of `s`, `[rows]` (rows = all leading dimensions flattened).
    public var mean: Tensor
    /// Per-row `1/√(var(s) + eps)` (biased variance), `[rows]`.
    public var rstd: Tensor
}

/// LayerNorm over the last dimension (`torch.nn.LayerNorm`), optionally of `x + residual` (the
/// post-LN residual block of BERT: `LayerNorm(hidden + input)` in one pass):
///
///     s = x + residual,  mean = mean(s),  rstd = 1/√(var(s) + eps)   (biased variance, two-pass)
///     y = (s − mean) · rstd · weight + bias
///
/// A zero-variance row gives `y = bias`.
/// - Parameters:
///   - x: `[…, features]`.
///   - residual: same shape as `x`, or nil.
///   - weight: γ `[features]` (nil means ones).
///   - bias: β `[features]` (nil means zeros).
///   - eps: added to the variance (BERT: 1e-12).
///   - context: threads.
/// - Returns: the output plus what the backward pass needs.
public func layerNorm(_ x: Tensor, residual: Tensor? = nil, weight: Tensor?, bias: Tensor?, eps: Float = 1e-12,
                      context: ComputeContext) -> LayerNormOutput {
    require(x.rank >= 1, "layerNorm: x \(x.shape) must have at least one dimension")
    let cols = x.shape[x.rank - 1], rows = cols == 0 ? 0 : x.count / cols
    if let residual {
        require(residual.shape == x.shape, "layerNorm: x \(x.shape) does not match residual \(residual.shape)")
    }
    if let weight { require(weight.shape == [cols], "layerNorm: x \(x.shape) does not match weight \(weight.shape)") }
    if let bias { require(bias.shape == [cols], "layerNorm: x \(x.shape) does not match bias \(bias.shape)") }
    let xc = x.contiguous(), rc = residual?.contiguous(), wc = weight?.contiguous(), bc = bias?.contiguous()
    let y = Tensor(uninitializedShape: x.shape)
    let sum: Tensor = residual == nil ? xc : Tensor(uninitializedShape: x.shape)
    let mean = Tensor(uninitializedShape: [rows]), rstd = Tensor(uninitializedShape: [rows])
    let xp = xc.basePointer, rp = rc?.basePointer, wp = wc?.basePointer, bp = bc?.basePointer
    let yp = y.mutableBasePointer, sp: UnsafeMutablePointer<Float>? = residual == nil ? nil : sum.mutableBasePointer
    let mp = mean.mutableBasePointer, qp = rstd.mutableBasePointer
    withExtendedLifetime((xc, rc, wc, bc)) {
        context.parallelForUnchecked(taskCount: (rows + layerNormRowChunk - 1) / layerNormRowChunk) { t, _ in
            let lo = t * layerNormRowChunk, n = min(layerNormRowChunk, rows - lo), o = lo * cols
            KernelBridge.layerNormForward(
                rows: n, cols: cols, x: xp + o, ldx: cols, residual: rp.map { $0 + o }, ldResidual: cols,
                gamma: wp, beta: bp, y: yp + o, ldy: cols, sum: sp.map { $0 + o }, ldSum: cols,
                mean: mp + lo, rstd: qp + lo, eps: eps, op: "layerNorm x \(x.shape)")
        }
    }
    return LayerNormOutput(output: y, normalizedInput: sum, mean: mean, rstd: rstd)
}

/// Shared checks for the backward entry points; returns (rows, cols).
private func layerNormBackwardShapes(_ dy: Tensor, _ s: Tensor, _ weight: Tensor?, _ mean: Tensor,
                                     _ rstd: Tensor) -> (Int, Int) {
    require(dy.shape == s.shape, "layerNormBackward: dy \(dy.shape) does not match input \(s.shape)")
    let cols = s.shape.last ?? 0, rows = cols == 0 ? 0 : s.count / cols
    if let weight { require(weight.shape == [cols], "layerNormBackward: input \(s.shape) does not match weight \(weight.shape)") }
    require(mean.shape == [rows] && rstd.shape == [rows],
                 "layerNormBackward: mean \(mean.shape) / rstd \(rstd.shape) do not match input \(s.shape) (\(rows) rows)")
    return (rows, cols)
}

/// Backward of `layerNorm` with all gradients:
///
///     g        = dy · weight,  x̂ = (s − mean) · rstd
///     ds       = beta · ds + rstd · (g − mean(g) − x̂ · mean(g · x̂))
///     dWeight += Σ_rows dy · x̂,   dBias += Σ_rows dy
///
/// `ds` is the gradient of both `x` and `residual` in the fused form. The parameter gradients are
/// reduced deterministically: fixed 64-row chunks each reduce into their own partial row (in row
/// order, inside the kernel), and the partials are added in chunk order.
/// - Parameters:
///   - outputGradient: dy, same shape as the input.
///   - input: `normalizedInput` from the forward pass.
///   - weight: γ (nil means ones).
///   - mean: `[rows]` from the forward pass.
///   - rstd: `[rows]` from the forward pass.
///   - inputGradient: ds, same shape; overwritten with `beta == 0` (never read), accumulated with 1.
///   - beta: 0 or 1.
///   - weightGradient: dγ `[features]`, accumulated (`+=`).
///   - biasGradient: dβ `[features]`, accumulated (`+=`).
///   - context: threads.
public func layerNormBackward(_ outputGradient: Tensor, input: Tensor, weight: Tensor?, mean: Tensor,
                              rstd: Tensor, inputGradient: inout Tensor, beta: Float = 0,
                              weightGradient: inout Tensor, biasGradient: inout Tensor,
                              context: ComputeContext) {
    let (rows, cols) = layerNormBackwardShapes(outputGradient, input, weight, mean, rstd)
    require(inputGradient.shape == input.shape,
                 "layerNormBackward: dx \(inputGradient.shape) does not match input \(input.shape)")
    require(weightGradient.shape == [cols] && biasGradient.shape == [cols],
                 "layerNormBackward: dWeight \(weightGradient.shape) / dBias \(biasGradient.shape) do not match input \(input.shape)")
    require(beta == 0 || beta == 1, "layerNormBackward: beta must be 0 or 1, got \(beta)")
    inputGradient.prepareOutput(preserveContents: beta != 0)
    weightGradient.prepareOutput(preserveContents: true)
    biasGradient.prepareOutput(preserveContents: true)
    let chunks = (rows + layerNormRowChunk - 1) / layerNormRowChunk
    // Partial rows: [chunks][dWeight | dBias].
    let partial = UnsafeMutablePointer<Float>.allocate(capacity: max(chunks * 2 * cols, 1))
    partial.initialize(repeating: 0, count: max(chunks * 2 * cols, 1))
    defer { partial.deallocate() }
    runLayerNormBackward(outputGradient, input: input, weight: weight, mean: mean, rstd: rstd, rows: rows,
                         cols: cols, dx: inputGradient.mutableBasePointer, beta: beta, partial: partial,
                         context: context)
    let dw = weightGradient.mutableBasePointer, db = biasGradient.mutableBasePointer
    let block = 1024
    context.parallelForUnchecked(taskCount: (cols + block - 1) / block) { t, _ in
        for j in (t * block)..<min(cols, t * block + block) {
            var sw: Float = 0, sb: Float = 0
            for c in 0..<chunks {
                sw += partial[c * 2 * cols + j]
                sb += partial[c * 2 * cols + cols + j]
            }
            dw[j] += sw
            db[j] += sb
        }
    }
}

/// Backward of `layerNorm` through frozen parameters: returns only `ds` (see the full overload).
public func layerNormBackward(_ outputGradient: Tensor, input: Tensor, weight: Tensor?, mean: Tensor,
                              rstd: Tensor, context: ComputeContext) -> Tensor {
    let (rows, cols) = layerNormBackwardShapes(outputGradient, input, weight, mean, rstd)
    let dx = Tensor(uninitializedShape: input.shape)
    runLayerNormBackward(outputGradient, input: input, weight: weight, mean: mean, rstd: rstd, rows: rows,
                         cols: cols, dx: dx.mutableBasePointer, beta: 0, partial: nil, context: context)
    return dx
}

private func runLayerNormBackward(_ dy: Tensor, input: Tensor, weight: Tensor?, mean: Tensor, rstd: Tensor,
                                  rows: Int, cols: Int, dx: UnsafeMutablePointer<Float>, beta: Float,
                                  partial: UnsafeMutablePointer<Float>?, context: ComputeContext) {
    let dyc = dy.contiguous(), sc = input.contiguous(), wc = weight?.contiguous()
    let mc = mean.contiguous(), rc = rstd.contiguous()
    let dyp = dyc.basePointer, spp = sc.basePointer, wp = wc?.basePointer, mp = mc.basePointer, rp = rc.basePointer
    withExtendedLifetime((dyc, sc, wc, mc, rc)) {
        context.parallelForUnchecked(taskCount: (rows + layerNormRowChunk - 1) / layerNormRowChunk) { t, _ in
            let lo = t * layerNormRowChunk, n = min(layerNormRowChunk, rows - lo), o = lo * cols
            let pw = partial.map { $0 + t * 2 * cols }
            KernelBridge.layerNormBackward(
                rows: n, cols: cols, s: spp + o, lds: cols, gamma: wp, mean: mp + lo, rstd: rp + lo,
                dy: dyp + o, lddy: cols, dx: dx + o, lddx: cols, dGamma: pw, dBeta: pw.map { $0 + cols },
                betaDX: beta, op: "layerNormBackward input \(input.shape)")
        }
    }
}

// Row-wise softmax with scale and an additive key mask, forward and backward.

/// Rows per softmax task (fixed, independent of the thread count).
let softmaxRowChunk = 128

/// `y = softmax(scale · x + mask)` over the last dimension.
///
/// For attention scores `[batch, heads, queries, keys]` (or `[batch·heads, queries, keys]`) with an
/// additive key-padding mask `[batch, keys]` (0 to keep, −∞ or a large negative number to drop),
/// each mask row is broadcast over the heads and queries of its batch item: with
/// `rows = x.count / keys`, row `r` uses mask row `r / (rows / maskRows)`. A row whose logits are
/// all −∞ gives all zeros (no NaN); a finite large negative mask behaves exactly as in PyTorch.
/// - Parameters:
///   - x: `[…, cols]`.
///   - scale: multiplies `x` before the mask is added (e.g. `1/√headDim`).
///   - mask: `[maskRows, cols]` where `maskRows` divides the row count, or nil.
///   - context: threads.
/// - Returns: same shape as `x`, contiguous.
public func softmax(_ x: Tensor, scale: Float = 1, mask: Tensor? = nil, context: ComputeContext) -> Tensor {
    require(x.rank >= 1, "softmax: x \(x.shape) must have at least one dimension")
    let cols = x.shape[x.rank - 1], rows = cols == 0 ? 0 : x.count / cols
    var group = 1
    if let mask {
        require(mask.rank == 2 && mask.shape[1] == cols && mask.shape[0] > 0 && rows % mask.shape[0] == 0,
                     "softmax: x \(x.shape) does not match mask \(mask.shape) (mask must be [m, \(cols)] with m dividing \(rows) rows)")
        group = rows / mask.shape[0]
    }
    let xc = x.contiguous(), mc = mask?.contiguous()
    let y = Tensor(uninitializedShape: x.shape)
    let xp = xc.basePointer, mp = mc?.basePointer, yp = y.mutableBasePointer
    withExtendedLifetime((xc, mc)) {
        context.parallelForUnchecked(taskCount: (rows + softmaxRowChunk - 1) / softmaxRowChunk) { t, _ in
            var r = t * softmaxRowChunk
            let end = min(rows, r + softmaxRowChunk)
            while r < end {
                // Each call covers rows that share one mask row (or the whole chunk without a mask).
                let segmentEnd = mp == nil ? end : min(end, (r / group + 1) * group)
                let n = segmentEnd - r
                KernelBridge.softmaxForward(
                    rows: n, cols: cols, x: xp + r * cols, ldx: cols, mask: mp.map { $0 + (r / group) * cols },
                    ldm: cols, maskGroup: n, y: yp + r * cols, ldy: cols, scale: scale,
                    op: "softmax x \(x.shape)")
                r = segmentEnd
            }
        }
    }
    return y
}

/// Backward of `y = softmax(scale · x + mask)`: `dx = beta · dx + scale · y ⊙ (dy − Σ_row dy ⊙ y)`
/// (the mask gets no gradient).
/// - Parameters:
///   - outputGradient: dy, same shape as `output`.
///   - output: y from the forward pass.
///   - scale: as in the forward pass.
///   - inputGradient: dx; overwritten with `beta == 0` (never read), accumulated with 1.
///   - beta: 0 or 1.
///   - context: threads.
public func softmaxBackward(_ outputGradient: Tensor, output: Tensor, scale: Float = 1,
                            into inputGradient: inout Tensor, beta: Float = 0, context: ComputeContext) {
    require(outputGradient.shape == output.shape,
                 "softmaxBackward: dy \(outputGradient.shape) does not match y \(output.shape)")
    require(inputGradient.shape == output.shape,
                 "softmaxBackward: dx \(inputGradient.shape) does not match y \(output.shape)")
    require(beta == 0 || beta == 1, "softmaxBackward: beta must be 0 or 1, got \(beta)")
    let cols = output.shape.last ?? 0, rows = cols == 0 ? 0 : output.count / cols
    inputGradient.prepareOutput(preserveContents: beta != 0)
    let yc = output.contiguous(), dyc = outputGradient.contiguous()
    let yp = yc.basePointer, dyp = dyc.basePointer, dxp = inputGradient.mutableBasePointer
    withExtendedLifetime((yc, dyc)) {
        context.parallelForUnchecked(taskCount: (rows + softmaxRowChunk - 1) / softmaxRowChunk) { t, _ in
            let lo = t * softmaxRowChunk, n = min(softmaxRowChunk, rows - lo), o = lo * cols
            KernelBridge.softmaxBackward(rows: n, cols: cols, y: yp + o, ldy: cols, dy: dyp + o, lddy: cols,
                                         dx: dxp + o, lddx: cols, beta: beta, scale: scale,
                                         op: "softmaxBackward y \(output.shape)")
        }
    }
}

/// Backward of `softmax` returning a fresh `dx`.
public func softmaxBackward(_ outputGradient: Tensor, output: Tensor, scale: Float = 1,
                            context: ComputeContext) -> Tensor {
    var dx = Tensor(uninitializedShape: output.shape)
    softmaxBackward(outputGradient, output: output, scale: scale, into: &dx, beta: 0, context: context)
    return dx
}

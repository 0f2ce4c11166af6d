// Inference building blocks for transformer encoders: a linear layer tiled per worker, and fused
// multi-head self-attention over (batch, head) tasks. Both produce bitwise the same values as the
// general `linear` / `matmul` + `softmax` + `matmul` ops (the C kernels' per-element arithmetic does not
// depend on how the output is split; tested in AttentionOpsTests); they only cut the work differently:
// fewer, larger GEMM calls (B and A packed fewer times) and no [batch, heads, seq, seq] tensors.

/// `y = act(x · Wᵀ + b) + residual`, with the output cut into at most one tile per worker.
///
/// Same contract and bitwise the same result as `linear(_:weight:bias:activation:residual:context:)`;
/// the tiling follows `context.threads` instead of a fixed grid, which is the faster choice for
/// inference-sized calls: with one thread the whole product is one GEMM call (each operand packed once
/// per cache block), with T threads it is T calls that split the larger of `rows`/`out` (N at multiples of
/// 48 columns, M at multiples of 16 rows) so only the smaller operand is packed again.
/// - Parameters:
///   - x: `[…, in]`.
///   - weight: `[out, in]` (any layout with a unit stride in one dimension, e.g. a row slice of a larger
///     weight).
///   - bias: `[out]` or nil.
///   - activation: applied after the bias.
///   - residual: `[…, out]`, added after the activation, or nil.
///   - context: threads, GEMM backend and workspaces the op runs with.
/// - Returns: `[…, out]`, contiguous.
public func tiledLinear(_ x: Tensor, weight: Tensor, bias: Tensor? = nil, activation: Activation = .none,
                        residual: Tensor? = nil, context: ComputeContext) -> Tensor {
    require(weight.rank == 2 && x.rank >= 1 && x.shape.last == weight.shape[1],
                 "tiledLinear: x \(x.shape) does not match weight \(weight.shape)")
    var y = Tensor(uninitializedShape: Array(x.shape.dropLast()) + [weight.shape[0]])
    tiledLinear(x, weight: weight, bias: bias, activation: activation, residual: residual, into: &y, context: context)
    return y
}

/// `tiledLinear` writing into `y` `[…, out]` (overwritten, never read; in place when `y` is uniquely owned and
/// contiguous, so a buffer can be reused across calls). `residual` may be `y` itself only if it is a
/// different tensor value sharing no storage; pass distinct buffers.
public func tiledLinear(_ x: Tensor, weight: Tensor, bias: Tensor? = nil, activation: Activation = .none,
                        residual: Tensor? = nil, into y: inout Tensor, context: ComputeContext) {
    require(weight.rank == 2 && x.rank >= 1 && x.shape.last == weight.shape[1],
                 "tiledLinear: x \(x.shape) does not match weight \(weight.shape)")
    let w2 = BatchedMatrix(weight, op: "tiledLinear", name: "weight")
    let tb = !w2.storedTransposed, bp = w2.tensor.basePointer, ldb = w2.ld
    withExtendedLifetime(w2.tensor) {
        runTiledLinear(x, outFeatures: weight.shape[0], bias: bias, activation: activation, residual: residual,
                       into: &y, columnGranule: 48, context: context,
                       op: "tiledLinear x \(x.shape) weight \(weight.shape)") { ws, ta, m, n, k, a, lda, j0, c, ldc, e in
            KernelBridge.gemm(backend: context.gemmBackend, workspace: ws, transposeA: ta, transposeB: tb,
                              m: m, n: n, k: k, a: a, lda: lda, b: bp + (tb ? j0 * ldb : j0), ldb: ldb, c: c, ldc: ldc,
                              alpha: 1, beta: 0, epilogue: e, op: "tiledLinear x \(x.shape) weight \(weight.shape)")
        }
    }
}

/// The tile loop shared by the `tiledLinear` variants: checks shapes, cuts the larger of M/N into at most
/// `context.threads` tiles (N at multiples of `columnGranule`, M of 16) and calls `gemm` once per tile with
/// the worker's workspace, A at the tile's rows, the tile's first column j0, C and the epilogue.
func runTiledLinear(
    _ x: Tensor, outFeatures n: Int, bias: Tensor?, activation: Activation, residual: Tensor?,
    into y: inout Tensor, columnGranule: Int, context: ComputeContext, op: @autoclosure () -> String,
    gemm: (_ ws: UnsafeMutableRawBufferPointer, _ transposeA: Bool, _ m: Int, _ n: Int, _ k: Int,
           _ a: UnsafePointer<Float>, _ lda: Int, _ j0: Int, _ c: UnsafeMutablePointer<Float>, _ ldc: Int,
           _ epilogue: GemmEpilogue) -> Void
) {
    let k = x.shape.last ?? 0, m = x.count / max(k, 1)
    let outShape = Array(x.shape.dropLast()) + [n]
    require(y.shape == outShape, "\(op()): output \(y.shape) is not \(outShape)")
    if let bias { require(bias.shape == [n], "\(op()): bias \(bias.shape) is not [\(n)]") }
    if let residual { require(residual.shape == outShape, "\(op()): residual \(residual.shape) is not \(outShape)") }
    y.prepareOutput(preserveContents: false)
    if m == 0 || n == 0 { return }
    let x2 = BatchedMatrix(x.reshaped([m, k]), op: "tiledLinear", name: "x")
    let b = bias?.contiguous(), r = residual?.contiguous()
    let ta = x2.storedTransposed, ap = x2.tensor.basePointer, lda = x2.ld
    let bpBias = b?.basePointer, rp = r?.basePointer, yp = y.mutableBasePointer
    // Split the larger dimension: re-packing the smaller operand once per tile is the cheaper duplicate.
    let splitN = n >= m
    let granule = splitN ? columnGranule : 16
    let extent = splitN ? n : m
    let tiles = max(1, min(context.threads, extent / granule))
    let tile = roundUp((extent + tiles - 1) / tiles, granule)
    let count = (extent + tile - 1) / tile
    let ws = KernelBridge.gemmWorkspaceSize(m: splitN ? m : min(tile, m), n: splitN ? min(tile, n) : n, k: k)
    withExtendedLifetime((x2.tensor, b, r)) {
        context.parallelFor(taskCount: count, workspaceBytes: ws) { t, _, workspace in
            let lo = t * tile, len = min(tile, extent - lo)
            let i0 = splitN ? 0 : lo, j0 = splitN ? lo : 0
            var e = GemmEpilogue()
            e.activation = activation
            e.bias = bpBias.map { $0 + j0 }
            if let rp { e.residual = rp + i0 * n + j0; e.residualLD = n }
            gemm(workspace, ta, splitN ? m : len, splitN ? len : n, k, ap + (ta ? i0 : i0 * lda), lda, j0,
                 yp + i0 * n + j0, n, e)
        }
    }
}

/// `LN(x)` row-wise into `y` (same shape; overwritten, in place when uniquely owned and contiguous), without
/// saving statistics: bitwise the same values as `layerNorm(x, weight:bias:eps:context:).output`.
/// - Parameters:
///   - x: `[…, features]`.
///   - weight: γ `[features]`.
///   - bias: β `[features]`.
///   - eps: added to the variance.
///   - y: the output, `x`'s shape; its old contents are never read.
///   - context: threads, GEMM backend and workspaces the op runs with.
public func layerNorm(_ x: Tensor, weight: Tensor, bias: Tensor, eps: Float, into y: inout Tensor,
                      context: ComputeContext) {
    let cols = x.shape.last ?? 0, rows = cols == 0 ? 0 : x.count / cols
    require(y.shape == x.shape && weight.shape == [cols] && bias.shape == [cols],
                 "layerNorm(into:): x \(x.shape), y \(y.shape), weight \(weight.shape), bias \(bias.shape) do not match")
    y.prepareOutput(preserveContents: false)
    let xc = x.contiguous(), wc = weight.contiguous(), bc = bias.contiguous()
    let xp = xc.basePointer, wp = wc.basePointer, bp = bc.basePointer, yp = y.mutableBasePointer
    withExtendedLifetime((xc, wc, bc)) {
        context.parallelForUnchecked(taskCount: (rows + layerNormRowChunk - 1) / layerNormRowChunk) { t, _ in
            let lo = t * layerNormRowChunk, n = min(layerNormRowChunk, rows - lo), o = lo * cols
            KernelBridge.layerNormForward(
                rows: n, cols: cols, x: xp + o, ldx: cols, residual: nil, ldResidual: cols,
                gamma: wp, beta: bp, y: yp + o, ldy: cols, sum: nil, ldSum: cols,
                mean: nil, rstd: nil, eps: eps, op: "layerNorm(into:) x \(x.shape)")
        }
    }
}

/// Multi-head scaled dot-product self-attention from a fused Q/K/V projection, one task per
/// (sequence, head):
///
///     for b, h:   P = softmax(Q_bh · K_bhᵀ · scale + mask_b)     [seq, seq], in per-worker scratch
///                 out[b, :, h·d ..< (h+1)·d] = P · V_bh           written token-major
///
/// where `Q_bh = qkv[b·seq ..< (b+1)·seq, h·d ..< (h+1)·d]`, K at column offset `hidden`, V at `2·hidden`
/// (`hidden = heads·d`). This is transformers' eager `BertSelfAttention` (no dropout) and gives bitwise the
/// same values as `matmul(q, k, transposeB: true)`, `softmax(scale:mask:)` and `matmul(p, v)` on the
/// `[batch, heads, seq, d]` views.
/// - Parameters:
///   - qkv: `[batch·seq, 3·hidden]` contiguous, the concatenated query, key and value projections.
///   - mask: additive key mask `[batch, seq]` (0 keep, large negative drop), or nil.
///   - batch: sequences in `qkv`.
///   - seq: tokens per sequence (`sequenceLength`).
///   - heads: attention heads; `hidden = qkv.shape[1] / 3` must be a multiple of it.
///   - scale: multiplies the scores before the mask is added (usually `1/√d`).
///   - context: threads, GEMM backend and workspaces the op runs with.
/// - Returns: the attention context `[batch·seq, hidden]` (heads merged), contiguous.
public func fusedSelfAttention(qkv: Tensor, mask: Tensor?, batch: Int, sequenceLength seq: Int, heads: Int,
                               scale: Float, context: ComputeContext) -> Tensor {
    require(qkv.rank == 2, "fusedSelfAttention: qkv \(qkv.shape) must be [tokens, 3·hidden]")
    var out = Tensor(uninitializedShape: [qkv.shape[0], qkv.shape[1] / 3])
    fusedSelfAttention(qkv: qkv, mask: mask, batch: batch, sequenceLength: seq, heads: heads, scale: scale,
                       into: &out, context: context)
    return out
}

/// `fusedSelfAttention` writing into `out` `[batch·seq, hidden]` (overwritten; in place when uniquely owned
/// and contiguous).
public func fusedSelfAttention(qkv: Tensor, mask: Tensor?, batch: Int, sequenceLength seq: Int, heads: Int,
                               scale: Float, into out: inout Tensor, context: ComputeContext) {
    require(qkv.rank == 2 && qkv.shape[0] == batch * seq && heads > 0 && qkv.shape[1] % (3 * heads) == 0,
                 "fusedSelfAttention: qkv \(qkv.shape) is not [batch \(batch) · seq \(seq), 3 · heads \(heads) · d]")
    if let mask { require(mask.shape == [batch, seq], "fusedSelfAttention: mask \(mask.shape) is not [\(batch), \(seq)]") }
    let hidden = qkv.shape[1] / 3, d = hidden / heads, ld = 3 * hidden
    require(out.shape == [batch * seq, hidden], "fusedSelfAttention: output \(out.shape) is not [\(batch * seq), \(hidden)]")
    out.prepareOutput(preserveContents: false)
    if batch == 0 || seq == 0 { return }
    let src = qkv.contiguous(), mc = mask?.contiguous()
    let qp = src.basePointer, mp = mc?.basePointer, op = out.mutableBasePointer
    let gemmBytes = max(KernelBridge.gemmWorkspaceSize(m: seq, n: seq, k: d),
                        KernelBridge.gemmWorkspaceSize(m: seq, n: d, k: seq))
    let gemmSlot = roundUp(gemmBytes, tensorAlignment)
    let scoreBytes = roundUp(seq * seq * MemoryLayout<Float>.stride, tensorAlignment)
    let backend = context.gemmBackend
    withExtendedLifetime((src, mc)) {
        context.parallelFor(taskCount: batch * heads, workspaceBytes: gemmSlot + scoreBytes) { task, _, workspace in
            let b = task / heads, h = task % heads
            let gemmWS = UnsafeMutableRawBufferPointer(rebasing: workspace[0..<gemmSlot])
            let scores = (workspace.baseAddress! + gemmSlot).bindMemory(to: Float.self, capacity: seq * seq)
            let q = qp + b * seq * ld + h * d, k = q + hidden, v = q + 2 * hidden
            KernelBridge.gemm(backend: backend, workspace: gemmWS, transposeA: false, transposeB: true,
                              m: seq, n: seq, k: d, a: q, lda: ld, b: k, ldb: ld, c: scores, ldc: seq,
                              alpha: 1, beta: 0, op: "fusedSelfAttention scores")
            KernelBridge.softmaxForward(rows: seq, cols: seq, x: scores, ldx: seq, mask: mp.map { $0 + b * seq },
                                        ldm: seq, maskGroup: seq, y: scores, ldy: seq, scale: scale,
                                        op: "fusedSelfAttention softmax")
            KernelBridge.gemm(backend: backend, workspace: gemmWS, transposeA: false, transposeB: false,
                              m: seq, n: d, k: seq, a: scores, lda: seq, b: v, ldb: ld,
                              c: op + b * seq * hidden + h * d, ldc: hidden,
                              alpha: 1, beta: 0, op: "fusedSelfAttention context")
        }
    }
}

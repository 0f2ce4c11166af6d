// Batched matrix product (attention scores and context), forward and backward.

/// Shape bookkeeping shared by the matmul entry points.
private struct MatmulShapes {
    let m: Int, n: Int, k: Int
    let batchShape: [Int]

    init(_ a: Tensor, _ b: Tensor, transposeA: Bool, transposeB: Bool, op: String) {
        require(a.rank >= 2 && b.rank >= 2, "\(op): a \(a.shape) and b \(b.shape) must have at least 2 dimensions")
        let ar = a.rank, br = b.rank
        m = transposeA ? a.shape[ar - 1] : a.shape[ar - 2]
        let ka = transposeA ? a.shape[ar - 2] : a.shape[ar - 1]
        let kb = transposeB ? b.shape[br - 1] : b.shape[br - 2]
        n = transposeB ? b.shape[br - 2] : b.shape[br - 1]
        require(ka == kb, "\(op): a \(a.shape)\(transposeA ? "ᵀ" : "") does not match b \(b.shape)\(transposeB ? "ᵀ" : "") (inner sizes \(ka) and \(kb))")
        k = ka
        let ab = Array(a.shape.dropLast(2)), bb = Array(b.shape.dropLast(2))
        require(ab == bb || ab.isEmpty || bb.isEmpty,
                     "\(op): batch dimensions of a \(a.shape) and b \(b.shape) differ (only equal batches or a 2-D operand broadcast)")
        batchShape = ab.count >= bb.count ? ab : bb
    }

    var outputShape: [Int] { batchShape + [m, n] }
}

/// Batched matrix product `C = alpha · op(A) · op(B)` over the last two dimensions, with
/// `op(X) = transpose ? Xᵀ : X` (per batch item).
///
/// Shapes: `a` is `[batch…, m, k]` (or `[batch…, k, m]` with `transposeA`), `b` is `[batch…, k, n]`
/// (or `[batch…, n, k]` with `transposeB`); the result is `[batch…, m, n]`, contiguous. The batch
/// dimensions must be equal, or one operand may be 2-D and is then broadcast. Operands may be
/// strided views (e.g. `[batch, seq, heads, headDim].permuted([0, 2, 1, 3])`) as long as each matrix
/// has a unit stride in one of its two dimensions; other layouts are copied first.
///
/// Attention scores: `matmul(q, k, transposeB: true, alpha: 1/√headDim)` with `q`, `k`
/// `[batch, heads, seq, headDim]` gives `[batch, heads, seq, seq]`.
public func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false,
                   alpha: Float = 1, context: ComputeContext) -> Tensor {
    let s = MatmulShapes(a, b, transposeA: transposeA, transposeB: transposeB, op: "matmul")
    var c = Tensor(uninitializedShape: s.outputShape)
    matmul(a, b, transposeA: transposeA, transposeB: transposeB, alpha: alpha, into: &c, beta: 0,
           context: context)
    return c
}

/// `C = alpha · op(A) · op(B) + beta · C`, writing into an existing tensor.
///
/// `c` must have shape `[batch…, m, n]`. It may be a strided view with unit stride in its last
/// dimension (e.g. a permuted view of a `[batch, seq, heads, headDim]` buffer, so attention context
/// lands directly in the token-major layout); it is written in place when this value owns its
/// storage, otherwise it is first copied (`beta == 1`) or replaced (`beta == 0`).
/// - Parameters:
///   - a: `[batch…, m, k]` (or `[batch…, k, m]` with `transposeA`).
///   - b: `[batch…, k, n]` (or `[batch…, n, k]` with `transposeB`).
///   - transposeA: use Aᵀ.
///   - transposeB: use Bᵀ.
///   - alpha: scales the product.
///   - c: the destination `[batch…, m, n]`.
///   - beta: 0 (C is overwritten and never read; NaN there cannot leak) or 1 (accumulate).
///   - context: threads and GEMM backend.
public func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false,
                   alpha: Float = 1, into c: inout Tensor, beta: Float = 0, context: ComputeContext) {
    let s = MatmulShapes(a, b, transposeA: transposeA, transposeB: transposeB, op: "matmul")
    require(c.shape == s.outputShape,
                 "matmul: output \(c.shape) does not match a \(a.shape) × b \(b.shape) = \(s.outputShape)")
    require(beta == 0 || beta == 1, "matmul: beta must be 0 or 1, got \(beta)")
    c.prepareStridedOutput(preserveContents: beta != 0)
    let r = c.rank
    if !(c.strides[r - 1] == 1 || s.n <= 1) || (s.m > 1 && c.strides[r - 2] < s.n) {
        // Not writable as row-major matrices: compute into a contiguous tensor, then copy over.
        var tmp = beta == 0 ? Tensor(uninitializedShape: c.shape) : c.contiguous()
        matmul(a, b, transposeA: transposeA, transposeB: transposeB, alpha: alpha, into: &tmp, beta: beta,
               context: context)
        c.copyElements(from: tmp)
        return
    }
    let am = BatchedMatrix(a, op: "matmul", name: "a"), bm = BatchedMatrix(b, op: "matmul", name: "b")
    let cOffsets = BatchedMatrix.offsets(shape: s.batchShape, strides: Array(c.strides.dropLast(2)))
    let ldc = s.m > 1 ? c.strides[r - 2] : max(s.n, 1)
    runBatchedGemm(context: context, op: "matmul a \(a.shape) b \(b.shape)", a: am, transposeA: transposeA,
                   b: bm, transposeB: transposeB, m: s.m, n: s.n, k: s.k, c: c.mutableBasePointer,
                   cOffsets: cOffsets, ldc: ldc, alpha: alpha, beta: beta)
}

/// Backward of `C = alpha · op(A) · op(B)`: returns `(dA, dB)` with the shapes of `a` and `b`.
///
/// With `dC` the output gradient: `d op(A) = alpha · dC · op(B)ᵀ`, `d op(B) = alpha · op(A)ᵀ · dC`,
/// transposed back when the operand was used transposed. A broadcast 2-D operand gets the sum of
/// its gradients over the batch (in batch order).
public func matmulBackward(_ outputGradient: Tensor, a: Tensor, b: Tensor, transposeA: Bool = false,
                           transposeB: Bool = false, alpha: Float = 1,
                           context: ComputeContext) -> (a: Tensor, b: Tensor) {
    var da = Tensor(uninitializedShape: a.shape)
    var db = Tensor(uninitializedShape: b.shape)
    matmulBackward(outputGradient, a: a, b: b, transposeA: transposeA, transposeB: transposeB, alpha: alpha,
                   aGradient: &da, aBeta: 0, bGradient: &db, bBeta: 0, context: context)
    return (da, db)
}

/// Backward of `C = alpha · op(A) · op(B)` into existing gradient tensors with the beta rule:
/// `aGradient = aBeta · aGradient + dA`, `bGradient = bBeta · bGradient + dB` (each beta 0 or 1).
/// Gradient tensors may be strided views (see `matmul(_:_:…into:…)`).
public func matmulBackward(_ outputGradient: Tensor, a: Tensor, b: Tensor, transposeA: Bool = false,
                           transposeB: Bool = false, alpha: Float = 1,
                           aGradient: inout Tensor, aBeta: Float = 0,
                           bGradient: inout Tensor, bBeta: Float = 0, context: ComputeContext) {
    let s = MatmulShapes(a, b, transposeA: transposeA, transposeB: transposeB, op: "matmulBackward")
    require(outputGradient.shape == s.outputShape,
                 "matmulBackward: dC \(outputGradient.shape) does not match a \(a.shape) × b \(b.shape) = \(s.outputShape)")
    require(aGradient.shape == a.shape, "matmulBackward: dA \(aGradient.shape) does not match a \(a.shape)")
    require(bGradient.shape == b.shape, "matmulBackward: dB \(bGradient.shape) does not match b \(b.shape)")
    let dc = outputGradient
    // dA: op(A) = A  -> dA = alpha dC op(B)^T ;  op(A) = A^T -> dA = alpha op(B) dC^T
    matmulGradient(transposeA ? b : dc, transposeA ? dc : b,
                   transposeA: transposeA ? transposeB : false, transposeB: transposeA ? true : !transposeB,
                   alpha: alpha, into: &aGradient, beta: aBeta, context: context)
    // dB: op(B) = B  -> dB = alpha op(A)^T dC ;  op(B) = B^T -> dB = alpha dC^T op(A)
    matmulGradient(transposeB ? dc : a, transposeB ? a : dc,
                   transposeA: transposeB ? true : !transposeA, transposeB: transposeB ? transposeA : false,
                   alpha: alpha, into: &bGradient, beta: bBeta, context: context)
}

/// One gradient product; sums over the batch when the destination is a broadcast 2-D operand.
private func matmulGradient(_ x: Tensor, _ y: Tensor, transposeA: Bool, transposeB: Bool, alpha: Float,
                            into g: inout Tensor, beta: Float, context: ComputeContext) {
    let batched = max(x.rank, y.rank) > 2
    if g.rank == 2 && batched {
        // Broadcast operand: its gradient is the sum over batch items, accumulated in batch order.
        let s = MatmulShapes(x, y, transposeA: transposeA, transposeB: transposeB, op: "matmulBackward")
        let full = matmul(x, y, transposeA: transposeA, transposeB: transposeB, alpha: alpha, context: context)
        let items = full.reshaped([full.count / max(s.m * s.n, 1), s.m * s.n])
        var sum = beta == 0 ? Tensor(zeros: [s.m * s.n]) : g.reshaped([s.m * s.n])
        columnSums(items, accumulatingInto: &sum, context: context)
        g = sum.reshaped(g.shape)
        return
    }
    matmul(x, y, transposeA: transposeA, transposeB: transposeB, alpha: alpha, into: &g, beta: beta,
           context: context)
}

// Elementwise add, multiply, scale and accumulate (plain Swift loops over fixed chunks).

/// Checks that `b` equals `a` in shape or matches its trailing dimensions (broadcast over the
/// leading ones, e.g. position embeddings `[seq, hidden]` onto `[batch, seq, hidden]`).
private func broadcastPeriod(_ a: Tensor, _ b: Tensor, op: String) -> Int {
    require(b.rank <= a.rank && Array(a.shape.suffix(b.rank)) == b.shape,
                 "\(op): a \(a.shape) does not match b \(b.shape) (b must equal a or its trailing dimensions)")
    return b.count
}

/// Runs `body(lo, hi)` over fixed chunks of `0..<count` in parallel.
private func forEachChunk(_ count: Int, context: ComputeContext, _ body: (Int, Int) -> Void) {
    context.parallelForUnchecked(taskCount: (count + elementwiseChunk - 1) / elementwiseChunk) { t, _ in
        body(t * elementwiseChunk, min(count, (t + 1) * elementwiseChunk))
    }
}

/// The binary ops `binary` implements (a switch outside the loops keeps them vectorisable).
private enum BinaryOp { case add, multiply }

/// Elementwise binary op with trailing-dimension broadcast of `b`.
private func binary(_ a: Tensor, _ b: Tensor, _ op: BinaryOp, name: String, context: ComputeContext) -> Tensor {
    let period = broadcastPeriod(a, b, op: name)
    let ac = a.contiguous(), bc = b.contiguous()
    let y = Tensor(uninitializedShape: a.shape)
    let ap = ac.basePointer, bp = bc.basePointer, yp = y.mutableBasePointer
    if period == 0 { return y }
    withExtendedLifetime((ac, bc)) {
        forEachChunk(a.count, context: context) { lo, hi in
            var i = lo
            while i < hi {
                // One contiguous run over which b's index advances without wrapping.
                let j = i % period, len = min(hi - i, period - j)
                let x = ap + i, z = bp + j, out = yp + i
                switch op {
                case .add: for t in 0..<len { out[t] = x[t] + z[t] }
                case .multiply: for t in 0..<len { out[t] = x[t] * z[t] }
                }
                i += len
            }
        }
    }
    return y
}

/// `a + b` elementwise. `b` has `a`'s shape or its trailing dimensions (broadcast).
/// - Returns: a contiguous tensor of `a`'s shape.
public func add(_ a: Tensor, _ b: Tensor, context: ComputeContext) -> Tensor {
    binary(a, b, .add, name: "add", context: context)
}

/// `a ⊙ b` elementwise (e.g. applying a dropout mask). `b` has `a`'s shape or its trailing
/// dimensions (broadcast).
public func multiply(_ a: Tensor, _ b: Tensor, context: ComputeContext) -> Tensor {
    binary(a, b, .multiply, name: "multiply", context: context)
}

/// `s · a` elementwise.
public func scaled(_ a: Tensor, by s: Float, context: ComputeContext) -> Tensor {
    let ac = a.contiguous()
    let y = Tensor(uninitializedShape: a.shape)
    let ap = ac.basePointer, yp = y.mutableBasePointer
    withExtendedLifetime(ac) {
        forEachChunk(a.count, context: context) { lo, hi in
            for i in lo..<hi { yp[i] = s * ap[i] }
        }
    }
    return y
}

/// `a += alpha · b` in place (gradient accumulation, residual gradients). Same shapes.
public func accumulate(_ b: Tensor, into a: inout Tensor, alpha: Float = 1, context: ComputeContext) {
    require(a.shape == b.shape, "accumulate: a \(a.shape) does not match b \(b.shape)")
    a.prepareOutput(preserveContents: true)
    let bc = b.contiguous()
    let ap = a.mutableBasePointer, bp = bc.basePointer
    withExtendedLifetime(bc) {
        forEachChunk(a.count, context: context) { lo, hi in
            if alpha == 1 {
                for i in lo..<hi { ap[i] += bp[i] }
            } else {
                for i in lo..<hi { ap[i] += alpha * bp[i] }
            }
        }
    }
}

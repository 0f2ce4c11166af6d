// Row gather (embedding lookup) and its backward (scatter-add of rows).

/// `table[indices[i], :]` for each i: an embedding lookup.
/// - Parameters:
///   - table: `[vocab, hidden]`.
///   - indices: row indices, each in `0..<vocab` (e.g. token ids flattened from `[batch, seq]`).
///   - context: threads.
/// - Returns: `[indices.count, hidden]`, contiguous (reshape to `[batch, seq, hidden]` as needed).
/// - Precondition: every index is in range (token ids are validated by the tokenizer/encoder, so an
///   out-of-range id here is a programmer error).
public func gatherRows(_ table: Tensor, indices: [Int], context: ComputeContext) -> Tensor {
    require(table.rank == 2, "gatherRows: table \(table.shape) must be [rows, cols]")
    let rows = table.shape[0], cols = table.shape[1]
    for (i, index) in indices.enumerated() {
        require(index >= 0 && index < rows,
                     "gatherRows: index \(index) at position \(i) is outside table \(table.shape)")
    }
    let t = table.contiguous()
    let y = Tensor(uninitializedShape: [indices.count, cols])
    let tp = t.basePointer, yp = y.mutableBasePointer
    let chunk = max(1, elementwiseChunk / max(cols, 1))
    indices.withUnsafeBufferPointer { idx in
        withExtendedLifetime(t) {
            context.parallelForUnchecked(taskCount: (indices.count + chunk - 1) / chunk) { task, _ in
                for i in (task * chunk)..<min(indices.count, (task + 1) * chunk) {
                    (yp + i * cols).update(from: tp + idx[i] * cols, count: cols)
                }
            }
        }
    }
    return y
}

/// Backward of `gatherRows`: `tableGradient[indices[i], :] += outputGradient[i, :]`, accumulated in
/// increasing `i` for every table row (deterministic at any thread count: work is split over fixed
/// column blocks, never over `i`).
/// - Parameters:
///   - outputGradient: `[indices.count, hidden]`.
///   - indices: as in the forward pass.
///   - tableGradient: `[vocab, hidden]`, accumulated (`+=`).
///   - context: threads.
public func scatterAddRows(_ outputGradient: Tensor, indices: [Int], into tableGradient: inout Tensor,
                           context: ComputeContext) {
    require(tableGradient.rank == 2 && outputGradient.shape == [indices.count, tableGradient.shape[1]],
                 "scatterAddRows: gradient \(outputGradient.shape) does not match \(indices.count) indices and table gradient \(tableGradient.shape)")
    let rows = tableGradient.shape[0], cols = tableGradient.shape[1]
    for (i, index) in indices.enumerated() {
        require(index >= 0 && index < rows,
                     "scatterAddRows: index \(index) at position \(i) is outside table \(tableGradient.shape)")
    }
    tableGradient.prepareOutput(preserveContents: true)
    let g = outputGradient.contiguous()
    let gp = g.basePointer, tp = tableGradient.mutableBasePointer
    let block = 256
    indices.withUnsafeBufferPointer { idx in
        withExtendedLifetime(g) {
            context.parallelForUnchecked(taskCount: (cols + block - 1) / block) { task, _ in
                let lo = task * block, hi = min(cols, lo + block)
                for i in 0..<idx.count {
                    let src = gp + i * cols, dst = tp + idx[i] * cols
                    for j in lo..<hi { dst[j] += src[j] }
                }
            }
        }
    }
}

// Embedding lookup: gather rows of a table by index (forward) and scatter-add them back (backward).

/// Rows of `table` picked by `indices`: `y[i, :] = table[indices[i], :]` (`torch.nn.Embedding`).
/// - Parameters:
///   - table: `[rows, width]`, e.g. word embeddings `[vocab, hidden]`.
///   - indices: any count; each in `0..<rows` (validate user input before calling: this checks with a
///     precondition).
///   - context: threads.
/// - Returns: `[indices.count, width]`, contiguous.
public func gatherRows(_ table: Tensor, indices: [Int], context: ComputeContext) -> Tensor {
    precondition(table.rank == 2, "gatherRows: table \(table.shape) must be [rows, width]")
    let rows = table.shape[0], width = table.shape[1]
    for (i, index) in indices.enumerated() {
        precondition(index >= 0 && index < rows, "gatherRows: index \(index) at position \(i) is outside table \(table.shape)")
    }
    let tc = table.contiguous()
    let y = Tensor(uninitializedShape: [indices.count, width])
    let tp = tc.basePointer, yp = y.mutableBasePointer
    let chunk = max(1, elementwiseChunk / max(width, 1))
    withExtendedLifetime(tc) {
        indices.withUnsafeBufferPointer { ids in
            context.parallelFor(taskCount: (ids.count + chunk - 1) / chunk) { t, _ in
                for i in (t * chunk)..<min(ids.count, (t + 1) * chunk) {
                    (yp + i * width).update(from: tp + ids[i] * width, count: width)
                }
            }
        }
    }
    return y
}

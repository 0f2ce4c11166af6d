// Deterministic reductions over rows (bias gradients, broadcast-add gradients).

/// Rows per partial sum in row reductions: a fixed partition, independent of the thread count.
let reductionRowChunk = 128

/// `sums[j] += Σ_i x[i, j]` over the rows of `x` `[rows, cols]` into `sums` `[cols]`.
///
/// Deterministic at any thread count: rows are cut into fixed chunks of 128, each chunk sums its
/// rows in order into its own partial row, and the partials are added in chunk order (then added to
/// `sums`). fp32 throughout.
public func columnSums(_ x: Tensor, accumulatingInto sums: inout Tensor, context: ComputeContext) {
    require(x.rank == 2, "columnSums: x \(x.shape) must be [rows, cols]")
    let rows = x.shape[0], cols = x.shape[1]
    require(sums.shape == [cols], "columnSums: sums \(sums.shape) does not match x \(x.shape)")
    if rows == 0 || cols == 0 { return }
    let x = x.contiguous()
    sums.prepareOutput(preserveContents: true)
    let chunks = (rows + reductionRowChunk - 1) / reductionRowChunk
    let partial = UnsafeMutablePointer<Float>.allocate(capacity: chunks * cols)
    defer { partial.deallocate() }
    let xp = x.basePointer, sp = sums.mutableBasePointer
    withExtendedLifetime(x) {
        context.parallelForUnchecked(taskCount: chunks) { c, _ in
            let acc = partial + c * cols
            acc.initialize(repeating: 0, count: cols)
            let lo = c * reductionRowChunk, hi = min(rows, lo + reductionRowChunk)
            for r in lo..<hi {
                let row = xp + r * cols
                for j in 0..<cols { acc[j] += row[j] }
            }
        }
    }
    // Combine partials in chunk order, split over fixed column blocks.
    let block = 1024
    context.parallelForUnchecked(taskCount: (cols + block - 1) / block) { t, _ in
        let lo = t * block, hi = min(cols, lo + block)
        for j in lo..<hi {
            var total = partial[j]
            for c in 1..<max(chunks, 1) { total += partial[c * cols + j] }
            sp[j] += total
        }
    }
}

/// `Σ_i x[i, j]` over the rows of `x` `[rows, cols]`, as a `[cols]` tensor (see
/// `columnSums(_:accumulatingInto:context:)` for the fixed summation order).
public func columnSums(_ x: Tensor, context: ComputeContext) -> Tensor {
    require(x.rank == 2, "columnSums: x \(x.shape) must be [rows, cols]")
    var s = Tensor(zeros: [x.shape[1]])
    columnSums(x, accumulatingInto: &s, context: context)
    return s
}

// Ops over row ranges of preallocated buffers, for running different small layers (one task's adapter each)
// on consecutive row groups of one activation buffer without slicing, copying or allocating: a grouped
// linear layer (one GEMM per group and row chunk, all groups in one parallel section), LayerNorm over a row
// range with a fused residual, and row copies. Every element is computed by the same kernel call arithmetic
// as `linear` / `layerNorm` (the C kernels' per-element results do not depend on the tile or the row count),
// so results are bitwise those of the general ops on the same rows (tested in RowGroupOpsTests).

/// One group of `groupedLinear`: rows `rows` of the input go through this layer.
public struct RowGroupLinear: Sendable {
    /// The rows of `x`, `y` (and `residual`) this group covers.
    public var rows: Range<Int>
    /// `[out_g, in_g]`; the group reads the first `in_g` columns of `x` and writes the first `out_g` columns of `y`.
    public var weight: Tensor
    /// `[out_g]` or nil.
    public var bias: Tensor?
    /// Applied after the bias.
    public var activation: Activation
    /// A 2-D contiguous `[rows_total, ≥ out_g]` tensor whose rows `rows`, first `out_g` columns, are added
    /// after the activation; nil for none.
    public var residual: Tensor?

    /// - Parameters:
    ///   - rows: the rows of `x`, `y` and `residual` the group covers.
    ///   - weight: `[out_g, in_g]`.
    ///   - bias: `[out_g]` or nil.
    ///   - activation: applied after the bias.
    ///   - residual: contiguous `[rows_total, ≥ out_g]`, added after the activation, or nil.
    public init(rows: Range<Int>, weight: Tensor, bias: Tensor? = nil, activation: Activation = .none,
                residual: Tensor? = nil) {
        self.rows = rows
        self.weight = weight
        self.bias = bias
        self.activation = activation
        self.residual = residual
    }
}

/// Rows per `groupedLinear` task at most (each task is one GEMM call over all of K).
let groupedLinearRowChunk = 256

/// `y[rows_g, 0..<out_g] = act_g(x[rows_g, 0..<in_g] · W_gᵀ + b_g) + residual_g[rows_g, 0..<out_g]` for every
/// group g, in one parallel section (groups cut into row chunks of at most 256 rows, split further to give
/// every worker a task). Rows of `y` outside every group, and columns beyond a group's `out_g`, keep their
/// values. Per element bitwise the same as `linear` on the group's rows.
/// - Parameters:
///   - x: `[rows_total, in]` contiguous (`in ≥` every group's `in_g`).
///   - groups: row ranges within `0..<rows_total`, non-overlapping.
///   - y: `[rows_total, out]` (`out ≥` every `out_g`); made uniquely owned and contiguous, keeping its values.
///   - context: threads and GEMM backend.
public func groupedLinear(_ x: Tensor, groups: [RowGroupLinear], into y: inout Tensor, context: ComputeContext) {
    require(x.rank == 2 && y.rank == 2 && x.shape[0] == y.shape[0],
            "groupedLinear: x \(x.shape) and y \(y.shape) must be [rows, features] with the same rows")
    let rowsTotal = x.shape[0], xCols = x.shape[1], yCols = y.shape[1]
    for g in groups {
        require(g.weight.rank == 2 && g.weight.shape[1] <= xCols && g.weight.shape[0] <= yCols,
                "groupedLinear: weight \(g.weight.shape) does not fit x \(x.shape) → y \(y.shape)")
        require(g.rows.lowerBound >= 0 && g.rows.upperBound <= rowsTotal,
                "groupedLinear: rows \(g.rows) outside 0..<\(rowsTotal)")
        if let b = g.bias { require(b.shape == [g.weight.shape[0]], "groupedLinear: bias \(b.shape) for weight \(g.weight.shape)") }
        if let r = g.residual {
            require(r.rank == 2 && r.shape[0] == rowsTotal && r.shape[1] >= g.weight.shape[0] && r.isContiguous,
                    "groupedLinear: residual \(r.shape) must be contiguous [\(rowsTotal), ≥ \(g.weight.shape[0])]")
        }
    }
    y.prepareOutput(preserveContents: true)
    let xc = x.contiguous()
    let weights = groups.map { BatchedMatrix($0.weight, op: "groupedLinear", name: "weight") }
    let biases = groups.map { $0.bias?.contiguous() }
    // Tasks: (group, row chunk). Enough chunks that every worker gets work when there are few groups.
    var tasks: [(group: Int, rows: Range<Int>)] = []
    let perGroup = max(1, (context.threads + max(groups.count, 1) - 1) / max(groups.count, 1))
    for (i, g) in groups.enumerated() where !g.rows.isEmpty && g.weight.shape[0] > 0 {
        let chunks = max((g.rows.count + groupedLinearRowChunk - 1) / groupedLinearRowChunk,
                         min(perGroup, g.rows.count / 16))
        let chunk = roundUp((g.rows.count + chunks - 1) / chunks, 16)
        var lo = g.rows.lowerBound
        while lo < g.rows.upperBound {
            let hi = min(lo + chunk, g.rows.upperBound)
            tasks.append((i, lo..<hi))
            lo = hi
        }
    }
    if tasks.isEmpty { return }
    let ws = tasks.map { t in
        KernelBridge.gemmWorkspaceSize(m: t.rows.count, n: groups[t.group].weight.shape[0], k: groups[t.group].weight.shape[1])
    }.max() ?? 0
    let xp = xc.basePointer, yp = y.mutableBasePointer
    let residualPointers = groups.map { $0.residual?.basePointer }
    let residualLDs = groups.map { $0.residual?.shape[1] ?? 0 }
    withExtendedLifetime((xc, weights.map(\.tensor), biases, groups)) {
        context.parallelFor(taskCount: tasks.count, workspaceBytes: ws) { t, _, workspace in
            let (gi, rows) = tasks[t]
            let g = groups[gi], w = weights[gi]
            let n = g.weight.shape[0], k = g.weight.shape[1], i0 = rows.lowerBound
            var e = GemmEpilogue()
            e.activation = g.activation
            e.bias = biases[gi]?.basePointer
            if let rp = residualPointers[gi] { e.residual = rp + i0 * residualLDs[gi]; e.residualLD = residualLDs[gi] }
            KernelBridge.gemm(backend: context.gemmBackend, workspace: workspace, transposeA: false,
                              transposeB: !w.storedTransposed, m: rows.count, n: n, k: k, a: xp + i0 * xCols, lda: xCols,
                              b: w.tensor.basePointer, ldb: w.ld, c: yp + i0 * yCols, ldc: yCols, alpha: 1, beta: 0,
                              epilogue: e, op: "groupedLinear x \(x.shape) weight \(g.weight.shape) rows \(rows)")
        }
    }
}

/// `y[rows] = LN(x[rows] + residual[rows])` (residual optional) row-wise, other rows of `y` unchanged: the
/// values of `layerNorm(_:residual:weight:bias:eps:context:).output` on those rows, bitwise.
/// - Parameters:
///   - x, residual: `[rows_total, features]`.
///   - weight, bias: γ, β `[features]`.
///   - rows: the rows to normalise.
///   - y: `[rows_total, features]`, made uniquely owned and contiguous, keeping its values; must not share
///     storage with `x` or `residual`.
///   - eps: added to the variance.
///   - context: threads.
public func layerNorm(_ x: Tensor, residual: Tensor?, weight: Tensor, bias: Tensor, eps: Float, rows: Range<Int>,
                      into y: inout Tensor, context: ComputeContext) {
    require(x.rank == 2 && y.shape == x.shape && weight.shape == [x.shape[1]] && bias.shape == [x.shape[1]]
                && (residual == nil || residual!.shape == x.shape) && rows.lowerBound >= 0 && rows.upperBound <= x.shape[0],
            "layerNorm(rows:into:): x \(x.shape), residual \(residual?.shape ?? []), y \(y.shape), weight \(weight.shape), rows \(rows) do not match")
    y.prepareOutput(preserveContents: rows != 0..<x.shape[0])
    if rows.isEmpty { return }
    let cols = x.shape[1]
    let xc = x.contiguous(), rc = residual?.contiguous(), wc = weight.contiguous(), bc = bias.contiguous()
    let xp = xc.basePointer, rp = rc?.basePointer, wp = wc.basePointer, bp = bc.basePointer, yp = y.mutableBasePointer
    withExtendedLifetime((xc, rc, wc, bc)) {
        context.parallelForUnchecked(taskCount: (rows.count + layerNormRowChunk - 1) / layerNormRowChunk) { t, _ in
            let lo = rows.lowerBound + t * layerNormRowChunk, n = min(layerNormRowChunk, rows.upperBound - lo), o = lo * cols
            KernelBridge.layerNormForward(
                rows: n, cols: cols, x: xp + o, ldx: cols, residual: rp.map { $0 + o }, ldResidual: cols,
                gamma: wp, beta: bp, y: yp + o, ldy: cols, sum: nil, ldSum: cols,
                mean: nil, rstd: nil, eps: eps, op: "layerNorm(rows:into:) x \(x.shape) rows \(rows)")
        }
    }
}

/// Copies rows `source[rows]` into `destination` starting at row `at`, `copies` times back to back
/// (`copies · rows.count` rows written); other rows keep their values.
/// - Parameters:
///   - source: `[rows_s, features]`.
///   - rows: the rows of `source` to copy.
///   - destination: `[rows_d, features]`, made uniquely owned and contiguous, keeping its values.
///   - at: the first destination row.
///   - copies: how many times the rows are written back to back.
public func copyRows(_ source: Tensor, rows: Range<Int>, into destination: inout Tensor, at: Int, copies: Int = 1) {
    require(source.rank == 2 && destination.rank == 2 && source.shape[1] == destination.shape[1]
                && rows.lowerBound >= 0 && rows.upperBound <= source.shape[0] && copies >= 0 && at >= 0
                && at + copies * rows.count <= destination.shape[0],
            "copyRows: \(source.shape) rows \(rows) ×\(copies) into \(destination.shape) at \(at) do not fit")
    destination.prepareOutput(preserveContents: true)
    let cols = source.shape[1], sc = source.contiguous()
    let count = rows.count * cols
    let sp = sc.basePointer + rows.lowerBound * cols, dp = destination.mutableBasePointer + at * cols
    withExtendedLifetime(sc) {
        for c in 0..<copies { (dp + c * count).update(from: sp, count: count) }
    }
}

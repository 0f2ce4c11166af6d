// Bottleneck adapters applied to consecutive row groups of the encoder's preallocated activation buffers: the
// fast path for single adapters, Parallel over N task adapters (the batch replicated N times at the first
// active layer), BatchSplit over adapters and mixed-task batches (examples grouped by task).
import AdapterCore

/// One task adapter per group of consecutive sequences, run by the encoder's buffered path.
///
/// Semantics per group and adapter site: the group's adapter exactly as `CompositionHook` runs `Stack(name)`
/// (`pre_forward`, `forward`, `post_forward`, see `BottleneckAdapter`), or the plain `LN(h + a)` where that
/// adapter has no module or the layer is skipped. Above the first site where some group's adapter is active
/// the batch is `replicas` copies of the caller's batch (Parallel); below it the layers run once on the
/// caller's batch.
struct RowGroupAdapterPlan: Sendable {
    /// An adapter and the sequences (of the replicated batch) it runs on.
    struct Group: Sendable {
        var adapter: BottleneckAdapter
        var sequences: Range<Int>
    }

    /// Consecutive, covering `0 ..< replicas·batch`.
    let groups: [Group]
    /// How many copies of the caller's batch the groups cover (1 unless Parallel).
    let replicas: Int
    /// Layers whose adapters do not run (AdapterDrop).
    let skipLayers: Set<Int>

    /// Whether some group's adapter runs at `site`.
    func isActive(_ site: AdapterSite) -> Bool {
        !skipLayers.contains(site.layer) && groups.contains { $0.adapter.weights[site] != nil }
    }

    /// The first active site in encoder order, where a Parallel batch is replicated.
    func firstActiveSite(layers: Int) -> AdapterSite? {
        for l in 0..<layers {
            for location in [AdapterLocation.attentionOutput, .output] where isActive(AdapterSite(layer: l, location: location)) {
                return AdapterSite(layer: l, location: location)
            }
        }
        return nil
    }

    /// Whether the buffered adapter steps below reproduce `forward` for this adapter at a site: constant
    /// scaling 1, no gate, no adapter LayerNorms, the sequential architecture, the original LayerNorm after, and
    /// a residual taken before or after the original LayerNorm (not "post_add"). Other adapters run through
    /// their own `preForward` / `forward` / `postForward` on the group's rows (same values, fresh tensors).
    static func isBuffered(_ config: BottleneckConfig, _ w: BottleneckAdapterWeights) -> Bool {
        guard case .constant(1) = config.scaling else { return false }
        return w.gate == nil && w.normBefore == nil && w.normAfter == nil && !config.isParallel
            && config.originalLayerNormAfter && config.residualBeforeLayerNorm != .postAdd
    }

    /// The fields of a config that decide what `pre_forward` and `post_forward` compute. A Parallel runs the
    /// first child's `pre_forward` and the last child's `post_forward` for every channel, so the per-group
    /// plan matches it only when these agree.
    private static func structuralKey(_ c: BottleneckConfig) -> [Bool] {
        [c.isParallel, c.originalLayerNormBefore, c.originalLayerNormAfter,
         c.residualBeforeLayerNorm == .beforeLayerNorm, c.residualBeforeLayerNorm == .afterLayerNorm]
    }

    /// The plan for a setup, or nil when the setup needs the general `CompositionHook`: a single adapter
    /// (`a` or `Stack(a)`), `Parallel(a, b, …)` or `BatchSplit(a, b, …)` over bare adapter names whose
    /// adapters agree on their sites and on `structuralKey`.
    static func make(setup: AdapterComposition, adapters: [String: BottleneckAdapter], batch: Int,
                     skipLayers: Set<Int>) -> RowGroupAdapterPlan? {
        func names(_ children: [AdapterComposition]) -> [String]? {
            let n = children.compactMap { c -> String? in if case let .adapter(name) = c { return name } else { return nil } }
            return n.count == children.count ? n : nil
        }
        func compatible(_ list: [BottleneckAdapter]) -> Bool {
            guard let first = list.first else { return false }
            let sites = Set(first.weights.keys), key = structuralKey(first.config)
            return list.allSatisfy { Set($0.weights.keys) == sites && structuralKey($0.config) == key }
        }
        switch setup.normalized {
        case let .stack(children) where children.count == 1:
            guard let n = names(children), let a = adapters[n[0]] else { return nil }
            return RowGroupAdapterPlan(groups: [Group(adapter: a, sequences: 0..<batch)], replicas: 1, skipLayers: skipLayers)
        case let .parallel(children):
            guard let n = names(children) else { return nil }
            let list = n.compactMap { adapters[$0] }
            guard list.count == n.count, compatible(list) else { return nil }
            return RowGroupAdapterPlan(groups: list.enumerated().map { Group(adapter: $1, sequences: $0 * batch ..< ($0 + 1) * batch) },
                                       replicas: list.count, skipLayers: skipLayers)
        case let .batchSplit(children, sizes):
            guard let n = names(children), sizes.reduce(0, +) == batch else { return nil }
            let list = n.compactMap { adapters[$0] }
            guard list.count == n.count, compatible(list) else { return nil }
            var start = 0
            let groups = zip(list, sizes).map { a, s in defer { start += s }; return Group(adapter: a, sequences: start ..< start + s) }
            return RowGroupAdapterPlan(groups: groups, replicas: 1, skipLayers: skipLayers)
        default:
            return nil
        }
    }

    /// Scratch buffers of `apply`, reused across sites and layers of one forward call.
    struct Workspace {
        /// `LN(h + a)`, the adapters' input where the original LayerNorm comes first, `[rows, hidden]`.
        var normed = Tensor(zeros: [0, 0])
        /// The down projections, `[rows, widest bottleneck]`.
        var down = Tensor(zeros: [0, 0])
        /// The adapter outputs `up + residual`, `[rows, hidden]`.
        var adapted = Tensor(zeros: [0, 0])

        mutating func reserve(rows: Int, hidden: Int, bottleneck: Int) {
            if normed.shape != [rows, hidden] { normed = Tensor(zeros: [rows, hidden]) }
            if adapted.shape != [rows, hidden] { adapted = Tensor(zeros: [rows, hidden]) }
            if down.shape != [rows, bottleneck] { down = Tensor(zeros: [rows, bottleneck]) }
        }
    }

    /// Runs the adapter location `site` on every group: `out = post_forward(forward(pre_forward(h, a)))` per
    /// group, `LN(h + a)` for groups without a module there.
    /// - Parameters:
    ///   - h: the sub-layer's dense output `[rows, hidden]` (`rows = replicas·batch·seq`, already replicated).
    ///   - a: the sub-layer's input (residual) `[rows, hidden]`.
    ///   - layerNorm: the layer's LayerNorm at this location.
    ///   - out: `[rows, hidden]`, overwritten (must not share storage with `h` or `a`).
    func apply(site: AdapterSite, hidden h: Tensor, residual a: Tensor, layerNorm norm: SublayerLayerNorm, sequenceLength seq: Int,
               workspace: inout Workspace, into out: inout Tensor, context: ComputeContext) {
        let rows = h.shape[0], hidden = h.shape[1]
        var plain: [Range<Int>] = []
        var buffered: [(adapter: BottleneckAdapter, weights: BottleneckAdapterWeights, rows: Range<Int>)] = []
        var general: [(adapter: BottleneckAdapter, rows: Range<Int>)] = []
        for g in groups {
            let r = g.sequences.lowerBound * seq ..< g.sequences.upperBound * seq
            if r.isEmpty { continue }
            if skipLayers.contains(site.layer) { plain.append(r); continue }
            guard let w = g.adapter.weights[site] else { plain.append(r); continue }
            if Self.isBuffered(g.adapter.config, w) { buffered.append((g.adapter, w, r)) } else { general.append((g.adapter, r)) }
        }
        for r in Self.merged(plain) {
            AdapterCore.layerNorm(h, residual: a, weight: norm.weight, bias: norm.bias, eps: norm.eps, rows: r, into: &out, context: context)
        }
        if !buffered.isEmpty {
            let widest = buffered.map(\.weights.bottleneckSize).max()!
            workspace.reserve(rows: rows, hidden: hidden, bottleneck: widest)
            // pre_forward: the original LayerNorm LN(h + a) where the config applies it first.
            for r in Self.merged(buffered.filter { $0.adapter.config.originalLayerNormBefore }.map(\.rows)) {
                AdapterCore.layerNorm(h, residual: a, weight: norm.weight, bias: norm.bias, eps: norm.eps, rows: r,
                                      into: &workspace.normed, context: context)
            }
            // forward: down projection with the activation fused, per input buffer (LN(h + a) or h).
            for lnBefore in [true, false] {
                let part = buffered.filter { $0.adapter.config.originalLayerNormBefore == lnBefore }
                if part.isEmpty { continue }
                groupedLinear(lnBefore ? workspace.normed : h, groups: part.map {
                    RowGroupLinear(rows: $0.rows, weight: $0.weights.downWeight, bias: $0.weights.downBias,
                                   activation: $0.adapter.config.activation)
                }, into: &workspace.down, context: context)
            }
            // up projection + the adapter residual (h, or the adapter input when residual_before_ln is false).
            let normed = workspace.normed
            groupedLinear(workspace.down, groups: buffered.map { g in
                let c = g.adapter.config
                let residual = c.residualBeforeLayerNorm == .afterLayerNorm && c.originalLayerNormBefore ? normed : h
                return RowGroupLinear(rows: g.rows, weight: g.weights.upWeight, bias: g.weights.upBias, residual: residual)
            }, into: &workspace.adapted, context: context)
            // post_forward: LN(out + a).
            for r in Self.merged(buffered.map(\.rows)) {
                AdapterCore.layerNorm(workspace.adapted, residual: a, weight: norm.weight, bias: norm.bias, eps: norm.eps, rows: r,
                                      into: &out, context: context)
            }
        }
        for g in general {
            let hs = h.slice(rows: g.rows), as_ = a.slice(rows: g.rows)
            let pre = g.adapter.preForward(hidden: hs, input: as_, layerNorm: norm, context: context)
            let result = g.adapter.forward(site: site, pre.hidden, residual: pre.residual, sequenceLength: seq, context: context)
            let post = g.adapter.postForward(result.output, inputHidden: hs, input: as_, layerNorm: norm, context: context)
            copyRows(post, rows: 0..<post.shape[0], into: &out, at: g.rows.lowerBound)
        }
    }

    /// Adjacent ranges joined (`[0..<4, 4..<8, 12..<16]` → `[0..<8, 12..<16]`), so row-wise ops run in fewer calls.
    static func merged(_ ranges: [Range<Int>]) -> [Range<Int>] {
        var out: [Range<Int>] = []
        for r in ranges.sorted(by: { $0.lowerBound < $1.lowerBound }) where !r.isEmpty {
            if let last = out.last, last.upperBound == r.lowerBound { out[out.count - 1] = last.lowerBound ..< r.upperBound } else { out.append(r) }
        }
        return out
    }
}

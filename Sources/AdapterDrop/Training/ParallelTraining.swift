// Parallel training of several bottleneck adapters at once (adapters 1.3.0 `train_adapter(Parallel(a, b, …))`,
// `compose_parallel` in methods/adapter_layer_base.py): the batch is replicated at the first site with a
// Parallel adapter, every replica goes through its own adapter above it, each branch has its own head and the
// loss is the sum of the heads' losses (`MultiHeadOutput.loss`). See docs/training.md, "Parallel training".
import AdapterCore

/// `Parallel(a₁, …, a_N)` of bottleneck adapters as one trainable module, with batch replication.
///
/// Replication: at `replicationSite` — the lowest site (layer order, the attention location before the output
/// location) where the adapters have modules and the layer is not skipped — the module receives h, a with
/// `rows = batch·seq` rows and returns `[N·rows, H]`: branch i's output (its adapter's
/// pre_forward/forward/post_forward on a copy of h, a) in rows `i·rows ..< (i+1)·rows`. The encoder then runs
/// every layer above on `N·batch` sequences (its training pass repeats the attention mask), so the layers
/// below the replication site are computed once for all branches — the AdapterDrop multi-task saving. At
/// every later site branch i acts on its own row block. In the backward pass the replicas' gradients dL/dh and
/// dL/da at the replication site are summed back to `rows` rows (the reference's autograd through `repeat`).
///
/// The encoder's output is `[N·batch·seq, H]` (`EncoderTrainingTape.output`); head i reads block i
/// (`branchRows`), and dL/d(output) is the concatenation of the heads' gradients. If every site is skipped
/// nothing is replicated and every head reads the same `[batch·seq, H]` output (as in inference).
///
/// `activeBranch` set to i runs only branch i and never replicates (one forward/backward per branch with its
/// head gives the same gradients when dropout is off, at N times the cost below the replication site).
///
/// All branches must have modules at the same sites and agree on `original_ln_before`, `original_ln_after`
/// and `residual_before_ln` (the reference applies the first adapter's pre_forward and the last one's
/// post_forward to every branch; with equal flags that is each branch's own). Each branch keeps its own
/// `parameters` / `gradients` (names contain the adapter name, so they are disjoint).
public final class ParallelTrainingModule: TrainableSublayer {
    /// The branches, in Parallel order (branch i ↔ head i).
    public let branches: [BottleneckAdapterTrainingModule]
    /// Layers skipped by AdapterDrop for the current step (all branches).
    public var skipLayers: Set<Int> = []
    /// nil: all branches with replication; i: only branch i, without replication.
    public var activeBranch: Int? = nil
    private let sites: [AdapterSite]

    private struct BranchSaved {
        var core: BottleneckAdapterTrainingModule.CoreSaved
        var ln2: LayerNormOutput?
    }

    private struct Saved {
        var branches: [BranchSaved]
        /// Branch indices in row-block order (all, or the active one).
        var order: [Int]
        /// Whether this site replicated its input.
        var replicated: Bool
    }

    /// - Parameter branches: at least one adapter module (supported subset of `BottleneckAdapterTrainingModule`).
    /// - Throws: `AdapterError.invalidSetup` for no branches or a repeated adapter; `AdapterError.unsupported`
    ///   (file = the Parallel block) when branches differ in their sites or their pre/post_forward flags.
    public init(_ branches: [BottleneckAdapterTrainingModule]) throws {
        let text = "Parallel(\(branches.map(\.name).joined(separator: ",")))"
        guard !branches.isEmpty else { throw AdapterError.invalidSetup(text: text, reason: "no branches") }
        guard Set(branches.map(\.name)).count == branches.count else {
            throw AdapterError.invalidSetup(text: text, reason: "an adapter appears twice")
        }
        let first = branches[0]
        for b in branches.dropFirst() {
            if b.sites != first.sites {
                throw AdapterError.unsupported(file: text, key: b.name,
                                               reason: "Parallel training needs every adapter at the same sites (leave_out, mh_adapter, output_adapter)")
            }
            let c = b.config, f = first.config
            if c.originalLayerNormBefore != f.originalLayerNormBefore || c.originalLayerNormAfter != f.originalLayerNormAfter
                || c.residualBeforeLayerNorm != f.residualBeforeLayerNorm {
                throw AdapterError.unsupported(file: text, key: b.name,
                                               reason: "Parallel training needs equal original_ln_before, original_ln_after and residual_before_ln")
            }
        }
        self.branches = branches
        sites = first.sites
    }

    /// Number of branches (= heads).
    public var branchCount: Int { branches.count }

    /// Runs only branch `index` from now on (nil: all, replicated).
    public func selectBranch(_ index: Int?) {
        if let index { require(index >= 0 && index < branches.count, "ParallelTrainingModule: branch \(index) not in 0..<\(branches.count)") }
        activeBranch = index
    }

    /// Runs only branch `index` from now on (the per-branch trainer loop's requirement; same as
    /// `selectBranch(Optional(index))`).
    public func selectBranch(_ index: Int) { selectBranch(Optional(index)) }

    /// `parameters` (the trainer's name for it).
    public var trainableParameters: [String: Tensor] { parameters }

    /// `setParameters(_:)` (the trainer's name for it).
    public func setTrainableParameters(_ values: [String: Tensor]) { setParameters(values) }

    /// All branches' parameters by full name.
    public var parameters: [String: Tensor] {
        branches.reduce(into: [:]) { all, b in for (k, v) in b.parameters { all[k] = v } }
    }

    /// Writes updated values back to the branch that owns each name (other names are ignored).
    public func setParameters(_ values: [String: Tensor]) {
        for b in branches { for k in Array(b.parameters.keys) { if let v = values[k] { b.parameters[k] = v } } }
    }

    /// This step's gradients of all branches; clears them.
    public func takeGradients() -> [String: Tensor] {
        branches.reduce(into: [:]) { all, b in for (k, v) in b.takeGradients() { all[k] = v } }
    }

    /// Where the batch is replicated for the current `skipLayers` (nil when every site is skipped or only one
    /// branch is active).
    public var replicationSite: AdapterSite? {
        guard activeBranch == nil else { return nil }
        return sites.filter { !skipLayers.contains($0.layer) }
            .min { ($0.layer, $0.location == .attentionOutput ? 0 : 1) < ($1.layer, $1.location == .attentionOutput ? 0 : 1) }
    }

    /// The rows of branch `index` in an encoder output of `outputRows` rows for `batch` sequences of
    /// `sequenceLength`: block `index` when the output was replicated, all rows otherwise.
    public func branchRows(_ index: Int, outputRows: Int, batch: Int, sequenceLength: Int) -> Range<Int> {
        let rows = batch * sequenceLength
        return outputRows == rows ? 0..<rows : index * rows ..< (index + 1) * rows
    }

    /// True when the branches (which share their sites) have adapters in `layer` and the layer is not skipped.
    public func hasTrainableParameters(layer: Int) -> Bool {
        !skipLayers.contains(layer) && sites.contains { $0.layer == layer }
    }

    /// The Parallel site (type doc): at `replicationSite` h, a `[rows, H]` → `[N·rows, H]` (branch i in block i); at
    /// later sites each branch on its own row block; with `activeBranch` set only that branch, no replication.
    public func trainingForward(layer: Int, location: AdapterLocation, hidden h: Tensor, residual a: Tensor,
                                layerNorm: SublayerLayerNorm, batch: Int, sequenceLength: Int, saveForBackward: Bool,
                                dropout: EncoderDropout, rng: inout SeededRNG,
                                context: ComputeContext) -> TrainableSublayerForward? {
        let site = AdapterSite(layer: layer, location: location)
        guard !skipLayers.contains(layer), sites.contains(site) else { return nil }
        let order = activeBranch.map { [$0] } ?? Array(branches.indices)
        let replicate = order.count > 1 && site == replicationSite
        let blocks = replicate ? 1 : order.count
        let rowsPerBranch = h.shape[0] / blocks
        require(rowsPerBranch * blocks == h.shape[0],
                "ParallelTrainingModule: \(h.shape[0]) rows at layer \(layer) \(location) are not \(blocks) branch blocks")
        var outputs: [Tensor] = [], saved: [BranchSaved] = []
        for (slot, i) in order.enumerated() {
            let r = replicate || blocks == 1 ? 0..<h.shape[0] : slot * rowsPerBranch ..< (slot + 1) * rowsPerBranch
            let hi = r == 0..<h.shape[0] ? h : h.slice(rows: r).contiguous()
            let ai = r == 0..<a.shape[0] ? a : a.slice(rows: r).contiguous()
            let b = branches[i]
            let (o, core) = b.coreForward(site: site, hidden: hi, residual: ai, layerNorm: layerNorm, context: context)
            let (y, ln2) = b.postForward(o, residual: ai, layerNorm: layerNorm, context: context)
            outputs.append(y)
            if saveForBackward { saved.append(BranchSaved(core: core, ln2: ln2)) }
        }
        let output = outputs.count == 1 ? outputs[0] : Tensor(concatenating: outputs)
        return TrainableSublayerForward(output: output,
                                        saved: saveForBackward ? Saved(branches: saved, order: order, replicated: replicate) : nil)
    }

    /// Backward of `trainingForward`: each branch back-propagates its row block (accumulating its adapter's
    /// gradients); at the replication site the replicas' dL/dh and dL/da are summed back to `rows` rows.
    public func trainingBackward(layer: Int, location: AdapterLocation, outputGradient dy: Tensor, saved: Any?,
                                 layerNorm: SublayerLayerNorm,
                                 context: ComputeContext) -> (hidden: Tensor, residual: Tensor) {
        guard let s = saved as? Saved else {
            preconditionFailure("Parallel: backward without saved state at layer \(layer) \(location)")
        }
        let site = AdapterSite(layer: layer, location: location)
        let blocks = s.order.count, rowsPerBranch = dy.shape[0] / blocks
        var dhs: [Tensor] = [], das: [Tensor] = []
        for (slot, i) in s.order.enumerated() {
            let g = blocks == 1 ? dy : dy.slice(rows: slot * rowsPerBranch ..< (slot + 1) * rowsPerBranch).contiguous()
            let b = branches[i], bs = s.branches[slot]
            var da = Tensor(zeros: g.shape)
            let dOut = b.postBackward(g, ln2: bs.ln2, layerNorm: layerNorm, residualGradient: &da, context: context)
            let dh = b.coreBackward(site: site, outputGradient: dOut, saved: bs.core, layerNorm: layerNorm,
                                    residualGradient: &da, context: context)
            dhs.append(dh)
            das.append(da)
        }
        if blocks == 1 { return (dhs[0], das[0]) }
        if s.replicated {
            // The replicas were copies of one input: their gradients add up, in branch order.
            var dh = dhs[0], da = das[0]
            for k in 1..<blocks {
                accumulate(dhs[k], into: &dh, context: context)
                accumulate(das[k], into: &da, context: context)
            }
            return (dh, da)
        }
        return (Tensor(concatenating: dhs), Tensor(concatenating: das))
    }
}

// What `AdapterTrainer` needs from a trainable module beyond the encoder's `TrainableSublayer` contract:
// named parameters and gradients for AdamW, AdapterDrop's skipped layers, Parallel branches (one head each)
// and an optional regularisation term (AdapterFusion's value regulariser).
import AdapterCore

/// A `TrainableSublayer` the `AdapterTrainer` can optimise: one adapter, a stack, a fusion over frozen
/// adapters, or several adapters trained in `Parallel`.
///
/// Parameter names are full state-dict names (e.g. `bert.encoder.layer.0.output.adapters.a.adapter_up.weight`)
/// and must not start with `heads.` (the heads' namespace). Gradients follow the AdapterCore rule: the module
/// accumulates (`+=`) into its own buffers during `trainingBackward`; a parameter without a gradient in a step
/// is absent from `takeGradients()`, so AdamW skips it as torch does for `grad is None`.
public protocol TrainerModule: TrainableSublayer {
    /// Layers whose modules are skipped (AdapterDrop); set by the trainer before every forward pass.
    var skipLayers: Set<Int> { get set }
    /// The trainable tensors by full name (current values).
    var trainableParameters: [String: Tensor] { get }
    /// Writes updated values back. `values` may hold other modules' (e.g. heads') names: take only your own.
    func setTrainableParameters(_ values: [String: Tensor])
    /// This step's accumulated gradients by full name; clears them.
    func takeGradients() -> [String: Tensor]
    /// Parallel training: the number of branches, each with its own head (1 for everything else).
    var branchCount: Int { get }
    /// Parallel training: makes branch `index` (`0..<branchCount`) the active one for the next forward and
    /// backward. The trainer runs one forward/backward per branch; gradients accumulate across branches.
    func selectBranch(_ index: Int)
}

extension TrainerModule {
    /// One branch.
    public var branchCount: Int { 1 }
    /// Nothing to select with one branch.
    public func selectBranch(_ index: Int) {}
}

/// A `TrainerModule` with an extra loss term, e.g. AdapterFusion's `0.01·Σ‖I − W_value‖²_F` over the trained
/// value matrices (adapters 1.3.0 `get_fusion_regularization_loss`).
public protocol RegularizedTrainerModule: TrainerModule {
    /// Returns the term's value (already weighted, added as is to the step's loss) and accumulates (`+=`) its
    /// gradient into the module's own gradients, which the next `takeGradients()` returns. Called once per
    /// optimizer step, after every branch's backward pass.
    func addRegularizationLoss(context: ComputeContext) -> Float
}

/// A branched module that can also run all branches in one pass, replicating the batch at its first site
/// (Parallel training as the reference does it; the encoder output is then `[branches·batch·seq, hidden]`).
public protocol ReplicatedBranchesTrainerModule: TrainerModule {
    /// nil: all branches in one replicated pass (the default); i: only branch i, no replication.
    func selectBranch(_ index: Int?)
    /// The rows of the encoder output `[outputRows, hidden]` that belong to branch `index` (all rows when
    /// nothing was replicated, e.g. every Parallel site skipped by AdapterDrop).
    func branchRows(_ index: Int, outputRows: Int, batch: Int, sequenceLength: Int) -> Range<Int>
}

extension AdapterFusionTrainingModule: RegularizedTrainerModule {}

extension ParallelTrainingModule: ReplicatedBranchesTrainerModule {}

extension BottleneckAdapterTrainingModule: TrainerModule {
    /// `parameters`.
    public var trainableParameters: [String: Tensor] { parameters }

    /// Copies the entries of `values` whose names are this adapter's parameters.
    public func setTrainableParameters(_ values: [String: Tensor]) {
        for key in Array(parameters.keys) { if let value = values[key] { parameters[key] = value } }
    }
}

extension AdapterStackTrainingModule: TrainerModule {
    /// All stacked adapters' parameters.
    public var trainableParameters: [String: Tensor] { parameters }

    /// `setParameters(_:)`.
    public func setTrainableParameters(_ values: [String: Tensor]) { setParameters(values) }
}

extension BottleneckConfig {
    /// Throws when training does not support this config (`BottleneckAdapterTrainingModule`'s subset):
    /// parallel adapters, `ln_before`/`ln_after`, gating, learned or per-channel scaling.
    /// - Throws: `TrainingError.unsupportedAdapterConfig` naming the `adapter_config.json` key.
    public func validateForTraining(adapter name: String) throws {
        func fail(_ key: String, _ reason: String) -> TrainingError {
            .unsupportedAdapterConfig(adapter: name, key: key, reason: reason)
        }
        if isParallel { throw fail("is_parallel", "parallel bottleneck adapters (par_bn)") }
        if layerNormBefore { throw fail("ln_before", "an adapter-owned LayerNorm before the bottleneck") }
        if layerNormAfter { throw fail("ln_after", "an adapter-owned LayerNorm after the bottleneck") }
        if useGating { throw fail("use_gating", "gated adapters") }
        switch scaling {
        case .constant: break
        case .learned: throw fail("scaling", "learned scaling (\"learned\")")
        case .channel: throw fail("scaling", "per-channel scaling (\"channel\")")
        }
    }
}

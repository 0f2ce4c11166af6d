// Training adapters, fusion or Parallel adapters + their prediction heads on a text dataset with AdapterDrop,
// and evaluating them with an explicit number of dropped layers (Rücklé et al. 2021, §3; HF Trainer semantics
// for the optimizer: AdamW, linear warm-up/decay, gradient-norm clipping, no decay on biases).
import AdapterCore
import Foundation

/// Options of `AdapterTrainer`.
public struct AdapterTrainingOptions: Sendable {
    /// What to do when a loss or gradient is NaN/±Inf.
    public enum NonFiniteHandling: String, Sendable, Equatable {
        /// Stop with `TrainingError.nonFinite` naming the step and the first non-finite tensor (default).
        case stop
        /// Skip the step: no optimizer update (parameters, moments and AdamW step counts unchanged), the batch
        /// and its AdapterDrop draw are consumed, the step is listed in `AdapterTrainingResult.skippedSteps`.
        case skipStep = "skip"
    }

    /// Examples per forward/backward pass (micro-batch) (≥ 1); an optimizer step takes
    /// `batchSize · gradientAccumulationSteps` examples.
    public var batchSize: Int = 16
    /// Gradient accumulation (≥ 1; HF Trainer's `gradient_accumulation_steps`): every optimizer step sums the
    /// gradients of this many micro-batches of `batchSize` examples (the last step of an epoch may have fewer
    /// or smaller ones), then clips the sum and updates once. Each micro-batch's loss is weighted by its share
    /// of the step's examples, so with dropout off a step equals one batch of all its examples up to fp32
    /// rounding (`batchSize: b, gradientAccumulationSteps: k` ≈ `batchSize: k·b`; docs/numerics.md). The
    /// schedule, `stopAfterSteps`, `checkpointEvery`, AdapterDrop draws (one per optimizer step) and the result
    /// histories count optimizer steps; checkpoints are written only between optimizer steps.
    public var gradientAccumulationSteps: Int = 1
    /// Passes over the training set (≥ 1).
    public var epochs: Int = 1
    /// Peak learning rate of the linear schedule (finite, ≥ 0).
    public var learningRate: Double = 1e-4
    /// Warm-up steps of `LinearWarmupSchedule` (≥ 0; 0: start at the peak and decay linearly to 0).
    public var warmupSteps: Int = 0
    /// AdamW λ for weights (≥ 0); biases get 0 (HF Trainer's parameter groups).
    public var weightDecay: Double = 0.01
    /// `clipGradientNorm` bound (> 0), or nil for no clipping.
    public var maxGradientNorm: Double? = 1.0
    /// Which adapter layers are dropped while training (drawn per batch by `AdapterDropSampler`).
    public var policy: AdapterDropPolicy = .none
    /// Seed of the batch order (stream = epoch), the AdapterDrop draws and the dropout masks (stream = step + 1).
    public var seed: UInt64 = 0
    /// Apply the encoder's hidden/attention dropout while training (`EncoderDropout(config:)`); false: `.off`.
    public var useDropout: Bool = true
    /// Non-finite loss or gradient: stop (default) or skip the step.
    public var nonFinite: NonFiniteHandling = .stop
    /// Stop after this many optimizer steps of this call (≥ 1), e.g. to checkpoint and resume later; nil: run
    /// to the end. The schedule still spans all `epochs`.
    public var stopAfterSteps: Int? = nil
    /// Write a checkpoint here (replacing the previous one atomically) every `checkpointEvery` steps and when
    /// `train` returns; nil: no checkpoints.
    public var checkpointFolder: URL? = nil
    /// Steps between checkpoints (≥ 1; only with `checkpointFolder`). Default: only at the end.
    public var checkpointEvery: Int? = nil

    /// Defaults as listed.
    public init() {}

    /// The most optimizer steps one run may have (`epochs` × steps per epoch). Each step adds ~63 bytes to a
    /// checkpoint's `trainer_state.json` (four pretty-printed histories), which is read back with a 256 MiB limit
    /// (~4 M steps); half of that leaves a margin. It also keeps every step count far from `Int` overflow.
    public static let maximumTotalSteps = 2_000_000

    /// Throws for an option out of range.
    /// - Throws: `TrainingError.invalidOption` naming the option.
    public func validate() throws {
        func fail(_ key: String, _ value: Any, _ reason: String) -> TrainingError {
            .invalidOption(key: key, value: "\(value)", reason: reason)
        }
        if batchSize < 1 { throw fail("batch_size", batchSize, "must be ≥ 1") }
        if gradientAccumulationSteps < 1 { throw fail("gradient_accumulation_steps", gradientAccumulationSteps, "must be ≥ 1") }
        if epochs < 1 { throw fail("epochs", epochs, "must be ≥ 1") }
        if epochs > Self.maximumTotalSteps {
            throw fail("epochs", epochs, "must be ≤ \(Self.maximumTotalSteps) (the limit on optimizer steps of a run)")
        }
        if !learningRate.isFinite || learningRate < 0 { throw fail("learning_rate", learningRate, "must be finite and ≥ 0") }
        if warmupSteps < 0 { throw fail("warmup_steps", warmupSteps, "must be ≥ 0") }
        if !weightDecay.isFinite || weightDecay < 0 { throw fail("weight_decay", weightDecay, "must be finite and ≥ 0") }
        if let m = maxGradientNorm, !(m.isFinite && m > 0) { throw fail("max_grad_norm", m, "must be finite and > 0") }
        if let s = stopAfterSteps, s < 1 { throw fail("stop_after_steps", s, "must be ≥ 1") }
        if let e = checkpointEvery, e < 1 { throw fail("checkpoint_every", e, "must be ≥ 1") }
    }
}

/// What `AdapterTrainer.train` returns. Histories cover every step since the start of training, including
/// steps run before a resumed checkpoint.
public struct AdapterTrainingResult: Sendable {
    /// Each optimizer step's loss (before that step's update): the sum over branches of each head's mean
    /// batch loss (the regularisation term is not included, as the reference logs it). Skipped steps hold
    /// their non-finite value.
    public var losses: [Float]
    /// The regularisation term whose gradient joined each step (its value at the weights after the previous
    /// step; 0 at step 0 and for modules without one).
    public var regularizationLosses: [Float]
    /// The number of dropped adapter layers at each step.
    public var droppedLayers: [Int]
    /// The gradient norm before clipping at each step (0 when clipping is off or the step was skipped).
    public var gradientNorms: [Float]
    /// Steps skipped because of a non-finite loss or gradient (`NonFiniteHandling.skipStep`), ascending.
    public var skippedSteps: [Int]
    /// Optimizer steps done in total (`losses.count`).
    public var steps: Int { losses.count }
    /// True when all epochs are done (false after `stopAfterSteps`).
    public var finished: Bool
    /// The module's trained parameters by full name.
    public var parameters: [String: Tensor]
    /// The trained adapter, when the module is one `BottleneckAdapterTrainingModule` (save with
    /// `AdapterModel.saveAdapter`).
    public var trainedAdapter: BottleneckAdapter?
    /// The trained heads, one per branch.
    public var heads: [PredictionHead]

    /// The trained adapter. - Precondition: the module is one bottleneck adapter.
    public var adapter: BottleneckAdapter {
        guard let trainedAdapter else { preconditionFailure("AdapterTrainingResult.adapter: the module is not one adapter") }
        return trainedAdapter
    }
    /// The first (usually only) head.
    public var head: PredictionHead { heads[0] }
}

/// Trains a `TrainerModule` (one adapter, a stack, a fusion over frozen adapters, or Parallel adapters) and one
/// prediction head per branch on top of a frozen `BertEncoder`.
///
/// Per optimizer step: the next `batchSize · gradientAccumulationSteps` examples of a seeded shuffle, n dropped
/// layers drawn from `AdapterDropSampler` (`skipLayers = 0..<n`, so backpropagation stops at layer n), then per
/// micro-batch of `batchSize` and per branch: training forward with dropout (the same masks for every branch:
/// stream = step + 1 for the first micro-batch), the head's loss by its kind (cross-entropy, MSE for one label,
/// BCE with logits for multi-label), backward with the micro-batch's weight (its share of the step's examples),
/// gradients summed; a check that loss and gradients are finite; `clipGradientNorm` on the sum; one AdamW update
/// with `LinearWarmupSchedule` (which counts optimizer steps). A `RegularizedTrainerModule`'s term is evaluated at
/// the start of every step t ≥ 1 (at the weights after step t − 1) and its gradient joins step t's, before
/// clipping — adapters 1.3.0's timing (`AdapterTrainerCallback.on_step_end` runs it after the update); its
/// value is reported in `regularizationLosses`, not in `losses`. Everything is seeded: a run is bitwise reproducible for a fixed seed, thread count
/// and input, and resuming from a checkpoint continues the same trajectory bit for bit.
///
/// Parallel training (`branchCount > 1`) sums the heads' losses. A `ReplicatedBranchesTrainerModule`
/// (`ParallelTrainingModule`) runs one forward pass that replicates the batch at the first Parallel site (head i
/// reads `branchRows(i, …)` of the output) and one backward pass, as the reference does; other branched modules
/// run one forward/backward per branch (`selectBranch(i)`, the lower layers recomputed per branch: slower, the
/// same gradients with dropout off).
public final class AdapterTrainer {
    /// Turns a batch of examples into encoder input (tokenize and pad).
    public typealias BatchEncoder = ([TextExample]) throws -> EncoderInput

    /// The frozen encoder.
    public let encoder: BertEncoder
    /// The module being trained.
    public let module: any TrainerModule
    /// The heads being trained, one per branch of `module`.
    public let headModules: [PredictionHeadTrainingModule]
    /// Each head's config as given (multi-label heads train through a classification-typed module).
    public let headConfigs: [PredictionHeadConfig]
    /// Each head's task kind (loss and metrics).
    public let kinds: [TrainingTaskKind]
    /// Options of the run.
    public let options: AdapterTrainingOptions
    /// Receives one event per optimizer step (nil: silent).
    public var progress: (any TrainingProgressReporter)?
    /// Pre-packed frozen encoder weights for the training passes (`PackedTrainingWeights(encoder)`), or nil;
    /// results are bitwise equal either way, packing saves re-packing every weight twice per step.
    public var packedWeights: PackedTrainingWeights?
    private let encode: BatchEncoder

    /// A trainer for any module and one head per branch.
    /// - Parameters:
    ///   - encoder: the frozen base model.
    ///   - module: what trains below the heads (its current parameters are the initial values).
    ///   - heads: one per `module.branchCount`; sequence classification (CE), regression (one label, MSE) or
    ///     multi-label (BCE) on the [CLS] state, input size = the model's hidden size.
    ///   - options: see `AdapterTrainingOptions`.
    ///   - encode: batch → `EncoderInput` (e.g. a `SubwordTokenizer` plus padding).
    /// - Throws: `TrainingError.invalidOption`, `.invalidDropPolicy`, `.headCountMismatch`, `.unsupportedHead`,
    ///   `.shapeMismatch` (head input size).
    public init(encoder: BertEncoder, module: any TrainerModule, heads: [PredictionHead],
                options: AdapterTrainingOptions, encode: @escaping BatchEncoder) throws {
        try options.validate()
        let layers = encoder.config.numHiddenLayers
        guard options.policy.validate(numberOfLayers: layers) else {
            throw TrainingError.invalidDropPolicy(policy: "\(options.policy)", numberOfLayers: layers)
        }
        guard heads.count == module.branchCount, !heads.isEmpty else {
            throw TrainingError.headCountMismatch(heads: heads.count, branches: module.branchCount)
        }
        var modules: [PredictionHeadTrainingModule] = [], kinds: [TrainingTaskKind] = []
        for head in heads {
            let kind = try TrainingTaskKind(head: head.name, config: head.config)
            guard let first = head.linears.first, first.weight.rank == 2 else {
                throw TrainingError.unsupportedHead(head: head.name, key: "layers", reason: "no Linear layer")
            }
            if first.weight.shape[1] != encoder.config.hiddenSize {
                throw TrainingError.shapeMismatch(name: "head \(head.name)", what: "input size",
                                                  expected: encoder.config.hiddenSize, found: first.weight.shape[1])
            }
            // Multi-label heads have the classification head's layout; only the loss differs.
            var config = head.config
            config.headType = .classification
            modules.append(PredictionHeadTrainingModule(PredictionHead(name: head.name, config: config, linears: head.linears)))
            kinds.append(kind)
        }
        self.encoder = encoder
        self.module = module
        headModules = modules
        headConfigs = heads.map(\.config)
        self.kinds = kinds
        self.options = options
        self.encode = encode
    }

    /// One bottleneck adapter + one head.
    /// - Throws: as `init(encoder:module:heads:options:encode:)`, plus `TrainingError.unsupportedAdapterConfig`
    ///   (`BottleneckConfig.validateForTraining`) and `.shapeMismatch` for an adapter of another hidden size or
    ///   with sites in layers the model does not have.
    public convenience init(encoder: BertEncoder, adapter: BottleneckAdapter, head: PredictionHead,
                            options: AdapterTrainingOptions, encode: @escaping BatchEncoder) throws {
        try adapter.config.validateForTraining(adapter: adapter.name)
        if adapter.hiddenSize != encoder.config.hiddenSize {
            throw TrainingError.shapeMismatch(name: "adapter \(adapter.name)", what: "hidden size",
                                              expected: encoder.config.hiddenSize, found: adapter.hiddenSize)
        }
        if let top = adapter.weights.keys.map(\.layer).max(), top >= encoder.config.numHiddenLayers {
            throw TrainingError.shapeMismatch(name: "adapter \(adapter.name)", what: "number of layers",
                                              expected: encoder.config.numHiddenLayers, found: top + 1)
        }
        try self.init(encoder: encoder, module: BottleneckAdapterTrainingModule(adapter), heads: [head],
                      options: options, encode: encode)
    }

    /// The trained adapter module when the module is one adapter.
    public var adapterModule: BottleneckAdapterTrainingModule? { module as? BottleneckAdapterTrainingModule }
    /// The first head's module.
    public var headModule: PredictionHeadTrainingModule { headModules[0] }

    /// The heads with their current values and their given configs.
    public var currentHeads: [PredictionHead] {
        zip(headModules, headConfigs).map { m, config in
            PredictionHead(name: m.name, config: config, linears: m.head.linears)
        }
    }

    /// All trainable tensors (module, then heads) by full name.
    var allParameters: [String: Tensor] {
        var all = module.trainableParameters
        for h in headModules { for (k, v) in h.parameters { all[k] = v } }
        return all
    }

    func setAllParameters(_ values: [String: Tensor]) {
        module.setTrainableParameters(values)
        for h in headModules { for k in Array(h.parameters.keys) { if let v = values[k] { h.parameters[k] = v } } }
    }

    /// Default targets of a dataset for head `index`: its class labels (classification only).
    func defaultTargets(_ dataset: TextClassificationDataset, head index: Int) throws -> TrainingTargets {
        guard kinds[index] == .classification else {
            throw TrainingError.invalidTargets(head: headModules[index].name, index: -1,
                                               reason: "a \(kinds[index].rawValue) head needs explicit targets")
        }
        return .classes(dataset.examples.map(\.label))
    }

    /// Mean loss of head `index`'s logits `[batch, numLabels]` against flattened targets, and dL/dlogits.
    func loss(head index: Int, logits: Tensor, targets: [Float]) -> (Float, Tensor) {
        switch kinds[index] {
        case .classification:
            let out = crossEntropyLoss(logits: logits, labels: targets.map { Int($0) })
            return (out.loss, out.gradient)
        case .regression:
            let out = mseLoss(prediction: logits.reshaped([logits.shape[0]]),
                              target: Tensor(shape: [targets.count], scalars: targets))
            return (out.loss, out.gradient.reshaped(logits.shape))
        case .multiLabel:
            let out = binaryCrossEntropyWithLogits(logits: logits, targets: targets)
            return (out.loss, out.gradient)
        }
    }

    /// Trains until all `options.epochs` are done (or `options.stopAfterSteps` steps of this call).
    /// - Parameters:
    ///   - dataset: the training set (its order is shuffled per epoch from the seed).
    ///   - targets: gold targets in dataset order; nil: the dataset's class labels (classification heads).
    ///     Every branch trains on the same targets (see `train(on:branchTargets:resumingFrom:context:)` for one
    ///     set per branch).
    ///   - checkpoint: resume from this checkpoint folder (written by a run with the same options, dataset
    ///     size and parameters); the continued run is bitwise equal to an uninterrupted one.
    /// - Returns: per-step histories, the trained parameters and heads.
    /// - Throws: `TrainingError` (targets, non-finite values, checkpoints), errors of the batch encoder,
    ///   `EncoderError` for bad ids.
    public func train(on dataset: TextClassificationDataset, targets: TrainingTargets? = nil,
                      resumingFrom checkpoint: URL? = nil, context: ComputeContext) throws -> AdapterTrainingResult {
        try train(on: dataset, branchTargets: Array(repeating: targets, count: headModules.count), resumingFrom: checkpoint,
                  context: context)
    }

    /// Parallel training with per-branch targets: trains like `train(on:targets:resumingFrom:context:)`, but head
    /// i (branch i) learns `branchTargets[i]` — its own task on the same texts, e.g. a classification head and a
    /// regression head; the step's loss is the sum of the heads' losses.
    /// - Parameters:
    ///   - branchTargets: one entry per head, in branch order, each in dataset order; nil entries: the dataset's
    ///     class labels (classification heads).
    /// - Throws: `TrainingError.invalidTargets` when the count differs from the number of heads or a target does
    ///   not fit its head (named), otherwise as `train(on:targets:resumingFrom:context:)`.
    public func train(on dataset: TextClassificationDataset, branchTargets: [TrainingTargets?],
                      resumingFrom checkpoint: URL? = nil, context: ComputeContext) throws -> AdapterTrainingResult {
        let L = encoder.config.numHiddenLayers
        guard dataset.count > 0 else {
            throw TrainingError.invalidTargets(head: headModules[0].name, index: -1, reason: "the training set \(dataset.source) is empty")
        }
        guard branchTargets.count == headModules.count else {
            throw TrainingError.invalidTargets(head: headModules.map(\.name).joined(separator: ","), index: -1,
                                               reason: "\(branchTargets.count) target sets for \(headModules.count) heads (one per branch)")
        }
        var headTargets: [TrainingTargets] = []
        for (i, h) in headModules.enumerated() {
            let t = try branchTargets[i] ?? defaultTargets(dataset, head: i)
            try t.validate(head: h.name, kind: kinds[i], numLabels: h.config.numLabels, count: dataset.count)
            headTargets.append(t)
        }
        // Overflow-free: a product beyond Int means one step takes the whole dataset.
        let (product, overflow) = options.batchSize.multipliedReportingOverflow(by: options.gradientAccumulationSteps)
        let examplesPerStep = overflow ? Int.max : product
        let stepsPerEpoch = (dataset.count - 1) / examplesPerStep + 1
        let (total, tooMany) = stepsPerEpoch.multipliedReportingOverflow(by: options.epochs)
        if tooMany || total > AdapterTrainingOptions.maximumTotalSteps {
            throw TrainingError.invalidOption(
                key: "epochs", value: "\(options.epochs)",
                reason: "\(options.epochs) epochs × \(stepsPerEpoch) optimizer steps per epoch exceed the limit of "
                    + "\(AdapterTrainingOptions.maximumTotalSteps) optimizer steps of a run")
        }
        let schedule = LinearWarmupSchedule(baseLearningRate: options.learningRate, warmupSteps: options.warmupSteps,
                                            totalSteps: max(total, 1))
        var sampler = AdapterDropSampler(policy: options.policy, numberOfLayers: L, seed: options.seed)
        var parameterNames = Array(allParameters.keys)
        parameterNames.sort()
        var run = TrainerRunState(
            adam: AdamW(weightDecay: options.weightDecay,
                        weightDecayOverrides: parameterNames.filter { $0.hasSuffix(".bias") }.reduce(into: [:]) { $0[$1] = 0 }))
        let identity = TrainerCheckpoint.Identity(options: options, numberOfLayers: L, datasetCount: dataset.count,
                                                  stepsPerEpoch: stepsPerEpoch, parameterNames: parameterNames,
                                                  heads: headModules.map(\.name),
                                                  dataHash: TrainerCheckpoint.dataHash(dataset, targets: headTargets))
        if let checkpoint {
            let restored = try TrainerCheckpoint.load(from: checkpoint, identity: identity, parameters: allParameters)
            setAllParameters(restored.parameters)
            run = restored.run
            for _ in 0..<run.losses.count { _ = sampler.nextTrainingDrop() }  // replay the draws to the saved position
            if sampler.drawn != run.droppedLayers {
                throw TrainingError.checkpointMismatch(file: checkpoint.path, key: "dropped_layers",
                                                       expected: "\(sampler.drawn)", found: "\(run.droppedLayers)")
            }
        }
        let dropout = options.useDropout ? EncoderDropout(config: encoder.config) : .off
        let start = ContinuousClock.now, firstStep = run.losses.count
        var order: (epoch: Int, indices: [Int])? = nil
        var lastCheckpointStep = firstStep
        func saveCheckpoint() throws {
            guard let folder = options.checkpointFolder, lastCheckpointStep != run.losses.count || run.losses.count == firstStep else { return }
            try TrainerCheckpoint.save(to: folder, identity: identity, run: run, parameters: allParameters)
            lastCheckpointStep = run.losses.count
        }
        while run.losses.count < total {
            if let stop = options.stopAfterSteps, run.losses.count - firstStep >= stop { break }
            let step = run.losses.count
            let epoch = step / stepsPerEpoch, position = step % stepsPerEpoch
            if order?.epoch != epoch {
                // The same permutation as `dataset.batches(size:shuffleSeed:epoch:)`.
                order = (epoch, SeededPermutation.indices(count: dataset.count, seed: options.seed, stream: UInt64(epoch)))
            }
            // This step's examples: the next `batchSize · gradientAccumulationSteps` of the epoch's order (fewer
            // at its end), cut into micro-batches of `batchSize`.
            let window = order!.indices[position * examplesPerStep..<min((position + 1) * examplesPerStep, dataset.count)]
            let microBatches = stride(from: window.startIndex, to: window.endIndex, by: options.batchSize).map {
                Array(window[$0..<min($0 + options.batchSize, window.endIndex)])
            }
            let n = sampler.nextTrainingDrop()  // one draw per optimizer step, for all its micro-batches
            module.skipLayers = Set(0..<n)
            var stepLoss: Float = 0, regularization: Float = 0
            var fault: TrainingError? = nil
            // The regulariser's gradient at the weights after step t − 1 joins step t's gradients (before
            // clipping), as adapters' AdapterTrainerCallback.on_step_end does; none at step 0; not in the loss.
            if step > 0, let regularized = module as? any RegularizedTrainerModule {
                regularization = regularized.addRegularizationLoss(context: context)
                if !regularization.isFinite {
                    fault = .nonFinite(step: step, tensor: "regularization loss", nanCount: regularization.isNaN ? 1 : 0,
                                       infinityCount: regularization.isInfinite ? 1 : 0)
                }
            }
            if fault == nil {
                (stepLoss, fault) = try accumulateGradients(microBatches: microBatches, of: dataset, targets: headTargets,
                                                            step: step, dropout: dropout, context: context)
            }
            let (gradients, backwardOrdered) = takeAllGradients()
            if fault == nil { fault = Self.firstNonFinite(step: step, backwardOrdered) }
            if let fault {
                guard options.nonFinite == .skipStep else { module.skipLayers = []; resetBranches(); throw fault }
                run.skippedSteps.append(step)
                run.record(loss: stepLoss, regularization: regularization, dropped: n, norm: 0)
            } else {
                var gradients = gradients
                var norm: Float = 0
                if let maxNorm = options.maxGradientNorm { norm = clipGradientNorm(&gradients, maxNorm: maxNorm, context: context) }
                var params = allParameters
                run.adam.step(parameters: &params, gradients: gradients, learningRate: schedule.learningRate(atStep: step))
                setAllParameters(params)
                run.record(loss: stepLoss, regularization: regularization, dropped: n, norm: norm)
            }
            if let progress {
                let done = run.losses.count, elapsed = (ContinuousClock.now - start).seconds
                let perStep = elapsed / Double(max(done - firstStep, 1))
                progress.report(TrainingProgressEvent(step: done, totalSteps: total, epoch: epoch, loss: stepLoss,
                                                      droppedLayers: n, examplesPerSecond: Double(window.count) / max(perStep, 1e-9),
                                                      elapsedSeconds: elapsed, etaSeconds: perStep * Double(total - done),
                                                      skippedSteps: run.skippedSteps.count))
            }
            if let every = options.checkpointEvery, options.checkpointFolder != nil, run.losses.count % every == 0 {
                try saveCheckpoint()
            }
        }
        module.skipLayers = []
        resetBranches()
        try saveCheckpoint()
        progress?.finish()
        return AdapterTrainingResult(losses: run.losses, regularizationLosses: run.regularizationLosses,
                                     droppedLayers: run.droppedLayers, gradientNorms: run.gradientNorms,
                                     skippedSteps: run.skippedSteps, finished: run.losses.count >= total,
                                     parameters: module.trainableParameters, trainedAdapter: adapterModule?.adapter,
                                     heads: currentHeads)
    }

    /// Back to the module's default branch selection (all branches, replicated, for
    /// `ReplicatedBranchesTrainerModule`; branch 0 otherwise).
    func resetBranches() {
        if let replicated = module as? any ReplicatedBranchesTrainerModule { replicated.selectBranch(nil) } else { module.selectBranch(0) }
    }

    /// Forward and backward passes of one optimizer step's micro-batches (`microBatches`: example indices into
    /// `dataset`), accumulating (`+=`) every gradient into the module and the heads. Micro-batch m's loss
    /// gradient is weighted by `wₘ = |m| / Σ|m|`, so the sum is the gradient of the mean loss over all the step's
    /// examples — what one batch of them gives (the per-example losses are means over their micro-batch). With
    /// one micro-batch `w = 1` and nothing is scaled. Dropout masks of micro-batch m come from
    /// `SeededRNG(seed, stream: step + 1 + m·2³²)` (m = 0: the stream of a run without accumulation).
    /// - Returns: the step's loss `Σₘ wₘ·Σ_heads lossₘ`, and the first non-finite forward value (the remaining
    ///   micro-batches are then not run).
    /// - Throws: errors of the batch encoder, `EncoderError`.
    func accumulateGradients(microBatches: [[Int]], of dataset: TextClassificationDataset, targets: [TrainingTargets],
                             step: Int, dropout: EncoderDropout,
                             context: ComputeContext) throws -> (loss: Float, fault: TrainingError?) {
        let total = microBatches.reduce(0) { $0 + $1.count }
        var stepLoss: Float = 0
        for (micro, indices) in microBatches.enumerated() {
            let weight: Float = microBatches.count == 1 ? 1 : Float(indices.count) / Float(total)
            let input = try encode(indices.map { dataset.examples[$0] })
            let (loss, fault) = try microBatchPass(input, targets: targets.map { $0.floats(at: indices) }, weight: weight, step: step,
                                                   stream: UInt64(step) &+ 1 &+ (UInt64(micro) << 32), dropout: dropout,
                                                   context: context)
            stepLoss += weight == 1 ? loss : weight * loss
            if let fault { return (stepLoss, fault) }
        }
        return (stepLoss, nil)
    }

    /// One micro-batch: training forward (one replicated pass for a `ReplicatedBranchesTrainerModule` with several
    /// heads, else one pass per branch), each head's loss on `targets[head]`, and backward with dL/dlogits
    /// scaled by `weight`.
    /// - Returns: the unweighted sum of the heads' losses, and a `TrainingError.nonFinite` locating a non-finite
    ///   loss (backward is then skipped).
    private func microBatchPass(_ input: EncoderInput, targets: [[Float]], weight: Float, step: Int, stream: UInt64,
                                dropout: EncoderDropout, context: ComputeContext) throws -> (loss: Float, fault: TrainingError?) {
        var sum: Float = 0
        /// Head `branch` on encoder rows `states`: adds its loss to `sum` and returns dL/d(states), or a fault.
        func head(_ branch: Int, on states: Tensor, output: Tensor) -> Result<Tensor, TrainingError> {
            let head = headModules[branch]
            let tape = head.forward(states, batch: input.batchSize, sequenceLength: input.sequenceLength, context: context)
            var (loss, logitsGradient) = self.loss(head: branch, logits: tape.logits, targets: targets[branch])
            sum += loss
            if !loss.isFinite {
                return .failure(locateNonFiniteForward(step: step, encoderOutput: output, logits: tape.logits,
                                                       head: head.name, loss: loss))
            }
            if weight != 1 { logitsGradient = scaled(logitsGradient, by: weight, context: context) }
            return .success(head.backward(tape, logitsGradient: logitsGradient, context: context))
        }
        var noLayerNorms: [LayerNormGradients]? = nil
        if headModules.count > 1, let replicated = module as? any ReplicatedBranchesTrainerModule {
            // Parallel with batch replication: one forward, head i on its block of rows, one backward.
            replicated.selectBranch(nil)
            var rng = SeededRNG(seed: options.seed, stream: stream)
            let tape = try encoder.trainingForward(input, trainable: module, dropout: dropout, rng: &rng,
                                                   packedWeights: packedWeights, context: context)
            let rows = tape.output.shape[0], unreplicated = input.batchSize * input.sequenceLength
            var outputGradients: [Tensor] = []
            for branch in headModules.indices {
                let r = replicated.branchRows(branch, outputRows: rows, batch: input.batchSize, sequenceLength: input.sequenceLength)
                let block = r == 0..<rows ? tape.output : tape.output.slice(rows: r).contiguous()
                switch head(branch, on: block, output: tape.output) {
                case .failure(let fault): return (sum, fault)
                case .success(let g): outputGradients.append(g)
                }
            }
            var g: Tensor
            if rows == unreplicated {  // nothing replicated (every Parallel site skipped): the heads' gradients add
                g = outputGradients[0]
                for k in 1..<outputGradients.count { accumulate(outputGradients[k], into: &g, context: context) }
            } else {
                g = Tensor(concatenating: outputGradients)
            }
            encoder.accumulateTrainingGradients(tape, outputGradient: g, trainable: module, layerNormGradients: &noLayerNorms,
                                                packedWeights: packedWeights, context: context)
            return (sum, nil)
        }
        for branch in headModules.indices {
            module.selectBranch(branch)
            var rng = SeededRNG(seed: options.seed, stream: stream)  // the same masks for every branch
            let tape = try encoder.trainingForward(input, trainable: module, dropout: dropout, rng: &rng,
                                                   packedWeights: packedWeights, context: context)
            switch head(branch, on: tape.output, output: tape.output) {
            case .failure(let fault): return (sum, fault)
            case .success(let dOut):
                encoder.accumulateTrainingGradients(tape, outputGradient: dOut, trainable: module,
                                                    layerNormGradients: &noLayerNorms, packedWeights: packedWeights,
                                                    context: context)
            }
        }
        return (sum, nil)
    }

    /// Takes (and clears) the gradients accumulated in the module and the heads: all of them by name, and
    /// labelled `grad(name)` in backward order (last head's last Linear first, then the module's, top layer
    /// first) for the non-finite check.
    func takeAllGradients() -> (all: [String: Tensor], backwardOrdered: [(String, Tensor)]) {
        let moduleGradients = module.takeGradients()
        var all = moduleGradients
        var headGradients: [(String, Tensor)] = []
        for h in headModules.reversed() {
            for (k, v) in h.takeGradients().sorted(by: { $0.key > $1.key }) {
                headGradients.append(("grad(\(k))", v))
                all[k] = v
            }
        }
        return (all, headGradients + Self.backwardOrder(moduleGradients.map { ($0.key, $0.value) }))
    }

    /// The first non-finite tensor of a forward pass whose loss is not finite, in forward order: trainable
    /// parameters (module, heads), the encoder output, the logits; else the loss itself.
    func locateNonFiniteForward(step: Int, encoderOutput: Tensor, logits: Tensor, head: String, loss: Float) -> TrainingError {
        var candidates = module.trainableParameters.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        candidates.append(("encoder output", encoderOutput))
        for h in headModules { candidates += h.parameters.sorted { $0.key < $1.key }.map { ($0.key, $0.value) } }
        candidates.append(("logits of head \(head)", logits))
        return Self.firstNonFinite(step: step, candidates)
            ?? .nonFinite(step: step, tensor: "loss of head \(head)", nanCount: loss.isNaN ? 1 : 0, infinityCount: loss.isInfinite ? 1 : 0)
    }

    /// `TrainingError.nonFinite` for the first tensor with a NaN or Inf, or nil.
    static func firstNonFinite(step: Int, _ tensors: [(String, Tensor)]) -> TrainingError? {
        for (name, t) in tensors {
            let (nans, infs) = t.withUnsafeBufferPointer { p -> (Int, Int) in
                var nan = 0, inf = 0
                for x in p where !x.isFinite { if x.isNaN { nan += 1 } else { inf += 1 } }
                return (nan, inf)
            }
            if nans + infs > 0 { return .nonFinite(step: step, tensor: name, nanCount: nans, infinityCount: infs) }
        }
        return nil
    }

    /// Module gradients in backward order (top layer first, then by name), labelled `grad(name)`.
    static func backwardOrder(_ gradients: [(String, Tensor)]) -> [(String, Tensor)] {
        func layer(_ name: String) -> Int {
            guard let r = name.range(of: ".layer.") else { return -1 }
            return Int(name[r.upperBound...].prefix { $0.isNumber }) ?? -1
        }
        return gradients.sorted { (layer($0.0), $1.0) > (layer($1.0), $0.0) }.map { ("grad(\($0.0))", $0.1) }
    }

    /// Metrics of head `head` on `dataset` with the modules of the lowest `droppedLayers` layers removed
    /// (explicit n, `AdapterDropPolicy.skippedLayers(dropping:)`), no dropout. Nothing is saved for backward.
    /// - Parameters:
    ///   - targets: gold targets in dataset order; nil: the dataset's class labels.
    ///   - head: the branch / head index (Parallel training), default 0.
    /// - Throws: `TrainingError.invalidDroppedLayers`, `.invalidTargets`, `.invalidOption` (batch size),
    ///   errors of the batch encoder, `EncoderError`.
    public func evaluate(on dataset: TextClassificationDataset, targets: TrainingTargets? = nil, droppedLayers: Int,
                         head index: Int = 0, batchSize: Int = 32, context: ComputeContext) throws -> EvaluationMetrics {
        let L = encoder.config.numHiddenLayers
        guard droppedLayers >= 0 && droppedLayers <= L else {
            throw TrainingError.invalidDroppedLayers(droppedLayers: droppedLayers, numberOfLayers: L)
        }
        return try evaluate(on: dataset, targets: targets, skipLayers: Set(AdapterDropPolicy.skippedLayers(dropping: droppedLayers)),
                            head: index, batchSize: batchSize, context: context)
    }

    /// Metrics of head `head` on `dataset` with the modules of the layers in `skipLayers` removed (any set, as
    /// AdapterHub's `skip_layers`), no dropout.
    /// - Throws: `TrainingError.invalidDroppedLayers` for a layer outside `0..<numHiddenLayers` (named in the
    ///   error), otherwise as `evaluate(on:targets:droppedLayers:…)`.
    public func evaluate(on dataset: TextClassificationDataset, targets: TrainingTargets? = nil, skipLayers: Set<Int>,
                         head index: Int = 0, batchSize: Int = 32, context: ComputeContext) throws -> EvaluationMetrics {
        let L = encoder.config.numHiddenLayers
        if let bad = skipLayers.sorted().first(where: { $0 < 0 || $0 >= L }) {
            throw TrainingError.invalidDroppedLayers(droppedLayers: bad, numberOfLayers: L)
        }
        guard batchSize >= 1 else { throw TrainingError.invalidOption(key: "batch_size", value: "\(batchSize)", reason: "must be ≥ 1") }
        guard index >= 0 && index < headModules.count else {
            throw TrainingError.headCountMismatch(heads: index + 1, branches: headModules.count)
        }
        let head = headModules[index], kind = kinds[index], classes = head.config.numLabels
        let gold = try targets ?? defaultTargets(dataset, head: index)
        try gold.validate(head: head.name, kind: kind, numLabels: classes, count: dataset.count)
        let saved = module.skipLayers
        module.skipLayers = skipLayers
        module.selectBranch(index)
        defer { module.skipLayers = saved; resetBranches() }
        var classPredictions: [Int] = [], values: [Float] = [], labelSets: [[Bool]] = []
        var lossSum = 0.0
        var start = 0
        while start < dataset.count {
            let indices = Array(start..<min(start + batchSize, dataset.count))
            start += batchSize
            let input = try encode(indices.map { dataset.examples[$0] })
            var rng = SeededRNG(seed: 0)
            let tape = try encoder.trainingForward(input, trainable: module, lowestTrainedLayer: L, dropout: .off,
                                                   rng: &rng, packedWeights: packedWeights, context: context)
            let logitsTensor = head.forward(tape.output, batch: input.batchSize, sequenceLength: input.sequenceLength,
                                            context: context).logits
            lossSum += Double(loss(head: index, logits: logitsTensor, targets: gold.floats(at: indices)).0) * Double(indices.count)
            let logits = logitsTensor.scalars
            for b in 0..<input.batchSize {
                let row = logits[b * classes..<(b + 1) * classes]
                switch kind {
                case .classification:
                    var best = 0
                    for j in 1..<max(classes, 1) where row[row.startIndex + j] > row[row.startIndex + best] { best = j }
                    classPredictions.append(best)
                case .regression: values.append(row[row.startIndex])
                case .multiLabel: labelSets.append(row.map { $0 > 0 })
                }
            }
        }
        let loss = lossSum / Double(dataset.count)
        switch (kind, gold) {
        case let (.classification, .classes(labels)):
            return .classification(predictions: classPredictions, labels: labels, classes: classes, loss: loss)
        case let (.regression, .values(v)):
            return .regression(predictions: values, targets: v, loss: loss)
        case let (_, .multiLabel(m)):
            return .multiLabel(predictions: labelSets, targets: m, loss: loss)
        default:
            preconditionFailure("evaluate: targets validated for \(kind)")
        }
    }
}

/// The optimizer state and histories of a run (what a checkpoint holds besides the parameters).
struct TrainerRunState {
    var adam: AdamW
    var losses: [Float] = []
    var regularizationLosses: [Float] = []
    var droppedLayers: [Int] = []
    var gradientNorms: [Float] = []
    var skippedSteps: [Int] = []

    mutating func record(loss: Float, regularization: Float, dropped: Int, norm: Float) {
        losses.append(loss)
        regularizationLosses.append(regularization)
        droppedLayers.append(dropped)
        gradientNorms.append(norm)
    }
}

extension Duration {
    /// The duration in seconds.
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}

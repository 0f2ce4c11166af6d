// Training one bottleneck adapter + classification head on a text classification dataset with AdapterDrop,
// and evaluating it with an explicit number of dropped layers (Rücklé et al. 2021, §3; HF Trainer semantics
// for the optimizer: AdamW, linear warm-up/decay, gradient-norm clipping, no decay on biases).
import AdapterCore

/// Options of `AdapterTrainer`.
public struct AdapterTrainingOptions: Sendable {
    /// Examples per batch (≥ 1).
    public var batchSize: Int = 16
    /// Passes over the training set (≥ 1).
    public var epochs: Int = 1
    /// Peak learning rate of the linear schedule.
    public var learningRate: Double = 1e-4
    /// Warm-up steps of `LinearWarmupSchedule` (0: start at the peak and decay linearly to 0).
    public var warmupSteps: Int = 0
    /// AdamW λ for weights; biases get 0 (HF Trainer's parameter groups).
    public var weightDecay: Double = 0.01
    /// `clipGradientNorm` bound, or nil for no clipping.
    public var maxGradientNorm: Double? = 1.0
    /// Which adapter layers are dropped while training (drawn per batch by `AdapterDropSampler`).
    public var policy: AdapterDropPolicy = .none
    /// Seed of the batch order (stream = epoch), the AdapterDrop draws and the dropout masks (stream = step).
    public var seed: UInt64 = 0
    /// Apply the encoder's hidden/attention dropout while training (`EncoderDropout(config:)`); false: `.off`.
    public var useDropout: Bool = true

    /// Defaults as listed.
    public init() {}
}

/// What `AdapterTrainer.train` returns.
public struct AdapterTrainingResult: Sendable {
    /// The mean loss of each optimizer step's batch (before that step's update), in step order.
    public var losses: [Float]
    /// The number of dropped adapter layers at each step.
    public var droppedLayers: [Int]
    /// The gradient norm before clipping at each step (0 when clipping is off).
    public var gradientNorms: [Float]
    /// The trained adapter (save with `AdapterModel.saveAdapter`).
    public var adapter: BottleneckAdapter
    /// The trained head.
    public var head: PredictionHead
}

/// Accuracy and macro-F1 of a classifier on a dataset.
public struct ClassificationMetrics: Sendable, Equatable {
    /// Fraction of examples whose arg-max logit is the label, in [0, 1].
    public var accuracy: Double
    /// Mean over the classes of F1 = 2·TP / (2·TP + FP + FN) (a class with no gold and no predicted example
    /// counts as F1 = 0, as scikit-learn's `zero_division=0`), in [0, 1].
    public var macroF1: Double
    /// Examples evaluated.
    public var count: Int
    /// The arg-max prediction per example, in dataset order.
    public var predictions: [Int]
}

/// Trains one bottleneck adapter and its classification head on top of a frozen `BertEncoder`.
///
/// Per step: the next batch of a seeded shuffle, n dropped layers drawn from `AdapterDropSampler`
/// (`skipLayers = 0..<n`, so backpropagation stops at layer n), training forward with dropout, the head's
/// cross-entropy (MSE for one label), backward, `clipGradientNorm`, AdamW with `LinearWarmupSchedule`.
/// Everything is seeded: a run is bitwise reproducible for a fixed seed, thread count and input.
public final class AdapterTrainer {
    /// Turns a batch of examples into encoder input (tokenize and pad).
    public typealias BatchEncoder = ([TextExample]) throws -> EncoderInput

    /// The frozen encoder.
    public let encoder: BertEncoder
    /// The adapter being trained.
    public let adapterModule: BottleneckAdapterTrainingModule
    /// The head being trained.
    public let headModule: PredictionHeadTrainingModule
    /// Options of the run.
    public let options: AdapterTrainingOptions
    private let encode: BatchEncoder

    /// - Parameters:
    ///   - encoder: the frozen base model.
    ///   - adapter: initial adapter (supported subset of `BottleneckAdapterTrainingModule`).
    ///   - head: initial classification head on [CLS] with `numLabels` = the dataset's labels (or 1 for regression).
    ///   - options: see `AdapterTrainingOptions`.
    ///   - encode: batch → `EncoderInput` (e.g. a `SubwordTokenizer` plus padding).
    /// - Precondition: `options.policy` is valid for the encoder's layer count; batch size and epochs ≥ 1.
    public init(encoder: BertEncoder, adapter: BottleneckAdapter, head: PredictionHead,
                options: AdapterTrainingOptions, encode: @escaping BatchEncoder) {
        require(options.batchSize >= 1 && options.epochs >= 1,
                     "AdapterTrainer: batch size \(options.batchSize) and epochs \(options.epochs) must be >= 1")
        require(options.policy.validate(numberOfLayers: encoder.config.numHiddenLayers),
                     "AdapterTrainer: policy \(options.policy) is invalid for \(encoder.config.numHiddenLayers) layers")
        self.encoder = encoder
        adapterModule = BottleneckAdapterTrainingModule(adapter)
        headModule = PredictionHeadTrainingModule(head)
        self.options = options
        self.encode = encode
    }

    private func labels(_ batch: [TextExample]) -> [Float] { batch.map { Float($0.label) } }

    /// Trains for `options.epochs` epochs over `dataset`.
    /// - Returns: per-step losses and drops, the trained adapter and head.
    /// - Throws: errors of the batch encoder, `EncoderError` for bad ids, `AdapterError.invalidLabels`.
    public func train(on dataset: TextClassificationDataset, context: ComputeContext) throws -> AdapterTrainingResult {
        let L = encoder.config.numHiddenLayers
        let stepsPerEpoch = (dataset.count + options.batchSize - 1) / options.batchSize
        let total = stepsPerEpoch * options.epochs
        let schedule = LinearWarmupSchedule(baseLearningRate: options.learningRate, warmupSteps: options.warmupSteps,
                                            totalSteps: max(total, 1))
        var sampler = AdapterDropSampler(policy: options.policy, numberOfLayers: L, seed: options.seed)
        var parameterNames = Array(adapterModule.parameters.keys) + Array(headModule.parameters.keys)
        parameterNames.sort()
        var adam = AdamW(weightDecay: options.weightDecay,
                         weightDecayOverrides: parameterNames.filter { $0.hasSuffix(".bias") }.reduce(into: [:]) { $0[$1] = 0 })
        let dropout = options.useDropout ? EncoderDropout(config: encoder.config) : .off
        var losses: [Float] = [], drops: [Int] = [], norms: [Float] = []
        var step = 0
        for epoch in 0..<options.epochs {
            for batch in dataset.batches(size: options.batchSize, shuffleSeed: options.seed, epoch: epoch) {
                let input = try encode(batch)
                let n = sampler.nextTrainingDrop()
                adapterModule.skipLayers = Set(0..<n)
                var rng = SeededRNG(seed: options.seed, stream: UInt64(step) &+ 1)
                let tape = try encoder.trainingForward(input, trainable: adapterModule, dropout: dropout, rng: &rng,
                                                       context: context)
                let headTape = headModule.forward(tape.output, batch: input.batchSize,
                                                  sequenceLength: input.sequenceLength, context: context)
                let loss = try headModule.loss(headTape, labels: labels(batch))
                let dOut = headModule.backward(headTape, logitsGradient: loss.gradient, context: context)
                var noLayerNorms: [LayerNormGradients]? = nil
                _ = encoder.trainingBackward(tape, outputGradient: dOut, trainable: adapterModule,
                                             layerNormGradients: &noLayerNorms, context: context)
                var grads = adapterModule.takeGradients()
                for (k, v) in headModule.takeGradients() { grads[k] = v }
                var norm: Float = 0
                if let maxNorm = options.maxGradientNorm { norm = clipGradientNorm(&grads, maxNorm: maxNorm, context: context) }
                var params = adapterModule.parameters
                for (k, v) in headModule.parameters { params[k] = v }
                adam.step(parameters: &params, gradients: grads, learningRate: schedule.learningRate(atStep: step))
                for k in adapterModule.parameters.keys { adapterModule.parameters[k] = params[k] }
                for k in headModule.parameters.keys { headModule.parameters[k] = params[k] }
                losses.append(loss.loss)
                drops.append(n)
                norms.append(norm)
                step += 1
            }
        }
        adapterModule.skipLayers = []
        return AdapterTrainingResult(losses: losses, droppedLayers: drops, gradientNorms: norms,
                                     adapter: adapterModule.adapter, head: headModule.head)
    }

    /// Accuracy and macro-F1 on `dataset` with the adapters of the lowest `droppedLayers` layers removed
    /// (explicit n, `AdapterDropPolicy.skippedLayers(dropping:)`), no dropout. Nothing is saved for backward.
    /// - Throws: errors of the batch encoder, `EncoderError`.
    public func evaluate(on dataset: TextClassificationDataset, droppedLayers: Int, batchSize: Int = 32,
                         context: ComputeContext) throws -> ClassificationMetrics {
        let L = encoder.config.numHiddenLayers
        require(droppedLayers >= 0 && droppedLayers <= L, "AdapterTrainer.evaluate: dropped layers \(droppedLayers) not in 0…\(L)")
        let saved = adapterModule.skipLayers
        adapterModule.skipLayers = Set(AdapterDropPolicy.skippedLayers(dropping: droppedLayers))
        defer { adapterModule.skipLayers = saved }
        let classes = headModule.config.numLabels
        var predictions: [Int] = []
        for batch in dataset.batches(size: batchSize) {
            let input = try encode(batch)
            var rng = SeededRNG(seed: 0)
            let tape = try encoder.trainingForward(input, trainable: adapterModule, lowestTrainedLayer: L, dropout: .off,
                                                   rng: &rng, context: context)
            let logits = headModule.forward(tape.output, batch: input.batchSize, sequenceLength: input.sequenceLength,
                                            context: context).logits.scalars
            for b in 0..<input.batchSize {
                var best = 0
                for j in 1..<max(classes, 1) where logits[b * classes + j] > logits[b * classes + best] { best = j }
                predictions.append(best)
            }
        }
        return Self.metrics(predictions: predictions, labels: dataset.examples.map(\.label), classes: classes)
    }

    /// Accuracy and macro-F1 of predictions against gold labels (both in `0..<classes`).
    public static func metrics(predictions: [Int], labels: [Int], classes: Int) -> ClassificationMetrics {
        require(predictions.count == labels.count, "metrics: \(predictions.count) predictions for \(labels.count) labels")
        var tp = [Int](repeating: 0, count: classes), fp = tp, fn = tp
        var correct = 0
        for (p, g) in zip(predictions, labels) {
            if p == g { correct += 1; tp[g] += 1 } else { fp[p] += 1; fn[g] += 1 }
        }
        var f1 = 0.0
        for c in 0..<classes {
            let d = 2 * tp[c] + fp[c] + fn[c]
            f1 += d == 0 ? 0 : Double(2 * tp[c]) / Double(d)
        }
        return ClassificationMetrics(accuracy: labels.isEmpty ? 0 : Double(correct) / Double(labels.count),
                                     macroF1: classes == 0 ? 0 : f1 / Double(classes), count: labels.count,
                                     predictions: predictions)
    }
}

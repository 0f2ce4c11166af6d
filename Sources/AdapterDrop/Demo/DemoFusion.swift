// Step 4 of the demo: an AdapterFusion over the (frozen) standard task adapters, trained with a new head for one
// target task; its mean attention per adapter and layer; pruning to the two most-used adapters; accuracy and
// speed of the full vs the pruned fusion (Rücklé et al. 2021, §5.2; Pfeiffer et al. 2021 for AdapterFusion).
import AdapterCore
import Foundation

extension AdapterDropDemo {
    /// The fusion's head name for a target task.
    static func fusionHeadName(target: String) -> String { "fusion_\(target)" }

    /// Trains the fusion (query/key/value) and a new classification head on the target task's training sample with
    /// `AdapterTrainer` (the adapters frozen; the value regulariser joins every step after the first, as
    /// adapters 1.3.0 does; dropout on, no AdapterDrop), and adds both to `model`.
    func trainFusion(model: inout AdapterModel, adapterNames: [String], target: LoadedTask, context: ComputeContext,
                     progress: @escaping (DemoEvent) -> Void) throws -> (fusion: AdapterFusion, run: DemoTrainingRun) {
        let encoder = model.encoder
        let adapters = adapterNames.map { model.adapters[$0]! }
        let fusion = try AdapterFusion(adapters: adapters, config: .dynamicPreset, hiddenSize: encoder.config.hiddenSize,
                                       numLayers: layers, seed: settings.seed &+ 7)
        let module = try AdapterFusionTrainingModule(fusion, adapters: Dictionary(uniqueKeysWithValues: adapters.map { ($0.name, $0) }),
                                                     scoreDropout: Float(encoder.config.attentionProbsDropoutProb ?? 0.1))
        let headName = Self.fusionHeadName(target: target.summary.name)
        var headConfig = PredictionHeadConfig.classification(numLabels: target.labels.count)
        headConfig.label2id = Dictionary(uniqueKeysWithValues: target.labels.enumerated().map { ($1, $0) })
        let head = PredictionHead(name: headName, config: headConfig, hiddenSize: encoder.config.hiddenSize, seed: settings.seed &+ 8)
        let steps = (target.train.count + settings.batchSize - 1) / settings.batchSize * settings.epochs
        var options = AdapterTrainingOptions()
        options.batchSize = settings.batchSize
        options.epochs = settings.epochs
        options.learningRate = settings.learningRate
        options.warmupSteps = Int((Double(steps) * settings.warmupFraction).rounded())
        options.seed = settings.seed &+ 9
        var examples = 0
        let trainer = try AdapterTrainer(encoder: encoder, module: module, heads: [head], options: options) { [self] batch in
            examples += batch.count
            return try encode(batch)
        }
        let reporter = DemoTrainingReporter(label: "\(target.summary.name) / AdapterFusion over \(adapters.count)", emit: progress)
        trainer.progress = reporter
        let start = Self.wallSeconds()
        let result = try trainer.train(on: target.train, context: context)
        let seconds = Self.wallSeconds() - start
        let losses = result.losses.map(Double.init)
        let tenth = max(1, losses.count / 10)
        let run = DemoTrainingRun(task: target.summary.name, regime: .standard, steps: losses.count, examples: examples, seconds: seconds,
                                  firstLoss: losses.prefix(tenth).reduce(0, +) / Double(tenth),
                                  lastLoss: losses.suffix(tenth).reduce(0, +) / Double(tenth), meanDroppedLayers: 0)
        reporter.done(lastLoss: run.lastLoss)
        let trained = module.fusion
        try model.addFusion(trained)
        model.addHead(result.head)
        return (trained, run)
    }

    /// Accuracy of a fusion setup on the target's test sample, and the median wall-clock seconds of one pass over it.
    func fusionAccuracyAndTime(model: AdapterModel, setup: AdapterComposition, head: String, target: LoadedTask,
                               context: ComputeContext) throws -> (accuracy: Double, seconds: Double) {
        let inputs = try target.test.batches(size: settings.evaluationBatchSize).map { try encode($0) }
        var predictions: [Int] = []
        var times: [Double] = []
        for repetition in 0..<max(1, settings.speedRepetitions) {
            let t0 = Self.wallSeconds()
            var current: [Int] = []
            for input in inputs {
                current += Self.argmaxRows(try model(input, setup: setup, heads: [head], context: context)[head: head]!)
            }
            times.append(Self.wallSeconds() - t0)
            if repetition == 0 { predictions = current }
        }
        let m = EvaluationMetrics.classification(predictions: predictions, labels: target.test.examples.map(\.label),
                                                 classes: target.labels.count)
        return (m.accuracy ?? 0, Self.median(times))
    }

    /// Step 4: fusion over the standard adapters of every task for the first task, activations, top-2 pruning.
    func fusionStep(model: AdapterModel, context: ComputeContext, progress: @escaping (DemoEvent) -> Void) throws -> DemoFusionResult {
        let target = loaded[0]
        let names = loaded.map { Self.adapterName(task: $0.summary.name, regime: .standard) }
        guard names.count >= 3 else {
            let reason = "skipped: fusing and pruning to the top 2 needs at least 3 tasks (this run has \(names.count))"
            progress(.message(reason))
            return DemoFusionResult(pending: reason, target: target.summary.name, adapters: names, activations: [], kept: [])
        }
        var fusionModel = model
        let (fusion, run) = try trainFusion(model: &fusionModel, adapterNames: names, target: target, context: context,
                                            progress: progress)
        let head = Self.fusionHeadName(target: target.summary.name)
        let setup: AdapterComposition = .fuse(names.map { .adapter($0) }, name: nil)
        // Activations over the target's training sample (what the fusion learnt to use), then the top 2.
        let batches = try target.train.batches(size: settings.evaluationBatchSize).map { try encode($0) }
        let (table, pruned) = try fusionModel.pruneFusion(fusion.name, keep: 2, batches: batches, setup: setup, context: context)
        var activations = [[Double]](repeating: [Double](repeating: 0, count: layers), count: names.count)
        var tokens = [Int](repeating: 0, count: layers)
        for site in table.sites {
            for i in names.indices { activations[i][site.layer] += site.mean[i] * Double(site.tokens) }
            tokens[site.layer] += site.tokens
        }
        for i in names.indices { for l in 0..<layers where tokens[l] > 0 { activations[i][l] /= Double(tokens[l]) } }
        progress(.message("fusion activations (mean over layers): " + zip(names, table.overall)
            .map { String(format: "%@ %.3f", $0, $1) }.joined(separator: ", ") + "; kept: " + pruned.fusion.adapterNames.joined(separator: ", ")))
        let full = try fusionAccuracyAndTime(model: fusionModel, setup: setup, head: head, target: target, context: context)
        let small = try fusionAccuracyAndTime(model: pruned.model, setup: pruned.setup, head: head, target: target, context: context)
        return DemoFusionResult(pending: nil, target: target.summary.name, adapters: names, activations: activations,
                                kept: pruned.fusion.adapterNames, fullAccuracy: full.accuracy, prunedAccuracy: small.accuracy,
                                fullSeconds: full.seconds, prunedSeconds: small.seconds, training: run)
    }
}

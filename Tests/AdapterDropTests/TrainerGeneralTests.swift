// The generalised AdapterTrainer on tiny-bert: checkpoint + resume bitwise, typed errors, non-finite values
// (stop and skip), regression and multi-label heads, regularised and Parallel (branched) modules, metrics,
// progress events.
import AdapterCore
@testable import AdapterDrop
import Foundation
import TestSupport
import Testing

/// A module wrapping several adapter modules as Parallel branches (branch i = adapter i only), with an optional
/// L2 regulariser λ·Σw² on every parameter, to exercise the trainer's branch and regularisation paths.
final class BranchedTestModule: RegularizedTrainerModule {
    let branches: [BottleneckAdapterTrainingModule]
    var active = 0
    let lambda: Float
    private var extra: [String: Tensor] = [:]
    init(_ branches: [BottleneckAdapterTrainingModule], lambda: Float = 0) { self.branches = branches; self.lambda = lambda }

    var skipLayers: Set<Int> {
        get { branches[0].skipLayers }
        set { for b in branches { b.skipLayers = newValue } }
    }
    var trainableParameters: [String: Tensor] {
        branches.reduce(into: [:]) { all, b in for (k, v) in b.parameters { all[k] = v } }
    }
    func setTrainableParameters(_ values: [String: Tensor]) { for b in branches { b.setTrainableParameters(values) } }
    func takeGradients() -> [String: Tensor] {
        var all = branches.reduce(into: [String: Tensor]()) { all, b in for (k, v) in b.takeGradients() { all[k] = v } }
        for (k, v) in extra { all[k] = all[k].map { a in Tensor(shape: a.shape, scalars: zip(a.scalars, v.scalars).map { $0 + $1 }) } ?? v }
        extra = [:]
        return all
    }
    var branchCount: Int { branches.count }
    func selectBranch(_ index: Int) { active = index }
    func hasTrainableParameters(layer: Int) -> Bool { branches[active].hasTrainableParameters(layer: layer) }
    func trainingForward(layer: Int, location: AdapterLocation, hidden: Tensor, residual: Tensor, layerNorm: SublayerLayerNorm,
                         batch: Int, sequenceLength: Int, saveForBackward: Bool, dropout: EncoderDropout, rng: inout SeededRNG,
                         context: ComputeContext) -> TrainableSublayerForward? {
        branches[active].trainingForward(layer: layer, location: location, hidden: hidden, residual: residual, layerNorm: layerNorm,
                                         batch: batch, sequenceLength: sequenceLength, saveForBackward: saveForBackward,
                                         dropout: dropout, rng: &rng, context: context)
    }
    func trainingBackward(layer: Int, location: AdapterLocation, outputGradient: Tensor, saved: Any?, layerNorm: SublayerLayerNorm,
                          context: ComputeContext) -> (hidden: Tensor, residual: Tensor) {
        branches[active].trainingBackward(layer: layer, location: location, outputGradient: outputGradient, saved: saved,
                                          layerNorm: layerNorm, context: context)
    }
    /// λ·Σw² over all parameters (sorted names, Double accumulation); gradient 2λw.
    func addRegularizationLoss(context: ComputeContext) -> Float {
        guard lambda != 0 else { return 0 }
        var sum = 0.0
        for (k, w) in trainableParameters.sorted(by: { $0.key < $1.key }) {
            sum += w.scalars.reduce(0.0) { $0 + Double($1) * Double($1) }
            extra[k] = Tensor(shape: w.shape, scalars: w.scalars.map { 2 * lambda * $0 })
        }
        return Float(Double(lambda) * sum)
    }
}

@Suite struct TrainerGeneralTests {
    static let train = AdapterTrainingTrainerTests.syntheticTask(count: 24, seed: 5)

    static func encoder() throws -> BertEncoder { try BertEncoder(modelFolder: fixtureURL("tiny-bert")) }

    static func adapter(_ name: String = "syn", seed: UInt64 = 1, overrides: [String: AdapterJSON] = [:]) throws -> BottleneckAdapter {
        var o: [String: AdapterJSON] = ["reduction_factor": .int(4)]
        for (k, v) in overrides { o[k] = v }
        return try BottleneckAdapter(name: name, config: BottleneckConfig.preset("seq_bn", overrides: o), hiddenSize: 32,
                                     numLayers: 2, seed: seed)
    }

    static func options(epochs: Int = 2, seed: UInt64 = 3) -> AdapterTrainingOptions {
        var o = AdapterTrainingOptions()
        o.batchSize = 8
        o.epochs = epochs
        o.learningRate = 2e-2
        o.warmupSteps = 2
        o.policy = .robust(droppedLayers: 0...2)
        o.seed = seed
        return o
    }

    static func trainer(_ options: AdapterTrainingOptions, head: PredictionHeadConfig = .classification(numLabels: 2)) throws -> AdapterTrainer {
        try AdapterTrainer(encoder: encoder(), adapter: adapter(), head: PredictionHead(name: "syn", config: head, hiddenSize: 32, seed: 2),
                           options: options, encode: AdapterTrainingTrainerTests.encode)
    }

    static func temporaryFolder() -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("trainer2-\(UUID().uuidString)")
    }

    /// 6 steps straight vs 3 steps + checkpoint + resume for 3 in a fresh trainer: losses, drops, norms and all
    /// trained tensors bitwise equal (dropout on, robust AdapterDrop, warm-up, clipping).
    @Test func resumeFromCheckpointIsBitwiseEqual() throws {
        let context = ComputeContext(threads: 1)
        let straight = try Self.trainer(Self.options()).train(on: Self.train, context: context)
        #expect(straight.steps == 6 && straight.finished)

        let root = Self.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let folder = root.appendingPathComponent("ckpt")
        var first = Self.options()
        first.stopAfterSteps = 3
        first.checkpointFolder = folder
        let part = try Self.trainer(first).train(on: Self.train, context: context)
        #expect(part.steps == 3 && !part.finished)
        #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent(TrainerCheckpoint.stateFile).path))

        let resumed = try Self.trainer(Self.options()).train(on: Self.train, resumingFrom: folder, context: context)
        print("resume: straight \(straight.losses) resumed \(resumed.losses) drops \(resumed.droppedLayers)")
        expectBitwiseEqual(resumed.losses, straight.losses, "losses")
        expectBitwiseEqual(resumed.gradientNorms, straight.gradientNorms, "gradient norms")
        #expect(resumed.droppedLayers == straight.droppedLayers)
        for name in straight.parameters.keys.sorted() {
            expectBitwiseEqual(resumed.parameters[name]!.scalars, straight.parameters[name]!.scalars, name)
        }
        for (a, b) in zip(resumed.head.linears, straight.head.linears) { expectBitwiseEqual(a.weight.scalars, b.weight.scalars, "head") }
        // Only the final folder is left (no temporary siblings).
        #expect(try FileManager.default.contentsOfDirectory(atPath: root.path) == ["ckpt"])
    }

    /// A checkpoint written with other options is refused with the key that differs; a missing folder names the file.
    @Test func resumeChecksTheCheckpoint() throws {
        let context = ComputeContext(threads: 1)
        let folder = Self.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        var o = Self.options(epochs: 1)
        o.stopAfterSteps = 1
        o.checkpointFolder = folder
        _ = try Self.trainer(o).train(on: Self.train, context: context)
        var other = Self.options(epochs: 1)
        other.learningRate = 1e-3
        #expect {
            try Self.trainer(other).train(on: Self.train, resumingFrom: folder, context: context)
        } throws: { e in
            guard case let TrainingError.checkpointMismatch(_, key, _, _) = e else { return false }
            return key == "learning_rate"
        }
        #expect(throws: TrainingError.self) {
            try Self.trainer(Self.options(epochs: 1)).train(on: Self.train, resumingFrom: folder.appendingPathComponent("nope"), context: context)
        }
        // Saving again replaces the folder's content (step 2 state), atomically.
        o.stopAfterSteps = 2
        _ = try Self.trainer(o).train(on: Self.train, context: context)
        let state = try String(contentsOf: folder.appendingPathComponent(TrainerCheckpoint.stateFile), encoding: .utf8)
        #expect(state.contains("\"step\" : 2"))
    }

    @Test func userErrorsAreTyped() throws {
        let encoder = try Self.encoder()
        let head = PredictionHead(name: "syn", config: .classification(numLabels: 2), hiddenSize: 32)
        func make(_ adapter: BottleneckAdapter, _ options: AdapterTrainingOptions, head: PredictionHead = head) throws {
            _ = try AdapterTrainer(encoder: encoder, adapter: adapter, head: head, options: options, encode: AdapterTrainingTrainerTests.encode)
        }
        #expect(throws: TrainingError.unsupportedAdapterConfig(adapter: "syn", key: "use_gating", reason: "gated adapters")) {
            try make(Self.adapter(overrides: ["use_gating": .bool(true)]), Self.options())
        }
        var o = Self.options()
        o.policy = .specialized(droppedLayers: 3)
        #expect(throws: TrainingError.invalidDropPolicy(policy: "\(o.policy)", numberOfLayers: 2)) { try make(Self.adapter(), o) }
        o = Self.options()
        o.batchSize = 0
        #expect(throws: TrainingError.invalidOption(key: "batch_size", value: "0", reason: "must be ≥ 1")) { try make(Self.adapter(), o) }
        let wide = PredictionHead(name: "w", config: .classification(numLabels: 2), hiddenSize: 16)
        #expect(throws: TrainingError.shapeMismatch(name: "head w", what: "input size", expected: 32, found: 16)) {
            try make(Self.adapter(), Self.options(), head: wide)
        }
        let trainer = try Self.trainer(Self.options())
        #expect(throws: TrainingError.invalidDroppedLayers(droppedLayers: 3, numberOfLayers: 2)) {
            try trainer.evaluate(on: Self.train, droppedLayers: 3, context: ComputeContext(threads: 1))
        }
        #expect(throws: TrainingError.invalidTargets(head: "syn", index: 1, reason: "class 7 not in 0..<2")) {
            try trainer.train(on: Self.train, targets: .classes([0, 7] + Array(repeating: 0, count: 22)), context: ComputeContext(threads: 1))
        }
        #expect(throws: TrainingError.self) {  // regression targets for a classification head
            try trainer.train(on: Self.train, targets: .values(Array(repeating: 0, count: 24)), context: ComputeContext(threads: 1))
        }
    }

    /// A NaN in a trainable parameter stops training at step 0 naming that parameter; an overflowing loss names
    /// the loss; with `.skipStep` the bad step is skipped (counted) and the others train.
    @Test func nonFiniteValuesStopOrSkip() throws {
        let context = ComputeContext(threads: 1)
        var noDrop = Self.options()
        noDrop.policy = .none  // layer 0 must run at step 0
        let trainer = try Self.trainer(noDrop)
        let adapterModule = try #require(trainer.adapterModule)
        let name = adapterModule.parameters.keys.sorted()[3]
        var poisoned = adapterModule.parameters[name]!.scalars
        poisoned[0] = .nan
        adapterModule.parameters[name] = Tensor(shape: adapterModule.parameters[name]!.shape, scalars: poisoned)
        #expect {
            try trainer.train(on: Self.train, context: context)
        } throws: { e in
            guard case let TrainingError.nonFinite(step, tensor, nans, _) = e else { return false }
            print("non-finite: \(e)")
            return step == 0 && tensor == name && nans == 1
        }

        // Regression with one target of 1e30: (1e30)² overflows fp32, so that step's loss is +Inf.
        var targets = (0..<24).map { Float($0 % 2) }
        targets[5] = 1e30
        var o = Self.options(epochs: 1)
        o.batchSize = 1
        o.policy = .none
        let regression = PredictionHeadConfig.classification(numLabels: 1)
        #expect {
            try Self.trainer(o, head: regression).train(on: Self.train, targets: .values(targets), context: context)
        } throws: { e in
            guard case let TrainingError.nonFinite(step, tensor, _, infs) = e else { return false }
            let order = SeededPermutation.indices(count: 24, seed: o.seed, stream: 0)
            return step == order.firstIndex(of: 5)! && tensor == "loss of head syn" && infs == 1
        }
        o.nonFinite = .skipStep
        let result = try Self.trainer(o, head: regression).train(on: Self.train, targets: .values(targets), context: context)
        let badStep = SeededPermutation.indices(count: 24, seed: o.seed, stream: 0).firstIndex(of: 5)!
        #expect(result.skippedSteps == [badStep])
        #expect(result.steps == 24 && result.losses[badStep] == .infinity)
        #expect(result.losses.enumerated().allSatisfy { $0.offset == badStep || $0.element.isFinite })
    }

    /// Regression (MSE) and multi-label (BCE) heads train: loss of the last epoch below half the first, and
    /// Pearson ≥ 0.9 / exact-match accuracy ≥ 0.9 on the training set.
    @Test func regressionAndMultiLabelHeadsTrain() throws {
        let context = ComputeContext(threads: 1)
        var o = Self.options(epochs: 15)
        o.policy = .none
        let regressionTargets = Self.train.examples.map { Float($0.label) * 2 - 1 }
        let r = try Self.trainer(o, head: .classification(numLabels: 1))
        let rr = try r.train(on: Self.train, targets: .values(regressionTargets), context: context)
        let rm = try r.evaluate(on: Self.train, targets: .values(regressionTargets), droppedLayers: 0, context: context)
        var mlConfig = PredictionHeadConfig.classification(numLabels: 3)
        mlConfig.headType = .multiLabelClassification
        let multiTargets = Self.train.examples.map { [$0.label == 1, true, $0.label == 0] }
        let m = try Self.trainer(o, head: mlConfig)
        let mr = try m.train(on: Self.train, targets: .multiLabel(multiTargets), context: context)
        let mm = try m.evaluate(on: Self.train, targets: .multiLabel(multiTargets), droppedLayers: 0, context: context)
        print("regression \(rr.losses.first!) → \(rr.losses.last!): \(rm.summary); multi-label \(mr.losses.first!) → \(mr.losses.last!): \(mm.summary)")
        func sum(_ x: ArraySlice<Float>) -> Float { x.reduce(0, +) }
        let (rFirst, rLast) = (sum(rr.losses.prefix(3)), sum(rr.losses.suffix(3)))
        let (mFirst, mLast) = (sum(mr.losses.prefix(3)), sum(mr.losses.suffix(3)))
        #expect(rLast < 0.5 * rFirst)
        #expect(mLast < 0.5 * mFirst)
        #expect(try #require(rm.pearson) >= 0.9)
        #expect(try #require(rm.spearman) >= 0.8)
        #expect(try #require(mm.accuracy) >= 0.9)
        #expect(m.currentHeads[0].config.headType == .multiLabelClassification)
    }

    /// Two Parallel branches (two adapters, two heads) with summed losses and no clipping train exactly as the
    /// two trained alone (bitwise: same dropout stream, independent gradients); a regulariser adds its value
    /// to every step's loss.
    @Test func parallelBranchesAndRegularization() throws {
        let context = ComputeContext(threads: 1)
        var o = Self.options(epochs: 1)
        o.maxGradientNorm = nil
        let encoder = try Self.encoder()
        func head(_ n: String, _ seed: UInt64) -> PredictionHead {
            PredictionHead(name: n, config: .classification(numLabels: 2), hiddenSize: 32, seed: seed)
        }
        let a = try Self.adapter("a", seed: 1), b = try Self.adapter("b", seed: 9)
        let alone = try [(a, head("a", 2)), (b, head("b", 4))].map { adapter, h in
            try AdapterTrainer(encoder: encoder, adapter: adapter, head: h, options: o, encode: AdapterTrainingTrainerTests.encode)
                .train(on: Self.train, context: context)
        }
        let module = BranchedTestModule([BottleneckAdapterTrainingModule(a), BottleneckAdapterTrainingModule(b)])
        let joint = try AdapterTrainer(encoder: encoder, module: module, heads: [head("a", 2), head("b", 4)], options: o,
                                       encode: AdapterTrainingTrainerTests.encode).train(on: Self.train, context: context)
        expectBitwiseEqual(joint.losses, zip(alone[0].losses, alone[1].losses).map { $0 + $1 }, "summed losses")
        for r in alone { for (k, v) in r.parameters { expectBitwiseEqual(joint.parameters[k]!.scalars, v.scalars, k) } }
        #expect(joint.heads.map(\.name) == ["a", "b"])
        #expect(throws: TrainingError.headCountMismatch(heads: 1, branches: 2)) {
            try AdapterTrainer(encoder: encoder, module: module, heads: [head("a", 2)], options: o, encode: AdapterTrainingTrainerTests.encode)
        }

        let lambda: Float = 1e-3
        let regularized = BranchedTestModule([BottleneckAdapterTrainingModule(a)], lambda: lambda)
        let reg = try AdapterTrainer(encoder: encoder, module: regularized, heads: [head("a", 2)], options: o,
                                     encode: AdapterTrainingTrainerTests.encode).train(on: Self.train, context: context)
        // Reference timing: no regulariser before step 0, its value not in the logged loss.
        #expect(reg.regularizationLosses[0] == 0 && reg.regularizationLosses[1] > 0)
        #expect(reg.losses[0] == alone[0].losses[0])
        // The regulariser's gradient moved the weights: different from the unregularised run.
        let key = alone[0].parameters.keys.sorted()[0]
        #expect(reg.parameters[key]!.scalars != alone[0].parameters[key]!.scalars)
    }

    /// `ParallelTrainingModule` through the trainer: the replicated single pass gives the same summed losses as
    /// training each branch alone (dropout off, no clipping; tolerance: different GEMM row counts → rounding).
    @Test func parallelModuleReplicatedMatchesBranchesAlone() throws {
        let context = ComputeContext(threads: 1)
        var o = Self.options(epochs: 1)
        o.maxGradientNorm = nil
        o.useDropout = false
        let encoder = try Self.encoder()
        func head(_ n: String, _ seed: UInt64) -> PredictionHead {
            PredictionHead(name: n, config: .classification(numLabels: 2), hiddenSize: 32, seed: seed)
        }
        let a = try Self.adapter("a", seed: 1), b = try Self.adapter("b", seed: 9)
        let alone = try [(a, head("a", 2)), (b, head("b", 4))].map { adapter, h in
            try AdapterTrainer(encoder: encoder, adapter: adapter, head: h, options: o, encode: AdapterTrainingTrainerTests.encode)
                .train(on: Self.train, context: context)
        }
        let module = try ParallelTrainingModule([BottleneckAdapterTrainingModule(a), BottleneckAdapterTrainingModule(b)])
        let joint = try AdapterTrainer(encoder: encoder, module: module, heads: [head("a", 2), head("b", 4)], options: o,
                                       encode: AdapterTrainingTrainerTests.encode).train(on: Self.train, context: context)
        // fp32 sums over ≤ 32-wide reductions, 3 Adam steps: 1e-5 relative.
        _ = expectClose(joint.losses, zip(alone[0].losses, alone[1].losses).map { $0 + $1 }, atol: 1e-6, rtol: 1e-5, "summed losses")
        for r in alone { for (k, v) in r.parameters { _ = expectClose(joint.parameters[k]!.scalars, v.scalars, atol: 1e-6, rtol: 1e-4, k) } }
        #expect(module.activeBranch == nil)
    }

    @Test func metricsMatchScikitLearnAndSciPy() {
        // sklearn docs: matthews_corrcoef([+1, +1, +1, −1], [+1, −1, +1, +1]) = −1/3.
        let c = EvaluationMetrics.classification(predictions: [1, 0, 1, 1], labels: [1, 1, 1, 0], classes: 2)
        #expect(abs(c.matthewsCorrelation! + 1.0 / 3.0) < 1e-12)
        #expect(EvaluationMetrics.classification(predictions: [0, 0], labels: [0, 0], classes: 2).matthewsCorrelation == 0)
        // Pearson([1,2,3],[2,4,7]) = 5/√(2·114/9); Spearman([1,2,2,3],[1,2,3,4]) = 4.5/√22.5 (ties: average ranks).
        let r = EvaluationMetrics.regression(predictions: [1, 2, 3], targets: [2, 4, 7])
        #expect(abs(r.pearson! - 5 / (2 * 114.0 / 9).squareRoot()) < 1e-12)
        #expect(EvaluationMetrics.averageRanks([1, 2, 2, 3]) == [1, 2.5, 2.5, 4])
        let s = EvaluationMetrics.pearsonCorrelation(EvaluationMetrics.averageRanks([1, 2, 2, 3]), EvaluationMetrics.averageRanks([1, 2, 3, 4]))
        #expect(abs(s - 4.5 / 22.5.squareRoot()) < 1e-12)
        #expect(EvaluationMetrics.pearsonCorrelation([1, 1], [1, 2]).isNaN)
        let m = EvaluationMetrics.multiLabel(predictions: [[true, false], [true, true]], targets: [[true, false], [false, true]])
        #expect(m.accuracy == 0.5)
        // Label 0: tp 1, fp 1 → 2/3; label 1: tp 1 → 1; mean 5/6.
        #expect(abs(m.macroF1! - 5.0 / 6.0) < 1e-12)
    }

    /// BCE with logits against the direct formula in Double (−y·log σ(x) − (1−y)·log(1−σ(x))), and its gradient
    /// against central differences; |x| up to 30 where the naive form loses precision.
    @Test func binaryCrossEntropyMatchesDefinition() {
        let x: [Float] = [-30, -2, -0.5, 0, 0.5, 2, 30, 1]
        let y: [Float] = [0, 1, 0, 1, 1, 0, 1, 0.5]
        let (loss, grad) = binaryCrossEntropyWithLogits(logits: Tensor(shape: [2, 4], scalars: x), targets: y)
        func reference(_ x: [Double]) -> Double {
            zip(x, y).reduce(0.0) { s, p in
                let (xi, yi) = (p.0, Double(p.1))
                return s + (xi >= 0 ? xi * (1 - yi) + log1p(exp(-xi)) : -xi * yi + log1p(exp(xi)))
            } / Double(x.count)
        }
        let xd = x.map(Double.init)
        // fp32 rounding of a mean of O(10) terms: 1e-6 relative.
        #expect(abs(Double(loss) - reference(xd)) <= 1e-6 * abs(reference(xd)))
        for i in 0..<x.count {
            var p = xd, m = xd
            p[i] += 1e-6; m[i] -= 1e-6
            let fd = (reference(p) - reference(m)) / 2e-6
            #expect(abs(Double(grad.scalars[i]) - fd) <= 1e-6, "gradient \(i): \(grad.scalars[i]) vs \(fd)")
        }
    }

    final class Recorder: TrainingProgressReporter {
        var events: [TrainingProgressEvent] = []
        var finished = false
        func report(_ event: TrainingProgressEvent) { events.append(event) }
        func finish() { finished = true }
    }

    @Test func progressEventsAndLine() throws {
        let trainer = try Self.trainer(Self.options())
        let recorder = Recorder()
        trainer.progress = recorder
        let result = try trainer.train(on: Self.train, context: ComputeContext(threads: 1))
        let steps: [Int] = recorder.events.map { $0.step }, losses: [Float] = recorder.events.map { $0.loss }
        #expect(steps == Array(1...6))
        #expect(recorder.finished)
        #expect(losses == result.losses)
        let sane = recorder.events.allSatisfy { (e: TrainingProgressEvent) -> Bool in
            e.totalSteps == 6 && e.examplesPerSecond > 0 && e.etaSeconds >= 0
        }
        #expect(sane)
        let lastETA: Double = recorder.events[recorder.events.count - 1].etaSeconds
        #expect(lastETA == 0)
        let console = ConsoleTrainingProgress(isTerminal: false)
        let e = TrainingProgressEvent(step: 12, totalSteps: 120, epoch: 0, loss: 0.5, droppedLayers: 3, examplesPerSecond: 45.25,
                                      elapsedSeconds: 10, etaSeconds: 95, skippedSteps: 0)
        #expect(console.line(e) == "step 12/120 epoch 1 n=3 loss 0.5000 (avg0 0.5000) 45.2 ex/s ETA 1:35")
        #expect(ConsoleTrainingProgress.clock(3725) == "1:02:05")
    }
}

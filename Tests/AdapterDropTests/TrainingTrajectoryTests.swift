// Tier D: 10-step AdamW loss trajectories with linear warm-up and gradient clipping against adapters 1.3.0's
// AdapterTrainer semantics (Tests/Fixtures/adapters/trajectory, docs/fixtures.md): seq_bn, double_seq_bn and a
// dynamic AdapterFusion, dropout off, the fixture's padded batch every step.
import AdapterCore
@testable import AdapterDrop
import Foundation
import TestSupport
import Testing

@Suite struct TrainingTrajectoryTests {
    static let steps = 10, warmup = 3, maxNorm = 1.0, learningRate = 2e-2, weightDecay = 0.01

    /// The losses of every step within 1e-5 rel (issue #5's bar). Maxima printed, recorded in docs/numerics.md.
    func expectTrajectory(_ losses: [Float], _ file: SafetensorsFile, _ setup: String,
                          sourceLocation: SourceLocation = #_sourceLocation) throws {
        let expected = try file.floats("\(setup).losses")
        #expect(losses.count == expected.count, sourceLocation: sourceLocation)
        let r = expectClose(losses, expected, atol: 0, rtol: 1e-5, "\(setup) losses", sourceLocation: sourceLocation)
        print("training trajectory \(setup): \(r); losses \(losses)")
    }

    /// The parameters after the 10 steps within 1e-5 abs + 1e-4 rel (measured ≤ 5.5e-6 abs: ten AdamW updates
    /// of ≈ lr each amplify the gradients' 1e-7 differences through m/√v). Exception: the fusion's
    /// `key.bias`. Its exact gradient is 0 — adding bk to every K_i adds q·bk to every score of a row, which
    /// the softmax ignores — so both implementations feed AdamW rounding noise (~1e-8), which m/(√v + ε)
    /// turns into O(lr) steps in arbitrary directions; the values differ (~1e-2) but no output depends on
    /// them. For those only the shape and finiteness are checked.
    func expectFinalParameters(_ final: [String: Tensor], _ file: SafetensorsFile, _ setup: String,
                               sourceLocation: SourceLocation = #_sourceLocation) throws {
        let prefix = "\(setup).final."
        let names = file.tensorNames.filter { $0.hasPrefix(prefix) }
        #expect(Set(final.keys) == Set(names.map { String($0.dropFirst(prefix.count)) }), sourceLocation: sourceLocation)
        var worst = 0.0
        for key in names.sorted() {
            let name = String(key.dropFirst(prefix.count))
            let p = try #require(final[name], "no parameter \(name)", sourceLocation: sourceLocation)
            if name.hasSuffix(".key.bias") {
                #expect(p.count == (try file.floats(key)).count && p.scalars.allSatisfy(\.isFinite), sourceLocation: sourceLocation)
                continue
            }
            worst = max(worst, expectClose(p.scalars, try file.floats(key), atol: 1e-5, rtol: 1e-4, "\(setup) final \(name)",
                                           sourceLocation: sourceLocation).maxAbsError)
        }
        print("training trajectory \(setup) final parameters (\(names.count) tensors): max abs \(worst)")
    }

    /// A 3-example dataset whose texts are the row indices of the fixture batch, so that the library's
    /// `AdapterTrainer` (its own batching, schedule, clipping and AdamW) sees exactly the fixture's rows; one
    /// batch of 3 per epoch, 10 epochs = 10 steps. The batch's order may be shuffled per epoch; the mean loss
    /// does not depend on it beyond rounding.
    func rowDataset(_ labels: [Float]) -> TextClassificationDataset {
        TextClassificationDataset(labels: ["0", "1", "2"],
                                  examples: labels.enumerated().map { TextExample(text: "\($0.offset)", label: Int($0.element)) })
    }

    func rowEncoder(_ input: EncoderInput) -> AdapterTrainer.BatchEncoder {
        { batch in
            let seq = input.sequenceLength
            let rows = batch.map { Int($0.text)! }
            func pick(_ v: [Int]) -> [Int] { rows.flatMap { v[$0 * seq ..< ($0 + 1) * seq] } }
            return try EncoderInput(batchSize: rows.count, sequenceLength: seq, inputIds: pick(input.inputIds),
                                    attentionMask: pick(input.attentionMask), tokenTypeIds: pick(input.tokenTypeIds))
        }
    }

    /// One batch's gradients of every trainable tensor for the three setups (seq_bn: 12 tensors; double_seq_bn:
    /// 20, with the attention-location adapters; fusion: 14) against PyTorch, within issue #5's 1e-4 rel +
    /// 1e-6 abs. Maxima printed, recorded in docs/numerics.md.
    @Test(arguments: ["seq_bn", "double_seq_bn", "fusion"])
    func firstBatchGradientsMatchPyTorch(_ setup: String) throws {
        let (file, input) = try adapterFixture("trajectory")
        let labels = try file.integers("labels").map(Float.init)
        let module: any TrainableSublayer, head: PredictionHeadTrainingModule
        var takeModuleGradients: () -> [String: Tensor]
        if setup == "fusion" {
            var model = try adapterFixtureModel("trajectory", adapters: ["f1", "f2"])
            try model.loadFusion(from: fixtureURL("adapters/trajectory/fusion"))
            try model.loadHead(from: fixtureURL("adapters/trajectory/fusion_head"))
            let fusion = try AdapterFusionTrainingModule(try #require(model.fusions["f1,f2"]), adapters: model.adapters)
            module = fusion
            takeModuleGradients = fusion.takeGradients
            head = PredictionHeadTrainingModule(try #require(model.heads["fusion"]))
        } else {
            let name = setup == "seq_bn" ? "s" : "d"
            let model = try adapterFixtureModel("trajectory", adapters: [name])
            let adapter = BottleneckAdapterTrainingModule(try #require(model.adapters[name]))
            module = adapter
            takeModuleGradients = adapter.takeGradients
            head = PredictionHeadTrainingModule(try #require(model.heads[name]))
        }
        let model = try BertEncoder(modelFolder: fixtureURL("tiny-bert"))
        var rng = SeededRNG(seed: 0)
        let r = try sublayerTrainingStep(encoder: model, input: input, module: module, head: head, labels: labels,
                                         rng: &rng, context: ComputeContext(threads: 2))
        var grads = takeModuleGradients()
        for (k, v) in head.takeGradients() { grads[k] = v }
        let first = try file.floats("\(setup).losses")[0]
        #expect(abs(r.loss - first) <= 1e-5 * abs(first))
        let prefix = "\(setup).step0.grad."
        let expectedNames = file.tensorNames.filter { $0.hasPrefix(prefix) }
        #expect(expectedNames.count == ["seq_bn": 12, "double_seq_bn": 20, "fusion": 14][setup])
        #expect(Set(grads.keys) == Set(expectedNames.map { String($0.dropFirst(prefix.count)) }), "\(grads.keys.sorted())")
        var worstAbs = 0.0
        for key in expectedNames.sorted() {
            let name = String(key.dropFirst(prefix.count))
            let g = try #require(grads[name], "no gradient for \(name)")
            worstAbs = max(worstAbs, expectClose(g.scalars, try file.floats(key), atol: 1e-6, rtol: 1e-4, "\(setup) grad \(name)").maxAbsError)
        }
        print("training trajectory \(setup) first-batch gradients (\(expectedNames.count) tensors): max abs \(worstAbs)")
    }

    /// The setup's module and head from the fixture folders.
    func setupModule(_ setup: String) throws -> (encoder: BertEncoder, module: any TrainerModule, head: PredictionHead) {
        if setup == "fusion" {
            var model = try adapterFixtureModel("trajectory", adapters: ["f1", "f2"])
            try model.loadFusion(from: fixtureURL("adapters/trajectory/fusion"))
            try model.loadHead(from: fixtureURL("adapters/trajectory/fusion_head"))
            let fusion = try AdapterFusionTrainingModule(try #require(model.fusions["f1,f2"]), adapters: model.adapters)
            return (model.encoder, fusion, try #require(model.heads["fusion"]))
        }
        let name = setup == "seq_bn" ? "s" : "d"
        let model = try adapterFixtureModel("trajectory", adapters: [name])
        return (model.encoder, BottleneckAdapterTrainingModule(try #require(model.adapters[name])), try #require(model.heads[name]))
    }

    /// The three setups through `AdapterTrainer.train` (the library's stepping loop: schedule, clipping, AdamW
    /// without decay on biases and, for the fusion, the regulariser at the reference's timing): the loss of
    /// every step within 1e-5 rel, the gradient norms before clipping within 1e-4 rel + 1e-6 abs, and the
    /// final parameters (`expectFinalParameters`). With `microBatch` 1, each step's batch of 3 runs as 3
    /// micro-batches of 1 (`gradientAccumulationSteps = 3`; the fusion's regulariser still joins once per
    /// optimizer step) against the same one-batch PyTorch run.
    @Test(arguments: [("seq_bn", 3), ("double_seq_bn", 3), ("fusion", 3), ("seq_bn", 1), ("fusion", 1)])
    func trajectoryThroughTheTrainerMatchesPyTorch(_ setup: String, _ microBatch: Int) throws {
        let (encoder, module, head) = try setupModule(setup)
        let (file, input) = try adapterFixture("trajectory")
        let labels = try file.integers("labels").map(Float.init)
        var options = AdapterTrainingOptions()
        options.batchSize = microBatch
        options.gradientAccumulationSteps = 3 / microBatch
        options.epochs = Self.steps
        options.learningRate = Self.learningRate
        options.warmupSteps = Self.warmup
        options.weightDecay = Self.weightDecay
        options.maxGradientNorm = Self.maxNorm
        options.useDropout = false
        let trainer = try AdapterTrainer(encoder: encoder, module: module, heads: [head], options: options,
                                         encode: rowEncoder(input))
        let result = try trainer.train(on: rowDataset(labels), context: ComputeContext(threads: 1))
        #expect(result.steps == Self.steps)
        try expectTrajectory(result.losses, file, setup)
        // The regulariser (fusion only) joins from step 1 on, at the weights after the previous step, and is
        // reported apart from the losses.
        #expect(result.regularizationLosses[0] == 0)
        #expect(result.regularizationLosses.dropFirst().allSatisfy { setup == "fusion" ? $0 > 0 : $0 == 0 })
        let norms = expectClose(result.gradientNorms, try file.floats("\(setup).grad_norm"), atol: 1e-6, rtol: 1e-4,
                                "\(setup) gradient norms")
        print("training trajectory \(setup), micro-batches of \(microBatch): gradient norms \(norms)")
        var final = result.parameters
        for (k, v) in PredictionHeadTrainingModule(result.head).parameters { final[k] = v }
        try expectFinalParameters(final, file, setup)
    }

    /// The fixture tells the regulariser's timing apart: stepping the fusion with the regulariser's gradient
    /// added in the *same* step (after backward — a plausible but wrong reading of the reference) moves the
    /// losses by far more than the 1e-5 tolerance, so the trainer test above would catch that mistake. The
    /// loop here uses the library's pieces (schedule, `clipGradientNorm`, `AdamW`) in the trainer's order.
    @Test func fusionRegulariserTimingIsVisibleInTheFixture() throws {
        let (encoder, module, headValue) = try setupModule("fusion")
        let fusion = try #require(module as? AdapterFusionTrainingModule)
        let head = PredictionHeadTrainingModule(headValue)
        let (file, input) = try adapterFixture("trajectory")
        let labels = try file.integers("labels").map(Float.init)
        let schedule = LinearWarmupSchedule(baseLearningRate: Self.learningRate, warmupSteps: Self.warmup, totalSteps: Self.steps)
        let names = Array(fusion.parameters.keys) + Array(head.parameters.keys)
        var adam = AdamW(weightDecay: Self.weightDecay,
                         weightDecayOverrides: names.filter { $0.hasSuffix(".bias") }.reduce(into: [:]) { $0[$1] = 0 })
        let context = ComputeContext(threads: 1)
        var losses: [Float] = []
        for step in 0..<Self.steps {
            var rng = SeededRNG(seed: 0)
            let r = try sublayerTrainingStep(encoder: encoder, input: input, module: fusion, head: head, labels: labels,
                                             rng: &rng, context: context)
            fusion.addRegularizationGradients(context: context)  // same step: not the reference's timing
            var grads = fusion.takeGradients()
            for (k, v) in head.takeGradients() { grads[k] = v }
            clipGradientNorm(&grads, maxNorm: Self.maxNorm, context: context)
            var params = fusion.parameters
            for (k, v) in head.parameters { params[k] = v }
            adam.step(parameters: &params, gradients: grads, learningRate: schedule.learningRate(atStep: step))
            fusion.setTrainableParameters(params)
            for k in head.parameters.keys { head.parameters[k] = params[k] }
            losses.append(r.loss)
        }
        let expected = try file.floats("fusion.losses")
        let worst = zip(losses, expected).map { abs(Double($0) - Double($1)) / abs(Double($1)) }.max()!
        print("training trajectory fusion with the regulariser in the same step: max rel \(worst)")
        #expect(worst > 1e-3, "the fixture does not distinguish the regulariser's timing")
    }
}

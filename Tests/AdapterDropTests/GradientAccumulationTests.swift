// Gradient accumulation in AdapterTrainer: k micro-batches of b examples give the gradients and loss of one
// batch of the same k·b examples (dropout off, up to fp32 rounding: docs/numerics.md, "Gradient
// accumulation"); the schedule and histories count optimizer steps; checkpoints/resume are bitwise at step
// boundaries, also after a run interrupted in the middle of a step's micro-batches. Per-branch targets for
// Parallel training (a classification and a regression head).
import AdapterCore
@testable import AdapterDrop
import Foundation
import TestSupport
import Testing

@Suite struct GradientAccumulationTests {
    static let data = TrainerGeneralTests.train  // 24 examples of the synthetic two-class task

    static func options(batchSize: Int, accumulation: Int, epochs: Int = 2) -> AdapterTrainingOptions {
        var o = TrainerGeneralTests.options(epochs: epochs)
        o.batchSize = batchSize
        o.gradientAccumulationSteps = accumulation
        return o
    }

    static func trainer(_ options: AdapterTrainingOptions, encode: AdapterTrainer.BatchEncoder? = nil) throws -> AdapterTrainer {
        try AdapterTrainer(encoder: TrainerGeneralTests.encoder(), adapter: TrainerGeneralTests.adapter(),
                           head: PredictionHead(name: "syn", config: .classification(numLabels: 2), hiddenSize: 32, seed: 2),
                           options: options, encode: encode ?? AdapterTrainingTrainerTests.encode)
    }

    /// Gradient tolerance of "k micro-batches vs one batch": |x − r| ≤ 1e-5·S per tensor, S = max over its
    /// elements of (1/B)·Σ_examples |g_e| (the per-example gradients' magnitudes, B = 8). Why: the two runs do
    /// the same arithmetic per example except (i) the reductions over examples (weight and bias gradients sum
    /// k partial results instead of one GEMM over all rows), (ii) the micro-batches pad to their own longest
    /// sequence (softmax rows of other lengths), (iii) the weights |m|/Σ|m| rounded to fp32. Reassociating a sum
    /// of B terms moves it by ≤ (B−1)·u·Σ|terms| (u = 2⁻²⁴ ≈ 6e-8, so ≈ 4e-7·B·S); the rest is margin for
    /// (ii). Relative to the result this can be large: at the initial weights p ≈ ½ and the examples' terms
    /// cancel (gradients of 1e-6 from terms of 1e-2), so a bound relative to |r| would be wrong.
    /// Measured ≤ 6.4e-8·S (printed; docs/numerics.md, "Gradient accumulation").
    static func expectGradientsClose(_ a: [String: Tensor], _ b: [String: Tensor], scale: [String: Double], _ what: String,
                                     sourceLocation: SourceLocation = #_sourceLocation) -> Double {
        #expect(Set(a.keys) == Set(b.keys), sourceLocation: sourceLocation)
        var worst = 0.0
        for name in b.keys.sorted() {
            guard let x = a[name], let s = scale[name] else { continue }
            let e = expectClose(x.scalars, b[name]!.scalars, atol: 1e-5 * s, rtol: 0, "\(what) \(name)", sourceLocation: sourceLocation)
            if s > 0 { worst = max(worst, e.maxAbsError / s) }
        }
        return worst
    }

    /// One optimizer step's accumulated gradients and loss: 8 examples as one batch, as 2 × 4, as an uneven
    /// 5 + 3 (weights 5/8, 3/8) and as 8 × 1, all within `expectGradientsClose`; the loss within 1e-6 relative.
    @Test func microBatchGradientsEqualOneBatch() throws {
        let context = ComputeContext(threads: 1)
        var o = Self.options(batchSize: 8, accumulation: 1)
        o.useDropout = false
        let indices = Array(0..<8)
        let trainer = try Self.trainer(o)
        func gradients(_ split: [[Int]]) throws -> (Float, [String: Tensor]) {
            let (loss, fault) = try trainer.accumulateGradients(microBatches: split, of: Self.data,
                                                                targets: [.classes(Self.data.examples.map(\.label))],
                                                                step: 0, dropout: .off, context: context)
            #expect(fault == nil)
            return (loss, trainer.takeAllGradients().all)
        }
        let (oneLoss, one) = try gradients([indices])
        #expect(one.count == 8 + 4)  // seq_bn at 2 layers (down/up weight and bias) + the head's two Linears
        // S: (1/8)·Σ_e |g_e|, from each example's gradient alone.
        var scale: [String: Double] = [:]
        var magnitude: [String: [Double]] = [:]
        for i in indices {
            for (k, g) in try gradients([[i]]).1 {
                let v = g.scalars.map { Double(abs($0)) / 8 }
                magnitude[k] = magnitude[k].map { zip($0, v).map { $0 + $1 } } ?? v
            }
        }
        for (k, m) in magnitude { scale[k] = m.max() ?? 0 }
        for split in [[Array(0..<4), Array(4..<8)], [Array(0..<5), Array(5..<8)], indices.map { [$0] }] {
            let (loss, g) = try gradients(split)
            #expect(abs(loss - oneLoss) <= 1e-6 * abs(oneLoss), "loss \(loss) vs \(oneLoss) for \(split.map(\.count))")
            let worst = Self.expectGradientsClose(g, one, scale: scale, "micro-batches \(split.map(\.count))")
            print("gradient accumulation \(split.map(\.count)) vs [8]: loss \(loss) vs \(oneLoss), max error / S \(worst)")
        }
    }

    /// Whole runs: batch 4 × 2 micro-batches vs batch 8 (and 5 × 2 vs 10: the last step of each epoch is one
    /// micro-batch of 4), dropout off, robust AdapterDrop, warm-up, clipping: the same number of optimizer steps,
    /// the same AdapterDrop draws, and losses, gradient norms and parameters within fp32 rounding carried through
    /// AdamW (losses and norms 1e-5 rel; parameters 1e-4 abs: a component whose gradient is ~0 moves by up to
    /// lr·g/(|g| + ε), so rounding-level gradient differences show at lr scale, 2e-2 × ≤ 5e-3 relative).
    @Test(arguments: [(4, 2, 8), (5, 2, 10)])
    func accumulatedRunMatchesLargeBatchRun(_ micro: Int, _ k: Int, _ large: Int) throws {
        let context = ComputeContext(threads: 1)
        var a = Self.options(batchSize: micro, accumulation: k), b = Self.options(batchSize: large, accumulation: 1)
        a.useDropout = false
        b.useDropout = false
        let accumulated = try Self.trainer(a).train(on: Self.data, context: context)
        let single = try Self.trainer(b).train(on: Self.data, context: context)
        let steps = 2 * ((24 + large - 1) / large)
        #expect(accumulated.steps == steps && single.steps == steps)
        #expect(accumulated.droppedLayers == single.droppedLayers)
        let l = expectClose(accumulated.losses, single.losses, atol: 0, rtol: 1e-5, "losses")
        let n = expectClose(accumulated.gradientNorms, single.gradientNorms, atol: 0, rtol: 1e-5, "norms")
        var worst = 0.0
        for (name, p) in single.parameters {
            worst = max(worst, expectClose(accumulated.parameters[name]!.scalars, p.scalars, atol: 1e-4, rtol: 0, name).maxAbsError)
        }
        print("gradient accumulation run \(micro)×\(k) vs \(large): losses \(l), norms \(n), parameters max abs \(worst)")
    }

    /// Checkpoints with accumulation: 6 optimizer steps (3 micro-batches each, dropout and robust AdapterDrop
    /// on) straight vs 2 + checkpoint + resume, bitwise; a run whose batch encoder fails in the middle of step
    /// 3's micro-batches (after the step-2 checkpoint) resumes to the same bits — the interrupted step is
    /// recomputed from its first micro-batch; a checkpoint of another accumulation count is refused.
    @Test func checkpointsAtAccumulationBoundariesResumeBitwise() throws {
        let context = ComputeContext(threads: 1)
        let o = Self.options(batchSize: 3, accumulation: 3, epochs: 2)  // 9 examples a step: 3 steps an epoch (9, 9, 6)
        let straight = try Self.trainer(o).train(on: Self.data, context: context)
        #expect(straight.steps == 6)

        let root = TrainerGeneralTests.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let folder = root.appendingPathComponent("ckpt")
        var first = o
        first.stopAfterSteps = 2
        first.checkpointFolder = folder
        _ = try Self.trainer(first).train(on: Self.data, context: context)
        let resumed = try Self.trainer(o).train(on: Self.data, resumingFrom: folder, context: context)
        expectBitwiseEqual(resumed.losses, straight.losses, "losses")
        expectBitwiseEqual(resumed.gradientNorms, straight.gradientNorms, "norms")
        for (name, p) in straight.parameters { expectBitwiseEqual(resumed.parameters[name]!.scalars, p.scalars, name) }

        // Interrupted mid-accumulation: micro-batch 2 of step 3 (the 11th encode call) throws.
        struct Interrupted: Error {}
        let interruptedFolder = root.appendingPathComponent("interrupted")
        var every = o
        every.checkpointFolder = interruptedFolder
        every.checkpointEvery = 1
        var calls = 0
        let failing: AdapterTrainer.BatchEncoder = { batch in
            calls += 1
            if calls == 3 * 3 + 2 { throw Interrupted() }
            return try AdapterTrainingTrainerTests.encode(batch)
        }
        #expect(throws: Interrupted.self) { try Self.trainer(every, encode: failing).train(on: Self.data, context: context) }
        let state = try String(contentsOf: interruptedFolder.appendingPathComponent(TrainerCheckpoint.stateFile), encoding: .utf8)
        #expect(state.contains("\"step\" : 3"))
        let continued = try Self.trainer(o).train(on: Self.data, resumingFrom: interruptedFolder, context: context)
        expectBitwiseEqual(continued.losses, straight.losses, "losses after a mid-accumulation interruption")
        for (name, p) in straight.parameters { expectBitwiseEqual(continued.parameters[name]!.scalars, p.scalars, name) }

        #expect {
            try Self.trainer(Self.options(batchSize: 3, accumulation: 2)).train(on: Self.data, resumingFrom: folder, context: context)
        } throws: { e in
            guard case let TrainingError.checkpointMismatch(_, key, expected, found) = e else { return false }
            return key == "gradient_accumulation_steps" && expected == "2" && found == "3"
        }
        #expect(throws: TrainingError.invalidOption(key: "gradient_accumulation_steps", value: "0", reason: "must be ≥ 1")) {
            try Self.trainer(Self.options(batchSize: 3, accumulation: 0))
        }
    }

    /// A checkpoint written before gradient accumulation existed (no `gradientAccumulationSteps` in its identity)
    /// resumes as k = 1, bitwise; a state file with a duplicate key is refused (the library's strict parser).
    @Test func checkpointsWithoutTheAccumulationKeyReadAsOne() throws {
        let context = ComputeContext(threads: 1)
        let o = Self.options(batchSize: 8, accumulation: 1)
        let straight = try Self.trainer(o).train(on: Self.data, context: context)
        let folder = TrainerGeneralTests.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        var first = o
        first.stopAfterSteps = 2
        first.checkpointFolder = folder
        _ = try Self.trainer(first).train(on: Self.data, context: context)
        let stateURL = folder.appendingPathComponent(TrainerCheckpoint.stateFile)
        var state = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: stateURL)) as? [String: Any])
        var identity = try #require(state["identity"] as? [String: Any])
        #expect(identity.removeValue(forKey: "gradientAccumulationSteps") as? Int == 1)
        state["identity"] = identity
        try JSONSerialization.data(withJSONObject: state).write(to: stateURL)
        let resumed = try Self.trainer(o).train(on: Self.data, resumingFrom: folder, context: context)
        expectBitwiseEqual(resumed.losses, straight.losses, "losses")
        for (name, p) in straight.parameters { expectBitwiseEqual(resumed.parameters[name]!.scalars, p.scalars, name) }

        var text = try String(contentsOf: stateURL, encoding: .utf8)
        text = text.replacingOccurrences(of: "{", with: "{\"step\": 0, ", options: [], range: text.range(of: "{"))
        try text.write(to: stateURL, atomically: true, encoding: .utf8)
        #expect {
            try Self.trainer(o).train(on: Self.data, resumingFrom: folder, context: context)
        } throws: { e in
            guard case let TrainingError.invalidCheckpoint(_, reason) = e else { return false }
            return reason.contains("invalid JSON") && reason.contains("duplicate")
        }
    }

    /// Progress events and the schedule count optimizer steps: 24 examples, batch 4 × 3 → 2 steps an epoch.
    @Test func progressCountsOptimizerSteps() throws {
        let trainer = try Self.trainer(Self.options(batchSize: 4, accumulation: 3))
        let recorder = TrainerGeneralTests.Recorder()
        trainer.progress = recorder
        let result = try trainer.train(on: Self.data, context: ComputeContext(threads: 1))
        #expect(result.steps == 4 && recorder.events.map(\.step) == [1, 2, 3, 4])
        #expect(recorder.events.allSatisfy { $0.totalSteps == 4 })
    }

    /// Parallel training with per-branch targets: `ParallelTrainingModule` over two adapters, branch 0 a
    /// classification head on the class labels, branch 1 a regression head on ±1 targets, one replicated pass
    /// per micro-batch (batch 4 × 2), dropout off, no clipping: the summed losses and every parameter as the two
    /// trained alone on their own targets (same tolerance as `TrainerGeneralTests.parallelModuleReplicatedMatchesBranchesAlone`:
    /// the replicated GEMMs have other row counts).
    @Test func parallelBranchesWithTheirOwnTargets() throws {
        let context = ComputeContext(threads: 1)
        var o = Self.options(batchSize: 4, accumulation: 2, epochs: 1)
        o.maxGradientNorm = nil
        o.useDropout = false
        let encoder = try TrainerGeneralTests.encoder()
        let classes = PredictionHead(name: "a", config: .classification(numLabels: 2), hiddenSize: 32, seed: 2)
        let values = PredictionHead(name: "b", config: .classification(numLabels: 1), hiddenSize: 32, seed: 4)
        let regression: TrainingTargets = .values(Self.data.examples.map { Float($0.label) * 2 - 1 })
        let a = try TrainerGeneralTests.adapter("a", seed: 1), b = try TrainerGeneralTests.adapter("b", seed: 9)
        let aloneA = try AdapterTrainer(encoder: encoder, adapter: a, head: classes, options: o, encode: AdapterTrainingTrainerTests.encode)
            .train(on: Self.data, context: context)
        let aloneB = try AdapterTrainer(encoder: encoder, adapter: b, head: values, options: o, encode: AdapterTrainingTrainerTests.encode)
            .train(on: Self.data, targets: regression, context: context)
        let module = try ParallelTrainingModule([BottleneckAdapterTrainingModule(a), BottleneckAdapterTrainingModule(b)])
        let trainer = try AdapterTrainer(encoder: encoder, module: module, heads: [classes, values], options: o,
                                         encode: AdapterTrainingTrainerTests.encode)
        #expect(throws: TrainingError.self) { try trainer.train(on: Self.data, branchTargets: [nil], context: context) }
        let joint = try trainer.train(on: Self.data, branchTargets: [nil, regression], context: context)
        _ = expectClose(joint.losses, zip(aloneA.losses, aloneB.losses).map { $0 + $1 }, atol: 1e-6, rtol: 1e-5, "summed losses")
        for r in [aloneA, aloneB] {
            for (k, v) in r.parameters { _ = expectClose(joint.parameters[k]!.scalars, v.scalars, atol: 1e-6, rtol: 1e-4, k) }
        }
        for (h, alone) in zip(joint.heads, [aloneA.head, aloneB.head]) {
            for (x, y) in zip(h.linears, alone.linears) { _ = expectClose(x.weight.scalars, y.weight.scalars, atol: 1e-6, rtol: 1e-4, h.name) }
        }
        let metrics = try trainer.evaluate(on: Self.data, targets: regression, droppedLayers: 0, head: 1, context: context)
        #expect(metrics.kind == .regression && metrics.pearson != nil)
    }
}

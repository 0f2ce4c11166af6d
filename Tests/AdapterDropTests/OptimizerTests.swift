// AdamW, the linear warm-up schedule, gradient clipping and accumulation against a torch trajectory
// (Tests/Fixtures/training-adamw, scripts/parity/make_training_fixtures.py), plus hand-computed cases.
import AdapterCore
@testable import AdapterDrop
import Foundation
import TestSupport
import Testing

@Suite struct OptimizerTests {
    /// Tier D: 10 steps of torch AdamW (lr 0.1, λ 0.01 except "b" with λ 0, β (0.9, 0.999), ε 1e-8),
    /// get_linear_schedule_with_warmup (3 of 10), 2 accumulated micro-batches, clip_grad_norm_(4.0), and
    /// parameter "c" without a gradient on steps 2, 5, 6. Per step: the accumulated gradients and total norm
    /// within 1e-6 rel, the parameters within 1e-5 rel + 1e-7 abs (the task's bar; fp32 on both sides, the
    /// only differences are fma/summation order, measured ≤ 1e-6 rel — docs/numerics.md).
    @Test func trajectoryMatchesTorch() throws {
        let file = try SafetensorsFile(url: fixtureURL("training-adamw/expected.safetensors"))
        let shapes = ["a": [4, 3], "b": [5], "c": [2, 2]]
        var params: [String: Tensor] = [:]
        for (k, s) in shapes { params[k] = Tensor(shape: s, scalars: try file.floats("initial.\(k)")) }
        var adam = AdamW(betas: (0.9, 0.999), epsilon: 1e-8, weightDecay: 0.01, weightDecayOverrides: ["b": 0])
        let schedule = LinearWarmupSchedule(baseLearningRate: 0.1, warmupSteps: 3, totalSteps: 10)
        let lrs = try file.floats("lr"), norms = try file.floats("total_norm")
        let skipped = try file.integers("c_skipped")
        let context = ComputeContext(threads: 1)
        var accumulator = GradientAccumulator()
        var worstParam = 0.0, worstAbs = 0.0
        for step in 0..<10 {
            for micro in 0..<2 {
                var g: [String: Tensor] = [:]
                for (k, s) in shapes where !(k == "c" && skipped[step] == 1) {
                    g[k] = Tensor(shape: s, scalars: try file.floats("step\(step).micro\(micro).\(k)"))
                }
                accumulator.add(g, context: context)
            }
            var grads = accumulator.take()
            #expect(Set(grads.keys) == (skipped[step] == 1 ? ["a", "b"] : ["a", "b", "c"]))
            for (k, g) in grads {
                expectClose(g.scalars, try file.floats("step\(step).accumulated.\(k)"), atol: 0, rtol: 1e-6,
                            "step \(step) accumulated \(k)")
            }
            let lr = schedule.learningRate(atStep: step)
            #expect(abs(lr - Double(lrs[step])) <= 1e-7 * max(abs(lr), 1e-30) + 1e-9, "lr step \(step)")
            let norm = clipGradientNorm(&grads, maxNorm: 4.0, context: context)
            #expect(abs(Double(norm) - Double(norms[step])) <= 1e-6 * Double(norms[step]),
                    "step \(step) norm \(norm) vs \(norms[step])")
            adam.step(parameters: &params, gradients: grads, learningRate: lr)
            for (k, p) in params {
                let r = expectClose(p.scalars, try file.floats("step\(step).param.\(k)"), atol: 1e-7, rtol: 1e-5,
                                    "step \(step) param \(k)")
                worstParam = max(worstParam, r.maxRelError)
                worstAbs = max(worstAbs, r.maxAbsError)
            }
        }
        #expect(adam.states["a"]?.step == 10 && adam.states["b"]?.step == 10 && adam.states["c"]?.step == 7,
                "step counts as torch (check.adamw_steps_*)")
        if ProcessInfo.processInfo.environment["ADAPTERDROP_REPORT_ERRORS"] != nil {
            print("AdamW trajectory: worst parameter error \(worstAbs) abs, \(worstParam) rel")
        }
    }

    /// One step by hand: t = 1, so m̂ = g and v̂ = g², and the update is lr·g/(|g| + ε) after decay.
    @Test func firstStepByHand() {
        var adam = AdamW(betas: (0.9, 0.999), epsilon: 1e-8, weightDecay: 0.5)
        var params = ["w": Tensor(shape: [3], scalars: [1, -2, 0.5])]
        adam.step(parameters: &params, gradients: ["w": Tensor(shape: [3], scalars: [0.25, -4, 0])], learningRate: 0.1)
        let decay = 1 - 0.1 * 0.5
        let expected: [Double] = [1 * decay - 0.1 * 0.25 / (0.25 + 1e-8), -2 * decay + 0.1 * 4 / (4 + 1e-8), 0.5 * decay]
        expectClose(params["w"]!.scalars, expected, atol: 1e-7, rtol: 1e-6, "first step")
    }

    /// A parameter without a gradient is untouched — no weight decay, no moment decay — and its step count
    /// stays put (torch's `grad is None`); a zero gradient instead decays the weight and advances the count.
    @Test func missingGradientSkipsTheParameter() {
        var adam = AdamW(weightDecay: 0.1)
        let start = Tensor(shape: [2], scalars: [1, 2])
        var params = ["skipped": start, "zero": start]
        adam.step(parameters: &params, gradients: ["zero": Tensor(zeros: [2])], learningRate: 0.5)
        #expect(params["skipped"]!.scalars == [1, 2])
        #expect(adam.states["skipped"] == nil)
        #expect(params["zero"]!.scalars == [Float(1 * 0.95), Float(2 * 0.95)])
        #expect(adam.states["zero"]?.step == 1)
    }

    /// The schedule of transformers' get_linear_schedule_with_warmup, incl. lr 0 at step 0 and after the end.
    @Test func linearScheduleWithWarmup() {
        let s = LinearWarmupSchedule(baseLearningRate: 1, warmupSteps: 4, totalSteps: 12)
        #expect(s.learningRate(atStep: 0) == 0)
        #expect(s.learningRate(atStep: 2) == 0.5)
        #expect(s.learningRate(atStep: 4) == 1)
        #expect(s.learningRate(atStep: 8) == 0.5)
        #expect(s.learningRate(atStep: 12) == 0)
        #expect(s.learningRate(atStep: 20) == 0)
        let noWarmup = LinearWarmupSchedule(baseLearningRate: 2, warmupSteps: 0, totalSteps: 4)
        #expect(noWarmup.learningRate(atStep: 0) == 2 && noWarmup.learningRate(atStep: 3) == 0.5)
    }

    /// Clipping: norm 5 (3-4-0) clipped to 1 gives coefficient 1/(5 + 1e-6); below the limit nothing changes
    /// beyond the multiplication by 1.
    @Test func clippingByGlobalNorm() {
        let context = ComputeContext(threads: 1)
        var g = ["x": Tensor(shape: [2], scalars: [3, 0]), "y": Tensor(shape: [1], scalars: [4])]
        let norm = clipGradientNorm(&g, maxNorm: 1, context: context)
        #expect(norm == 5)
        let c = Float(1) / (Float(5) + 1e-6)
        #expect(g["x"]!.scalars == [3 * c, 0] && g["y"]!.scalars == [4 * c])
        var small = ["x": Tensor(shape: [2], scalars: [0.3, 0.4])]
        #expect(clipGradientNorm(&small, maxNorm: 1, context: context) == Float(0.5))
        #expect(small["x"]!.scalars == [0.3, 0.4])
    }
}

// Tier C: the bottleneck adapter's backward (all pre_forward / residual variants) against central finite
// differences of its forward, on a tiny shape (rows 3, hidden 8, bottleneck 4), in careful fp32.
import AdapterCore
@testable import AdapterDrop
import Foundation
import TestSupport
import Testing

@Suite struct AdapterTrainingGradientCheckTests {
    /// Loss L = Σ y ⊙ R of one adapter site; dL/dh, dL/da and dL/dθ from the module against
    /// (L(x + ε) − L(x − ε)) / 2ε with ε = 1e-2 in fp32. Error budget: fp32 rounding of L (|L| ≲ 30, ~1e-5
    /// absolute) divided by 2ε gives ~1e-3, truncation O(ε²·L''') ~1e-4; tolerance 3e-3 abs + 1e-2 rel.
    /// Smooth activations (tanh, swish) so no kink is crossed; weights redrawn N(0, 0.5) so that every path
    /// matters (BERT init N(0, 0.02) would hide errors in the adapter branch).
    @Test(arguments: [
        ("seq_bn", "tanh", "true"), ("seq_bn", "tanh", "false"), ("seq_bn", "swish", "post_add"),
        ("double_seq_bn", "swish", "true"),
    ])
    func backwardMatchesFiniteDifferences(_ c: (String, String, String)) throws {
        let (preset, act, residual) = c
        let residualJSON: AdapterJSON = residual == "post_add" ? .string("post_add") : .bool(residual == "true")
        let config = try BottleneckConfig.preset(preset, overrides: [
            "reduction_factor": .int(2), "non_linearity": .string(act), "residual_before_ln": residualJSON,
            "scaling": .double(preset == "double_seq_bn" ? 0.5 : 1.0)])
        let hidden = 8, rows = 3
        let adapter = try BottleneckAdapter(name: "x", config: config, hiddenSize: hidden, numLayers: 1, seed: 3)
        let module = BottleneckAdapterTrainingModule(adapter, keyPrefix: "")
        var rng = SeededRNG(seed: 11)
        func random(_ shape: [Int], _ std: Float) -> Tensor {
            Tensor(shape: shape, scalars: (0..<shape.reduce(1, *)).map { _ in rng.normal(mean: 0, std: std) })
        }
        for k in module.parameters.keys.sorted() { module.parameters[k] = random(module.parameters[k]!.shape, 0.5) }
        let h = random([rows, hidden], 1), a = random([rows, hidden], 1), r = random([rows, hidden], 1)
        let ln = SublayerLayerNorm(weight: Tensor(shape: [hidden], scalars: (0..<hidden).map { 1 + 0.1 * Float($0) }),
                                   bias: random([hidden], 0.1), eps: 1e-12)
        let context = ComputeContext(threads: 1)
        let location: AdapterLocation = preset == "seq_bn" ? .output : .attentionOutput
        func loss(_ h: Tensor, _ a: Tensor) -> Double {
            var g = SeededRNG(seed: 0)
            let y = module.trainingForward(layer: 0, location: location, hidden: h, residual: a, layerNorm: ln, batch: 1,
                                           sequenceLength: rows, saveForBackward: false, dropout: .off, rng: &g,
                                           context: context)!.output
            return probeLoss(y, r)
        }
        var g = SeededRNG(seed: 0)
        let fwd = try #require(module.trainingForward(layer: 0, location: location, hidden: h, residual: a, layerNorm: ln,
                                                      batch: 1, sequenceLength: rows, saveForBackward: true,
                                                      dropout: .off, rng: &g, context: context))
        let (dh, da) = module.trainingBackward(layer: 0, location: location, outputGradient: r, saved: fwd.saved,
                                               layerNorm: ln, context: context)
        let grads = module.takeGradients()
        #expect(grads.count == 4)
        var checker = FiniteDifferenceChecker(atol: 3e-3, rtol: 1e-2, label: "\(preset) \(act) \(residual)")
        checker.check(dh, at: h, "dh") { loss($0, a) }
        checker.check(da, at: a, "da") { loss(h, $0) }
        checker.checkParameters(grads, get: { module.parameters[$0]! }, set: { module.parameters[$0] = $1 }) { loss(h, a) }
        print("adapter training finite differences \(preset) \(act) residual_before_ln=\(residual): max abs err \(checker.worst)")
    }

    /// Stack of a seq_bn (tanh) and a double_seq_bn-style (swish, no original_ln_before) adapter at one site:
    /// all 8 parameter gradients and dh, da against central differences (same budget as above).
    @Test func stackBackwardMatchesFiniteDifferences() throws {
        let hidden = 8, rows = 3
        let c1 = try BottleneckConfig.preset("seq_bn", overrides: ["reduction_factor": .int(2), "non_linearity": .string("tanh")])
        let c2 = try BottleneckConfig.preset("seq_bn", overrides: ["reduction_factor": .int(4), "non_linearity": .string("swish"),
                                                                   "original_ln_before": .bool(false)])
        let m1 = BottleneckAdapterTrainingModule(try BottleneckAdapter(name: "s1", config: c1, hiddenSize: hidden, numLayers: 1), keyPrefix: "")
        let m2 = BottleneckAdapterTrainingModule(try BottleneckAdapter(name: "s2", config: c2, hiddenSize: hidden, numLayers: 1), keyPrefix: "")
        let stack = AdapterStackTrainingModule([m1, m2])
        var rng = SeededRNG(seed: 12)
        func random(_ shape: [Int], _ std: Float) -> Tensor {
            Tensor(shape: shape, scalars: (0..<shape.reduce(1, *)).map { _ in rng.normal(mean: 0, std: std) })
        }
        for m in [m1, m2] { for k in m.parameters.keys.sorted() { m.parameters[k] = random(m.parameters[k]!.shape, 0.5) } }
        let h = random([rows, hidden], 1), a = random([rows, hidden], 1), r = random([rows, hidden], 1)
        let ln = SublayerLayerNorm(weight: Tensor(shape: [hidden], scalars: (0..<hidden).map { 1 - 0.05 * Float($0) }),
                                   bias: random([hidden], 0.1), eps: 1e-12)
        let context = ComputeContext(threads: 1)
        func loss(_ h: Tensor, _ a: Tensor) -> Double {
            var g = SeededRNG(seed: 0)
            let y = stack.trainingForward(layer: 0, location: .output, hidden: h, residual: a, layerNorm: ln, batch: 1,
                                          sequenceLength: rows, saveForBackward: false, dropout: .off, rng: &g,
                                          context: context)!.output
            return probeLoss(y, r)
        }
        var g = SeededRNG(seed: 0)
        let fwd = try #require(stack.trainingForward(layer: 0, location: .output, hidden: h, residual: a, layerNorm: ln,
                                                     batch: 1, sequenceLength: rows, saveForBackward: true,
                                                     dropout: .off, rng: &g, context: context))
        let (dh, da) = stack.trainingBackward(layer: 0, location: .output, outputGradient: r, saved: fwd.saved,
                                              layerNorm: ln, context: context)
        let grads = stack.takeGradients()
        #expect(grads.count == 8)
        var checker = FiniteDifferenceChecker(atol: 3e-3, rtol: 1e-2, label: "stack")
        checker.check(dh, at: h, "dh") { loss($0, a) }
        checker.check(da, at: a, "da") { loss(h, $0) }
        checker.checkParameters(grads, get: { stack.parameters[$0]! }, set: { stack.setParameters([$0: $1]) }) { loss(h, a) }
        print("adapter training finite differences stack: max abs err \(checker.worst)")
    }

    /// Classification head (2 layers, tanh; cross-entropy over 3 labels) and regression head (1 label, 3 layers,
    /// MSE): gradients of the weights and of the encoder output ([CLS] rows only) against central differences
    /// (ε = 1e-2 in fp32; the losses are O(1), tolerance 1e-3 abs + 1e-2 rel).
    @Test(arguments: [3, 1])
    func headBackwardMatchesFiniteDifferences(_ numLabels: Int) throws {
        let hidden = 8, batch = 3, seq = 2
        let config = PredictionHeadConfig.classification(numLabels: numLabels, layers: numLabels == 1 ? 3 : 2)
        let module = PredictionHeadTrainingModule(PredictionHead(name: "h", config: config, hiddenSize: hidden, seed: 1))
        var rng = SeededRNG(seed: 21)
        func random(_ shape: [Int], _ std: Float) -> Tensor {
            Tensor(shape: shape, scalars: (0..<shape.reduce(1, *)).map { _ in rng.normal(mean: 0, std: std) })
        }
        for k in module.parameters.keys.sorted() { module.parameters[k] = random(module.parameters[k]!.shape, 0.5) }
        let states = random([batch * seq, hidden], 1)
        let labels: [Float] = numLabels == 1 ? [0.5, -1, 2] : [0, 2, 1]
        let context = ComputeContext(threads: 1)
        func loss(_ x: Tensor) throws -> Double {
            Double(try module.loss(module.forward(x, batch: batch, sequenceLength: seq, context: context), labels: labels).loss)
        }
        let tape = module.forward(states, batch: batch, sequenceLength: seq, context: context)
        let l = try module.loss(tape, labels: labels)
        let dStates = module.backward(tape, logitsGradient: l.gradient, context: context)
        let grads = module.takeGradients()
        #expect(grads.count == 2 * config.layers)
        var checker = FiniteDifferenceChecker(atol: 1e-3, rtol: 1e-2, label: "head \(numLabels)")
        try checker.check(dStates, at: states, "dStates", loss)
        try checker.checkParameters(grads, get: { module.parameters[$0]! }, set: { module.parameters[$0] = $1 }) { try loss(states) }
        print("adapter training finite differences head (\(numLabels) labels): max abs err \(checker.worst)")
    }
}

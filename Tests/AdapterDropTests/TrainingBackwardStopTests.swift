// `accumulateTrainingGradients`: the backward pass for parameter gradients only stops inside the lowest trained
// layer (below a seq_bn adapter nothing needs a gradient) and gives bitwise the gradients of `trainingBackward`.
import AdapterCore
@testable import AdapterDrop
import Foundation
import TestSupport
import Testing

@Suite struct TrainingBackwardStopTests {
    private static let input = try! EncoderInput(batchSize: 2, sequenceLength: 4, inputIds: [2, 5, 7, 3, 2, 9, 3, 0],
                                                 attentionMask: [1, 1, 1, 1, 1, 1, 1, 0],
                                                 tokenTypeIds: [0, 0, 1, 1, 0, 0, 0, 0])

    /// Forward with dropout (layer 0 skipped: the lowest trained layer is 1), the full backward, then the
    /// parameter-only backward on the same tape with the lowest layer's saved attention core (q, k, v, p) —
    /// and, when `poisonFFN`, its FFN pre-activation — replaced by empty tensors: reading any of them fails a
    /// shape precondition (the test process traps), so the second pass proves it never goes there. Every
    /// parameter gradient of both passes is bitwise equal.
    private func check(config name: String, layerNorms: Bool, poisonFFN: Bool) throws {
        let encoder = try tinyTrainingEncoder()
        let hidden = encoder.config.hiddenSize, layers = encoder.config.numHiddenLayers
        let context = ComputeContext(threads: 1)
        let adapter = try BottleneckAdapter(name: "a", config: try .preset(name, overrides: ["reduction_factor": .int(2)]),
                                            hiddenSize: hidden, numLayers: layers, seed: 3)
        let module = BottleneckAdapterTrainingModule(adapter)
        module.skipLayers = [0]
        var rng = SeededRNG(seed: 11)
        var tape = try encoder.trainingForward(Self.input, trainable: module,
                                               dropout: EncoderDropout(hidden: 0.2, attentionProbabilities: 0.2),
                                               rng: &rng, context: context)
        #expect(tape.lowestTrainedLayer == 1 && tape.layers.first?.layer == 1)
        var trng = SeededRNG(seed: 5)
        let r = Tensor.randomNormal(shape: tape.output.shape, using: &trng)
        func lnStart() -> [LayerNormGradients]? {
            layerNorms ? Array(repeating: LayerNormGradients(hiddenSize: hidden), count: layers) : nil
        }
        var fullLN = lnStart()
        _ = encoder.trainingBackward(tape, outputGradient: r, trainable: module, layerNormGradients: &fullLN,
                                     context: context)
        let full = module.takeGradients()
        var s = tape.layers[0]
        let empty = Tensor(zeros: [0])
        s.query = empty
        s.key = empty
        s.value = empty
        s.probabilities = empty
        if poisonFFN { s.preactivation = empty }
        tape.layers[0] = s
        var partLN = lnStart()
        encoder.accumulateTrainingGradients(tape, outputGradient: r, trainable: module, layerNormGradients: &partLN,
                                            context: context)
        let part = module.takeGradients()
        #expect(Set(full.keys) == Set(part.keys) && full.count == (name == "seq_bn" ? 8 : 16), "\(full.keys.sorted())")
        for (k, g) in full {
            #expect(g.scalars.allSatisfy { $0.isFinite }, "\(k)")
            expectBitwiseEqual(try #require(part[k]).scalars, g.scalars, k)
        }
        if layerNorms {
            for l in 0..<layers {
                for (a, b) in [(fullLN![l].attentionWeight, partLN![l].attentionWeight), (fullLN![l].attentionBias, partLN![l].attentionBias),
                               (fullLN![l].outputWeight, partLN![l].outputWeight), (fullLN![l].outputBias, partLN![l].outputBias)] {
                    expectBitwiseEqual(b.scalars, a.scalars, "LayerNorm gradients of layer \(l)")
                }
            }
            #expect(partLN![1].attentionWeight.scalars.contains { $0 != 0 }, "LN₁ of the lowest layer gets its gradient")
        }
    }

    /// seq_bn: only the output adapter trains in the lowest layer, so nothing below it (FFN, LN₁, attention)
    /// is back-propagated — the FFN pre-activation is poisoned too.
    @Test func seqBnStopsRightAfterTheOutputAdapter() throws {
        try check(config: "seq_bn", layerNorms: false, poisonFFN: true)
    }

    /// double_seq_bn has an adapter at the attention location too: the FFN is back-propagated to reach it,
    /// the attention core is not.
    @Test func doubleSeqBnStopsAfterTheAttentionAdapter() throws {
        try check(config: "double_seq_bn", layerNorms: false, poisonFFN: false)
    }

    /// With LayerNorm gradients requested, LN₁ of the lowest layer still gets its gradient (FFN back-propagated),
    /// the attention core is skipped.
    @Test func layerNormGradientsStillReachTheLowestLayer() throws {
        try check(config: "seq_bn", layerNorms: true, poisonFFN: false)
    }
}

// `BertEncoder(prepackWeights: true)` holds only the packed layer matrices (no plain copy).
import AdapterCore
@testable import AdapterDrop
import TestSupport
import Testing

@Suite struct PrepackedEncoderStorageTests {
    /// With `prepackWeights` the encoder holds only the packed layer matrices, yet `weights` and
    /// `layerWeights(_:)` give back the loaded values bitwise, and training packs from them as before.
    @Test func prepackedEncoderRebuildsPlainWeights() throws {
        let config = BertConfig(hiddenSize: 24, numHiddenLayers: 2, numAttentionHeads: 4, intermediateSize: 40,
                                maxPositionEmbeddings: 32, vocabSize: 50)
        let weights = try EncoderFastPathTests.tinyWeights(config)
        let packed = BertEncoder(config: config, weights: weights, prepackWeights: true)
        #expect(packed.storedWeights.layers[0].intermediateWeight.count == 0)   // no plain copy held
        #expect(packed.fusedQKV[1].weight.count == 0)
        for l in 0..<config.numHiddenLayers {
            let a = packed.layerWeights(l), b = weights.layers[l], c = packed.weights.layers[l]
            for (x, y, z, name) in [(a.queryWeight, b.queryWeight, c.queryWeight, "query"), (a.keyWeight, b.keyWeight, c.keyWeight, "key"),
                                    (a.valueWeight, b.valueWeight, c.valueWeight, "value"),
                                    (a.attentionOutputWeight, b.attentionOutputWeight, c.attentionOutputWeight, "attention output"),
                                    (a.intermediateWeight, b.intermediateWeight, c.intermediateWeight, "intermediate"),
                                    (a.outputWeight, b.outputWeight, c.outputWeight, "output"),
                                    (a.outputBias, b.outputBias, c.outputBias, "output bias")] {
                #expect(x.shape == y.shape && z.shape == y.shape, "\(name) layer \(l)")
                expectBitwiseEqual(x.scalars, y.scalars, "\(name) layer \(l)")
                expectBitwiseEqual(z.scalars, y.scalars, "\(name) layer \(l) via weights")
            }
        }
        // Another GEMM backend unpacks on demand: same bits as the plain encoder on that backend.
        let input = try EncoderInput(ids: [[2, 7, 9, 11, 3], [2, 5, 3]])
        let plain = BertEncoder(config: config, weights: weights)
        for backend in [GemmBackend.kernels, .reference] {
            let context = ComputeContext(threads: 2, gemmBackend: backend)
            expectBitwiseEqual(try packed(input, context: context).lastHiddenState.scalars,
                               try plain(input, context: context).lastHiddenState.scalars, "\(backend)")
        }
    }
}

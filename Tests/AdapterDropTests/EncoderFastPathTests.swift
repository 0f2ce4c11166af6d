// The encoder's hook-less fast path (reused buffers, residual in the GEMM epilogue, optional pre-packed
// weights) must be bitwise the base model computed layer by layer through `layer(_:…)`, the path adapters use.
import AdapterCore
@testable import AdapterDrop
import TestSupport
import Testing

@Suite struct EncoderFastPathTests {
    static func tinyWeights(_ config: BertConfig) throws -> BertWeights {
        var rng = SeededRNG(seed: 9)
        var named: [String: Tensor] = [:]
        for p in BertWeights.expectedParameters(for: config) {
            named[p.name] = Tensor.randomNormal(shape: p.shape, mean: p.name.hasSuffix("LayerNorm.weight") ? 1 : 0,
                                                std: 0.2, using: &rng)
        }
        return try BertWeights(config: config, namedTensors: named)
    }

    @Test(arguments: [1, 2])
    func fastPathMatchesLayerByLayerBitwise(threads: Int) throws {
        let config = BertConfig(hiddenSize: 24, numHiddenLayers: 3, numAttentionHeads: 4, intermediateSize: 40,
                                maxPositionEmbeddings: 32, vocabSize: 50)
        let weights = try Self.tinyWeights(config)
        let plain = BertEncoder(config: config, weights: weights)
        let packed = BertEncoder(config: config, weights: weights, prepackWeights: true)
        #expect(packed.hasPrepackedWeights && !plain.hasPrepackedWeights)
        // The fused Q/K/V rows are views with the loaded values.
        expectBitwiseEqual(plain.weights.layers[1].keyWeight.scalars, weights.layers[1].keyWeight.scalars, "key rows")
        let input = try EncoderInput(ids: [[2, 7, 9, 11, 3], [2, 5, 3]])   // second row padded
        let context = ComputeContext(threads: threads)
        var x = try plain.embed(input, context: context)
        let mask = plain.additiveMask(for: input)
        var layerByLayer: [Tensor] = []
        for l in 0..<config.numHiddenLayers {
            x = plain.layer(l, x, mask: mask, batch: 2, seq: 5, context: context)
            layerByLayer.append(x)
        }
        for encoder in [plain, packed] {
            let out = try encoder(input, keepHiddenStates: true, context: context)
            expectBitwiseEqual(out.lastHiddenState.scalars, x.scalars, "last hidden state, threads \(threads)")
            #expect(out.hiddenStates.count == config.numHiddenLayers + 1)
            for l in 0..<config.numHiddenLayers {   // kept states are not overwritten by later layers
                expectBitwiseEqual(out.hiddenStates[l + 1].scalars, layerByLayer[l].scalars, "hidden state \(l + 1)")
            }
        }
    }
}

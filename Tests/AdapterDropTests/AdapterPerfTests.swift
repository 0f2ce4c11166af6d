// Release-only timing: one seq_bn adapter (rf 16) on a BERT-base-sized encoder (random weights), batch 8,
// seq 128, against the same encoder without adapters, interleaved in one process (docs/adapters.md).
//   ADAPTERDROP_PERF=1 swift test -c release --filter AdapterPerfTests
import AdapterCore
@testable import AdapterDrop
import Foundation
import Testing

@Suite struct AdapterPerfTests {
    @Test(.enabled(if: ProcessInfo.processInfo.environment["ADAPTERDROP_PERF"] != nil))
    func seqBnOverheadOnBertBase() throws {
        let config = BertConfig(hiddenSize: 768, numHiddenLayers: 12, numAttentionHeads: 12, intermediateSize: 3072, vocabSize: 1000)
        var rng = SeededRNG(seed: 7)
        var tensors: [String: Tensor] = [:]
        for p in BertWeights.expectedParameters(for: config) {
            let n = p.shape.reduce(1, *)
            tensors[p.name] = p.name.hasSuffix("LayerNorm.weight") ? Tensor(shape: p.shape, repeating: 1)
                : Tensor(shape: p.shape, scalars: (0..<n).map { _ in rng.normal(mean: 0, std: 0.02) })
        }
        let encoder = BertEncoder(config: config, weights: try BertWeights(config: config, namedTensors: tensors))
        var model = AdapterModel(encoder: encoder)
        try model.addAdapter(name: "a", config: try BottleneckConfig.preset("seq_bn"))
        let batch = 8, seq = 128
        let input = try EncoderInput(batchSize: batch, sequenceLength: seq, inputIds: (0..<batch * seq).map { ($0 * 7919) % 1000 })
        let context = ComputeContext()
        func time(_ setup: AdapterComposition?) throws -> Double {
            let start = DispatchTime.now().uptimeNanoseconds
            _ = try model(input, setup: setup, heads: [], context: context)
            return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
        }
        _ = try time(nil); _ = try time(.adapter("a"))
        var base: [Double] = [], adapter: [Double] = []
        for _ in 0..<9 { base.append(try time(nil)); adapter.append(try time(.adapter("a"))) }
        let mb = base.sorted()[4], ma = adapter.sorted()[4]
        print("seq_bn rf16 BERT-base b8 s128 threads \(context.threads): base median \(mb) ms, adapter median \(ma) ms, ratio \(ma / mb)")
    }
}

// Training-step timing skeleton (not a correctness test; off unless ADAPTERDROP_TRAINING_BENCH is set):
//
//     ADAPTERDROP_TRAINING_BENCH=1 swift test -c release --filter TrainingBenchmarkTests
//
// BERT-base shapes (hidden 768, 12 layers, 12 heads, intermediate 3072) with random weights; one step =
// training forward (activations kept from layer n) + backward down to layer n through the frozen encoder (no
// adapters: their cost is small and belongs to the adapters' own benchmark). Variants are interleaved and
// timed by thread CPU time at 1 thread (the machine is shared), medians reported; results in docs/training.md.
import AdapterCore
@testable import AdapterDrop
import Foundation
import Testing

private func threadCPUSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

@Suite struct TrainingBenchmarkTests {
    @Test(.enabled(if: ProcessInfo.processInfo.environment["ADAPTERDROP_TRAINING_BENCH"] != nil))
    func trainingStepTimeByDroppedLayers() throws {
        let env = ProcessInfo.processInfo.environment
        let batch = Int(env["BENCH_BATCH"] ?? "") ?? 4, seq = Int(env["BENCH_SEQ"] ?? "") ?? 128
        let repeats = Int(env["BENCH_REPEATS"] ?? "") ?? 3
        let encoder = try tinyTrainingEncoder(layers: 12, hidden: 768, heads: 12, intermediate: 3072)
        let context = ComputeContext(threads: 1)
        let ids = (0..<(batch * seq)).map { 1 + $0 % 19 }
        let input = try EncoderInput(batchSize: batch, sequenceLength: min(seq, 512), inputIds: ids)
        var rng = SeededRNG(seed: 1)
        let dOut = Tensor.randomNormal(shape: [batch * seq, 768], using: &rng)
        let variants = [0, 5, 11, 12]  // n = 12: forward only (nothing kept, no backward)
        let packed = PackedTrainingWeights(encoder)
        var packedTimes: [Int: [Double]] = [:]
        var times: [Int: [Double]] = [:]
        var saved: [Int: Int] = [:]
        for r in 0...repeats {  // round 0 warms up
            for n in variants {
                for usePacked in [false, true] {
                    let weights = usePacked ? packed : nil
                    let t0 = threadCPUSeconds()
                    var stepRNG = SeededRNG(seed: UInt64(r))
                    let tape = try encoder.trainingForward(input, trainable: nil, lowestTrainedLayer: n,
                                                           dropout: EncoderDropout(config: encoder.config),
                                                           rng: &stepRNG, packedWeights: weights, context: context)
                    var none: [LayerNormGradients]? = nil
                    let dx = encoder.trainingBackward(tape, outputGradient: dOut, trainable: nil,
                                                      layerNormGradients: &none, packedWeights: weights,
                                                      context: context)
                    let t1 = threadCPUSeconds()
                    #expect(dx.shape == [batch * seq, 768])
                    saved[n] = tape.savedByteCount
                    if r > 0 {
                        if usePacked { packedTimes[n, default: []].append(t1 - t0) } else { times[n, default: []].append(t1 - t0) }
                    }
                }
            }
        }
        func median(_ x: [Double]) -> Double { let s = x.sorted(); return s[s.count / 2] }
        let base = median(times[0]!)
        print("training step, BERT-base shapes, batch \(batch) × seq \(seq), 1 thread, medians of \(repeats):")
        for n in variants {
            let m = median(times[n]!)
            let p = median(packedTimes[n]!)
            print(String(format: "  n = %2d: %8.1f ms/step  (%.3f of n = 0)  packed weights %8.1f ms (%.3f of n = 0, %.2fx plain)  saved activations %.1f MB",
                         n, m * 1000, m / base, p * 1000, p / median(packedTimes[0]!), m / p, Double(saved[n]!) / 1e6))
        }
        #expect(median(times[5]!) < base, "dropping 5 layers must make the step cheaper")
    }
}

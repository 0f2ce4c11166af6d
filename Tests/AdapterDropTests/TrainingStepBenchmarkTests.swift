// Whole training-step timing (not a correctness test; off unless ADAPTERDROP_TRAIN_STEP_BENCH is set):
//
//     swift build -c release --build-tests
//     ADAPTERDROP_TRAIN_STEP_BENCH=1 swift test -c release --skip-build --filter TrainingStepBenchmarkTests
//
// or, with PyTorch + adapters 1.3.0 interleaved and the comparison table printed:
//
//     /work/venv/bin/python scripts/peers/bench_training_step.py
//
// One step = what `AdapterTrainer.train` does per batch: training forward (activations kept from layer n),
// classification head + cross-entropy, backward down to layer n through the frozen encoder, gradient clipping,
// AdamW. Setup (issue #5, "Performance acceptance"): BERT-base shapes (hidden 768, 12 layers, 12 heads,
// intermediate 3072) with random weights, one seq_bn adapter (reduction 16) + a 2-class head, batch 8 × seq 128,
// dropout on. Specialized AdapterDrop with n = 0…11 dropped layers; robust AdapterDrop draws n uniformly from
// 0…11 per batch and does exactly the work of specialized n for that batch, so its expected step time is the
// mean over n of the specialized times (printed as mode "robust").
//
// Environment: BENCH_THREADS (default "1,2"), BENCH_DROPS (default "0,1,…,11"; robust is printed only when all
// twelve are measured), BENCH_ROUNDS (default 2, plus one warm-up round), BENCH_STEPS (steps per timed
// `train` call, default 2), BENCH_BATCH (8), BENCH_SEQ (128), BENCH_PACK (`0`: no `PackedTrainingWeights`;
// default: pre-packed, as `adapterdrop bench train`), BENCH_CLOCK (`cpu`: at 1 thread the calling
// thread's CPU time, default; `wall`: wall clock everywhere). More than 1 thread: wall clock. Variants
// interleaved within each round, median over rounds. Each result is also printed as one `TRAINSTEP {json}` line with the
// `bench train` fields (`mode`, `dropped_layers`, `threads`, `ms_per_step`, `speedup_vs_no_drop`).
import AdapterCore
@testable import AdapterDrop
import Foundation
import Testing

private func stepThreadCPUSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

@Suite struct TrainingStepBenchmarkTests {
    @Test(.enabled(if: ProcessInfo.processInfo.environment["ADAPTERDROP_TRAIN_STEP_BENCH"] != nil))
    func trainingStepTime() throws {
        let env = ProcessInfo.processInfo.environment
        func ints(_ key: String, _ fallback: [Int]) -> [Int] {
            env[key].map { $0.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) } } ?? fallback
        }
        let threadCounts = ints("BENCH_THREADS", [1, 2])
        let drops = ints("BENCH_DROPS", Array(0...11))
        let rounds = Int(env["BENCH_ROUNDS"] ?? "") ?? 2
        let steps = Int(env["BENCH_STEPS"] ?? "") ?? 2
        let batch = Int(env["BENCH_BATCH"] ?? "") ?? 8, seq = Int(env["BENCH_SEQ"] ?? "") ?? 128
        let encoder = try tinyTrainingEncoder(layers: 12, hidden: 768, heads: 12, intermediate: 3072)
        let config = try BottleneckConfig.preset("seq_bn")
        let adapter = try BottleneckAdapter(name: "bench", config: config, hiddenSize: 768, numLayers: 12, seed: 1)
        let head = PredictionHead(name: "bench", config: .classification(numLabels: 2), hiddenSize: 768, seed: 2)
        // Word ids 1…19 (the random encoder's vocabulary is 20), every sequence exactly `seq` tokens.
        let examples = (0..<(batch * steps)).map { i in
            TextExample(text: (0..<seq).map { "w\(1 + (i * 7 + $0 * 3) % 19)" }.joined(separator: " "), label: i % 2, line: i)
        }
        let dataset = TextClassificationDataset(labels: ["0", "1"], examples: examples)
        let encode: AdapterTrainer.BatchEncoder = { batch in
            try EncoderInput(ids: batch.map { e in e.text.split(separator: " ").map { Int($0.dropFirst())! } })
        }
        let useCPUTime = env["BENCH_CLOCK"] != "wall"
        // Pre-packed frozen weights as `bench train` uses by default (BENCH_PACK=0: pack on every GEMM call).
        let packed = env["BENCH_PACK"] == "0" ? nil : PackedTrainingWeights(encoder)
        var times: [String: [Double]] = [:]  // "threads/n" → ms per step
        for round in 0...rounds {  // round 0 warms up
            for t in threadCounts {
                let context = ComputeContext(threads: t)
                for n in drops {
                    var options = AdapterTrainingOptions()
                    options.batchSize = batch
                    options.epochs = 1
                    options.learningRate = 1e-4
                    options.policy = n == 0 ? .none : .specialized(droppedLayers: n)
                    let trainer = try AdapterTrainer(encoder: encoder, adapter: adapter, head: head, options: options,
                                                     encode: encode)
                    trainer.packedWeights = packed
                    let start = ContinuousClock.now, cpuStart = stepThreadCPUSeconds()
                    let result = try trainer.train(on: dataset, context: context)
                    // 1 thread: all work runs on this thread, so its CPU time is the step time without the
                    // waiting a shared machine adds; more threads: wall clock.
                    let seconds = t == 1 && useCPUTime ? stepThreadCPUSeconds() - cpuStart : (ContinuousClock.now - start).seconds
                    #expect(result.steps == steps && result.losses.allSatisfy(\.isFinite))
                    if round > 0 { times["\(t)/\(n)", default: []].append(seconds * 1000 / Double(steps)) }
                }
            }
        }
        func median(_ x: [Double]) -> Double { let s = x.sorted(); return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2 }
        func emit(_ mode: String, _ n: Int?, _ t: Int, _ ms: Double, _ base: Double?) {
            let speedup = base.map { String(format: "%.4f", $0 / ms) } ?? "null"
            print("TRAINSTEP {\"mode\": \"\(mode)\", \"dropped_layers\": \(n.map(String.init) ?? "null"), \"threads\": \(t), \"ms_per_step\": \(String(format: "%.2f", ms)), \"speedup_vs_no_drop\": \(speedup)}")
        }
        print("training step (seq_bn + head, AdapterTrainer), BERT-base shapes, batch \(batch) × seq \(seq), medians of \(rounds) rounds × \(steps) steps:")
        for t in threadCounts {
            let base = drops.contains(0) ? median(times["\(t)/0"]!) : nil
            for n in drops {
                let ms = median(times["\(t)/\(n)"]!)
                emit(n == 0 ? "none" : "specialized", n, t, ms, base)
            }
            if Set(drops) == Set(0...11) {
                let mean = (0...11).map { median(times["\(t)/\($0)"]!) }.reduce(0, +) / 12
                emit("robust", nil, t, mean, base)
            }
        }
        if drops.contains(0), drops.contains(5) {
            #expect(median(times["\(threadCounts[0])/5"]!) < median(times["\(threadCounts[0])/0"]!),
                    "dropping 5 layers must make the step cheaper")
        }
    }
}

import AdapterCore
import AdapterDrop
import ArgumentParser
import Foundation

/// `adapterdrop bench drop`: parallel multi-task inference with AdapterDrop (the paper's Table 2 / Figure 2 view).
///
/// For each task count N: one seq_bn adapter (+ classification head) per task, run as `Parallel(task0, …, taskN−1)`
/// with `skipLayers = 0..<n` for every requested n, so the layers below n run once for the whole batch and the batch
/// is replicated N times from layer n on. For each N, all n and the plain encoder (no adapters, the caller's batch:
/// the "single-task encoder") are timed interleaved in one set of rounds in the same process; the speed-up of a row
/// is median time(n = 0) / median time(n) from that set (n = 0 is always measured, printed only if requested).
struct DropBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drop",
        abstract: "Multi-task (Parallel) inference time vs number of dropped adapter layers (AdapterDrop).",
        discussion: """
            The weights are RANDOM (seeded; BERT initialisation for the encoder, AdapterHub "bert" init for adapters \
            and heads): the speed is representative, the outputs are not. Token ids are the same deterministic \
            batch as `bench encoder`. The estimated run time is printed before timing starts.
            """)

    @OptionGroup var shape: BenchShapeOptions
    @Option(help: "Task counts, comma-separated (e.g. 1,2,4,8,16).")
    var tasks: String = "1,2,4,8"
    @Option(help: "Dropped layers: a range LO..HI (or LO...HI) or a comma-separated list (e.g. 0..11 or 0,5).")
    var drop: String = "0,5"
    @Option(help: "Sequences per batch.")
    var batch: Int = 1
    @OptionGroup var runtime: RuntimeOptions
    @Option(help: "Timed rounds per task count (every variant once per round; medians are reported).")
    var repetitions: Int = 5
    @Flag(help: "Hold the encoder's weight matrices pre-packed for the GEMM (as `bench encoder --prepack`).")
    var prepack = false
    @Flag(help: "Also time every configuration through the general composition hook (the path before the buffered one) in the same rounds.")
    var compareHookPath = false
    @OptionGroup var jsonFile: JSONFileOption

    static func parseList(_ text: String, option: String) throws -> [Int] {
        let t = text.trimmingCharacters(in: .whitespaces)
        if let r = t.range(of: "...") ?? t.range(of: "..") {  // LO...HI (as train --robust-drop) or LO..HI
            guard let lo = Int(t[..<r.lowerBound].trimmingCharacters(in: .whitespaces)),
                  let hi = Int(t[r.upperBound...].trimmingCharacters(in: .whitespaces)) else {
                throw ValidationError("\(option): expected LO..HI or LO...HI with integers, got \(text)")
            }
            guard lo <= hi else { throw ValidationError("\(option) \(text): LO must be ≤ HI") }
            let (span, overflow) = hi.subtractingReportingOverflow(lo)
            guard !overflow, span < 4096 else { throw ValidationError("\(option) \(text): at most 4096 values") }
            return Array(lo...hi)
        }
        let values = t.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !values.isEmpty, values.allSatisfy({ $0 != nil }) else {
            throw ValidationError("\(option): expected comma-separated integers or LO..HI, got \(text)")
        }
        return values.map { $0! }
    }

    func validate() throws {
        let layers = try shape.validatedConfig().numHiddenLayers
        guard batch >= 1, repetitions >= 1 else { throw ValidationError("--batch and --repetitions must be at least 1") }
        guard try Self.parseList(tasks, option: "--tasks").allSatisfy({ $0 >= 1 && $0 <= 64 }) else {
            throw ValidationError("--tasks: each count must be in 1...64")
        }
        guard try Self.parseList(drop, option: "--drop").allSatisfy({ $0 >= 0 && $0 < layers }) else {
            throw ValidationError("--drop: each value must be in 0..<\(layers) for \(shape.config)")
        }
    }

    /// Relative cost of dropping `n` of `layers` layers with `tasks` tasks: layers below n run once, the rest N times.
    static func relativeCost(dropped n: Int, layers: Int, tasks: Int) -> Double {
        Double(n + (layers - n) * tasks) / Double(layers * tasks)
    }

    func run() throws {
        warnIfDebugBuild()
        let c = try shape.validatedConfig(), seq = shape.seq
        let taskCounts = try Self.parseList(tasks, option: "--tasks")
        let requested = try Self.parseList(drop, option: "--drop")
        let drops = Array(Set(requested + [0])).sorted()
        // Parallel(N tasks) runs N copies of the batch above the dropped layers.
        try runtime.checkInferenceMemory(config: c, batch: batch, sequenceLength: seq, replicas: taskCounts.max() ?? 1)
        let encoder = try BertEncoder(config: c, weights: EncoderBench.randomWeights(c, seed: 42), prepackWeights: prepack)
        var model = AdapterModel(encoder: encoder, modelName: shape.config)
        let maxTasks = taskCounts.max() ?? 1
        for t in 0..<maxTasks {
            try model.addAdapter(name: "task\(t)", config: try .preset("seq_bn"), seed: UInt64(t + 1))
            model.addHead(PredictionHead(name: "task\(t)", config: .classification(numLabels: 2),
                                         hiddenSize: c.hiddenSize, seed: UInt64(100 + t)))
        }
        let input = try EncoderBench.input(batch: batch, seq: seq, vocabSize: c.vocabSize)
        let threads = runtime.threads, context = runtime.context()
        print("model: \(shape.config) (RANDOM weights\(prepack ? ", prepacked" : "")), seq_bn adapters (reduction factor 16), "
              + "batch \(batch), seq \(seq), threads \(threads), ISA \(KernelISA.active.rawValue), "
              + (compareHookPath ? "buffered path and general hook path" : "buffered path"))
        let layers = c.numHiddenLayers
        func setup(_ n: Int) throws -> (AdapterComposition, [String]) {
            let names = (0..<n).map { "task\($0)" }
            return (try AdapterComposition.parse(n == 1 ? names[0] : "Parallel(\(names.joined(separator: ",")))")!, names)
        }
        // One checked, timed run per task count first: an input the model rejects is an error instead of a timing
        // of nothing, and the times give the estimate printed before the real timing starts.
        var estimate = 0.0
        for n in taskCounts {
            let (s, names) = try setup(n)
            let start = DispatchTime.now().uptimeNanoseconds
            _ = try model.predict(input, setup: s, heads: names, context: context)
            let t0 = Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
            let round = t0 * (drops.map { Self.relativeCost(dropped: $0, layers: layers, tasks: n) }.reduce(0, +)
                              * (compareHookPath ? 2 : 1) + 1 / Double(n))
            estimate += round * Double(repetitions + 1)
        }
        print(String(format: "estimated time: %.0f s (%d task counts × %d variants × %d rounds + 1 warm-up round; from one run each)",
                     estimate, taskCounts.count, drops.count * (compareHookPath ? 2 : 1) + 1, repetitions))
        fflush(nil)  // shown before the timing starts even when stdout is a file or pipe
        var rows: [DropBenchRow] = []
        for n in taskCounts {
            let (s, names) = try setup(n)
            var variants = [InterleavedTimer.Variant(name: "encoder", run: { _ = try? encoder(input, context: context) })]
            for buffered in compareHookPath ? [true, false] : [true] {
                for d in drops {
                    let skip = Set(0..<d)
                    variants.append(.init(name: "\(buffered ? "" : "hook ")n=\(d)", run: {
                        _ = try? model.run(input, setup: s, heads: names, skipLayers: skip, outputFusionAttentions: false,
                                           keepHiddenStates: false, buffered: buffered, context: context)
                    }))
                }
            }
            let t = InterleavedTimer.medians(variants, repetitions: repetitions, warmup: 1)
            let encoderTime = t[0], noDrop = t[1]
            for (i, d) in drops.enumerated() where requested.contains(d) {
                let row = DropBenchRow(tasks: n, droppedLayers: d, threads: threads, ms: t[i + 1] * 1e3,
                                       speedupVsNoDrop: noDrop / t[i + 1], encoderMs: encoderTime * 1e3)
                rows.append(row)
                var line = String(format: "tasks %2d  dropped %2d  %9.1f ms  speed-up vs no drop %.2f×  = %.2f× the single-task encoder (%.1f ms)",
                                  n, d, row.ms, row.speedupVsNoDrop, t[i + 1] / encoderTime, encoderTime * 1e3)
                if compareHookPath {
                    let hook = t[1 + drops.count + i]
                    line += String(format: "  hook path %.1f ms (time hook / buffered %.2f)", hook * 1e3, hook / t[i + 1])
                }
                print(line)
                fflush(nil)
            }
        }
        if let json = jsonFile.path { try writeJSON(rows, to: json) }
    }
}

/// One (tasks, dropped layers) measurement.
struct DropBenchRow: Codable {
    let tasks: Int
    let droppedLayers: Int
    let threads: Int
    /// Median milliseconds of one forward pass over the batch for all tasks.
    let ms: Double
    /// time(no drop) / time(this), both measured in this run.
    let speedupVsNoDrop: Double
    /// Median milliseconds of the plain encoder (no adapters) on the same batch, timed in the same rounds.
    let encoderMs: Double

    enum CodingKeys: String, CodingKey {
        case tasks
        case droppedLayers = "dropped_layers"
        case threads, ms
        case speedupVsNoDrop = "speedup_vs_no_drop"
        case encoderMs = "encoder_ms"
    }
}

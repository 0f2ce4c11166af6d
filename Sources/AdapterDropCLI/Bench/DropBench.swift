import AdapterCore
import AdapterDrop
import ArgumentParser
import Foundation

/// `adapterdrop bench drop`: parallel multi-task inference with AdapterDrop (the paper's Table 2 / Figure 2 view).
///
/// For each task count N and each number n of dropped layers: one seq_bn adapter (+ classification head) per task,
/// run as `Parallel(task0, …, taskN−1)` with `skipLayers = 0..<n`, so the layers below n run once for the whole
/// batch and the batch is replicated N times from layer n on. Every (N, n) is timed interleaved with its no-drop
/// baseline (n = 0) in the same process; the speed-up is that pair's median time(n = 0) / time(n), so it can differ
/// slightly from the ratio of the printed ms columns (the n = 0 row is its own, separate measurement).
struct DropBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drop",
        abstract: "Multi-task (Parallel) inference time vs number of dropped adapter layers (AdapterDrop).",
        discussion: """
            The weights are RANDOM (seeded; BERT initialisation for the encoder, AdapterHub "bert" init for adapters \
            and heads): the speed is representative, the outputs are not. Token ids are the same deterministic \
            batch as `bench encoder`.
            """)

    @Option(help: "Built-in model shape with random weights: bert-base or minilm.")
    var config: String = "bert-base"
    @Option(help: "Task counts, comma-separated (e.g. 1,2,4,8,16).")
    var tasks: String = "1,2,4,8"
    @Option(help: "Dropped layers: a range LO..HI or a comma-separated list (e.g. 0..11 or 0,5).")
    var drop: String = "0,5"
    @Option(help: "Sequences per batch.")
    var batch: Int = 1
    @Option(help: "Tokens per sequence.")
    var seq: Int = 128
    @OptionGroup var runtime: RuntimeOptions
    @Option(help: "Timed repetitions per configuration (medians are reported).")
    var repetitions: Int = 5
    @OptionGroup var jsonFile: JSONFileOption

    static func parseList(_ text: String, option: String) throws -> [Int] {
        let t = text.trimmingCharacters(in: .whitespaces)
        if let r = t.range(of: "..") {
            guard let lo = Int(t[..<r.lowerBound]), let hi = Int(t[r.upperBound...]), lo <= hi else {
                throw ValidationError("\(option): expected LO..HI with LO <= HI, got \(text)")
            }
            return Array(lo...hi)
        }
        let values = t.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !values.isEmpty, values.allSatisfy({ $0 != nil }) else {
            throw ValidationError("\(option): expected comma-separated integers or LO..HI, got \(text)")
        }
        return values.map { $0! }
    }

    func validate() throws {
        guard EncoderBench.builtinConfig(config) != nil else { throw ValidationError("--config must be bert-base or minilm") }
        guard batch >= 1, seq >= 1, repetitions >= 1 else {
            throw ValidationError("--batch, --seq and --repetitions must be at least 1")
        }
        let layers = EncoderBench.builtinConfig(config)!.numHiddenLayers
        let maximum = EncoderBench.builtinConfig(config)!.maxPositionEmbeddings
        guard seq <= maximum else { throw ValidationError("--seq \(seq) exceeds the model's maximum \(maximum)") }
        guard try Self.parseList(tasks, option: "--tasks").allSatisfy({ $0 >= 1 && $0 <= 64 }) else {
            throw ValidationError("--tasks: each count must be in 1...64")
        }
        guard try Self.parseList(drop, option: "--drop").allSatisfy({ $0 >= 0 && $0 < layers }) else {
            throw ValidationError("--drop: each value must be in 0..<\(layers) for \(config)")
        }
    }

    func run() throws {
        #if DEBUG
        print("warning: this is a debug build; measure with `swift build -c release` and .build/release/adapterdrop")
        #endif
        let c = EncoderBench.builtinConfig(config)!
        let taskCounts = try Self.parseList(tasks, option: "--tasks")
        let drops = try Self.parseList(drop, option: "--drop")
        let encoder = try BertEncoder(config: c, weights: EncoderBench.randomWeights(c, seed: 42))
        var model = AdapterModel(encoder: encoder, modelName: config)
        let maxTasks = taskCounts.max() ?? 1
        for t in 0..<maxTasks {
            try model.addAdapter(name: "task\(t)", config: try .preset("seq_bn"), seed: UInt64(t + 1))
            model.addHead(PredictionHead(name: "task\(t)", config: .classification(numLabels: 2),
                                         hiddenSize: c.hiddenSize, seed: UInt64(100 + t)))
        }
        let input = try EncoderBench.input(batch: batch, seq: seq, vocabSize: c.vocabSize)
        let context = runtime.context()
        print("model: \(config) (RANDOM weights), seq_bn adapters (reduction factor 16), batch \(batch), seq \(seq), "
              + "threads \(runtime.threads), ISA \(KernelISA.active.rawValue)")
        var rows: [DropBenchRow] = []
        for n in taskCounts {
            let names = (0..<n).map { "task\($0)" }
            let setup = try AdapterComposition.parse(n == 1 ? names[0] : "Parallel(\(names.joined(separator: ",")))")
            // One checked run first, so an input the model rejects is an error instead of a timing of nothing.
            _ = try model(input, setup: setup, heads: names, skipLayers: [], context: context)
            func run(_ dropped: Int) -> () -> Void {
                { _ = try? model(input, setup: setup, heads: names, skipLayers: Set(0..<dropped), context: context) }
            }
            // Each dropped-layer count is timed interleaved with the no-drop baseline; the speed-up is the ratio of
            // that pair's medians.
            for d in drops {
                let row: DropBenchRow
                if d == 0 {
                    let t = InterleavedTimer.medians([.init(name: "n=0", run: run(0))], repetitions: repetitions, warmup: 1)
                    row = DropBenchRow(tasks: n, droppedLayers: 0, threads: runtime.threads, ms: t[0] * 1e3, speedupVsNoDrop: 1)
                } else {
                    let t = InterleavedTimer.medians([.init(name: "n=0", run: run(0)), .init(name: "n=\(d)", run: run(d))],
                                                     repetitions: repetitions, warmup: 1)
                    row = DropBenchRow(tasks: n, droppedLayers: d, threads: runtime.threads, ms: t[1] * 1e3,
                                       speedupVsNoDrop: t[0] / t[1])
                }
                rows.append(row)
                print(String(format: "tasks %2d  dropped %2d  %9.1f ms  speed-up vs no drop %.2f×", n, d, row.ms,
                             row.speedupVsNoDrop))
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

    enum CodingKeys: String, CodingKey {
        case tasks
        case droppedLayers = "dropped_layers"
        case threads, ms
        case speedupVsNoDrop = "speedup_vs_no_drop"
    }
}

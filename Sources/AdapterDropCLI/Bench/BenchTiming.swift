import AdapterDrop
import ArgumentParser
import Dispatch
import Foundation

/// The model options shared by the benchmarks that build a random-weight model (`bench drop`, `bench fusion`,
/// `bench train`): the built-in shape and the tokens per sequence.
struct BenchShapeOptions: ParsableArguments {
    @Option(help: "Built-in model shape with random weights: bert-base or minilm.")
    var config: String = "bert-base"
    @Option(help: "Tokens per sequence.")
    var seq: Int = 128

    /// The built-in configuration named by `--config`.
    /// - Throws: `ValidationError` naming the option for an unknown shape, or a `--seq` below `minimumSeq` or
    ///   above the model's maximum positions.
    func validatedConfig(minimumSeq: Int = 1) throws -> BertConfig {
        guard let c = EncoderBench.builtinConfig(config) else {
            throw ValidationError("--config must be bert-base or minilm, got \(config)")
        }
        guard seq >= minimumSeq else { throw ValidationError("--seq must be at least \(minimumSeq)") }
        guard seq <= c.maxPositionEmbeddings else {
            throw ValidationError("--seq \(seq) exceeds the model's maximum \(c.maxPositionEmbeddings)")
        }
        return c
    }
}

/// Prints a warning when this is a debug build: benchmark numbers only mean something in release builds.
func warnIfDebugBuild() {
    #if DEBUG
    print("warning: this is a debug build; measure with `swift build -c release` and .build/release/adapterdrop")
    #endif
}

/// Interleaved timing: every repetition runs each variant once, in turn, so a noisy neighbour slows all
/// variants alike; the statistic is the median.
struct InterleavedTimer {
    /// One candidate implementation to time.
    struct Variant {
        let name: String
        let run: () -> Void
    }

    /// Seconds on the clock the timings use: wall clock, or with `ADAPTERDROP_BENCH_CLOCK=thread` the calling
    /// thread's CPU time (meaningful at `--threads 1`, where all work runs on that thread: the time without the
    /// waiting a shared machine adds — for comparisons with a peer timed the same way).
    static let threadCPUClock = ProcessInfo.processInfo.environment["ADAPTERDROP_BENCH_CLOCK"] == "thread"

    static func now() -> Double {
        if threadCPUClock {
            var ts = timespec()
            clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
            return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
        }
        return Double(DispatchTime.now().uptimeNanoseconds) * 1e-9
    }

    /// Runs `warmup` untimed rounds, then `repetitions` timed rounds, and returns each variant's median
    /// seconds per call, in the order given.
    static func medians(_ variants: [Variant], repetitions: Int, warmup: Int = 2) -> [Double] {
        for _ in 0..<warmup { for v in variants { v.run() } }
        var samples = Array(repeating: [Double](), count: variants.count)
        for _ in 0..<repetitions {
            for (i, v) in variants.enumerated() {
                let start = now()
                v.run()
                samples[i].append(now() - start)
            }
        }
        return samples.map { s in
            let sorted = s.sorted()
            return sorted.count % 2 == 1 ? sorted[sorted.count / 2]
                                         : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
        }
    }

    /// Enough repetitions for about `seconds` of total run time given one call's estimated cost.
    static func repetitions(estimatedSeconds: Double, budget seconds: Double, minimum: Int = 5, maximum: Int = 200) -> Int {
        min(maximum, max(minimum, Int(seconds / max(estimatedSeconds, 1e-9))))
    }
}

/// One line of a benchmark table and of its JSON output.
struct BenchRow: Codable {
    let kernel: String
    let shape: String
    let threads: Int
    /// Our throughput (GFLOP/s or GB/s, see `unit`).
    let ours: Double
    /// The baseline's throughput in the same unit.
    let baseline: Double
    /// ours / baseline (> 1 means we are faster).
    let ratio: Double
    /// What the baseline is.
    let baselineName: String
    /// "GFLOP/s" or "GB/s".
    let unit: String

    enum CodingKeys: String, CodingKey {
        case kernel, shape, threads, ours, baseline, ratio
        case baselineName = "baseline_name"
        case unit
    }
}

/// Prints `cells` under `header` as a table with left-aligned, padded columns.
func printAlignedTable(header: [String], cells: [[String]]) {
    let widths = header.indices.map { c in max(header[c].count, cells.map { $0[c].count }.max() ?? 0) }
    func line(_ items: [String]) -> String {
        items.enumerated().map { $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }
            .joined(separator: "  ")
    }
    print(line(header))
    print(widths.map { String(repeating: "-", count: $0) }.joined(separator: "  "))
    for c in cells { print(line(c)) }
}

/// Prints kernel rows as an aligned table.
func printTable(_ rows: [BenchRow]) {
    printAlignedTable(
        header: ["kernel", "shape", "threads", "ours", "baseline", "baseline value", "ratio"],
        cells: rows.map { r in
            [r.kernel, r.shape, "\(r.threads)", String(format: "%.1f %@", r.ours, r.unit), r.baselineName,
             String(format: "%.1f %@", r.baseline, r.unit), String(format: "%.2f×", r.ratio)]
        })
}

/// Writes rows as a pretty-printed JSON array with sorted keys, atomically (temporary file + rename).
func writeJSON<Row: Encodable>(_ rows: [Row], to path: String) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    try encoder.encode(rows).write(to: URL(fileURLWithPath: path), options: .atomic)
}

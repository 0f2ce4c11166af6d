import AdapterCore
import AdapterDrop
import ArgumentParser
import Foundation

/// `adapterdrop bench train`: time per training step of one seq_bn adapter + classification head with specialized
/// and robust AdapterDrop (the paper's training-speed view, §3), through the library's `AdapterTrainer`.
///
/// A step is what `AdapterTrainer.train` does per batch: forward with dropout from layer 0 (keeping activations
/// from layer n up), head loss, backward down to layer n, clipping, AdamW. Each mode is timed interleaved with
/// the n = 0 baseline in the same process; the speed-up is that pair's median time(n = 0) / time(mode).
struct TrainBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Training step time vs dropped adapter layers (specialized and robust AdapterDrop).",
        discussion: """
            The weights are RANDOM (seeded; BERT initialisation for the encoder, AdapterHub "bert" init for the \
            adapter and head): the speed is representative, the losses are not. Token ids are the same \
            deterministic batch as `bench encoder`. A timed run is --steps optimizer steps; robust AdapterDrop \
            draws n per step from --robust LO...HI (seed 0), so its time is the mean over those draws.
            """)

    @OptionGroup var shape: BenchShapeOptions
    @Option(help: "Sequences per batch.")
    var batch: Int = 8
    @Option(help: "Specialized AdapterDrop: dropped layers, a range LO..HI or a list (e.g. 0,5).")
    var drop: String = "0,5"
    @Option(help: "Robust AdapterDrop: also time n drawn per step from LO...HI (e.g. 0...11).")
    var robust: String?
    @Option(help: "Optimizer steps per timed run (robust: the draws averaged over).")
    var steps: Int = 4
    @Option(help: "Timed repetitions per mode (medians are reported).")
    var repetitions: Int = 3
    @Flag(name: .customLong("no-pack"), help: "Do not pre-pack the frozen weights (PackedTrainingWeights).")
    var noPack = false
    @Flag(name: .customLong("no-dropout"), help: "Train without dropout.")
    var noDropout = false
    @OptionGroup var runtime: RuntimeOptions
    @OptionGroup var jsonFile: JSONFileOption

    func validate() throws {
        let c = try shape.validatedConfig(minimumSeq: 2)
        guard batch >= 1, steps >= 1, repetitions >= 1 else {
            throw ValidationError("--batch, --steps and --repetitions must be at least 1")
        }
        guard try DropBenchCommand.parseList(drop, option: "--drop").allSatisfy({ $0 >= 0 && $0 <= c.numHiddenLayers }) else {
            throw ValidationError("--drop: each value must be in 0...\(c.numHiddenLayers) for \(shape.config)")
        }
        if let robust {
            let r = try TrainingRunOptions.parseRange(robust)
            guard r.upperBound <= c.numHiddenLayers else { throw ValidationError("--robust \(robust): HI must be ≤ \(c.numHiddenLayers)") }
        }
    }

    /// One timed mode: label, policy, and the dropped-layer text of its row.
    struct Mode {
        var name: String, policy: AdapterDropPolicy, dropped: String
    }

    func run() throws {
        warnIfDebugBuild()
        let c = try shape.validatedConfig(), seq = shape.seq
        let encoder = try BertEncoder(config: c, weights: EncoderBench.randomWeights(c, seed: 42))
        try MemoryEstimate(config: c, batch: batch, sequenceLength: seq, mode: .training, threads: runtime.threads)
            .check(limitBytes: try runtime.memoryLimitBytes())
        let input = try EncoderBench.input(batch: batch, seq: seq, vocabSize: c.vocabSize)
        let dataset = TextClassificationDataset(labels: ["a", "b"], examples: (0..<batch).map { TextExample(text: "\($0)", label: $0 % 2) })
        let context = runtime.context()
        let packed = noPack ? nil : PackedTrainingWeights(encoder)
        var modes = try DropBenchCommand.parseList(drop, option: "--drop").map {
            Mode(name: "specialized", policy: $0 == 0 ? .none : .specialized(droppedLayers: $0), dropped: "\($0)")
        }
        if let robust {
            let r = try TrainingRunOptions.parseRange(robust)
            modes.append(Mode(name: "robust", policy: .robust(droppedLayers: r), dropped: "\(r.lowerBound)...\(r.upperBound)"))
        }
        func trainer(_ policy: AdapterDropPolicy) throws -> AdapterTrainer {
            var o = AdapterTrainingOptions()
            o.batchSize = batch
            o.epochs = steps  // one batch per epoch
            o.learningRate = 1e-4
            o.policy = policy
            o.useDropout = !noDropout
            let adapter = try BottleneckAdapter(name: "task", config: .preset("seq_bn"), hiddenSize: c.hiddenSize,
                                                numLayers: c.numHiddenLayers, seed: 1)
            let head = PredictionHead(name: "task", config: .classification(numLabels: 2), hiddenSize: c.hiddenSize, seed: 2)
            let t = try AdapterTrainer(encoder: encoder, adapter: adapter, head: head, options: o, encode: { _ in input })
            t.packedWeights = packed
            return t
        }
        print("model: \(shape.config) (RANDOM weights), one seq_bn adapter (reduction factor 16) + head, batch \(batch), seq \(seq), "
              + "\(steps) steps per run, dropout \(noDropout ? "off" : "on"), packed \(!noPack), threads \(runtime.threads), "
              + "ISA \(KernelISA.active.rawValue)")
        fflush(nil)  // shown before the timing starts even when stdout is a file or pipe
        let baseline = try trainer(.none)
        _ = try baseline.train(on: dataset, context: context)  // checked run: errors surface before timing
        func step(_ t: AdapterTrainer) -> () -> Void { { _ = try? t.train(on: dataset, context: context) } }
        var rows: [TrainBenchRow] = []
        for mode in modes {
            let row: TrainBenchRow
            if mode.policy == .none {
                let t = InterleavedTimer.medians([.init(name: "n=0", run: step(baseline))], repetitions: repetitions, warmup: 1)
                row = TrainBenchRow(mode: mode.name, droppedLayers: mode.dropped, threads: runtime.threads,
                                    msPerStep: t[0] * 1e3 / Double(steps), speedupVsNoDrop: 1)
            } else {
                let other = try trainer(mode.policy)
                let t = InterleavedTimer.medians([.init(name: "n=0", run: step(baseline)), .init(name: mode.dropped, run: step(other))],
                                                 repetitions: repetitions, warmup: 1)
                row = TrainBenchRow(mode: mode.name, droppedLayers: mode.dropped, threads: runtime.threads,
                                    msPerStep: t[1] * 1e3 / Double(steps), speedupVsNoDrop: t[0] / t[1])
            }
            rows.append(row)
            func pad(_ s: String, _ n: Int) -> String { s + String(repeating: " ", count: max(0, n - s.count)) }
            print(pad(row.mode, 12) + "dropped " + pad(row.droppedLayers, 7)
                  + String(format: "%9.1f ms/step  speed-up vs no drop %.2f×", row.msPerStep, row.speedupVsNoDrop))
            fflush(nil)
        }
        if let json = jsonFile.path { try writeJSON(rows, to: json) }
    }
}

/// One mode's measurement.
struct TrainBenchRow: Codable {
    /// `specialized` (fixed n; n = 0 is no AdapterDrop) or `robust` (n drawn per step).
    let mode: String
    /// n, or `LO...HI` for robust.
    let droppedLayers: String
    let threads: Int
    /// Median milliseconds per optimizer step.
    let msPerStep: Double
    /// time(n = 0) / time(this), both measured interleaved in this run.
    let speedupVsNoDrop: Double

    enum CodingKeys: String, CodingKey {
        case mode
        case droppedLayers = "dropped_layers"
        case threads
        case msPerStep = "ms_per_step"
        case speedupVsNoDrop = "speedup_vs_no_drop"
    }
}

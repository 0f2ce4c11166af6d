import AdapterCore
import AdapterDrop
import ArgumentParser
import Foundation

/// `adapterdrop bench fusion`: AdapterFusion inference over N adapters against the same fusion pruned to K of them
/// (Rücklé et al. 2021, §5.2: pruning a fusion over 8 adapters to 2 made inference 68 % faster), optionally with
/// AdapterDrop (fusion and its adapters skipped in the lowest n layers).
///
/// One seq_bn adapter per task and a "dynamic" fusion over all N (query, key and value `[H, H]` per layer) plus a
/// classification head; the pruned model comes from `AdapterModel.pruningFusion(_:keeping:)` (kept adapters: the
/// first K; which ones does not change the cost). For each n, the full fusion, the pruned fusion and the plain
/// encoder are timed interleaved in the same process; speed-ups are ratios of medians from those rounds.
struct FusionBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fusion",
        abstract: "AdapterFusion inference time over N adapters vs the fusion pruned to K adapters.",
        discussion: """
            The weights are RANDOM (seeded): the speed is representative, the outputs are not. Token ids are the same \
            deterministic batch as `bench encoder`.
            """)

    @OptionGroup var shape: BenchShapeOptions
    @Option(help: "Adapters the full fusion runs over.")
    var adapters: Int = 8
    @Option(help: "Adapters the pruned fusion keeps.")
    var keep: Int = 2
    @Option(help: "Dropped layers (AdapterDrop for the fusion): a range LO..HI or a comma-separated list.")
    var drop: String = "0"
    @Option(help: "Sequences per batch.")
    var batch: Int = 1
    @OptionGroup var runtime: RuntimeOptions
    @Option(help: "Timed rounds (every variant once per round; medians are reported).")
    var repetitions: Int = 5
    @OptionGroup var jsonFile: JSONFileOption

    func validate() throws {
        let c = try shape.validatedConfig()
        guard batch >= 1, repetitions >= 1 else { throw ValidationError("--batch and --repetitions must be at least 1") }
        guard adapters >= 1, adapters <= 64, keep >= 1, keep <= adapters else {
            throw ValidationError("--adapters must be in 1...64 and --keep in 1...--adapters")
        }
        guard try DropBenchCommand.parseList(drop, option: "--drop").allSatisfy({ $0 >= 0 && $0 < c.numHiddenLayers }) else {
            throw ValidationError("--drop: each value must be in 0..<\(c.numHiddenLayers) for \(shape.config)")
        }
    }

    func run() throws {
        warnIfDebugBuild()
        let c = try shape.validatedConfig(), seq = shape.seq
        let drops = try DropBenchCommand.parseList(drop, option: "--drop")
        try runtime.checkInferenceMemory(config: c, batch: batch, sequenceLength: seq)
        let encoder = try BertEncoder(config: c, weights: EncoderBench.randomWeights(c, seed: 42))
        var model = AdapterModel(encoder: encoder, modelName: shape.config)
        let names = (0..<adapters).map { "task\($0)" }
        for (t, name) in names.enumerated() { try model.addAdapter(name: name, config: try .preset("seq_bn"), seed: UInt64(t + 1)) }
        try model.addFusion(adapterNames: names, name: "fusion", config: .dynamicPreset, seed: 7)
        model.addHead(PredictionHead(name: "fusion", config: .classification(numLabels: 2), hiddenSize: c.hiddenSize, seed: 100))
        let full = AdapterComposition.fuse(names.map { .adapter($0) }, name: "fusion")
        let pruned = try model.pruningFusion("fusion", keeping: Array(names.prefix(keep)), name: "pruned")
        let input = try EncoderBench.input(batch: batch, seq: seq, vocabSize: c.vocabSize)
        let threads = runtime.threads, context = runtime.context()
        print("model: \(shape.config) (RANDOM weights), \(adapters) seq_bn adapters (reduction factor 16) + dynamic fusion, pruned to "
              + "\(keep) (\(pruned.setup)), batch \(batch), seq \(seq), threads \(threads), ISA \(KernelISA.active.rawValue)")
        // Checked runs: errors surface before timing.
        _ = try model(input, setup: full, heads: ["fusion"], context: context)
        _ = try pruned.model(input, setup: pruned.setup, heads: ["fusion"], context: context)
        var variants = [InterleavedTimer.Variant(name: "encoder", run: { _ = try? encoder(input, context: context) })]
        for d in drops {
            let skip = Set(0..<d)
            variants.append(.init(name: "full n=\(d)", run: { _ = try? model(input, setup: full, heads: ["fusion"], skipLayers: skip, context: context) }))
            variants.append(.init(name: "pruned n=\(d)", run: {
                _ = try? pruned.model(input, setup: pruned.setup, heads: ["fusion"], skipLayers: skip, context: context)
            }))
        }
        let t = InterleavedTimer.medians(variants, repetitions: repetitions, warmup: 1)
        var rows: [FusionBenchRow] = []
        for (i, d) in drops.enumerated() {
            let f = t[1 + 2 * i], p = t[2 + 2 * i]
            let row = FusionBenchRow(adapters: adapters, kept: keep, droppedLayers: d, threads: threads, fullMs: f * 1e3,
                                     prunedMs: p * 1e3, speedupPrunedVsFull: f / p, encoderMs: t[0] * 1e3)
            rows.append(row)
            print(String(format: "dropped %2d  fusion over %d: %8.1f ms  pruned to %d: %8.1f ms  speed-up %.2f×  (encoder alone %.1f ms)",
                         d, adapters, row.fullMs, keep, row.prunedMs, row.speedupPrunedVsFull, row.encoderMs))
        }
        if let json = jsonFile.path { try writeJSON(rows, to: json) }
    }
}

/// One `bench fusion` measurement.
struct FusionBenchRow: Codable {
    let adapters: Int
    let kept: Int
    let droppedLayers: Int
    let threads: Int
    /// Median ms of the fusion over all adapters.
    let fullMs: Double
    /// Median ms of the pruned fusion.
    let prunedMs: Double
    /// fullMs / prunedMs, from the same interleaved rounds.
    let speedupPrunedVsFull: Double
    /// Median ms of the plain encoder on the same batch.
    let encoderMs: Double

    enum CodingKeys: String, CodingKey {
        case adapters, kept
        case droppedLayers = "dropped_layers"
        case threads
        case fullMs = "full_ms"
        case prunedMs = "pruned_ms"
        case speedupPrunedVsFull = "speedup_pruned_vs_full"
        case encoderMs = "encoder_ms"
    }
}

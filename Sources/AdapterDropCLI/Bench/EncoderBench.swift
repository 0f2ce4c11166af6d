import AdapterCore
import AdapterDrop
import ArgumentParser
import Foundation

/// `adapterdrop bench encoder`: the whole encoder forward pass (embeddings, every layer, pooler) on a batch of
/// deterministic token ids, timed as the median of repeated runs. Run by `scripts/peers/bench_peers.py`
/// against PyTorch eager and ONNX Runtime on the same weights.
struct EncoderBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "encoder",
        abstract: "Time the BERT encoder forward pass (ms per batch, sequences/s, tokens/s).",
        discussion: """
            Token ids are deterministic: id[b, s] = 101 for s == 0, else 1000 + (b·131 + s·31) mod (vocab − 1000); \
            the attention mask is all ones and type ids are 0. With --config the weights are RANDOM \
            (seeded normal, std 0.02, LayerNorm γ = 1, β = 0): the speed is representative, the outputs are not.
            """)

    @Option(help: "A Hugging Face model folder (config.json + safetensors) to load real weights from.")
    var model: String?

    @Option(help: "Built-in shape with random seeded weights instead of --model: bert-base or minilm.")
    var config: String?

    @Option(help: "Sequences per batch.")
    var batch: Int = 1

    @Option(help: "Tokens per sequence.")
    var seq: Int = 128

    @OptionGroup var runtime: RuntimeOptions

    @Option(help: "Timed repetitions (the median is reported).")
    var repetitions: Int = 10

    @Option(help: "Untimed warm-up runs.")
    var warmup: Int = 2

    @Option(help: "Seed of the random weights (--config only).")
    var seed: UInt64 = 42

    @Flag(inversion: .prefixedNo,
          help: "Hold the layer weight matrices only pre-packed for the GEMM (the default: faster, same memory; --no-prepack times plain weights packed in every product).")
    var prepack = true

    @OptionGroup var jsonFile: JSONFileOption

    @Option(help: "Write last_hidden_state [batch, seq, hidden] as raw little-endian float32 to this file (for parity checks).")
    var dumpOutput: String?

    func validate() throws {
        guard (model == nil) != (config == nil) else {
            throw ValidationError("give exactly one of --model DIR or --config bert-base|minilm")
        }
        if let config {
            guard let c = EncoderBench.builtinConfig(config) else { throw ValidationError("--config must be bert-base or minilm, got \(config)") }
            guard seq <= c.maxPositionEmbeddings else {
                throw ValidationError("--seq \(seq) exceeds the model's maximum \(c.maxPositionEmbeddings)")
            }
        }
        guard batch >= 1, seq >= 1 else { throw ValidationError("--batch and --seq must be at least 1") }
        guard repetitions >= 1, warmup >= 0 else { throw ValidationError("--repetitions must be ≥ 1, --warmup ≥ 0") }
        if let dumpOutput { try checkWritableFile(dumpOutput, option: "--dump-output") }
    }

    func run() throws {
        warnIfDebugBuild()
        let encoder: BertEncoder
        let label: String, weightsLabel: String
        if let model {
            encoder = try BertEncoder(modelFolder: URL(fileURLWithPath: model), prepackWeights: prepack)
            label = URL(fileURLWithPath: model).lastPathComponent
            weightsLabel = "checkpoint"
        } else {
            let c = EncoderBench.builtinConfig(config!)!
            encoder = try BertEncoder(config: c, weights: EncoderBench.randomWeights(c, seed: seed),
                                      prepackWeights: prepack)
            label = config!
            weightsLabel = "random (seed \(seed), NOT a trained model)"
        }
        guard seq <= encoder.maximumSequenceLength else {
            // A CLIError: a ValidationError thrown from run() prints the top-level usage instead of this command's.
            throw CLIError("--seq \(seq) exceeds the model's maximum \(encoder.maximumSequenceLength)")
        }
        try runtime.checkInferenceMemory(config: encoder.config, batch: batch, sequenceLength: seq)
        let input = try EncoderBench.input(batch: batch, seq: seq, vocabSize: encoder.config.vocabSize)
        let context = runtime.context()
        let loadPeak = EncoderBench.residentHighWaterMiB()
        EncoderBench.resetPeakResident()  // from here on VmHWM is the inference peak (weights + activations)
        var last: EncoderOutput? = nil
        let forward = { last = try? encoder(input, context: context) }
        let seconds = InterleavedTimer.medians([.init(name: "encoder", run: forward)],
                                               repetitions: repetitions, warmup: warmup)[0]
        guard let output = last else { throw CLIError("the encoder rejected the input") }
        let row = EncoderBenchRow(
            model: label, weights: weightsLabel, batch: batch, seq: seq, threads: runtime.threads,
            msPerBatch: seconds * 1e3, sequencesPerSecond: Double(batch) / seconds,
            tokensPerSecond: Double(batch * seq) / seconds, repetitions: repetitions,
            prepackedWeights: prepack, loadPeakResidentMiB: loadPeak,
            inferencePeakResidentMiB: EncoderBench.residentHighWaterMiB(), isa: KernelISA.active.rawValue)
        print("model: \(label), weights: \(weightsLabel), ISA: \(row.isa), prepacked weights: \(prepack)")
        printEncoderTable([row])
        if let json = jsonFile.path { try writeJSON([row], to: json) }
        if let dumpOutput {
            let data = output.lastHiddenState.contiguous().withUnsafeBufferPointer { Data(buffer: $0) }
            try data.write(to: URL(fileURLWithPath: dumpOutput), options: .atomic)
        }
    }
}

/// One measured configuration (a line of the table and of the JSON output).
struct EncoderBenchRow: Codable {
    let model: String
    /// "checkpoint" or a description of the random initialisation.
    let weights: String
    let batch: Int
    let seq: Int
    let threads: Int
    /// Median wall-clock milliseconds of one forward pass over the batch.
    let msPerBatch: Double
    let sequencesPerSecond: Double
    let tokensPerSecond: Double
    let repetitions: Int
    let prepackedWeights: Bool
    /// Peak resident set size while loading (Linux VmHWM before the first forward pass), MiB; nil where
    /// /proc is not available.
    let loadPeakResidentMiB: Double?
    /// Peak resident set size from just before the first forward pass (weights loaded) to the end: the Linux
    /// VmHWM after resetting it through /proc/self/clear_refs; nil where that is not available.
    let inferencePeakResidentMiB: Double?
    let isa: String

    enum CodingKeys: String, CodingKey {
        case model, weights, batch, seq, threads
        case msPerBatch = "ms_per_batch"
        case sequencesPerSecond = "sequences_per_second"
        case tokensPerSecond = "tokens_per_second"
        case repetitions
        case prepackedWeights = "prepacked_weights"
        case loadPeakResidentMiB = "load_peak_resident_mib"
        case inferencePeakResidentMiB = "inference_peak_resident_mib"
        case isa
    }
}

func printEncoderTable(_ rows: [EncoderBenchRow]) {
    printAlignedTable(
        header: ["model", "batch", "seq", "threads", "ms/batch", "seq/s", "tokens/s", "load peak RSS MiB",
                 "inference peak RSS MiB"],
        cells: rows.map { r in
            [r.model, "\(r.batch)", "\(r.seq)", "\(r.threads)", String(format: "%.1f", r.msPerBatch),
             String(format: "%.2f", r.sequencesPerSecond), String(format: "%.0f", r.tokensPerSecond),
             r.loadPeakResidentMiB.map { String(format: "%.0f", $0) } ?? "n/a",
             r.inferencePeakResidentMiB.map { String(format: "%.0f", $0) } ?? "n/a"]
        })
}

enum EncoderBench {
    /// BERT-base (uncased) and all-MiniLM-L6-v2 hyper-parameters.
    static func builtinConfig(_ name: String) -> BertConfig? {
        switch name {
        case "bert-base":
            return BertConfig(hiddenSize: 768, numHiddenLayers: 12, numAttentionHeads: 12, intermediateSize: 3072,
                              vocabSize: 30522)
        case "minilm":
            return BertConfig(hiddenSize: 384, numHiddenLayers: 6, numAttentionHeads: 12, intermediateSize: 1536,
                              vocabSize: 30522)
        default:
            return nil
        }
    }

    /// Seeded random weights in BERT's initialisation: N(0, 0.02²) for matrices and embeddings, zero biases,
    /// LayerNorm γ = 1 and β = 0.
    static func randomWeights(_ config: BertConfig, seed: UInt64) throws -> BertWeights {
        var rng = SeededRNG(seed: seed)
        var named: [String: Tensor] = [:]
        for p in BertWeights.expectedParameters(for: config) {
            if p.name.hasSuffix("LayerNorm.weight") {
                named[p.name] = Tensor(shape: p.shape, repeating: 1)
            } else if p.shape.count == 1 {
                named[p.name] = Tensor(zeros: p.shape)
            } else {
                named[p.name] = Tensor.randomNormal(shape: p.shape, std: 0.02, using: &rng)
            }
        }
        return try BertWeights(config: config, namedTensors: named)
    }

    /// The deterministic benchmark batch (see the command's discussion; the peer script builds the same ids).
    static func input(batch: Int, seq: Int, vocabSize: Int) throws -> EncoderInput {
        var ids = [Int](repeating: 0, count: batch * seq)
        let span = max(vocabSize - 1000, 1)
        for b in 0..<batch {
            for s in 0..<seq { ids[b * seq + s] = s == 0 ? 101 : 1000 + (b * 131 + s * 31) % span }
        }
        return try EncoderInput(batchSize: batch, sequenceLength: seq, inputIds: ids)
    }

    /// Resets the kernel's peak-RSS counter (VmHWM) of this process (Linux ≥ 4.0: write 5 to clear_refs).
    static func resetPeakResident() {
        try? "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8)
    }

    /// VmHWM (peak resident set size of this process image; unlike getrusage's ru_maxrss it does not include
    /// the parent's peak before exec) from /proc/self/status in MiB, nil if unavailable.
    static func residentHighWaterMiB() -> Double? {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let kib = line.split(separator: " ").compactMap { Double($0) }.first
            return kib.map { $0 / 1024 }
        }
        return nil
    }
}

import AdapterCore
import AdapterDrop
import ArgumentParser
import Foundation

/// `adapterdrop predict`: run an adapter setup (the reference's notation) and print each head's logits and labels.
/// The logic lives in the library (`AdapterModel.loading`, `AdapterModel.predict`), tested in PredictionTests.
struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Predict with adapters, AdapterFusion and AdapterDrop: logits and labels per head.",
        discussion: "With --json: {\"heads\": [{\"name\", \"logits\", \"labels\"}]}.")

    @OptionGroup var model: ModelFolderOption
    @OptionGroup var adapters: AdapterFolderOptions
    @Option(name: .customLong("fusion"), help: "An AdapterHub fusion folder (repeatable; loaded after the adapters, with its head if saved: the default head of its Fuse setup).")
    var fusions: [String] = []
    @Option(name: .customLong("head-folder"), help: "An extra AdapterHub head folder (repeatable).")
    var headFolders: [String] = []
    @Option(help: "The setup: a, Parallel(a,b), Stack(a,b), Fuse(a,b), Stack(Fuse(a,b),c), or none.")
    var setup: String
    @Option(name: .customLong("head"), help: "A head to run (repeatable; default: the setup's heads).")
    var heads: [String] = []
    @Option(help: "AdapterDrop: comma-separated layers whose adapters do not run, e.g. 0,1,2.")
    var skipLayers: String?
    @Option(name: .customLong("text"), help: "A text (repeatable; needs the model's tokenizer).")
    var texts: [String] = []
    @Option(help: "A JSONL file with one {\"text\": …[, \"text_pair\": …]} object per line (- for standard input).")
    var input: String?
    @Option(help: "Token ids as JSON: [[…], …] (ragged rows are padded) or […].")
    var inputIds: String?
    @Option(help: "Attention mask as JSON, same shape as --input-ids.")
    var attentionMask: String?
    @Option(help: "Token type ids as JSON, same shape as --input-ids.")
    var tokenTypeIds: String?
    @Option(help: "Shorten texts longer than the model's maximum (longest_first|only_first|only_second).")
    var truncation: TruncationStrategy?
    @Option(name: .customLong("batch-size"), help: "Texts per forward pass with --text/--input (each batch padded to its longest text).")
    var batchSize: Int = 32
    @OptionGroup var runtime: RuntimeOptions
    @OptionGroup var output: OutputOptions

    func validate() throws {
        let sources = [!texts.isEmpty, input != nil, inputIds != nil].filter { $0 }.count
        guard sources == 1 else { throw ValidationError("give exactly one of --text, --input FILE or --input-ids JSON") }
        for t in texts { try checkArgumentText(t, option: "--text") }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1, got \(batchSize)") }
        if inputIds == nil && (attentionMask != nil || tokenTypeIds != nil) {
            throw ValidationError("--attention-mask and --token-type-ids go with --input-ids")
        }
    }

    static func parseSkipLayers(_ text: String) throws -> Set<Int> {
        var out = Set<Int>()
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            guard let v = Int(part.trimmingCharacters(in: .whitespaces)) else {
                throw CLIError("--skip-layers: \"\(part)\" is not an integer (expected e.g. 0,1,2)")
            }
            guard out.insert(v).inserted else { throw CLIError("--skip-layers: layer \(v) is given twice in \"\(text)\"") }
        }
        return out
    }

    /// Loads each fusion folder (after the adapters) and the head saved in it, if any (`adapterdrop fuse` writes
    /// the fusion's trained head there). Returns fusion name → head name for the folders that hold a head.
    /// - Throws: `CLIError` for a missing folder, the fusion and head loaders' errors.
    static func loadFusions(_ fusionFolders: [String], into model: inout AdapterModel) throws -> [String: String] {
        var out: [String: String] = [:]
        for path in fusionFolders {
            let url = try existingFolder(path, what: "fusion folder")
            let name = try model.loadFusion(from: url)
            if FileManager.default.fileExists(atPath: url.appendingPathComponent(AdapterFiles.headConfig).path) {
                out[name] = try model.loadHead(from: url)
            }
        }
        return out
    }

    /// The heads of a `Fuse(…)` setup when none are given: the fusion's own head (from its folder) unless a head
    /// named like the fusion exists; nil (the library's default) otherwise.
    static func fusionDefaultHeads(_ setup: AdapterComposition?, _ fusionHeads: [String: String], _ model: AdapterModel) -> [String]? {
        guard let name = setup?.fusionName, model.heads[name] == nil, let head = fusionHeads[name] else { return nil }
        return [head]
    }

    func run() throws {
        let setupValue = try AdapterComposition.parse(setup)
        try setupValue?.checkDistinctChildren()  // Parallel(a,a) would give one head output for two channels
        let skip = try skipLayers.map(Self.parseSkipLayers) ?? []
        var adapterModel = try AdapterModel.loading(modelFolder: model.path, adapterFolders: adapters.folders, headFolders: headFolders)
        let fusionHeads = try Self.loadFusions(fusions, into: &adapterModel)
        let batches: [EncoderInput]
        if let inputIds {
            batches = [try Encode.encoderInput(inputIds: inputIds, attentionMask: attentionMask, tokenTypeIds: tokenTypeIds,
                                               padTokenId: adapterModel.encoder.config.padTokenId ?? 0)]
        } else {
            let pretrained = try model.pretrained()
            let inputs = try input.map(readJSONLTexts) ?? texts.map { .single($0) }
            batches = try tokenizeInBatches(pretrained, inputs, batchSize: batchSize, truncation: truncation)
        }
        for batch in batches {
            try runtime.checkInferenceMemory(config: adapterModel.encoder.config, batch: batch.batchSize,
                                             sequenceLength: batch.sequenceLength, replicas: setupValue?.parallelChannels ?? 1)
        }
        // Batch by batch; the heads' rows are concatenated in input order.
        var merged: PredictionResult? = nil
        let context = runtime.context()
        for batch in batches {
            let part = try adapterModel.predict(batch, setup: setupValue,
                                                heads: heads.isEmpty ? Self.fusionDefaultHeads(setupValue, fusionHeads, adapterModel) : heads,
                                                skipLayers: skip, context: context)
            guard var sum = merged else { merged = part; continue }
            for i in sum.heads.indices {
                sum.heads[i].logits += part.heads[i].logits
                sum.heads[i].labels += part.heads[i].labels
            }
            merged = sum
        }
        guard let result = merged else { throw CLIError("no inputs") }
        // Finite-but-huge weights (e.g. from a diverged run) give NaN/Inf logits: no label can be read from them.
        for h in result.heads {
            if let row = h.logits.firstIndex(where: { $0.contains { !$0.isFinite } }) {
                throw CLIError("head \(h.name): the logits of input \(row) are not finite (NaN/Inf); the adapter, fusion or head weights are unusable (e.g. a diverged training run)")
            }
        }
        if output.json {
            try printJSON(result)
        } else {
            for h in result.heads {
                print("head \(h.name)")
                for (i, (row, label)) in zip(h.logits, h.labels).enumerated() {
                    print("  \(i)\t\(label)\t\(row.map { String(format: "%.5f", $0) }.joined(separator: " "))")
                }
            }
        }
    }
}

import AdapterCore
import AdapterDrop
import ArgumentParser
import Foundation

/// `adapterdrop prune`: keep the K adapters of a fusion with the highest average fusion activation over a
/// dataset (AdapterDrop paper §5.2) and save the pruned fusion and kept adapters. Logic: `AdapterModel.pruneFusion`.
struct Prune: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Prune an AdapterFusion to the adapters with the highest average activation over a dataset.",
        discussion: "With --json: {\"kept\", \"dropped\", \"fusion\", \"activations\"} instead of the table.")

    @OptionGroup var model: ModelFolderOption
    @OptionGroup var adapters: AdapterFolderOptions
    @Option(help: "The AdapterHub fusion folder to prune (its head, if saved there, is kept with the pruned fusion).")
    var fusion: String
    @Option(help: "JSONL (- for standard input): one {\"text\"[, \"text_pair\"]} or {\"input_ids\"[, \"attention_mask\", \"token_type_ids\"]} per line.")
    var data: String
    @Option(help: "How many adapters to keep (1 … N).")
    var keep: Int
    @Option(help: "global (top K over all layers) or per-layer (union of each layer's top K).")
    var scope: FusionActivationTable.Scope = .global
    @Option(help: "Examples per batch.")
    var batchSize: Int = 32
    @Option(help: "Output folder: <fusion name>/, one folder per kept adapter, activations.json (must not exist or be empty unless --overwrite); written atomically at the end.")
    var out: String
    @Flag(help: "Replace a non-empty --out folder.")
    var overwrite = false
    @OptionGroup var runtime: RuntimeOptions
    @OptionGroup var output: OutputOptions

    func validate() throws {
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1") }
    }

    /// Parses JSONL lines (`data`, named `path` in errors) with token ids (`input_ids`, optional `attention_mask`, `token_type_ids`); nil if the
    /// file's first line has no `input_ids` (then it is read as texts).
    static func readIdLines(_ data: Data, name path: String) throws -> [(ids: [Int], mask: [Int]?, types: [Int]?)]? {
        var rows: [(ids: [Int], mask: [Int]?, types: [Int]?)] = []
        for (n, line) in String(decoding: data, as: UTF8.self).split(separator: "\n").enumerated() {
            let t = line.trimmingCharacters(in: .whitespaces)
            if t.isEmpty { continue }
            let o = try jsonLineObject(t, path: path, line: n + 1)
            /// An array of exact integers (1.5 or "1" is an error, not truncated), nil when the key is absent.
            func integers(_ key: String) throws -> [Int]? {
                guard let value = o[key] else { return nil }
                guard let items = value.arrayValue, case let v = items.compactMap(\.intValue), v.count == items.count else {
                    throw CLIError("\(path):\(n + 1): \"\(key)\" must be an array of integers")
                }
                return v
            }
            guard let ids = try integers("input_ids") else {
                if rows.isEmpty { return nil }
                throw CLIError("\(path):\(n + 1): missing integer array \"input_ids\"")
            }
            let mask = try integers("attention_mask")
            let types = try integers("token_type_ids")
            if let m = mask, m.count != ids.count { throw CLIError("\(path):\(n + 1): attention_mask length \(m.count) ≠ input_ids \(ids.count)") }
            if let y = types, y.count != ids.count { throw CLIError("\(path):\(n + 1): token_type_ids length \(y.count) ≠ input_ids \(ids.count)") }
            rows.append((ids, mask, types))
        }
        if rows.isEmpty { throw CLIError("\(path): no inputs (the file has no JSON lines)") }
        return rows
    }

    func run() throws {
        try checkOutputFolder(out, overwrite: overwrite)
        var adapterModel = try AdapterModel.loading(modelFolder: model.path, adapterFolders: adapters.folders)
        let fusionURL = try existingFolder(fusion, what: "fusion folder")
        let fusionName = try adapterModel.loadFusion(from: fusionURL)
        // The fusion's trained head (`adapterdrop fuse` saves it in the fusion folder) goes into the pruned fusion's folder.
        let fusionHead = FileManager.default.fileExists(atPath: fusionURL.appendingPathComponent(AdapterFiles.headConfig).path)
            ? try adapterModel.loadHead(from: fusionURL) : nil
        var batches: [EncoderInput] = []
        let bytes = try readInputFile(data), name = data == "-" ? "<stdin>" : data
        if let rows = try Self.readIdLines(bytes, name: name) {
            let pad = adapterModel.encoder.config.padTokenId ?? 0
            for start in stride(from: 0, to: rows.count, by: batchSize) {
                let chunk = rows[start..<min(start + batchSize, rows.count)]
                let seq = chunk.map(\.ids.count).max()!
                func padded(_ r: [Int], _ v: Int) -> [Int] { r + Array(repeating: v, count: seq - r.count) }
                batches.append(try EncoderInput(
                    batchSize: chunk.count, sequenceLength: seq, inputIds: chunk.flatMap { padded($0.ids, pad) },
                    attentionMask: chunk.flatMap { padded($0.mask ?? Array(repeating: 1, count: $0.ids.count), 0) },
                    tokenTypeIds: chunk.flatMap { padded($0.types ?? Array(repeating: 0, count: $0.ids.count), 0) }))
            }
        } else {
            let pretrained = try model.pretrained()
            let texts = try parseJSONLTexts(bytes, name: name)
            for start in stride(from: 0, to: texts.count, by: batchSize) {
                batches.append(try pretrained.tokenize(Array(texts[start..<min(start + batchSize, texts.count)]), truncation: .longestFirst).1)
            }
        }
        for b in batches {
            try runtime.checkInferenceMemory(config: adapterModel.encoder.config, batch: b.batchSize,
                                             sequenceLength: b.sequenceLength)
        }
        let (table, pruned) = try adapterModel.pruneFusion(fusionName, keep: keep, scope: scope, batches: batches,
                                                           context: runtime.context())
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        let activations = try encoder.encode(table)
        try publishOutputFolder(out, overwrite: overwrite) { folder in
            try pruned.save(to: folder)
            if let fusionHead { try adapterModel.saveHead(fusionHead, to: folder.appendingPathComponent(pruned.fusion.name)) }
            try activations.write(to: folder.appendingPathComponent("activations.json"), options: .atomic)
        }
        struct Summary: Encodable { let kept: [String]; let dropped: [String]; let fusion: String; let activations: FusionActivationTable }
        if output.json {
            try printJSON(Summary(kept: pruned.fusion.adapterNames, dropped: pruned.dropped, fusion: pruned.fusion.name, activations: table))
        } else {
            print(table)
            print("kept \(pruned.fusion.adapterNames.joined(separator: ", ")); dropped \(pruned.dropped.joined(separator: ", "))")
            print("wrote \(out)/\(pruned.fusion.name) and the kept adapters; run with --setup '\(pruned.setup)'")
        }
    }
}

extension FusionActivationTable.Scope: ExpressibleByArgument {}

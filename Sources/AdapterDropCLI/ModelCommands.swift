import AdapterCore
import AdapterDrop
import ArgumentParser
import Foundation

/// Errors the CLI reports itself (one line, non-zero exit).
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

/// Refuses a command-line text that holds U+FFFD: the program's arguments arrive already decoded, with each byte
/// that is not valid UTF-8 replaced by U+FFFD, so this is where such bytes (e.g. a Latin-1 shell) would otherwise be
/// lost silently. Texts that really contain U+FFFD can go through `--input FILE`.
/// - Throws: `CLIError` naming the option and the character position.
func checkArgumentText(_ text: String, option: String) throws {
    guard let i = text.firstIndex(of: "\u{FFFD}") else { return }
    throw CLIError("\(option): character \(text.distance(from: text.startIndex, to: i) + 1) is U+FFFD, the replacement for "
                   + "bytes that are not valid UTF-8; pass UTF-8 text (or use --input FILE)")
}

/// Reads `text` (and optional `text_pair`) from each non-empty line of a JSONL file.
/// - Throws: `CLIError` naming the file and line for unreadable files, invalid JSON, or a missing `text`.
func readJSONLTexts(_ path: String) throws -> [TokenizerInput] {
    try parseJSONLTexts(try readInputFile(path), name: path == "-" ? "<stdin>" : path)
}

/// `readJSONLTexts` on bytes already read; `path` names them in errors.
func parseJSONLTexts(_ data: Data, name path: String) throws -> [TokenizerInput] {
    guard let text = String(data: data, encoding: .utf8) else { throw CLIError("\(path): not valid UTF-8") }
    var inputs: [TokenizerInput] = []
    for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
        let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.isEmpty { continue }
        let object = try jsonLineObject(trimmed, path: path, line: number + 1)
        guard let t = object["text"]?.stringValue else { throw CLIError("\(path):\(number + 1): missing string key \"text\"") }
        if let p = object["text_pair"]?.stringValue { inputs.append(.pair(t, p)) } else { inputs.append(.single(t)) }
    }
    if inputs.isEmpty { throw CLIError("\(path): no inputs (the file has no JSON lines)") }
    return inputs
}

/// One JSONL line parsed with the library's strict JSON parser (`AdapterJSON.parse`: no duplicate keys, exact
/// integers) as an object.
/// - Throws: `CLIError` `path:line: invalid JSON: …` or `path:line: not a JSON object`.
func jsonLineObject(_ text: String, path: String, line: Int) throws -> [String: AdapterJSON] {
    let value: AdapterJSON
    do { value = try AdapterJSON.parse(Data(text.utf8), file: path) } catch let AdapterError.invalidJSON(_, reason) {
        throw CLIError("\(path):\(line): invalid JSON: \(reason)")
    }
    guard let object = value.objectValue else { throw CLIError("\(path):\(line): not a JSON object") }
    return object
}

/// The bytes of an input file, or of standard input when `path` is `-`.
/// - Throws: `CLIError` naming the path when it is missing, a folder, or unreadable.
func readInputFile(_ path: String) throws -> Data {
    if path == "-" { return FileHandle.standardInput.readDataToEndOfFile() }
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { throw CLIError("\(path): no such file") }
    guard !isDirectory.boolValue else { throw CLIError("\(path): is a folder, expected a JSONL file") }
    guard let data = FileManager.default.contents(atPath: path) else { throw CLIError("\(path): cannot read file") }
    return data
}

/// The URL of an existing folder, or a one-line error naming the path.
func existingFolder(_ path: String, what: String = "model folder") throws -> URL {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { throw CLIError("\(path): \(what) not found") }
    guard isDirectory.boolValue else {
        let hint = path.hasSuffix(".json") || path.hasSuffix(".safetensors") ? " (give the folder that holds it)" : ""
        throw CLIError("\(path): is a file, not a \(what)\(hint)")
    }
    return URL(fileURLWithPath: path)
}

/// Loads a model folder (tokenizer + encoder) with a one-line error for a missing path.
func loadPretrained(_ path: String) throws -> PretrainedModel {
    try PretrainedModel(folder: try existingFolder(path))
}

/// Prints a Codable value as compact JSON on one line.
func printJSON<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}

extension TruncationStrategy: ExpressibleByArgument {}
extension Pooling.Mode: ExpressibleByArgument {}

/// `adapterdrop embed`: sentence embeddings.
struct Embed: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Sentence embeddings from a model folder.",
        discussion: "With --json: one JSON object per input: {\"text\", \"embedding\"}.")

    @OptionGroup var model: ModelFolderOption
    @Option(name: .customLong("text"), help: "A text to embed (repeatable).")
    var texts: [String] = []
    @Option(help: "A JSONL file with one {\"text\": …} object per line (- for standard input).")
    var input: String?
    @Option(help: "Pooling: mean (sentence-transformers) or cls.")
    var pooling: Pooling.Mode = .mean
    @Flag(help: "L2-normalise each embedding.")
    var normalize = false
    @Option(help: "Shorten texts longer than the model's maximum (longest_first|only_first|only_second); without it they are an error.")
    var truncation: TruncationStrategy?
    @Option(name: .customLong("batch-size"), help: "Texts per forward pass (each batch padded to its longest text; output is printed per batch).")
    var batchSize: Int = 32
    @OptionGroup var runtime: RuntimeOptions
    @OptionGroup var output: OutputOptions

    func validate() throws {
        guard (texts.isEmpty) != (input == nil) else { throw ValidationError("give either --text (one or more) or --input FILE") }
        for t in texts { try checkArgumentText(t, option: "--text") }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1, got \(batchSize)") }
    }

    func run() throws {
        let pretrained = try model.pretrained()
        let inputs = try input.map(readJSONLTexts) ?? texts.map { .single($0) }
        let strings = inputs.map { if case .single(let t) = $0 { t } else { "" } }
        if inputs.contains(where: { if case .pair = $0 { true } else { false } }) {
            throw CLIError("\(input ?? "--text"): embed takes single texts, not text_pair")
        }
        // All batches are tokenized (and checked) before the first forward pass, then run and printed one by one.
        let batches = try tokenizeInBatches(pretrained, strings.map { .single($0) }, batchSize: batchSize, truncation: truncation)
        for batch in batches {
            try runtime.checkInferenceMemory(config: pretrained.encoder.config, batch: batch.batchSize, sequenceLength: batch.sequenceLength)
        }
        let context = runtime.context()
        var first = 0
        for batch in batches {
            let embeddings = try pretrained.encoder(batch, context: context).sentenceEmbeddings(pooling, normalize: normalize)
            let width = embeddings.shape[1], values = embeddings.scalars
            for r in 0..<batch.batchSize {
                let row = Array(values[(r * width)..<((r + 1) * width)])
                if output.json {
                    struct Line: Encodable { let text: String; let embedding: [Float] }
                    try printJSON(Line(text: strings[first + r], embedding: row))
                } else {
                    print(row.map { String($0) }.joined(separator: " "))
                }
            }
            first += batch.batchSize
            fflush(nil)  // stream each batch (nil: every output stream)
        }
    }
}

/// `adapterdrop tokenize`: token ids as the Hugging Face fast tokenizer produces them.
struct Tokenize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Tokenize a text (or a pair) with a model folder's tokenizer.",
        discussion: "With --json: {\"input_ids\", \"token_type_ids\", \"attention_mask\", \"tokens\"}.")

    @OptionGroup var model: ModelFolderOption
    @Option(help: "The text.")
    var text: String
    @Option(help: "The second text of a pair.")
    var textPair: String?
    @Option(help: "Maximum length in tokens, special tokens included (default with --truncation: the model's maximum).")
    var maxLength: Int?
    @Option(help: "Shorten to --max-length, or without it to the model's maximum as embed does (longest_first|only_first|only_second).")
    var truncation: TruncationStrategy?
    @OptionGroup var output: OutputOptions

    func validate() throws {
        if let maxLength, maxLength < 1 { throw ValidationError("--max-length must be positive") }
        try checkArgumentText(text, option: "--text")
        if let textPair { try checkArgumentText(textPair, option: "--text-pair") }
    }

    func run() throws {
        let tokenizer: SubwordTokenizer, limit: Int?
        if truncation != nil && maxLength == nil {
            // The same maximum embed and predict truncate to (position table, sentence-transformers and
            // tokenizer_config limits).
            let pretrained = try model.pretrained()
            (tokenizer, limit) = (pretrained.tokenizer, pretrained.maxLength)
        } else {
            (tokenizer, limit) = (try PretrainedModel.loadTokenizer(at: try model.folder()), maxLength)
        }
        let input: TokenizerInput = textPair.map { .pair(text, $0) } ?? .single(text)
        let batch = try tokenizer.encode(batch: [input], options: EncodingOptions(
            truncation: truncation ?? (limit == nil ? nil : .longestFirst), maxLength: limit))
        let e = batch.encodings[0]
        struct Output: Encodable {
            let input_ids: [Int], token_type_ids: [Int], attention_mask: [Int], tokens: [String]
        }
        let out = Output(input_ids: e.ids, token_type_ids: e.typeIDs, attention_mask: e.attentionMask, tokens: e.tokens)
        if output.json { try printJSON(out) } else { print(e.tokens.joined(separator: " ")); print(e.ids.map(String.init).joined(separator: " ")) }
    }
}

/// `adapterdrop encode`: last hidden states for given token ids.
struct Encode: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the encoder on token ids (no tokenizer needed).",
        discussion: "With --json: {\"last_hidden_state\": [batch][seq][hidden]}.")

    @OptionGroup var model: ModelFolderOption
    @Option(help: "Token ids as JSON: [[…], …] (ragged rows are padded) or […] for one sequence.")
    var inputIds: String
    @Option(help: "Attention mask as JSON, same shape as --input-ids.")
    var attentionMask: String?
    @Option(help: "Token type ids as JSON, same shape as --input-ids.")
    var tokenTypeIds: String?
    @OptionGroup var runtime: RuntimeOptions
    @OptionGroup var output: OutputOptions

    /// Token ids as exact JSON integers: `[[…], …]` or `[…]` (fractions, booleans and out-of-range numbers are errors).
    static func parseRows(_ text: String, option: String) throws -> [[Int]] {
        let data = Data(text.utf8)
        let rows: [[Int]]
        if let r = try? JSONDecoder().decode([[Int]].self, from: data) {
            rows = r
        } else if let row = try? JSONDecoder().decode([Int].self, from: data) {
            rows = [row]
        } else {
            throw CLIError("\(option): expected a JSON array of integers or of integer arrays, got \(text.prefix(80))")
        }
        if rows.isEmpty { throw CLIError("\(option): no ids (expected e.g. [[101, 2023, 102]])") }
        if let empty = rows.firstIndex(where: \.isEmpty) { throw CLIError("\(option): row \(empty) is empty") }
        return rows
    }

    /// The batch given by `--input-ids` (ragged rows padded with `padTokenId`), `--attention-mask` (same row
    /// lengths; padding positions get 0) and `--token-type-ids` as JSON.
    /// - Throws: `CLIError` for malformed JSON or mismatched row lengths; `EncoderError` for bad shapes or mask values.
    static func encoderInput(inputIds: String, attentionMask: String?, tokenTypeIds: String?, padTokenId: Int) throws -> EncoderInput {
        let ids = try parseRows(inputIds, option: "--input-ids")
        let types = try tokenTypeIds.map { try parseRows($0, option: "--token-type-ids") }
        let mask = try attentionMask.map { try parseRows($0, option: "--attention-mask") }
        if let mask, mask.map(\.count) != ids.map(\.count) {
            throw CLIError("--attention-mask: row lengths \(mask.map(\.count)) do not match --input-ids \(ids.map(\.count))")
        }
        return try EncoderInput(ids: ids, tokenTypeIds: types, attentionMask: mask, padTokenId: padTokenId)
    }

    func run() throws {
        let encoder = try BertEncoder(modelFolder: try model.folder())
        let input = try Self.encoderInput(inputIds: inputIds, attentionMask: attentionMask, tokenTypeIds: tokenTypeIds,
                                          padTokenId: encoder.config.padTokenId ?? 0)
        try runtime.checkInferenceMemory(config: encoder.config, batch: input.batchSize, sequenceLength: input.sequenceLength)
        let out = try encoder(input, context: runtime.context())
        let b = input.batchSize, s = input.sequenceLength, h = encoder.config.hiddenSize
        let v = out.lastHiddenState.scalars
        let nested = (0..<b).map { i in (0..<s).map { t in Array(v[((i * s + t) * h)..<((i * s + t + 1) * h)]) } }
        if output.json {
            struct Output: Encodable { let last_hidden_state: [[[Float]]] }
            try printJSON(Output(last_hidden_state: nested))
        } else {
            for row in nested { for token in row { print(token.map { String($0) }.joined(separator: " ")) } }
        }
    }
}

/// Tokenizes `inputs` in batches of `batchSize` (each padded to its own longest row), as `embed` and `predict` run
/// them. A text too long without truncation is reported with its index in `inputs`.
/// - Throws: `PretrainedModelError` (e.g. `.textTooLong`), tokenizer errors.
func tokenizeInBatches(_ pretrained: PretrainedModel, _ inputs: [TokenizerInput], batchSize: Int,
                       truncation: TruncationStrategy?) throws -> [EncoderInput] {
    var out: [EncoderInput] = []
    for start in stride(from: 0, to: inputs.count, by: batchSize) {
        let chunk = Array(inputs[start..<min(start + batchSize, inputs.count)])
        do {
            out.append(try pretrained.tokenize(chunk, truncation: truncation).1)
        } catch let PretrainedModelError.textTooLong(index, tokens, maximum) {
            throw PretrainedModelError.textTooLong(index: start + index, tokens: tokens, maximum: maximum)
        }
    }
    return out
}

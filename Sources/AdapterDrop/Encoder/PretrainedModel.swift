import AdapterCore
import Foundation

/// A Hugging Face model folder loaded for use: its tokenizer and its encoder.
///
/// The tokenizer is found the way `AutoTokenizer` (fast) would: `tokenizer.json` if present; otherwise
/// `vocab.txt` (BERT WordPiece, `do_lower_case` from `tokenizer_config.json`, default true); otherwise
/// `vocab.json` + `merges.txt` (RoBERTa byte-level BPE). The maximum length is the smallest of
/// `sentence_bert_config.json` `max_seq_length` (sentence-transformers models use it: 256 for
/// all-MiniLM-L6-v2), `tokenizer_config.json` `model_max_length`, and what the position table allows.
public struct PretrainedModel: Sendable {
    /// The folder it was loaded from.
    public let url: URL
    /// The text tokenizer.
    public let tokenizer: SubwordTokenizer
    /// The encoder.
    public let encoder: BertEncoder
    /// The longest input, in tokens including the special tokens.
    public let maxLength: Int

    /// Loads a model folder.
    /// - Throws: `ModelFolderError` (missing folder/config/weights), `ModelConfigError`, `SafetensorsError`,
    ///   `WeightLoadingError`, `TokenizerError`, or `PretrainedModelError.noTokenizer` — each naming the file.
    public init(folder url: URL) throws {
        self.url = url
        let encoder = try BertEncoder(modelFolder: url)
        self.encoder = encoder
        tokenizer = try Self.loadTokenizer(at: url)
        var limit = encoder.maximumSequenceLength
        if let n = Self.jsonInt(url.appendingPathComponent("sentence_bert_config.json"), key: "max_seq_length") {
            limit = min(limit, n)
        }
        if let n = Self.jsonInt(url.appendingPathComponent("tokenizer_config.json"), key: "model_max_length"), n > 0 {
            limit = min(limit, n)
        }
        maxLength = limit
    }

    /// Tokenizes texts (or pairs) into one padded batch.
    /// - Parameters:
    ///   - inputs: texts or text pairs.
    ///   - truncation: how to shorten inputs longer than `maxLength`; nil throws for them instead.
    /// - Throws: `PretrainedModelError.textTooLong` (index, tokens, maximum) when `truncation` is nil and an
    ///   input is too long; `TokenizerError` from truncation.
    public func tokenize(_ inputs: [TokenizerInput], truncation: TruncationStrategy? = nil) throws -> (BatchEncoding, EncoderInput) {
        if truncation == nil {
            for (i, input) in inputs.enumerated() {
                let e: Encoding
                switch input {
                case .single(let text): e = tokenizer.encode(text)
                case .pair(let a, let b): e = tokenizer.encode(a, pair: b)
                }
                if e.ids.count > maxLength {
                    throw PretrainedModelError.textTooLong(index: i, tokens: e.ids.count, maximum: maxLength)
                }
            }
        }
        let batch = try tokenizer.encode(batch: inputs, options: EncodingOptions(
            truncation: truncation, maxLength: truncation == nil ? nil : maxLength, padding: .longest))
        let input = try EncoderInput(batch, padTokenId: tokenizer.padTokenID)
        return (batch, input)
    }

    /// Sentence embeddings `[texts, hidden]`.
    /// - Parameters:
    ///   - texts: the inputs.
    ///   - pooling: `.mean` (sentence-transformers) or `.cls`.
    ///   - normalize: L2-normalise each row.
    ///   - truncation: see `tokenize`.
    ///   - context: threads, GEMM backend and workspaces the op runs with.
    /// - Throws: as `tokenize` and `BertEncoder.callAsFunction`.
    public func embed(_ texts: [String], pooling: Pooling.Mode = .mean, normalize: Bool = false,
                      truncation: TruncationStrategy? = nil, context: ComputeContext) throws -> Tensor {
        guard !texts.isEmpty else { return Tensor(zeros: [0, encoder.config.hiddenSize]) }
        let (_, input) = try tokenize(texts.map { .single($0) }, truncation: truncation)
        return try encoder(input, context: context).sentenceEmbeddings(pooling, normalize: normalize)
    }

    /// The tokenizer of a model folder (see the type's discussion for the order files are tried in).
    /// - Throws: `TokenizerError` naming the file, or `PretrainedModelError.noTokenizer`.
    public static func loadTokenizer(at url: URL) throws -> SubwordTokenizer {
        let fm = FileManager.default
        func file(_ name: String) -> URL? {
            let u = url.appendingPathComponent(name)
            return fm.fileExists(atPath: u.path) ? u : nil
        }
        if let json = file("tokenizer.json") { return try SubwordTokenizer(tokenizerJSON: json) }
        if let vocab = file("vocab.txt") {
            let lower = jsonBool(url.appendingPathComponent("tokenizer_config.json"), key: "do_lower_case") ?? true
            return try SubwordTokenizer.bertWordPiece(vocabularyFile: vocab, lowercase: lower)
        }
        if let vocab = file("vocab.json"), let merges = file("merges.txt") {
            return try SubwordTokenizer.byteLevelBPE(vocabularyFile: vocab, mergesFile: merges)
        }
        throw PretrainedModelError.noTokenizer(folder: url.path)
    }

    /// An optional side file (`tokenizer_config.json`, `sentence_bert_config.json`): nil when absent, over
    /// 1 MiB or not valid JSON (these files only refine defaults, so a bad one is ignored).
    private static func jsonObject(_ url: URL) -> JSONValue? {
        guard let data = try? Data(contentsOf: url), data.count < 1 << 20 else { return nil }
        return try? JSONParser.parse([UInt8](data), limits: .configFile)
    }

    private static func jsonInt(_ url: URL, key: String) -> Int? {
        guard let n = jsonObject(url)?[key]?.exactInt, n < 1_000_000_000 else { return nil }
        return n
    }

    private static func jsonBool(_ url: URL, key: String) -> Bool? { jsonObject(url)?[key]?.bool }
}

/// Errors of `PretrainedModel`.
public enum PretrainedModelError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The folder has no `tokenizer.json`, `vocab.txt`, or `vocab.json` + `merges.txt`.
    case noTokenizer(folder: String)
    /// Input `index` has `tokens` tokens (special tokens included), more than `maximum`.
    case textTooLong(index: Int, tokens: Int, maximum: Int)

    /// A one-line explanation naming the folder or the input.
    public var description: String {
        switch self {
        case .noTokenizer(let folder):
            return "\(folder): no tokenizer.json, vocab.txt, or vocab.json + merges.txt in the model folder"
        case let .textTooLong(index, tokens, maximum):
            return "input \(index) has \(tokens) tokens, more than the model's maximum of \(maximum) (pass --truncation to shorten it)"
        }
    }
}

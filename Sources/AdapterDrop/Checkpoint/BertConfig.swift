// Hugging Face `config.json` for BERT-family encoders (model_type "bert" and "roberta").
import AdapterCore
import Foundation

/// Errors from reading a model `config.json`. Each case names the file; key-related cases name the key.
public enum ModelConfigError: Error, Equatable, Sendable {
    /// The file could not be read.
    case unreadable(file: String, reason: String)
    /// The file is not valid JSON (or its root is not an object).
    case invalidJSON(file: String, reason: String)
    /// A required key is absent (or `null`).
    case missingKey(file: String, key: String)
    /// A key holds a value of the wrong type or out of range.
    case invalidValue(file: String, key: String, reason: String)
    /// `model_type` is neither `bert` nor `roberta`.
    case unsupportedModelType(file: String, modelType: String)
    /// `position_embedding_type` is not `absolute` (relative_key / relative_key_query are not implemented).
    case unsupportedPositionEmbedding(file: String, positionEmbeddingType: String)
    /// `hidden_act` is not one of gelu, gelu_new, gelu_pytorch_tanh, relu, silu, swish.
    case unsupportedActivation(file: String, hiddenAct: String)
    /// `hidden_size` is not a multiple of `num_attention_heads`.
    case hiddenSizeNotDivisible(file: String, hiddenSize: Int, numAttentionHeads: Int)
}

extension ModelConfigError: CustomStringConvertible {
    /// A one-line explanation naming the file and key.
    public var description: String {
        switch self {
        case let .unreadable(file, reason): return "\(file): cannot read: \(reason)"
        case let .invalidJSON(file, reason): return "\(file): not valid JSON: \(reason)"
        case let .missingKey(file, key): return "\(file): missing required key \"\(key)\""
        case let .invalidValue(file, key, reason): return "\(file): key \"\(key)\": \(reason)"
        case let .unsupportedModelType(file, type):
            return "\(file): unsupported model_type \"\(type)\" (supported: \"bert\", \"roberta\")"
        case let .unsupportedPositionEmbedding(file, type):
            return "\(file): unsupported position_embedding_type \"\(type)\": only \"absolute\" position "
                + "embeddings are implemented"
        case let .unsupportedActivation(file, name):
            return "\(file): unsupported hidden_act \"\(name)\" (supported: gelu, gelu_new, gelu_pytorch_tanh, "
                + "relu, silu, swish)"
        case let .hiddenSizeNotDivisible(file, hidden, heads):
            return "\(file): hidden_size \(hidden) is not divisible by num_attention_heads \(heads)"
        }
    }
}

/// The architecture hyper-parameters of a BERT-family encoder, as stored in a Hugging Face `config.json`
/// (transformers `BertConfig` / `RobertaConfig`; MiniLM and sentence-transformers checkpoints are `bert`).
///
/// Decoding is strict about what the encoder needs: the keys in `CodingKeys` marked *required* must be
/// present (else `ModelConfigError.missingKey` naming the key and file); unknown keys are ignored. Optional
/// keys are `nil` when absent, except `position_embedding_type`, which transformers itself defaults to
/// `"absolute"` and which is the only supported value (anything else throws `unsupportedPositionEmbedding`).
/// Decoding also validates: sizes positive, `hidden_size % num_attention_heads == 0`, `layer_norm_eps > 0`.
///
/// Use `BertConfig.load(from:)` for a file so that errors carry its path.
public struct BertConfig: Codable, Equatable, Sendable {
    /// The supported `model_type` values.
    public enum ModelType: String, Codable, Sendable, CaseIterable {
        /// BERT, MiniLM, sentence-transformers BERT checkpoints. Weight prefix `bert.`.
        case bert
        /// RoBERTa. Weight prefix `roberta.`; position ids start after `pad_token_id`.
        case roberta

        /// The prefix transformers' task heads put before encoder weights (`base_model_prefix`).
        public var weightPrefix: String { rawValue + "." }
    }

    /// The `hidden_act` values accepted, mapped to `AdapterCore.Activation`.
    public static let supportedActivations: [String: Activation] = [
        "gelu": .gelu, "gelu_new": .geluTanh, "gelu_pytorch_tanh": .geluTanh, "relu": .relu,
        "silu": .silu, "swish": .silu,
    ]

    /// `model_type` (required).
    public var modelType: ModelType
    /// `hidden_size`: width of every token representation, `hidden` in shapes (required).
    public var hiddenSize: Int
    /// `num_hidden_layers`: number of transformer layers (required).
    public var numHiddenLayers: Int
    /// `num_attention_heads` (required); `hiddenSize` must be a multiple of it.
    public var numAttentionHeads: Int
    /// `intermediate_size`: width of the feed-forward layer, `intermediate` in shapes (required).
    public var intermediateSize: Int
    /// `hidden_act` as written in the file (required), e.g. `"gelu"`; see `hiddenActivation`.
    public var hiddenAct: String
    /// `layer_norm_eps` (required), added to the variance in every LayerNorm.
    public var layerNormEps: Double
    /// `max_position_embeddings`: rows of the position embedding table (required). RoBERTa reserves
    /// `pad_token_id + 1` of them, so it can encode at most `max_position_embeddings - pad_token_id - 1` tokens.
    public var maxPositionEmbeddings: Int
    /// `type_vocab_size`: rows of the token-type (segment) embedding table (required; 1 for RoBERTa).
    public var typeVocabSize: Int
    /// `vocab_size`: rows of the word embedding table (required).
    public var vocabSize: Int
    /// `pad_token_id` (optional; BERT 0, RoBERTa 1).
    public var padTokenId: Int?
    /// `position_embedding_type`; always `"absolute"` after successful decoding (absent means absolute).
    public var positionEmbeddingType: String
    /// `hidden_dropout_prob` (optional; transformers' default is 0.1).
    public var hiddenDropoutProb: Double?
    /// `attention_probs_dropout_prob` (optional; transformers' default is 0.1).
    public var attentionProbsDropoutProb: Double?

    /// The JSON keys (snake_case, as transformers writes them).
    public enum CodingKeys: String, CodingKey, CaseIterable {
        case modelType = "model_type"
        case hiddenSize = "hidden_size"
        case numHiddenLayers = "num_hidden_layers"
        case numAttentionHeads = "num_attention_heads"
        case intermediateSize = "intermediate_size"
        case hiddenAct = "hidden_act"
        case layerNormEps = "layer_norm_eps"
        case maxPositionEmbeddings = "max_position_embeddings"
        case typeVocabSize = "type_vocab_size"
        case vocabSize = "vocab_size"
        case padTokenId = "pad_token_id"
        case positionEmbeddingType = "position_embedding_type"
        case hiddenDropoutProb = "hidden_dropout_prob"
        case attentionProbsDropoutProb = "attention_probs_dropout_prob"
    }

    /// The activation of the feed-forward layer (`hidden_act` mapped; gelu_new and gelu_pytorch_tanh are the
    /// same tanh approximation).
    public var hiddenActivation: Activation { Self.supportedActivations[hiddenAct] ?? .gelu }

    /// Width of one attention head: `hiddenSize / numAttentionHeads`.
    public var headSize: Int { hiddenSize / numAttentionHeads }

    /// Creates a configuration in code (e.g. a tiny model for tests). Call `validate()` to check it.
    ///
    /// - Parameters: one per property; defaults follow transformers' `BertConfig` except where noted.
    public init(
        modelType: ModelType = .bert, hiddenSize: Int, numHiddenLayers: Int, numAttentionHeads: Int,
        intermediateSize: Int, hiddenAct: String = "gelu", layerNormEps: Double = 1e-12,
        maxPositionEmbeddings: Int = 512, typeVocabSize: Int = 2, vocabSize: Int, padTokenId: Int? = 0,
        hiddenDropoutProb: Double? = 0.1, attentionProbsDropoutProb: Double? = 0.1
    ) {
        self.modelType = modelType
        self.hiddenSize = hiddenSize
        self.numHiddenLayers = numHiddenLayers
        self.numAttentionHeads = numAttentionHeads
        self.intermediateSize = intermediateSize
        self.hiddenAct = hiddenAct
        self.layerNormEps = layerNormEps
        self.maxPositionEmbeddings = maxPositionEmbeddings
        self.typeVocabSize = typeVocabSize
        self.vocabSize = vocabSize
        self.padTokenId = padTokenId
        self.positionEmbeddingType = "absolute"
        self.hiddenDropoutProb = hiddenDropoutProb
        self.attentionProbsDropoutProb = attentionProbsDropoutProb
    }

    /// `userInfo` key through which `load(from:)` tells the decoder the file name for error messages.
    public static let fileUserInfoKey = CodingUserInfoKey(rawValue: "AdapterDrop.BertConfig.file")!

    /// Decodes and validates. Errors name the file given under `fileUserInfoKey` (else "config.json").
    /// - Throws: `ModelConfigError` (`missingKey`, `invalidValue`, `unsupportedModelType`,
    ///   `unsupportedPositionEmbedding`, `unsupportedActivation`, `hiddenSizeNotDivisible`).
    public init(from decoder: any Decoder) throws {
        let file = decoder.userInfo[Self.fileUserInfoKey] as? String ?? "config.json"
        let container = try decoder.container(keyedBy: CodingKeys.self)

        func optional<T: Decodable>(_ key: CodingKeys, _ type: T.Type) throws -> T? {
            do {
                return try container.decodeIfPresent(type, forKey: key)
            } catch {
                // Type mismatches, and numbers that do not fit the type (Foundation reports 384.5 as Int
                // with an internal error type).
                throw ModelConfigError.invalidValue(file: file, key: key.rawValue, reason: "expected \(Self.typeName(type))")
            }
        }
        func required<T: Decodable>(_ key: CodingKeys, _ type: T.Type) throws -> T {
            guard let value = try optional(key, type) else {
                throw ModelConfigError.missingKey(file: file, key: key.rawValue)
            }
            return value
        }

        let typeName = try required(.modelType, String.self)
        guard let modelType = ModelType(rawValue: typeName) else {
            throw ModelConfigError.unsupportedModelType(file: file, modelType: typeName)
        }
        self.modelType = modelType
        hiddenSize = try required(.hiddenSize, Int.self)
        numHiddenLayers = try required(.numHiddenLayers, Int.self)
        numAttentionHeads = try required(.numAttentionHeads, Int.self)
        intermediateSize = try required(.intermediateSize, Int.self)
        hiddenAct = try required(.hiddenAct, String.self)
        layerNormEps = try required(.layerNormEps, Double.self)
        maxPositionEmbeddings = try required(.maxPositionEmbeddings, Int.self)
        typeVocabSize = try required(.typeVocabSize, Int.self)
        vocabSize = try required(.vocabSize, Int.self)
        padTokenId = try optional(.padTokenId, Int.self)
        positionEmbeddingType = try optional(.positionEmbeddingType, String.self) ?? "absolute"
        hiddenDropoutProb = try optional(.hiddenDropoutProb, Double.self)
        attentionProbsDropoutProb = try optional(.attentionProbsDropoutProb, Double.self)
        try validate(file: file)
    }

    private static func typeName<T>(_ type: T.Type) -> String {
        switch type {
        case is Int.Type: return "an integer"
        case is Double.Type: return "a number"
        case is String.Type: return "a string"
        default: return "\(type)"
        }
    }

    /// Checks the values the encoder relies on.
    /// - Parameter file: named in the errors.
    /// - Throws: `ModelConfigError.invalidValue` (non-positive sizes, eps ≤ 0, dropout outside [0, 1),
    ///   negative pad id), `.hiddenSizeNotDivisible`, `.unsupportedPositionEmbedding`, `.unsupportedActivation`.
    public func validate(file: String = "config.json") throws {
        let positive: [(CodingKeys, Int)] = [
            (.hiddenSize, hiddenSize), (.numHiddenLayers, numHiddenLayers), (.numAttentionHeads, numAttentionHeads),
            (.intermediateSize, intermediateSize), (.maxPositionEmbeddings, maxPositionEmbeddings),
            (.typeVocabSize, typeVocabSize), (.vocabSize, vocabSize),
        ]
        for (key, value) in positive where value <= 0 {
            throw ModelConfigError.invalidValue(file: file, key: key.rawValue, reason: "must be positive, got \(value)")
        }
        guard layerNormEps > 0, layerNormEps.isFinite else {
            throw ModelConfigError.invalidValue(
                file: file, key: CodingKeys.layerNormEps.rawValue, reason: "must be a positive number, got \(layerNormEps)")
        }
        for (key, value) in [(CodingKeys.hiddenDropoutProb, hiddenDropoutProb), (.attentionProbsDropoutProb, attentionProbsDropoutProb)] {
            if let value, !(0..<1).contains(value) {
                throw ModelConfigError.invalidValue(file: file, key: key.rawValue, reason: "must be in [0, 1), got \(value)")
            }
        }
        if let padTokenId, padTokenId < 0 || padTokenId >= vocabSize {
            throw ModelConfigError.invalidValue(
                file: file, key: CodingKeys.padTokenId.rawValue, reason: "must be in 0..<vocab_size, got \(padTokenId)")
        }
        guard hiddenSize % numAttentionHeads == 0 else {
            throw ModelConfigError.hiddenSizeNotDivisible(file: file, hiddenSize: hiddenSize, numAttentionHeads: numAttentionHeads)
        }
        guard positionEmbeddingType == "absolute" else {
            throw ModelConfigError.unsupportedPositionEmbedding(file: file, positionEmbeddingType: positionEmbeddingType)
        }
        guard Self.supportedActivations[hiddenAct] != nil else {
            throw ModelConfigError.unsupportedActivation(file: file, hiddenAct: hiddenAct)
        }
    }

    /// Encodes every property under its snake_case key (`nil` optionals are omitted).
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(modelType, forKey: .modelType)
        try container.encode(hiddenSize, forKey: .hiddenSize)
        try container.encode(numHiddenLayers, forKey: .numHiddenLayers)
        try container.encode(numAttentionHeads, forKey: .numAttentionHeads)
        try container.encode(intermediateSize, forKey: .intermediateSize)
        try container.encode(hiddenAct, forKey: .hiddenAct)
        try container.encode(layerNormEps, forKey: .layerNormEps)
        try container.encode(maxPositionEmbeddings, forKey: .maxPositionEmbeddings)
        try container.encode(typeVocabSize, forKey: .typeVocabSize)
        try container.encode(vocabSize, forKey: .vocabSize)
        try container.encodeIfPresent(padTokenId, forKey: .padTokenId)
        try container.encode(positionEmbeddingType, forKey: .positionEmbeddingType)
        try container.encodeIfPresent(hiddenDropoutProb, forKey: .hiddenDropoutProb)
        try container.encodeIfPresent(attentionProbsDropoutProb, forKey: .attentionProbsDropoutProb)
    }

    /// Decodes `data` (the contents of a config.json), naming `file` in errors.
    ///
    /// The text is read with the library's JSON parser (`JSONParser`: UTF-8, depth ≤ 32, ≤ 16 MiB, no
    /// duplicate keys) and decoded with `JSONValueDecoder`, so integers must be integer literals (`384`, not
    /// `384.0`). Every error is one line naming the file and the key or byte offset.
    /// - Throws: `ModelConfigError`: `.invalidJSON` (syntax, with the byte offset; root not an object),
    ///   `.missingKey`, `.invalidValue` and the validation errors of `init(from:)`.
    public init(jsonData data: Data, file: String = "config.json") throws {
        let root: JSONValue
        do {
            root = try JSONParser.parse([UInt8](data), limits: .configFile, keyEquality: .canonicalEquivalence)
        } catch {
            let empty = data.allSatisfy { [0x20, 0x09, 0x0A, 0x0D].contains($0) }
            throw ModelConfigError.invalidJSON(file: file, reason: empty ? "the file is empty" : error.message)
        }
        guard root.members != nil else {
            throw ModelConfigError.invalidJSON(file: file, reason: "the root is not an object")
        }
        do {
            self = try JSONValueDecoder(userInfo: [Self.fileUserInfoKey: file]).decode(BertConfig.self, from: root)
        } catch let error as ModelConfigError {
            throw error
        } catch let DecodingError.keyNotFound(key, context) {
            let path = (context.codingPath.map(\.stringValue) + [key.stringValue]).joined(separator: ".")
            throw ModelConfigError.missingKey(file: file, key: path)
        } catch let error as DecodingError {
            // `init(from:)` maps its own keys' errors; this is a safety net with the same one-line form.
            throw ModelConfigError.invalidValue(file: file, key: error.keyPath, reason: error.oneLineDescription)
        }
    }

    /// Reads and validates a `config.json`.
    /// - Parameter url: the file.
    /// - Throws: `ModelConfigError`, naming `url.path`.
    public static func load(from url: URL) throws -> BertConfig {
        let limit = JSONParser.Limits.configFile.maxBytes
        if let size = (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? NSNumber)?.intValue,
           size > limit {
            throw ModelConfigError.unreadable(file: url.path, reason: "\(size) bytes exceeds the limit of \(limit) bytes")
        }
        let data: Data
        do {
            // An empty regular file is not read with `Data(contentsOf:)`, which leaks a 4 KiB buffer for files of
            // size 0 (Foundation, found by LeakSanitizer; docs/reliability.md).
            let attributes = try? FileManager.default.attributesOfItem(atPath: url.path)
            if (attributes?[.size] as? NSNumber)?.intValue == 0, (attributes?[.type] as? FileAttributeType) == .typeRegular {
                return try BertConfig(jsonData: Data(), file: url.path)
            }
            data = try Data(contentsOf: url)
        } catch {
            throw ModelConfigError.unreadable(file: url.path, reason: error.localizedDescription)
        }
        return try BertConfig(jsonData: data, file: url.path)
    }
}

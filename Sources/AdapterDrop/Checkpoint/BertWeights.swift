// The encoder weights of a BERT-family checkpoint, named as Hugging Face transformers names them.
import AdapterCore
import Foundation

/// One problem found while matching a checkpoint against the expected BERT weights.
public struct WeightProblem: Equatable, Sendable, CustomStringConvertible {
    /// What is wrong.
    public enum Kind: Equatable, Sendable {
        /// No tensor of this name (with or without prefix, LayerNorm gamma/beta accepted).
        case missing
        /// Present with another shape.
        case shapeMismatch(found: [Int])
        /// Present with an integer dtype.
        case notFloatingPoint(dtype: String)
        /// Present under several names that map to the same weight (e.g. with and without `bert.`).
        case ambiguous(candidates: [String])
        /// Holds NaN or ±Inf (only checked when the checkpoint was opened with `rejectNonFinite`).
        case nonFinite(nanCount: Int, infinityCount: Int)
    }

    /// Canonical name (no prefix, LayerNorm `weight`/`bias`), e.g. `encoder.layer.0.output.dense.weight`.
    public var name: String
    /// The name as found in the checkpoint, if it differs from `name` (prefix, gamma/beta).
    public var checkpointName: String?
    /// The shape the config implies.
    public var expectedShape: [Int]
    /// What is wrong.
    public var kind: Kind

    /// One line, e.g. "encoder.layer.1.intermediate.dense.weight: expected [1536, 384], found [1536, 380]".
    public var description: String {
        let alias = checkpointName.map { " (stored as '\($0)')" } ?? ""
        switch kind {
        case .missing: return "\(name): missing (expected shape \(expectedShape))"
        case let .shapeMismatch(found): return "\(name)\(alias): expected shape \(expectedShape), found \(found)"
        case let .notFloatingPoint(dtype): return "\(name)\(alias): dtype \(dtype) is not a float type"
        case let .ambiguous(candidates):
            return "\(name): stored under several names: \(candidates.joined(separator: ", "))"
        case let .nonFinite(nans, infs): return "\(name)\(alias): contains \(nans) NaN and \(infs) Inf values"
        }
    }
}

/// Loading BERT weights failed; every offending tensor is listed.
public enum WeightLoadingError: Error, Equatable, Sendable, CustomStringConvertible {
    /// `problems` lists every missing, mis-shaped, non-float, ambiguous or non-finite weight of `source`.
    case invalidWeights(source: String, problems: [WeightProblem])
    /// config.json asks for more transformer layers than `source` holds (`checkpointLayers` = one past the highest
    /// `encoder.layer.K.` index found, 0 if none). Thrown before any tensor is checked: a corrupt or hostile
    /// `num_hidden_layers` (say 10¹²) must not make the loader list 16 missing tensors per absent layer.
    case missingLayers(source: String, configLayers: Int, checkpointLayers: Int)

    /// How many problems `description` lists before "… and N more" (a config for another model size makes
    /// every one of ~100 tensors mismatch; the first few tell the story).
    public static let listedProblems = 8

    /// A header line plus one indented line for each of the first `listedProblems` problems and, if there are
    /// more, a last line "… and N more" (`problems` holds them all). When every problem is a shape mismatch,
    /// the header says so: the config most likely describes another model size.
    public var description: String {
        switch self {
        case let .invalidWeights(source, problems):
            var lines = problems.prefix(Self.listedProblems).map { "  " + $0.description }
            if problems.count > Self.listedProblems { lines.append("  … and \(problems.count - Self.listedProblems) more") }
            let allShapes = problems.count > 1 && problems.allSatisfy { if case .shapeMismatch = $0.kind { true } else { false } }
            let hint = allShapes ? " (every problem is a shape mismatch: does config.json describe another model size?)" : ""
            return "\(source): \(problems.count) weight problem\(problems.count == 1 ? "" : "s") "
                + "for the BERT encoder described by config.json\(hint):\n\(lines.joined(separator: "\n"))"
        case let .missingLayers(source, configLayers, checkpointLayers):
            return "\(source): config.json has num_hidden_layers = \(configLayers), but the checkpoint holds "
                + (checkpointLayers == 0 ? "no encoder.layer.* tensors" : "layers 0..<\(checkpointLayers) only")
        }
    }
}

/// The fp32 weights of a BERT-family encoder (embeddings, every transformer layer, optional pooler).
///
/// Linear weights keep PyTorch's `nn.Linear` layout `[out_features, in_features]` (y = x·Wᵀ + b). Shapes,
/// with `hidden = hiddenSize`, `intermediate = intermediateSize`:
/// - embeddings: word `[vocab, hidden]`, position `[maxPositions, hidden]`, token type `[typeVocab, hidden]`,
///   LayerNorm weight/bias `[hidden]`;
/// - each layer: query/key/value/attention-output weight `[hidden, hidden]`, bias `[hidden]`; attention
///   LayerNorm `[hidden]`; intermediate weight `[intermediate, hidden]`, bias `[intermediate]`; output
///   weight `[hidden, intermediate]`, bias `[hidden]`; output LayerNorm `[hidden]`;
/// - pooler dense weight `[hidden, hidden]`, bias `[hidden]`.
///
/// Names follow transformers' `BertModel`/`RobertaModel` state dict (`modeling_bert.py`): see
/// `BertWeights.expectedParameters(for:)`. When loading, names may carry the `bert.` or `roberta.` prefix of
/// task models, and LayerNorm parameters may use the old TensorFlow-era `gamma`/`beta` names.
public struct BertWeights: Sendable {
    /// Embedding tables and their LayerNorm (`embeddings.*`).
    public struct Embeddings: Sendable {
        /// `embeddings.word_embeddings.weight`, `[vocab, hidden]`.
        public var wordEmbeddings: Tensor
        /// `embeddings.position_embeddings.weight`, `[maxPositions, hidden]`.
        public var positionEmbeddings: Tensor
        /// `embeddings.token_type_embeddings.weight`, `[typeVocab, hidden]`.
        public var tokenTypeEmbeddings: Tensor
        /// `embeddings.LayerNorm.weight` (γ), `[hidden]`.
        public var layerNormWeight: Tensor
        /// `embeddings.LayerNorm.bias` (β), `[hidden]`.
        public var layerNormBias: Tensor
    }

    /// One transformer layer (`encoder.layer.{i}.*`).
    public struct Layer: Sendable {
        /// `attention.self.query.weight`, `[hidden, hidden]`.
        public var queryWeight: Tensor
        /// `attention.self.query.bias`, `[hidden]`.
        public var queryBias: Tensor
        /// `attention.self.key.weight`, `[hidden, hidden]`.
        public var keyWeight: Tensor
        /// `attention.self.key.bias`, `[hidden]`.
        public var keyBias: Tensor
        /// `attention.self.value.weight`, `[hidden, hidden]`.
        public var valueWeight: Tensor
        /// `attention.self.value.bias`, `[hidden]`.
        public var valueBias: Tensor
        /// `attention.output.dense.weight`, `[hidden, hidden]`.
        public var attentionOutputWeight: Tensor
        /// `attention.output.dense.bias`, `[hidden]`.
        public var attentionOutputBias: Tensor
        /// `attention.output.LayerNorm.weight`, `[hidden]`.
        public var attentionLayerNormWeight: Tensor
        /// `attention.output.LayerNorm.bias`, `[hidden]`.
        public var attentionLayerNormBias: Tensor
        /// `intermediate.dense.weight`, `[intermediate, hidden]`.
        public var intermediateWeight: Tensor
        /// `intermediate.dense.bias`, `[intermediate]`.
        public var intermediateBias: Tensor
        /// `output.dense.weight`, `[hidden, intermediate]`.
        public var outputWeight: Tensor
        /// `output.dense.bias`, `[hidden]`.
        public var outputBias: Tensor
        /// `output.LayerNorm.weight`, `[hidden]`.
        public var outputLayerNormWeight: Tensor
        /// `output.LayerNorm.bias`, `[hidden]`.
        public var outputLayerNormBias: Tensor
    }

    /// The pooler (`pooler.dense.*`): tanh(W·h[CLS] + b).
    public struct Pooler: Sendable {
        /// `pooler.dense.weight`, `[hidden, hidden]`.
        public var weight: Tensor
        /// `pooler.dense.bias`, `[hidden]`.
        public var bias: Tensor
    }

    /// Embedding tables.
    public var embeddings: Embeddings
    /// `numHiddenLayers` layers, in order.
    public var layers: [Layer]
    /// The pooler, or nil if the checkpoint has none (e.g. masked-LM checkpoints saved without it).
    public var pooler: Pooler?

    // MARK: Name table

    /// One expected parameter: canonical name and shape.
    public struct Parameter: Equatable, Sendable {
        /// Canonical name, e.g. `encoder.layer.0.attention.self.query.weight`.
        public var name: String
        /// Shape implied by the config.
        public var shape: [Int]
    }

    private typealias EmbeddingEntry = (suffix: String, path: WritableKeyPath<Embeddings, Tensor>, shape: [Int])
    private typealias LayerEntry = (suffix: String, path: WritableKeyPath<Layer, Tensor>, shape: [Int])

    private static func embeddingEntries(_ c: BertConfig) -> [EmbeddingEntry] {
        [
            ("word_embeddings.weight", \.wordEmbeddings, [c.vocabSize, c.hiddenSize]),
            ("position_embeddings.weight", \.positionEmbeddings, [c.maxPositionEmbeddings, c.hiddenSize]),
            ("token_type_embeddings.weight", \.tokenTypeEmbeddings, [c.typeVocabSize, c.hiddenSize]),
            ("LayerNorm.weight", \.layerNormWeight, [c.hiddenSize]),
            ("LayerNorm.bias", \.layerNormBias, [c.hiddenSize]),
        ]
    }

    private static func layerEntries(_ c: BertConfig) -> [LayerEntry] {
        let h = c.hiddenSize, i = c.intermediateSize
        return [
            ("attention.self.query.weight", \.queryWeight, [h, h]),
            ("attention.self.query.bias", \.queryBias, [h]),
            ("attention.self.key.weight", \.keyWeight, [h, h]),
            ("attention.self.key.bias", \.keyBias, [h]),
            ("attention.self.value.weight", \.valueWeight, [h, h]),
            ("attention.self.value.bias", \.valueBias, [h]),
            ("attention.output.dense.weight", \.attentionOutputWeight, [h, h]),
            ("attention.output.dense.bias", \.attentionOutputBias, [h]),
            ("attention.output.LayerNorm.weight", \.attentionLayerNormWeight, [h]),
            ("attention.output.LayerNorm.bias", \.attentionLayerNormBias, [h]),
            ("intermediate.dense.weight", \.intermediateWeight, [i, h]),
            ("intermediate.dense.bias", \.intermediateBias, [i]),
            ("output.dense.weight", \.outputWeight, [h, i]),
            ("output.dense.bias", \.outputBias, [h]),
            ("output.LayerNorm.weight", \.outputLayerNormWeight, [h]),
            ("output.LayerNorm.bias", \.outputLayerNormBias, [h]),
        ]
    }

    /// Every parameter a checkpoint for `config` holds, canonical names in state-dict order: embeddings,
    /// then each layer, then the two pooler tensors (the pooler is optional when loading).
    public static func expectedParameters(for config: BertConfig) -> [Parameter] {
        var out = embeddingEntries(config).map { Parameter(name: "embeddings." + $0.suffix, shape: $0.shape) }
        for index in 0..<config.numHiddenLayers {
            out += layerEntries(config).map { Parameter(name: "encoder.layer.\(index).\($0.suffix)", shape: $0.shape) }
        }
        out += poolerNames.map { Parameter(name: $0, shape: $0.hasSuffix("weight") ? [config.hiddenSize, config.hiddenSize] : [config.hiddenSize]) }
        return out
    }

    private static let poolerNames = ["pooler.dense.weight", "pooler.dense.bias"]

    /// The canonical name of a checkpoint tensor name: one leading `bert.` or `roberta.` removed, and a
    /// LayerNorm's `gamma`/`beta` renamed to `weight`/`bias`. Other names are returned unchanged.
    ///
    /// `bert.encoder.layer.0.output.LayerNorm.gamma` → `encoder.layer.0.output.LayerNorm.weight`.
    public static func canonicalName(_ name: String) -> String {
        var result = Substring(name)
        for prefix in BertConfig.ModelType.allCases.map(\.weightPrefix) where result.hasPrefix(prefix) {
            result = result.dropFirst(prefix.count)
            break
        }
        if result.hasSuffix("LayerNorm.gamma") {
            result = result.dropLast("gamma".count) + "weight"
        } else if result.hasSuffix("LayerNorm.beta") {
            result = result.dropLast("beta".count) + "bias"
        }
        return String(result)
    }

    // MARK: Loading

    /// Loads and checks every encoder weight of `config` from a checkpoint.
    ///
    /// Every expected parameter (see `expectedParameters(for:)`) is looked up by canonical name
    /// (`canonicalName(_:)` applied to every checkpoint name), checked for shape and float dtype, and read as
    /// fp32. All problems are collected first and thrown together. Tensors the encoder does not use (task
    /// heads, `embeddings.position_ids`) are ignored. The pooler is optional: absent entirely → `pooler == nil`.
    ///
    /// - Parameters:
    ///   - config: a validated config.
    ///   - checkpoint: the opened safetensors file(s). Opened with `rejectNonFinite`, NaN/Inf weights are
    ///     reported as problems too.
    /// - Throws: `WeightLoadingError.missingLayers` when config.json asks for more layers than the checkpoint has;
    ///   `WeightLoadingError.invalidWeights` listing every offending name with expected and found
    ///   shapes; `SafetensorsError` only for unexpected read failures.
    public init(config: BertConfig, checkpoint: SafetensorsCheckpoint) throws {
        let names = checkpoint.tensorNames
        try self.init(
            config: config, source: checkpoint.sourceDescription, names: names,
            info: { checkpoint.info($0).map { ($0.shape, $0.dtype.isFloatingPoint ? nil : $0.dtype.rawValue) } },
            read: { try checkpoint.tensor($0) })
    }

    /// Builds the weights from in-memory tensors keyed by name (canonical or checkpoint names), with the
    /// same checks as loading from a checkpoint.
    /// - Throws: `WeightLoadingError.invalidWeights`.
    public init(config: BertConfig, namedTensors: [String: Tensor]) throws {
        try self.init(
            config: config, source: "named tensors", names: Array(namedTensors.keys),
            info: { namedTensors[$0].map { ($0.shape, nil) } },
            read: { namedTensors[$0]! })
    }

    private init(
        config: BertConfig, source: String, names: [String],
        info: (String) -> (shape: [Int], nonFloatDType: String?)?,
        read: (String) throws -> Tensor
    ) throws {
        var byCanonical: [String: [String]] = [:]
        for name in names { byCanonical[Self.canonicalName(name), default: []].append(name) }

        let checkpointLayers = byCanonical.keys.reduce(0) { highest, name in
            guard name.hasPrefix("encoder.layer."), let index = Int(name.dropFirst("encoder.layer.".count).prefix { $0 != "." })
            else { return highest }
            return max(highest, index + 1)
        }
        guard config.numHiddenLayers <= checkpointLayers else {
            throw WeightLoadingError.missingLayers(source: source, configLayers: config.numHiddenLayers, checkpointLayers: checkpointLayers)
        }
        var problems: [WeightProblem] = []
        var loaded: [String: Tensor] = [:]
        let expected = Self.expectedParameters(for: config)
        let poolerPresent = Self.poolerNames.contains { byCanonical[$0] != nil }
        for parameter in expected {
            if Self.poolerNames.contains(parameter.name) && !poolerPresent { continue }
            guard let candidates = byCanonical[parameter.name] else {
                problems.append(WeightProblem(name: parameter.name, expectedShape: parameter.shape, kind: .missing))
                continue
            }
            guard candidates.count == 1 else {
                problems.append(WeightProblem(
                    name: parameter.name, expectedShape: parameter.shape, kind: .ambiguous(candidates: candidates.sorted())))
                continue
            }
            let stored = candidates[0]
            let alias = stored == parameter.name ? nil : stored
            let (shape, nonFloat) = info(stored)!
            if let nonFloat {
                problems.append(WeightProblem(
                    name: parameter.name, checkpointName: alias, expectedShape: parameter.shape,
                    kind: .notFloatingPoint(dtype: nonFloat)))
                continue
            }
            guard shape == parameter.shape else {
                problems.append(WeightProblem(
                    name: parameter.name, checkpointName: alias, expectedShape: parameter.shape,
                    kind: .shapeMismatch(found: shape)))
                continue
            }
            do {
                loaded[parameter.name] = try read(stored)
            } catch let SafetensorsError.nonFiniteValues(_, _, nans, infinities) {
                problems.append(WeightProblem(
                    name: parameter.name, checkpointName: alias, expectedShape: parameter.shape,
                    kind: .nonFinite(nanCount: nans, infinityCount: infinities)))
            }
        }
        guard problems.isEmpty else { throw WeightLoadingError.invalidWeights(source: source, problems: problems) }

        let placeholder = Tensor(zeros: [0])
        var embeddings = Embeddings(
            wordEmbeddings: placeholder, positionEmbeddings: placeholder, tokenTypeEmbeddings: placeholder,
            layerNormWeight: placeholder, layerNormBias: placeholder)
        for entry in Self.embeddingEntries(config) { embeddings[keyPath: entry.path] = loaded["embeddings." + entry.suffix]! }
        var layers: [Layer] = []
        for index in 0..<config.numHiddenLayers {
            var layer = Layer(
                queryWeight: placeholder, queryBias: placeholder, keyWeight: placeholder, keyBias: placeholder,
                valueWeight: placeholder, valueBias: placeholder, attentionOutputWeight: placeholder,
                attentionOutputBias: placeholder, attentionLayerNormWeight: placeholder,
                attentionLayerNormBias: placeholder, intermediateWeight: placeholder, intermediateBias: placeholder,
                outputWeight: placeholder, outputBias: placeholder, outputLayerNormWeight: placeholder,
                outputLayerNormBias: placeholder)
            for entry in Self.layerEntries(config) {
                layer[keyPath: entry.path] = loaded["encoder.layer.\(index).\(entry.suffix)"]!
            }
            layers.append(layer)
        }
        self.embeddings = embeddings
        self.layers = layers
        pooler = poolerPresent
            ? Pooler(weight: loaded["pooler.dense.weight"]!, bias: loaded["pooler.dense.bias"]!) : nil
    }

    // MARK: Saving

    /// Every tensor under its canonical name (plus `prefix`), e.g. for `SafetensorsWriter`.
    /// - Parameters:
    ///   - config: the config the weights were built for (gives the layer count and name table).
    ///   - prefix: prepended to each name, e.g. `"bert."`; empty by default (a bare `BertModel`).
    public func namedTensors(config: BertConfig, prefix: String = "") -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        for entry in Self.embeddingEntries(config) { out[prefix + "embeddings." + entry.suffix] = embeddings[keyPath: entry.path] }
        for (index, layer) in layers.enumerated() {
            for entry in Self.layerEntries(config) {
                out[prefix + "encoder.layer.\(index).\(entry.suffix)"] = layer[keyPath: entry.path]
            }
        }
        if let pooler {
            out[prefix + "pooler.dense.weight"] = pooler.weight
            out[prefix + "pooler.dense.bias"] = pooler.bias
        }
        return out
    }
}

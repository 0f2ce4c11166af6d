// Prediction heads in the AdapterHub layout (adapters 1.3.0 `heads/base.py`): classification,
// multi-label classification, regression (classification with one label) and tagging.
import AdapterCore

/// The configuration of a prediction head (`head_config.json` `"config"`).
public struct PredictionHeadConfig: Sendable, Equatable {
    /// The head kinds implemented here.
    public enum HeadType: String, Sendable, Equatable {
        /// Sequence classification on the [CLS] state (regression when `numLabels == 1`).
        case classification
        /// Multi-label classification (independent sigmoid per label).
        case multiLabelClassification = "multilabel_classification"
        /// Token classification on every token state.
        case tagging
    }
    /// `head_type`.
    public var headType: HeadType
    /// `num_labels`.
    public var numLabels: Int
    /// `layers`: the number of Linear layers (Dropout before each; activation between them).
    public var layers: Int
    /// `activation_function` between the Linear layers; nil for none.
    public var activationFunction: String?
    /// `use_pooler`: classify the pooler output instead of the [CLS] state.
    public var usePooler: Bool
    /// `bias` of the last Linear.
    public var bias: Bool
    /// `dropout_prob` (training only); nil → the model's classifier/hidden dropout.
    public var dropoutProbability: Double?
    /// `label2id`; nil if the file has none.
    public var label2id: [String: Int]?

    /// A classification head as `add_classification_head` builds it (2 layers, tanh, [CLS], bias,
    /// `label2id = {"LABEL_i": i}`). `numLabels == 1` is regression.
    public static func classification(numLabels: Int, layers: Int = 2, activationFunction: String? = "tanh",
                                      usePooler: Bool = false, bias: Bool = true) -> PredictionHeadConfig {
        PredictionHeadConfig(headType: .classification, numLabels: numLabels, layers: layers, activationFunction: activationFunction,
                             usePooler: usePooler, bias: bias, dropoutProbability: nil,
                             label2id: Dictionary(uniqueKeysWithValues: (0..<numLabels).map { ("LABEL_\($0)", $0) }))
    }

    /// Creates a config from its fields.
    public init(headType: HeadType, numLabels: Int, layers: Int, activationFunction: String?, usePooler: Bool,
                bias: Bool, dropoutProbability: Double?, label2id: [String: Int]?) {
        self.headType = headType; self.numLabels = numLabels; self.layers = layers
        self.activationFunction = activationFunction; self.usePooler = usePooler; self.bias = bias
        self.dropoutProbability = dropoutProbability; self.label2id = label2id
    }

    /// From the `"config"` object of `head_config.json`.
    /// - Throws: `AdapterError.missingKey`, `.invalidValue`, `.unsupported` (other head types) naming the key.
    public init(json: AdapterJSON, file: String) throws {
        guard let o = json.objectValue else { throw AdapterError.invalidValue(file: file, key: "config", reason: "expected an object") }
        guard let typeText = o["head_type"]?.stringValue else { throw AdapterError.missingKey(file: file, key: "head_type") }
        guard let type = HeadType(rawValue: typeText) else {
            throw AdapterError.unsupported(file: file, key: "head_type",
                                           reason: "\"\(typeText)\" (implemented: classification, multilabel_classification, tagging)")
        }
        headType = type
        guard let n = o["num_labels"]?.intValue, n >= 1 else {
            throw o["num_labels"] == nil ? AdapterError.missingKey(file: file, key: "num_labels")
                : AdapterError.invalidValue(file: file, key: "num_labels", reason: "expected a positive integer")
        }
        numLabels = n
        guard let l = o["layers"]?.intValue, l >= 1 else {
            throw o["layers"] == nil ? AdapterError.missingKey(file: file, key: "layers")
                : AdapterError.invalidValue(file: file, key: "layers", reason: "expected a positive integer")
        }
        layers = l
        switch o["activation_function"] {
        case nil, .null?: activationFunction = nil
        case let .string(s)?:
            guard BottleneckConfig.activation(named: s) != nil else {
                throw AdapterError.invalidValue(file: file, key: "activation_function", reason: "unknown activation \"\(s)\"")
            }
            activationFunction = s
        default: throw AdapterError.invalidValue(file: file, key: "activation_function", reason: "expected a string or null")
        }
        usePooler = o["use_pooler"]?.boolValue ?? false
        bias = o["bias"]?.boolValue ?? true
        dropoutProbability = o["dropout_prob"]?.doubleValue
        if let map = o["label2id"]?.objectValue {
            var out: [String: Int] = [:]
            for (k, v) in map {
                guard let i = v.intValue else { throw AdapterError.invalidValue(file: file, key: "label2id", reason: "\"\(k)\" is not an integer") }
                out[k] = i
            }
            label2id = out
        } else {
            label2id = nil
        }
    }

    /// `id2label`, the inverse of `label2id`.
    public var id2label: [Int: String]? { label2id.map { Dictionary($0.map { ($1, $0) }, uniquingKeysWith: { a, _ in a }) } }

    /// The config object as the reference writes it.
    public var json: AdapterJSON {
        var o: [String: AdapterJSON] = [
            "head_type": .string(headType.rawValue), "num_labels": .int(numLabels), "layers": .int(layers),
            "activation_function": activationFunction.map { .string($0) } ?? .null,
            "dropout_prob": dropoutProbability.map { AdapterJSON.double($0) } ?? .null,
            "label2id": label2id.map { .object($0.mapValues { .int($0) }) } ?? .null,
        ]
        if headType != .tagging { o["use_pooler"] = .bool(usePooler); o["bias"] = .bool(bias) }
        return .object(o)
    }

    /// The `nn.Sequential` indices of the Linear modules (Dropout, Linear, [activation], …, Dropout, Linear).
    public var linearModuleIndices: [Int] {
        var index = 0, out: [Int] = []
        for l in 0..<layers {
            index += 1                        // Dropout
            out.append(index); index += 1     // Linear
            if l < layers - 1, activationFunction != nil { index += 1 }
        }
        return out
    }
}

/// A prediction head: a few Linear layers over the [CLS] (or pooler, or every token) state.
public struct PredictionHead: Sendable {
    /// The head's name (keys `heads.{name}.{index}`).
    public let name: String
    /// Its configuration.
    public let config: PredictionHeadConfig
    /// Linear layers in order: weight `[out, in]`, bias `[out]` (the last may have no bias).
    public var linears: [(weight: Tensor, bias: Tensor?)]

    /// A head with given weights.
    public init(name: String, config: PredictionHeadConfig, linears: [(weight: Tensor, bias: Tensor?)]) {
        self.name = name
        self.config = config
        self.linears = linears
    }

    /// A new head initialised as BERT's `_init_weights` (N(0, initializerRange), zero bias), drawn from
    /// `SeededRNG(seed:)`.
    public init(name: String, config: PredictionHeadConfig, hiddenSize: Int, initializerRange: Float = 0.02, seed: UInt64 = 0) {
        var rng = SeededRNG(seed: seed)
        var linears: [(weight: Tensor, bias: Tensor?)] = []
        for l in 0..<config.layers {
            let out = l == config.layers - 1 ? config.numLabels : hiddenSize
            let w = Tensor(shape: [out, hiddenSize], scalars: (0..<out * hiddenSize).map { _ in rng.normal(mean: 0, std: initializerRange) })
            linears.append((w, l == config.layers - 1 && !config.bias ? nil : Tensor(zeros: [out])))
        }
        self.init(name: name, config: config, linears: linears)
    }

    /// Named tensors with module-relative keys (`1.weight`, `4.bias`, …).
    public var namedTensors: [(String, Tensor)] {
        var out: [(String, Tensor)] = []
        for (index, linear) in zip(config.linearModuleIndices, linears) {
            out.append(("\(index).weight", linear.weight))
            if let b = linear.bias { out.append(("\(index).bias", b)) }
        }
        return out
    }

    /// Logits for a batch.
    /// - Parameters:
    ///   - lastHiddenState: `[batch, seq, hidden]`.
    ///   - pooled: the pooler output `[batch, hidden]` (needed with `use_pooler`).
    ///   - context: threads, GEMM backend and workspaces the op runs with.
    /// - Returns: `[batch, numLabels]`, or `[batch, seq, numLabels]` for tagging.
    public func callAsFunction(lastHiddenState: Tensor, pooled: Tensor?, context: ComputeContext) -> Tensor {
        var x: Tensor
        switch config.headType {
        case .tagging: x = lastHiddenState
        case .classification, .multiLabelClassification:
            if config.usePooler {
                guard let pooled else { preconditionFailure("head \(name): use_pooler needs a pooler") }
                x = pooled
            } else {
                x = Pooling.first(lastHiddenState)
            }
        }
        let act = config.activationFunction.flatMap(BottleneckConfig.activation(named:)) ?? .identity
        for (l, layer) in linears.enumerated() {
            x = linear(x, weight: layer.weight, bias: layer.bias, activation: l < linears.count - 1 ? act : .identity, context: context)
        }
        return x
    }

    /// The training loss of logits against labels, as the reference head computes it: MSE for one label,
    /// BCE-with-logits for multi-label, else cross-entropy (tagging: over tokens with label ≠ −100).
    /// - Parameters:
    ///   - logits: the head's output, `[batch, numLabels]` (tagging `[batch, seq, numLabels]`).
    ///   - labels: class indices `[batch]` (tagging `[batch·seq]`), or targets `[batch·numLabels]` as
    ///     floats for regression/multi-label.
    /// - Throws: `AdapterError.invalidLabels` for a count that does not match the logits.
    public func loss(logits: Tensor, labels: [Float]) throws -> LossOutput {
        if config.numLabels == 1 && config.headType == .classification {
            guard labels.count == logits.shape[0] else { throw AdapterError.invalidLabels(head: name, reason: "expected \(logits.shape[0]) targets, got \(labels.count)") }
            return mseLoss(prediction: logits.reshaped([logits.shape[0]]), target: Tensor(shape: [labels.count], scalars: labels))
        }
        if config.headType == .multiLabelClassification {
            throw AdapterError.invalidLabels(head: name, reason: "multi-label loss (BCE with logits) is not implemented yet")
        }
        let rows = logits.count / config.numLabels
        guard labels.count == rows else { throw AdapterError.invalidLabels(head: name, reason: "expected \(rows) labels, got \(labels.count)") }
        return crossEntropyLoss(logits: logits.reshaped([rows, config.numLabels]), labels: labels.map { Int($0) })
    }
}

// AdapterFusion (`BertFusion`, adapters 1.3.0 `methods/modeling.py` L359–456; config in
// `configuration/adapter_fusion_config.py`).
import AdapterCore

/// The configuration of an AdapterFusion layer (`AdapterFusionConfig`).
public struct AdapterFusionConfig: Sendable, Equatable {
    /// `key`: a `Linear(H, H)` with bias on the adapter outputs.
    public var key: Bool
    /// `query`: a `Linear(H, H)` with bias on the query.
    public var query: Bool
    /// `value`: a `Linear(H, H)` without bias.
    public var value: Bool
    /// `query_before_ln`: the query is h before the original LayerNorm.
    public var queryBeforeLayerNorm: Bool
    /// `regularization` (stored; the reference never reads it).
    public var regularization: Bool
    /// `residual_before`: add the residual to every value before attention.
    public var residualBefore: Bool
    /// `temperature`: T starts at 50 and anneals by T/1000 per call to 1.
    public var temperature: Bool
    /// `value_before_softmax`: apply V to each adapter output (else to the context).
    public var valueBeforeSoftmax: Bool
    /// `value_initialized`: V := I with 1e-6 off-diagonal for new fusions.
    public var valueInitialized: Bool
    /// `dropout_prob` on the pre-softmax scores (training only); nil → the model's attention dropout.
    public var dropoutProbability: Double?

    /// The "static" preset (adapter_fusion_config.py L47–62).
    public static let staticPreset = AdapterFusionConfig(key: true, query: true, value: false, queryBeforeLayerNorm: false,
                                                         regularization: false, residualBefore: false, temperature: false,
                                                         valueBeforeSoftmax: true, valueInitialized: false, dropoutProbability: nil)
    /// The "dynamic" preset (L65–80), the default.
    public static let dynamicPreset = AdapterFusionConfig(key: true, query: true, value: true, queryBeforeLayerNorm: false,
                                                          regularization: true, residualBefore: false, temperature: false,
                                                          valueBeforeSoftmax: true, valueInitialized: true, dropoutProbability: nil)

    /// Creates a config from its flags.
    public init(key: Bool, query: Bool, value: Bool, queryBeforeLayerNorm: Bool, regularization: Bool,
                residualBefore: Bool, temperature: Bool, valueBeforeSoftmax: Bool, valueInitialized: Bool,
                dropoutProbability: Double?) {
        self.key = key; self.query = query; self.value = value; self.queryBeforeLayerNorm = queryBeforeLayerNorm
        self.regularization = regularization; self.residualBefore = residualBefore; self.temperature = temperature
        self.valueBeforeSoftmax = valueBeforeSoftmax; self.valueInitialized = valueInitialized
        self.dropoutProbability = dropoutProbability
    }

    /// "static" or "dynamic".
    /// - Throws: `AdapterError.unknownPreset`.
    public static func preset(_ name: String) throws -> AdapterFusionConfig {
        switch name {
        case "static": return staticPreset
        case "dynamic": return dynamicPreset
        default: throw AdapterError.unknownPreset(name)
        }
    }

    /// From the `"config"` object of `adapter_fusion_config.json` (all ten keys required, as the dataclass
    /// has no defaults) or a preset name string.
    /// - Throws: `AdapterError.missingKey` / `.invalidValue` naming the key and file.
    public init(json: AdapterJSON, file: String) throws {
        if let name = json.stringValue { self = try AdapterFusionConfig.preset(name); return }
        guard let o = json.objectValue else { throw AdapterError.invalidValue(file: file, key: "config", reason: "expected an object") }
        func flag(_ k: String) throws -> Bool {
            guard let v = o[k] else { throw AdapterError.missingKey(file: file, key: k) }
            guard let b = v.boolValue else { throw AdapterError.invalidValue(file: file, key: k, reason: "expected true or false") }
            return b
        }
        key = try flag("key"); query = try flag("query"); value = try flag("value")
        queryBeforeLayerNorm = try flag("query_before_ln"); regularization = try flag("regularization")
        residualBefore = try flag("residual_before"); temperature = try flag("temperature")
        valueBeforeSoftmax = try flag("value_before_softmax"); valueInitialized = try flag("value_initialized")
        switch o["dropout_prob"] {
        case nil, .null?: dropoutProbability = nil
        case let v?:
            guard let p = v.doubleValue, p >= 0, p < 1 else {
                throw AdapterError.invalidValue(file: file, key: "dropout_prob", reason: "expected null or a number in [0, 1)")
            }
            dropoutProbability = p
        }
        if !query && !key && !value {
            throw AdapterError.unsupported(file: file, key: "query", reason: "a fusion without query, key and value (single dense scorer) is not implemented")
        }
    }

    /// The config object as the reference writes it.
    public var json: AdapterJSON {
        .object(["key": .bool(key), "query": .bool(query), "value": .bool(value), "query_before_ln": .bool(queryBeforeLayerNorm),
                 "regularization": .bool(regularization), "residual_before": .bool(residualBefore),
                 "temperature": .bool(temperature), "value_before_softmax": .bool(valueBeforeSoftmax),
                 "value_initialized": .bool(valueInitialized),
                 "dropout_prob": dropoutProbability.map { AdapterJSON.double($0) } ?? .null])
    }
}

/// The tensors of one fusion layer at one site.
public struct AdapterFusionWeights: Sendable, Equatable {
    /// `query.weight` `[H, H]`, `query.bias` `[H]` (config `query`).
    public var query: (weight: Tensor, bias: Tensor)?
    /// `key.weight` `[H, H]`, `key.bias` `[H]` (config `key`).
    public var key: (weight: Tensor, bias: Tensor)?
    /// `value.weight` `[H, H]`, no bias (config `value`).
    public var value: Tensor?

    /// Equal when query, key and value (weights and biases) are equal element for element.
    public static func == (a: Self, b: Self) -> Bool {
        a.query?.weight == b.query?.weight && a.query?.bias == b.query?.bias && a.key?.weight == b.key?.weight
            && a.key?.bias == b.key?.bias && a.value == b.value
    }

    /// Module-relative key names: `query.weight`, `query.bias`, `key.weight`, `key.bias`, `value.weight`.
    public var namedTensors: [(String, Tensor)] {
        var out: [(String, Tensor)] = []
        if let q = query { out += [("query.weight", q.weight), ("query.bias", q.bias)] }
        if let k = key { out += [("key.weight", k.weight), ("key.bias", k.bias)] }
        if let v = value { out.append(("value.weight", v)) }
        return out
    }
}

/// An AdapterFusion: attention over the outputs of N adapters, per layer (Pfeiffer et al. 2021).
///
/// Per site, on rows r (`[batch·seq]`) with adapter up-projections `U_i` `[rows, H]`:
/// ```
/// [U_i += residual]                    residual_before
/// q = Wq·query + bq;  K_i = Wk·U_i + bk;  V_i = Wv·U_i  (value_before_softmax)
/// p = softmax_i(q·K_iᵀ / T)            no 1/√H scaling; T = 1 unless `temperature`
/// ctx = Σ_i p_i V_i;  [ctx = Wv·ctx]   (value and not value_before_softmax)
/// [ctx += residual]                    not residual_before
/// ```
/// Q, K and V do not depend on N, so a fusion trained over N adapters runs over any subset (pruning).
/// The reference anneals T on every call (also in eval) and never saves it; this type keeps T fixed at its
/// start value (50 with `temperature`, else 1) — see docs/adapters.md.
public struct AdapterFusion: Sendable {
    /// The fusion's name (default: the adapter names joined by commas).
    public let name: String
    /// The adapters it was trained over, in order.
    public let adapterNames: [String]
    /// Its configuration.
    public let config: AdapterFusionConfig
    /// Weights per site.
    public var weights: [AdapterSite: AdapterFusionWeights]
    /// Whether training leaves it unchanged.
    public var isFrozen: Bool = false

    /// A fusion with given weights.
    public init(name: String, adapterNames: [String], config: AdapterFusionConfig,
                weights: [AdapterSite: AdapterFusionWeights], isFrozen: Bool = false) {
        self.name = name
        self.adapterNames = adapterNames
        self.config = config
        self.weights = weights
        self.isFrozen = isFrozen
    }

    /// A new fusion over `adapters` at every site whose location flag all of them share
    /// (`add_fusion_layer` / `common_config_value`; `leave_out` is not consulted, as in the reference).
    /// Query/key N(0, 0.02) with zero bias; value N(0, 0.02), or I with 1e-6 off-diagonal when `value_initialized`.
    /// - Throws: `AdapterError.fusionConfigMismatch` if the adapters disagree on `mh_adapter` or `output_adapter`.
    public init(name: String? = nil, adapters: [BottleneckAdapter], config: AdapterFusionConfig = .dynamicPreset,
                hiddenSize: Int, numLayers: Int, seed: UInt64 = 0) throws {
        let names = adapters.map(\.name)
        let fusionName = name ?? names.joined(separator: ",")
        let locations = try AdapterFusion.commonLocations(fusion: fusionName, adapters: adapters.map { ($0.name, $0.config) })
        var rng = SeededRNG(seed: seed)
        let h = hiddenSize
        func normal(_ shape: [Int]) -> Tensor {
            Tensor(shape: shape, scalars: (0..<shape.reduce(1, *)).map { _ in rng.normal(mean: 0, std: 0.02) })
        }
        var weights: [AdapterSite: AdapterFusionWeights] = [:]
        for layer in 0..<numLayers {
            for location in locations {
                var w = AdapterFusionWeights()
                if config.query { w.query = (normal([h, h]), Tensor(zeros: [h])) }
                if config.key { w.key = (normal([h, h]), Tensor(zeros: [h])) }
                if config.value {
                    let random = normal([h, h])
                    w.value = config.valueInitialized
                        ? Tensor(shape: [h, h], scalars: (0..<h * h).map { $0 / h == $0 % h ? 1 : 0.000001 }) : random
                }
                weights[AdapterSite(layer: layer, location: location)] = w
            }
        }
        self.init(name: fusionName, adapterNames: names, config: config, weights: weights)
    }

    /// The locations where all adapters agree the flag is set; throws if they disagree on a flag.
    static func commonLocations(fusion: String, adapters: [(String, BottleneckConfig)]) throws -> [AdapterLocation] {
        var out: [AdapterLocation] = []
        for location in AdapterLocation.allCases {
            let flags = Set(adapters.map { $0.1.flag(for: location) })
            if flags.count > 1 {
                throw AdapterError.fusionConfigMismatch(fusion: fusion, key: location.rawValue, adapters: adapters.map(\.0))
            }
            if flags.first == true { out.append(location) }
        }
        return out
    }

    /// The temperature the scores are divided by (50 with `temperature`, else 1).
    public var temperature: Float { config.temperature ? 50 : 1 }

    /// Fuses adapter outputs at a site.
    /// - Parameters:
    ///   - site: where (must have weights).
    ///   - query: `[rows, H]`.
    ///   - ups: N tensors `[rows, H]`, the adapters' up-projections.
    ///   - residual: `[rows, H]`.
    ///   - context: threads, GEMM backend and workspaces the op runs with.
    /// - Returns: the context `[rows, H]` and the attention probabilities `[rows, N]`.
    public func forward(site: AdapterSite, query: Tensor, ups: [Tensor], residual: Tensor,
                        context: ComputeContext) -> (output: Tensor, probabilities: Tensor) {
        guard let w = weights[site] else { preconditionFailure("fusion \(name) has no layer at \(site)") }
        let out = Self.siteForward(config: config, weights: w, query: query, ups: ups, residual: residual,
                                   temperature: temperature, context: context)
        return (out.output, out.probabilities)
    }

    /// Every intermediate of one site's forward (what the training backward needs).
    struct SiteForward {
        /// The values `V_i` stacked (after `residual_before`) `[N·rows, H]`.
        var stacked: Tensor
        /// `q` `[rows, H]` (the query itself without a query projection).
        var q: Tensor
        /// `K_i` stacked `[N·rows, H]`.
        var keys: Tensor
        /// `Ṽ_i` stacked `[N·rows, H]` (value before the softmax), else `V_i`.
        var values: Tensor
        /// `p` `[rows, N]`.
        var probabilities: Tensor
        /// The context before the value matrix (value after the softmax), else nil.
        var contextBeforeValue: Tensor?
        /// The fused output `[rows, H]`.
        var output: Tensor
    }

    /// The site computation of `forward` (the type's formula) with explicit weights, shared by inference and
    /// `AdapterFusionTrainingModule` so that both run the same operations in the same order.
    /// - Parameters:
    ///   - scoreMask: training only: the score dropout mask `[rows, N]` (0 or 1/(1−rate)) applied to the raw
    ///     scores before the softmax; nil: none.
    static func siteForward(config: AdapterFusionConfig, weights w: AdapterFusionWeights, query: Tensor, ups: [Tensor],
                            residual: Tensor, temperature: Float, scoreMask: Tensor? = nil,
                            context: ComputeContext) -> SiteForward {
        let n = ups.count, rows = query.shape[0], h = query.shape[1]
        var values = ups
        if config.residualBefore { values = values.map { add($0, residual, context: context) } }
        let q = w.query.map { linear(query, weight: $0.weight, bias: $0.bias, context: context) } ?? query
        let stacked = Tensor(concatenating: values)                                          // [N·rows, H]
        let keys = w.key.map { linear(stacked, weight: $0.weight, bias: $0.bias, context: context) } ?? stacked
        let vals = (config.value && config.valueBeforeSoftmax) ? linear(stacked, weight: w.value!, context: context) : stacked
        // scores[r, i] = q[r] · K_i[r], accumulated in Double-free fp32 in index order.
        let qs = q.contiguous(), ks = keys.contiguous()
        var scores = [Float](repeating: 0, count: rows * n)
        qs.withUnsafeBufferPointer { qp in
            ks.withUnsafeBufferPointer { kp in
                for r in 0..<rows {
                    for i in 0..<n {
                        var s: Float = 0
                        let k0 = (i * rows + r) * h, q0 = r * h
                        for j in 0..<h { s += qp[q0 + j] * kp[k0 + j] }
                        scores[r * n + i] = s
                    }
                }
            }
        }
        var scoreTensor = Tensor(shape: [rows, n], scalars: scores)
        if let scoreMask { scoreTensor = multiply(scoreTensor, scoreMask, context: context) }
        let probabilities = softmax(scoreTensor, scale: 1 / temperature, context: context)
        let p = probabilities.scalars
        var ctx = [Float](repeating: 0, count: rows * h)
        vals.contiguous().withUnsafeBufferPointer { vp in
            for r in 0..<rows {
                for i in 0..<n {
                    let pi = p[r * n + i], v0 = (i * rows + r) * h
                    for j in 0..<h { ctx[r * h + j] += pi * vp[v0 + j] }
                }
            }
        }
        var output = Tensor(shape: [rows, h], scalars: ctx)
        var contextBeforeValue: Tensor? = nil
        if config.value && !config.valueBeforeSoftmax {
            contextBeforeValue = output
            output = linear(output, weight: w.value!, context: context)
        }
        if !config.residualBefore { output = add(output, residual, context: context) }
        return SiteForward(stacked: stacked, q: q, keys: keys, values: vals, probabilities: probabilities,
                           contextBeforeValue: contextBeforeValue, output: output)
    }
}

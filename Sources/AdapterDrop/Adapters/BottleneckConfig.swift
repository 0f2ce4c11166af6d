// Bottleneck adapter configuration (`BnConfig`, `adapters/configuration/adapter_config.py` L132–376 in
// adapters 1.3.0) with its presets and the validation of keys for methods this package does not implement.
import AdapterCore

/// The configuration of a bottleneck adapter (AdapterHub `BnConfig`).
///
/// Built from a preset (`BottleneckConfig.preset("seq_bn")`) or from the `"config"` object of an
/// `adapter_config.json`. The full key set is kept in `json`, so that saving writes back exactly what was
/// loaded (unknown keys included, as the reference keeps them as extra attributes). Keys of methods this
/// package does not run (PHM/Compacter, invertible adapters, cross adapters, LoRA, prefix tuning) throw
/// `AdapterError.unsupported` naming the key, unless they hold their `BnConfig` default.
public struct BottleneckConfig: Sendable, Equatable {
    /// `residual_before_ln`: where the adapter's residual is taken.
    public enum ResidualBeforeLayerNorm: Sendable, Equatable {
        /// `true`: the sub-layer output h before the original LayerNorm.
        case beforeLayerNorm
        /// `false`: after the original LayerNorm (when `original_ln_before`).
        case afterLayerNorm
        /// `"post_add"`: h + a, before the original LayerNorm.
        case postAdd
    }
    /// `scaling` of the up-projection.
    public enum Scaling: Sendable, Equatable {
        /// A constant factor.
        case constant(Float)
        /// `"learned"`: one trained scalar (`scaling` tensor `[1]`).
        case learned
        /// `"channel"`: one trained factor per hidden unit (`scaling` tensor `[hidden]`).
        case channel
    }
    /// `init_weights` for new adapters.
    public enum Initialization: String, Sendable, Equatable {
        /// N(0, 0.02) weights, zero biases.
        case bert
        /// Kaiming-uniform(a = √5) down projection, zero up projection (identity at start).
        case mamAdapter = "mam_adapter"
        /// Truncated N(0, 0.01) in [−0.02, 0.02] weights, zero biases.
        case houlsby
    }

    /// Every key of the config object (`BnConfig` defaults filled in).
    public private(set) var json: [String: AdapterJSON]

    /// `mh_adapter`: an adapter after the attention output projection.
    public var mhAdapter: Bool { json["mh_adapter"]?.boolValue ?? false }
    /// `output_adapter`: an adapter after the feed-forward output projection.
    public var outputAdapter: Bool { json["output_adapter"]?.boolValue ?? false }
    /// `original_ln_before`: add the sub-layer residual and apply the layer's LayerNorm before the adapter.
    public var originalLayerNormBefore: Bool { json["original_ln_before"]?.boolValue ?? false }
    /// `original_ln_after`: apply the layer's LayerNorm to adapter output + sub-layer residual.
    public var originalLayerNormAfter: Bool { json["original_ln_after"]?.boolValue ?? true }
    /// `adapter_residual_before_ln`: add the adapter residual before `ln_after`.
    public var adapterResidualBeforeLayerNorm: Bool { json["adapter_residual_before_ln"]?.boolValue ?? false }
    /// `ln_before`: a new LayerNorm on the adapter input.
    public var layerNormBefore: Bool { json["ln_before"]?.boolValue ?? false }
    /// `ln_after`: a new LayerNorm on the adapter output.
    public var layerNormAfter: Bool { json["ln_after"]?.boolValue ?? false }
    /// `is_parallel`: the parallel adapter architecture (He et al.), input = sub-layer residual.
    public var isParallel: Bool { json["is_parallel"]?.boolValue ?? false }
    /// `use_gating`: a sigmoid gate `Linear(hidden, 1)` averaged over the sequence.
    public var useGating: Bool { json["use_gating"]?.boolValue ?? false }
    /// `dropout` on the adapter output (training only).
    public var dropout: Double { json["dropout"]?.doubleValue ?? 0 }
    /// `leave_out`: layers without this adapter.
    public var leaveOut: Set<Int> { Set((json["leave_out"]?.arrayValue ?? []).compactMap { $0.intValue }) }
    /// `init_weights_seed`, nil if absent.
    public var initWeightsSeed: Int? { json["init_weights_seed"]?.intValue }
    /// `non_linearity` as stored (after the legacy rename for version-less files).
    public var nonLinearity: String { json["non_linearity"]?.stringValue ?? "relu" }

    /// The parsed `residual_before_ln`.
    public let residualBeforeLayerNorm: ResidualBeforeLayerNorm
    /// The parsed `scaling`.
    public let scaling: Scaling
    /// The parsed `init_weights`.
    public let initialization: Initialization
    /// The parsed `non_linearity` (`Activation_Function_Class`: "leakyrelu" has slope 0.01, others via transformers' `ACT2CLS`).
    public let activation: Activation

    /// The `BnConfig` dataclass defaults (adapter_config.py L224–260); `mh_adapter`, `output_adapter`,
    /// `reduction_factor` and `non_linearity` have no default.
    public static let defaults: [String: AdapterJSON] = [
        "adapter_residual_before_ln": .bool(false), "cross_adapter": .bool(false), "dropout": .double(0),
        "factorized_phm_W": .bool(true), "factorized_phm_rule": .bool(false),
        "hypercomplex_nonlinearity": .string("glorot-uniform"), "init_weights": .string("bert"),
        "init_weights_seed": .null, "inv_adapter": .null, "inv_adapter_reduction_factor": .null,
        "is_parallel": .bool(false), "learn_phm": .bool(true), "leave_out": .array([]), "ln_after": .bool(false),
        "ln_before": .bool(false), "original_ln_after": .bool(true), "original_ln_before": .bool(false),
        "phm_bias": .bool(true), "phm_c_init": .string("normal"), "phm_dim": .int(4), "phm_init_range": .number("0.0001"),
        "phm_layer": .bool(false), "phm_rank": .int(1), "residual_before_ln": .bool(true), "scaling": .double(1),
        "shared_W_phm": .bool(false), "shared_phm_rule": .bool(true), "stochastic_depth": .double(0),
        "use_gating": .bool(false),
    ]

    /// Keys of the PHM / Compacter method; a non-default value throws `unsupported`.
    static let phmKeys = ["phm_layer", "phm_dim", "factorized_phm_W", "shared_W_phm", "shared_phm_rule",
                          "factorized_phm_rule", "phm_c_init", "phm_init_range", "learn_phm",
                          "hypercomplex_nonlinearity", "phm_rank", "phm_bias"]

    /// Builds a config from a `"config"` object.
    /// - Parameters:
    ///   - object: the config keys; missing optional keys take the `BnConfig` defaults.
    ///   - legacy: true for files without a `"version"` key: `non_linearity` gelu → gelu_new and
    ///     gelu_orig → gelu (`adapters/utils.py` `ACTIVATION_RENAME`).
    ///   - file: named in errors.
    /// - Throws: `AdapterError.missingKey` (`mh_adapter`, `output_adapter`, `reduction_factor`,
    ///   `non_linearity`), `.invalidValue`, `.unsupported` naming the key.
    public init(object: [String: AdapterJSON], legacy: Bool = false, file: String = "<config>") throws {
        if let architecture = object["architecture"], architecture != .null, architecture != .string("bottleneck") {
            throw AdapterError.unsupported(file: file, key: "architecture",
                                           reason: "only bottleneck adapters are implemented, not \(architecture.stringValue ?? "this method")")
        }
        if object["configs"] != nil {
            throw AdapterError.unsupported(file: file, key: "configs", reason: "config unions (e.g. mam, unipelt) are not implemented")
        }
        var json = BottleneckConfig.defaults
        for (k, v) in object { json[k] = v }
        json.removeValue(forKey: "architecture")
        for key in ["mh_adapter", "output_adapter", "reduction_factor", "non_linearity"] where json[key] == nil {
            throw AdapterError.missingKey(file: file, key: key)
        }
        for key in BottleneckConfig.phmKeys where json[key] != BottleneckConfig.defaults[key] {
            // Numbers are compared by value so that 4 and 4.0 count as the default.
            if let a = json[key]?.doubleValue, let b = BottleneckConfig.defaults[key]?.doubleValue, a == b { continue }
            throw AdapterError.unsupported(file: file, key: key, reason: "PHM / Compacter layers are not implemented")
        }
        for key in ["inv_adapter", "inv_adapter_reduction_factor"] where json[key] != .null {
            throw AdapterError.unsupported(file: file, key: key, reason: "invertible adapters are not implemented")
        }
        if json["cross_adapter"] != .bool(false) {
            throw AdapterError.unsupported(file: file, key: "cross_adapter", reason: "cross adapters are not implemented")
        }
        for key in ["mh_adapter", "output_adapter", "original_ln_before", "original_ln_after", "adapter_residual_before_ln",
                    "ln_before", "ln_after", "is_parallel", "use_gating"] where json[key]?.boolValue == nil {
            throw AdapterError.invalidValue(file: file, key: key, reason: "expected true or false")
        }
        if legacy, let name = json["non_linearity"]?.stringValue {
            if name == "gelu" { json["non_linearity"] = .string("gelu_new") }
            if name == "gelu_orig" { json["non_linearity"] = .string("gelu") }
        }
        switch json["non_linearity"] {
        case .null?: activation = .identity  // None → identity in Activation_Function_Class
        case let .string(name)?:
            guard let act = BottleneckConfig.activation(named: name) else {
                throw AdapterError.invalidValue(file: file, key: "non_linearity",
                                                reason: "unknown activation \"\(name)\" (relu, swish, silu, gelu, gelu_new, tanh, sigmoid, leakyrelu, identity)")
            }
            activation = act
        default: throw AdapterError.invalidValue(file: file, key: "non_linearity", reason: "expected a string")
        }
        switch json["residual_before_ln"] {
        case .bool(true)?: residualBeforeLayerNorm = .beforeLayerNorm
        case .bool(false)?: residualBeforeLayerNorm = .afterLayerNorm
        case .string("post_add")?:
            residualBeforeLayerNorm = .postAdd
            guard json["original_ln_before"]?.boolValue == true || json["is_parallel"]?.boolValue == true else {
                throw AdapterError.invalidValue(file: file, key: "residual_before_ln",
                                                reason: "\"post_add\" needs original_ln_before (the reference has no residual otherwise)")
            }
        default: throw AdapterError.invalidValue(file: file, key: "residual_before_ln", reason: "expected true, false or \"post_add\"")
        }
        switch json["scaling"] {
        case .string("learned")?: scaling = .learned
        case .string("channel")?: scaling = .channel
        case let .number(t)? where Float(t) != nil: scaling = .constant(Float(t)!)
        default: throw AdapterError.invalidValue(file: file, key: "scaling", reason: "expected a number, \"learned\" or \"channel\"")
        }
        guard let initText = json["init_weights"]?.stringValue, let initialization = Initialization(rawValue: initText) else {
            throw AdapterError.invalidValue(file: file, key: "init_weights", reason: "expected \"bert\", \"mam_adapter\" or \"houlsby\"")
        }
        self.initialization = initialization
        switch json["reduction_factor"] {
        case let .number(t)? where (Double(t) ?? 0) > 0: break
        case let .object(map)?:
            for (k, v) in map where (v.doubleValue ?? 0) <= 0 {
                throw AdapterError.invalidValue(file: file, key: "reduction_factor", reason: "entry \"\(k)\" must be a positive number")
            }
        default: throw AdapterError.invalidValue(file: file, key: "reduction_factor", reason: "expected a positive number or a mapping with \"default\"")
        }
        if let d = json["dropout"]?.doubleValue, d >= 0, d < 1 {} else {
            throw AdapterError.invalidValue(file: file, key: "dropout", reason: "expected a number in [0, 1)")
        }
        if case .array(let items)? = json["leave_out"], items.allSatisfy({ $0.intValue != nil }) {} else {
            throw AdapterError.invalidValue(file: file, key: "leave_out", reason: "expected a list of layer indices")
        }
        if json["init_weights_seed"] != .null && json["init_weights_seed"]?.intValue == nil {
            throw AdapterError.invalidValue(file: file, key: "init_weights_seed", reason: "expected an integer or null")
        }
        self.json = json
    }

    /// `Activation_Function_Class` (modeling.py L14–29) over the names `ACT2CLS` knows that we implement.
    static func activation(named name: String) -> Activation? {
        switch name.lowercased() {
        case "relu": return .relu
        case "swish", "silu": return .silu
        case "gelu": return .gelu
        case "gelu_new", "gelu_pytorch_tanh", "gelu_fast": return .geluTanh
        case "tanh": return .tanh
        case "sigmoid": return .sigmoid
        case "leakyrelu", "leaky_relu": return .leakyReLU(slope: 0.01)
        case "linear", "identity": return .identity
        default: return nil
        }
    }

    /// A preset of `ADAPTER_CONFIG_MAP` (adapter_config.py L905–936) with optional overrides.
    /// - Parameters:
    ///   - name: "seq_bn"/"pfeiffer", "double_seq_bn"/"houlsby", "par_bn"/"parallel", "scaled_parallel".
    ///   - overrides: keys replacing the preset's values (e.g. `["reduction_factor": .int(4)]`).
    /// - Throws: `AdapterError.unknownPreset`; `.unsupported` for presets of unimplemented methods
    ///   ("pfeiffer+inv", "lora", "prefix_tuning", …); errors of `init(object:)` for bad overrides.
    public static func preset(_ name: String, overrides: [String: AdapterJSON] = [:]) throws -> BottleneckConfig {
        var object: [String: AdapterJSON]
        switch name {
        case "seq_bn", "pfeiffer":
            object = ["mh_adapter": .bool(false), "output_adapter": .bool(true), "reduction_factor": .int(16),
                      "non_linearity": .string("relu"), "original_ln_before": .bool(true)]
        case "double_seq_bn", "houlsby":
            object = ["mh_adapter": .bool(true), "output_adapter": .bool(true), "reduction_factor": .int(16),
                      "non_linearity": .string("swish")]
        case "par_bn", "parallel", "scaled_parallel":
            object = ["mh_adapter": .bool(false), "output_adapter": .bool(true), "reduction_factor": .int(2),
                      "non_linearity": .string("relu"), "init_weights": .string("mam_adapter"), "is_parallel": .bool(true),
                      "scaling": name == "scaled_parallel" ? .string("learned") : .double(4)]
        case "pfeiffer+inv", "houlsby+inv", "seq_bn_inv", "double_seq_bn_inv":
            throw AdapterError.unsupported(file: "<preset>", key: "inv_adapter", reason: "preset \"\(name)\" uses invertible adapters")
        case "lora", "prefix_tuning", "prefix_tuning_flat", "compacter", "compacter++", "mam", "unipelt", "ia3",
             "prompt_tuning", "loreft", "noreft", "direft", "vera":
            throw AdapterError.unsupported(file: "<preset>", key: "architecture", reason: "preset \"\(name)\" is not a bottleneck adapter")
        default:
            throw AdapterError.unknownPreset(name)
        }
        for (k, v) in overrides { object[k] = v }
        return try BottleneckConfig(object: object, file: "<preset \(name)>")
    }

    /// The bottleneck width in a layer: `max(1, int(hidden // rf))` with rf looked up by `str(layer)`, then
    /// `"default"` (bottleneck.py L78–107, modeling.py L68–75).
    /// - Throws: `AdapterError.invalidValue` when a mapping has neither the layer nor `"default"`.
    public func bottleneckSize(hiddenSize: Int, layer: Int) throws -> Int {
        var rf: Double
        switch json["reduction_factor"] {
        case let .object(map)?:
            guard let v = (map[String(layer)] ?? map["default"])?.doubleValue else {
                throw AdapterError.invalidValue(file: "<config>", key: "reduction_factor",
                                                reason: "no entry for layer \(layer) and no \"default\"")
            }
            rf = v
        default: rf = json["reduction_factor"]?.doubleValue ?? 16
        }
        return max(1, Int((Double(hiddenSize) / rf).rounded(.down)))
    }

    /// Whether the adapter has a module at this layer and location.
    public func isPresent(layer: Int, location: AdapterLocation) -> Bool {
        guard !leaveOut.contains(layer) else { return false }
        return location == .attentionOutput ? mhAdapter : outputAdapter
    }

    /// Whether a `BnConfig` flag holds at a location, for `common_config_value` checks.
    func flag(for location: AdapterLocation) -> Bool { location == .attentionOutput ? mhAdapter : outputAdapter }
}

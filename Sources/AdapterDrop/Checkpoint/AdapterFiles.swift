// AdapterHub artefact files (adapters 1.3.0 `loading.py`, `utils.py` L45–57): adapter_config.json +
// adapter.safetensors, head_config.json + model_head.safetensors, adapter_fusion_config.json +
// model_adapter_fusion.safetensors. Key names as the reference writes them.
import AdapterCore
import Foundation
import Logging

/// File names and key conventions of AdapterHub artefacts.
public enum AdapterFiles {
    /// `adapter_config.json`.
    public static let adapterConfig = "adapter_config.json"
    /// `adapter.safetensors`.
    public static let adapterWeights = "adapter.safetensors"
    /// `pytorch_adapter.bin` (not read; convert it).
    public static let adapterWeightsPickle = "pytorch_adapter.bin"
    /// `head_config.json`.
    public static let headConfig = "head_config.json"
    /// `model_head.safetensors`.
    public static let headWeights = "model_head.safetensors"
    /// `pytorch_model_head.bin`.
    public static let headWeightsPickle = "pytorch_model_head.bin"
    /// `adapter_fusion_config.json`.
    public static let fusionConfig = "adapter_fusion_config.json"
    /// `model_adapter_fusion.safetensors`.
    public static let fusionWeights = "model_adapter_fusion.safetensors"
    /// `pytorch_model_adapter_fusion.bin`.
    public static let fusionWeightsPickle = "pytorch_model_adapter_fusion.bin"
    /// The version string written into configs.
    public static let version = "adapters.1.3.0"

    /// Legacy (adapter-transformers v1) module names that map to `adapters` (loading.py L398–404).
    static let legacyCollections = ["attention_text_task_adapters", "layer_text_task_adapters",
                                    "attention_text_lang_adapters", "layer_text_lang_adapters"]

    /// A tensor key with the model prefix (`bert.` / `roberta.`) removed and legacy collection names mapped.
    static func normalizedKey(_ key: String) -> String {
        var k = key
        for prefix in ["bert.", "roberta."] where k.hasPrefix(prefix) { k.removeFirst(prefix.count); break }
        for legacy in legacyCollections { k = k.replacingOccurrences(of: ".\(legacy).", with: ".adapters.") }
        return k
    }

    /// Parses `encoder.layer.{i}.{attention.output|output}.{collection}.{name}.{rest}` for a given name.
    /// - Returns: (site, rest) or nil if the key is not of that form.
    static func parseSiteKey(_ key: String, collection: String, name: String) -> (AdapterSite, String)? {
        guard key.hasPrefix("encoder.layer.") else { return nil }
        let afterLayer = key.dropFirst("encoder.layer.".count)
        guard let dot = afterLayer.firstIndex(of: "."), let layer = Int(afterLayer[..<dot]) else { return nil }
        let tail = afterLayer[afterLayer.index(after: dot)...]
        for (location, module) in [(AdapterLocation.attentionOutput, "attention.output"), (.output, "output")] {
            let head = "\(module).\(collection).\(name)."
            if tail.hasPrefix(head) { return (AdapterSite(layer: layer, location: location), String(tail.dropFirst(head.count))) }
        }
        return nil
    }

    /// Throws `pytorchWeightsOnly` or `missingFile` when the safetensors file is absent.
    static func weightsURL(_ folder: URL, _ name: String, pickle: String) throws -> URL {
        let url = folder.appendingPathComponent(name)
        if FileManager.default.fileExists(atPath: url.path) { return url }
        let bin = folder.appendingPathComponent(pickle)
        if FileManager.default.fileExists(atPath: bin.path) { throw AdapterError.pytorchWeightsOnly(file: bin.path) }
        throw AdapterError.missingFile(path: url.path)
    }

    /// The envelope of every config file.
    static func envelope(config: AdapterJSON, name: String, model: ModelDescription) -> [String: AdapterJSON] {
        ["config": config, "hidden_size": .int(model.hiddenSize), "model_class": .string(model.modelClass),
         "model_name": .string(model.modelName), "model_type": .string(model.modelType), "name": .string(name),
         "version": .string(version)]
    }

    /// The model family a config file was saved for: its `model_type` (lowercased), else the `model_class`
    /// prefix (`RobertaAdapterModel`, `RobertaModelWithHeads`, `RobertaForSequenceClassification` → "roberta");
    /// nil when neither is present.
    static func savedModelFamily(_ o: [String: AdapterJSON]) -> String? {
        if let t = o["model_type"]?.stringValue, !t.isEmpty { return t.lowercased().replacingOccurrences(of: "-", with: "") }
        guard let c = o["model_class"]?.stringValue else { return nil }
        for marker in ["AdapterModel", "ModelWithHeads", "For", "Model"] {
            if let r = c.range(of: marker), r.lowerBound > c.startIndex { return c[..<r.lowerBound].lowercased() }
        }
        return nil
    }

    static let logger = Logger(label: "AdapterDrop.Adapters")

    /// Compares the model family a config was saved for with the model's. A mismatch (a RoBERTa adapter on a
    /// BERT model) is an error when `strict` (heads: adapters 1.3.0 `PredictionHeadLoader` raises
    /// "Model class … of found prediction head does not match current model class"), otherwise a warning on the
    /// `AdapterDrop.Adapters` logger (adapters and fusions: the reference loads them without any check; with the
    /// same hidden size the weights fit, but were trained on another encoder's representations).
    /// - Throws: `AdapterError.invalidValue` for `model_class` / `model_type` when `strict`.
    static func checkModelFamily(_ o: [String: AdapterJSON], url: URL, model: ModelDescription, strict: Bool) throws {
        guard let saved = savedModelFamily(o), saved != model.modelType.lowercased() else { return }
        let key = o["model_type"]?.stringValue != nil ? "model_type" : "model_class"
        let savedText = o["model_class"]?.stringValue.map { "\(saved) (\($0))" } ?? saved
        let message = "saved for a \(savedText) model, but the model is \(model.modelType) (\(model.modelClass))"
        if strict { throw AdapterError.invalidValue(file: url.path, key: key, reason: message) }
        logger.warning("\(url.path): \(message); loading it anyway, as adapters 1.3.0 does")
    }

    /// Reads a config file and checks `hidden_size` against the model.
    static func readEnvelope(_ url: URL, model: ModelDescription) throws -> [String: AdapterJSON] {
        guard FileManager.default.fileExists(atPath: url.path) else { throw AdapterError.missingFile(path: url.path) }
        guard let o = try AdapterJSON.read(url).objectValue else {
            throw AdapterError.invalidJSON(file: url.path, reason: "the root is not an object")
        }
        guard o["config"] != nil else { throw AdapterError.missingKey(file: url.path, key: "config") }
        if let h = o["hidden_size"], h != .null, h.intValue != model.hiddenSize {
            throw AdapterError.invalidValue(file: url.path, key: "hidden_size",
                                            reason: "\(h.intValue.map(String.init) ?? "?") does not match the model's \(model.hiddenSize)")
        }
        return o
    }

    /// Reads a tensor with a shape check.
    static func tensor(_ file: SafetensorsFile, _ key: String, shape: [Int]) throws -> Tensor {
        let info = try file.info(key)
        guard info.shape == shape else { throw AdapterError.wrongShape(file: file.url.path, key: key, expected: shape, actual: info.shape) }
        return try file.tensor(key)
    }

    /// Writes named tensors atomically.
    static func writeTensors(_ tensors: [(String, Tensor)], to url: URL) throws {
        var writer = SafetensorsWriter(metadata: ["format": "pt"])
        for (k, t) in tensors { try writer.add(k, tensor: t) }
        try writer.write(to: url)
    }
}

/// What config files record about the base model.
public struct ModelDescription: Sendable, Equatable {
    /// `hidden_size`.
    public var hiddenSize: Int
    /// Transformer layer count.
    public var numLayers: Int
    /// `model_type` ("bert" / "roberta"); also the key prefix written (`bert.`).
    public var modelType: String
    /// `model_name` (e.g. "bert-base-uncased").
    public var modelName: String
    /// `model_class` written (`BertAdapterModel` / `RobertaAdapterModel`).
    public var modelClass: String { modelType == "roberta" ? "RobertaAdapterModel" : "BertAdapterModel" }
    /// The key prefix of a flex-head model (`bert.` / `roberta.`).
    public var keyPrefix: String { modelType + "." }

    /// - Parameters: see the properties.
    public init(hiddenSize: Int, numLayers: Int, modelType: String, modelName: String = "") {
        self.hiddenSize = hiddenSize
        self.numLayers = numLayers
        self.modelType = modelType
        self.modelName = modelName
    }
}

extension BottleneckAdapter {
    /// Loads an adapter saved by `save_adapter` (`adapter_config.json` + `adapter.safetensors`).
    ///
    /// Keys are accepted with the `bert.`/`roberta.` prefix or without, and with legacy v1 collection names.
    /// Keys of other adapters, and of layers in `leave_out`, are ignored (the reference reports them as
    /// unexpected and skips them).
    /// - Parameters:
    ///   - folder: the saved folder.
    ///   - model: the base model's sizes.
    ///   - loadAs: a new name (the keys' stored name is renamed, as `load_as`).
    ///   - leaveOut: overrides the config's `leave_out` (AdapterDrop's static variant).
    /// - Throws: `AdapterError` naming the file and key: missing file, `.pytorchWeightsOnly` (convert with
    ///   `scripts/convert_bin_to_safetensors.py`), bad or unsupported config keys, `.missingWeight`,
    ///   `.wrongShape`; `SafetensorsError` for a malformed weights file.
    public init(folder: URL, model: ModelDescription, loadAs: String? = nil, leaveOut: [Int]? = nil) throws {
        recoverInterruptedFolderSave(folder)
        let configURL = folder.appendingPathComponent(AdapterFiles.adapterConfig)
        let envelope = try AdapterFiles.readEnvelope(configURL, model: model)
        try AdapterFiles.checkModelFamily(envelope, url: configURL, model: model, strict: false)
        let legacy = envelope["version"] == nil
        var config: BottleneckConfig
        switch envelope["config"]! {
        case let .string(preset): config = try BottleneckConfig.preset(preset)
        case let .object(o): config = try BottleneckConfig(object: o, legacy: legacy, file: configURL.path)
        default: throw AdapterError.invalidValue(file: configURL.path, key: "config", reason: "expected an object or a preset name")
        }
        if let leaveOut {
            var o = config.json
            o["leave_out"] = .array(leaveOut.map { .int($0) })
            config = try BottleneckConfig(object: o, file: configURL.path)
        }
        guard let storedName = envelope["name"]?.stringValue else { throw AdapterError.missingKey(file: configURL.path, key: "name") }
        let weightsURL = try AdapterFiles.weightsURL(folder, AdapterFiles.adapterWeights, pickle: AdapterFiles.adapterWeightsPickle)
        let file = try SafetensorsFile(url: weightsURL, options: .init(rejectNonFinite: true))
        var keysBySite: [AdapterSite: [String: String]] = [:]   // site → rest → original key
        var prefix = ""
        for key in file.tensorNames {
            let normalized = AdapterFiles.normalizedKey(key)
            guard let (site, rest) = AdapterFiles.parseSiteKey(normalized, collection: "adapters", name: storedName) else { continue }
            if key.hasPrefix("bert.") { prefix = "bert." } else if key.hasPrefix("roberta.") { prefix = "roberta." }
            keysBySite[site, default: [:]][rest] = key
        }
        let h = model.hiddenSize
        var weights: [AdapterSite: BottleneckAdapterWeights] = [:]
        for layer in 0..<model.numLayers {
            for location in AdapterLocation.allCases where config.isPresent(layer: layer, location: location) {
                let site = AdapterSite(layer: layer, location: location)
                let d = try config.bottleneckSize(hiddenSize: h, layer: layer)
                let keys = keysBySite[site] ?? [:]
                func get(_ rest: String, _ shape: [Int]) throws -> Tensor {
                    guard let key = keys[rest] else {
                        throw AdapterError.missingWeight(file: weightsURL.path, key: "\(prefix)\(site.modulePath).adapters.\(storedName).\(rest)")
                    }
                    return try AdapterFiles.tensor(file, key, shape: shape)
                }
                let downIndex = config.layerNormBefore ? 1 : 0
                var w = BottleneckAdapterWeights(
                    downWeight: try get("adapter_down.\(downIndex).weight", [d, h]), downBias: try get("adapter_down.\(downIndex).bias", [d]),
                    upWeight: try get("adapter_up.weight", [h, d]), upBias: try get("adapter_up.bias", [h]))
                if config.layerNormBefore {
                    let names = keys["adapter_norm_before.weight"] != nil ? "adapter_norm_before" : "adapter_down.0"
                    w.normBefore = (try get("\(names).weight", [h]), try get("\(names).bias", [h]))
                }
                if config.layerNormAfter { w.normAfter = (try get("adapter_norm_after.weight", [h]), try get("adapter_norm_after.bias", [h])) }
                if config.useGating { w.gate = (try get("gate.weight", [1, h]), try get("gate.bias", [1])) }
                switch config.scaling {
                case .learned: w.scaling = try get("scaling", [1])
                case .channel: w.scaling = try get("scaling", [h])
                case .constant: break
                }
                weights[site] = w
            }
        }
        self.init(name: loadAs ?? storedName, config: config, hiddenSize: h, weights: weights)
    }

    /// Saves as `save_adapter` does: `adapter_config.json` (sorted keys, indent 2) and `adapter.safetensors`
    /// with keys `{bert.|roberta.}encoder.layer.{i}.{…}.adapters.{name}.{…}`. The folder is replaced as a
    /// whole (`saveFolderAtomically`): after a crash it holds either both old files or both new ones; other
    /// files already in it (a head saved beside the adapter) are kept.
    /// - Throws: `SafetensorsWriterError` on I/O failure.
    public func save(to folder: URL, model: ModelDescription) throws {
        try saveFolderAtomically(folder, writing: [AdapterFiles.adapterWeights, AdapterFiles.adapterConfig]) {
            try writeFiles(into: $0, model: model)
        }
    }

    /// Writes `adapter.safetensors` and `adapter_config.json` into `folder` (each file atomic, not the pair).
    func writeFiles(into folder: URL, model: ModelDescription) throws {
        var tensors: [(String, Tensor)] = []
        for site in weights.keys.sorted() {
            for (rest, t) in weights[site]!.namedTensors {
                tensors.append(("\(model.keyPrefix)\(site.modulePath).adapters.\(name).\(rest)", t))
            }
        }
        try AdapterFiles.writeTensors(tensors, to: folder.appendingPathComponent(AdapterFiles.adapterWeights))
        try AdapterJSON.object(AdapterFiles.envelope(config: .object(config.json), name: name, model: model))
            .writeAtomically(to: folder.appendingPathComponent(AdapterFiles.adapterConfig))
    }
}

extension PredictionHead {
    /// Loads a head saved by `save_head` / `save_adapter(with_head=True)` (`head_config.json` +
    /// `model_head.safetensors`, keys `heads.{name}.{index}.weight|bias`).
    /// - Throws: `AdapterError` naming the file and key; `SafetensorsError` for a malformed file.
    public init(folder: URL, model: ModelDescription, loadAs: String? = nil) throws {
        recoverInterruptedFolderSave(folder)
        let configURL = folder.appendingPathComponent(AdapterFiles.headConfig)
        let envelope = try AdapterFiles.readEnvelope(configURL, model: model)
        try AdapterFiles.checkModelFamily(envelope, url: configURL, model: model, strict: true)
        let config = try PredictionHeadConfig(json: envelope["config"]!, file: configURL.path)
        guard let storedName = envelope["name"]?.stringValue else { throw AdapterError.missingKey(file: configURL.path, key: "name") }
        let url = try AdapterFiles.weightsURL(folder, AdapterFiles.headWeights, pickle: AdapterFiles.headWeightsPickle)
        let file = try SafetensorsFile(url: url, options: .init(rejectNonFinite: true))
        var linears: [(weight: Tensor, bias: Tensor?)] = []
        let h = model.hiddenSize
        for (l, index) in config.linearModuleIndices.enumerated() {
            let out = l == config.layers - 1 ? config.numLabels : h
            let base = "heads.\(storedName).\(index)"
            func find(_ rest: String) -> String? {
                file.tensorNames.first { $0 == "\(base).\(rest)" || $0.hasSuffix(".\(base).\(rest)") }
            }
            guard let wk = find("weight") else { throw AdapterError.missingWeight(file: url.path, key: "\(base).weight") }
            let weight = try AdapterFiles.tensor(file, wk, shape: [out, h])
            var bias: Tensor?
            if l < config.layers - 1 || config.bias {
                guard let bk = find("bias") else { throw AdapterError.missingWeight(file: url.path, key: "\(base).bias") }
                bias = try AdapterFiles.tensor(file, bk, shape: [out])
            }
            linears.append((weight, bias))
        }
        self.init(name: loadAs ?? storedName, config: config, linears: linears)
    }

    /// Saves as `save_head`: `head_config.json` and `model_head.safetensors`; the folder is replaced as a whole
    /// (`saveFolderAtomically`), keeping other files in it (an adapter saved in the same folder).
    /// - Throws: `SafetensorsWriterError` on I/O failure.
    public func save(to folder: URL, model: ModelDescription) throws {
        try saveFolderAtomically(folder, writing: [AdapterFiles.headWeights, AdapterFiles.headConfig]) {
            try writeFiles(into: $0, model: model)
        }
    }

    /// Writes `model_head.safetensors` and `head_config.json` into `folder` (each file atomic, not the pair).
    func writeFiles(into folder: URL, model: ModelDescription) throws {
        try AdapterFiles.writeTensors(namedTensors.map { ("heads.\(name).\($0.0)", $0.1) },
                                      to: folder.appendingPathComponent(AdapterFiles.headWeights))
        try AdapterJSON.object(AdapterFiles.envelope(config: config.json, name: name, model: model))
            .writeAtomically(to: folder.appendingPathComponent(AdapterFiles.headConfig))
    }
}

extension AdapterFusion {
    /// Loads a fusion saved by `save_adapter_fusion`. Its adapters must already be loaded (they decide the
    /// locations, as in the reference). Weights of layers where the adapters are left out are read and kept
    /// but never used.
    /// - Parameters:
    ///   - adapters: the loaded adapters by name (must include every name in `adapter_names`).
    /// - Throws: `AdapterError.unknownAdapter`, `.fusionConfigMismatch`, `.missingWeight`, `.wrongShape`,
    ///   config errors, naming the file and key.
    public init(folder: URL, model: ModelDescription, adapters: [String: BottleneckAdapter], loadAs: String? = nil) throws {
        recoverInterruptedFolderSave(folder)
        let configURL = folder.appendingPathComponent(AdapterFiles.fusionConfig)
        let envelope = try AdapterFiles.readEnvelope(configURL, model: model)
        try AdapterFiles.checkModelFamily(envelope, url: configURL, model: model, strict: false)
        let config = try AdapterFusionConfig(json: envelope["config"]!, file: configURL.path)
        guard case let .array(namesJSON)? = envelope["adapter_names"] else {
            throw AdapterError.missingKey(file: configURL.path, key: "adapter_names")
        }
        let names = try namesJSON.map { v -> String in
            guard let s = v.stringValue else { throw AdapterError.invalidValue(file: configURL.path, key: "adapter_names", reason: "expected strings") }
            return s
        }
        let storedName = envelope["name"]?.stringValue ?? names.joined(separator: ",")
        let members = try names.map { n -> (String, BottleneckConfig) in
            guard let a = adapters[n] else { throw AdapterError.unknownAdapter(n) }
            return (n, a.config)
        }
        let locations = try AdapterFusion.commonLocations(fusion: storedName, adapters: members)
        let url = try AdapterFiles.weightsURL(folder, AdapterFiles.fusionWeights, pickle: AdapterFiles.fusionWeightsPickle)
        let file = try SafetensorsFile(url: url, options: .init(rejectNonFinite: true))
        var keysBySite: [AdapterSite: [String: String]] = [:]
        for key in file.tensorNames {
            guard let (site, rest) = AdapterFiles.parseSiteKey(AdapterFiles.normalizedKey(key), collection: "adapter_fusion_layer",
                                                               name: storedName) else { continue }
            keysBySite[site, default: [:]][rest] = key
        }
        let h = model.hiddenSize
        var weights: [AdapterSite: AdapterFusionWeights] = [:]
        for layer in 0..<model.numLayers {
            for location in locations {
                let site = AdapterSite(layer: layer, location: location)
                let keys = keysBySite[site] ?? [:]
                let needed = names.contains { adapters[$0]!.weights[site] != nil }
                if keys.isEmpty && !needed { continue }
                func get(_ rest: String, _ shape: [Int]) throws -> Tensor {
                    guard let key = keys[rest] else {
                        throw AdapterError.missingWeight(file: url.path, key: "\(model.keyPrefix)\(site.modulePath).adapter_fusion_layer.\(storedName).\(rest)")
                    }
                    return try AdapterFiles.tensor(file, key, shape: shape)
                }
                var w = AdapterFusionWeights()
                if config.query { w.query = (try get("query.weight", [h, h]), try get("query.bias", [h])) }
                if config.key { w.key = (try get("key.weight", [h, h]), try get("key.bias", [h])) }
                if config.value { w.value = try get("value.weight", [h, h]) }
                weights[site] = w
            }
        }
        self.init(name: loadAs ?? storedName, adapterNames: names, config: config, weights: weights)
    }

    /// Saves as `save_adapter_fusion`: `adapter_fusion_config.json` (with `adapter_names`) and
    /// `model_adapter_fusion.safetensors`; the folder is replaced as a whole (`saveFolderAtomically`).
    /// - Throws: `SafetensorsWriterError` on I/O failure.
    public func save(to folder: URL, model: ModelDescription) throws {
        try saveFolderAtomically(folder, writing: [AdapterFiles.fusionWeights, AdapterFiles.fusionConfig]) {
            try writeFiles(into: $0, model: model)
        }
    }

    /// Writes `model_adapter_fusion.safetensors` and `adapter_fusion_config.json` into `folder`.
    func writeFiles(into folder: URL, model: ModelDescription) throws {
        var tensors: [(String, Tensor)] = []
        for site in weights.keys.sorted() {
            for (rest, t) in weights[site]!.namedTensors {
                tensors.append(("\(model.keyPrefix)\(site.modulePath).adapter_fusion_layer.\(name).\(rest)", t))
            }
        }
        try AdapterFiles.writeTensors(tensors, to: folder.appendingPathComponent(AdapterFiles.fusionWeights))
        var envelope = AdapterFiles.envelope(config: config.json, name: name, model: model)
        envelope["adapter_names"] = .array(adapterNames.map { .string($0) })
        try AdapterJSON.object(envelope).writeAtomically(to: folder.appendingPathComponent(AdapterFiles.fusionConfig))
    }
}

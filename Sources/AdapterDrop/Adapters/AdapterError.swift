// Typed errors for adapters, heads, fusion, composition and their AdapterHub files.

/// A user-input error about adapters, heads, AdapterFusion, composition setups or their files. Every case
/// names the file, key, adapter or block at fault.
public enum AdapterError: Error, Equatable, Sendable {
    /// A file is absent or unreadable.
    case missingFile(path: String)
    /// A file is not valid JSON.
    case invalidJSON(file: String, reason: String)
    /// A required config key is absent.
    case missingKey(file: String, key: String)
    /// A config key holds a value of the wrong type or out of range.
    case invalidValue(file: String, key: String, reason: String)
    /// A config key asks for a method this package does not implement (PHM/Compacter, invertible adapters,
    /// cross adapters, LoRA, prefix tuning, …).
    case unsupported(file: String, key: String, reason: String)
    /// A config preset name that `adapters` 1.3.0 does not know.
    case unknownPreset(String)
    /// Only a PyTorch pickle (`.bin`) exists: convert it with `scripts/convert_bin_to_safetensors.py`.
    case pytorchWeightsOnly(file: String)
    /// A weight the config requires is not in the file.
    case missingWeight(file: String, key: String)
    /// A weight has the wrong shape.
    case wrongShape(file: String, key: String, expected: [Int], actual: [Int])
    /// A weight file holds tensors for this artefact that the config does not explain.
    case unexpectedWeight(file: String, key: String)
    /// No adapter of this name is loaded.
    case unknownAdapter(String)
    /// An adapter of this name is already loaded.
    case duplicateAdapter(String)
    /// No fusion of this name is loaded.
    case unknownFusion(String)
    /// No head of this name is loaded.
    case unknownHead(String)
    /// Loading `file` would add a head named `name`, but a head of that name is already loaded (from the file
    /// `existing`, when it was loaded from one). Heads are looked up by name, so one would silently replace the other.
    case duplicateHead(name: String, file: String, existing: String?)
    /// The adapters of a fusion disagree on a location flag (`mh_adapter` / `output_adapter`), as the
    /// reference's `common_config_value` refuses.
    case fusionConfigMismatch(fusion: String, key: String, adapters: [String])
    /// A fusion's adapters are not loaded, or a Fuse block uses adapters outside the fusion.
    case fusionAdapterMismatch(fusion: String, reason: String)
    /// A composition block nested where the reference forbids it.
    case illegalNesting(parent: String, child: String)
    /// A composition nested deeper than the reference allows (only Stack or a name below level 1).
    case compositionTooDeep(block: String, level: Int)
    /// The setup text could not be parsed.
    case invalidSetup(text: String, reason: String)
    /// A Parallel block's channel count differs from the number of heads asked for.
    case parallelHeadCount(channels: Int, heads: Int)
    /// BatchSplit sizes do not sum to the batch.
    case batchSplitSizes(sizes: [Int], batch: Int)
    /// A composition block this package does not run (Split, MultiTask).
    case unsupportedBlock(String)
    /// A head received labels of the wrong shape or kind.
    case invalidLabels(head: String, reason: String)
}

extension AdapterError: CustomStringConvertible {
    /// A one-line explanation naming the file, key, adapter or block.
    public var description: String {
        switch self {
        case let .missingFile(path): return "\(path): no such file"
        case let .invalidJSON(file, reason): return "\(file): not valid JSON: \(reason)"
        case let .missingKey(file, key): return "\(file): missing required key \"\(key)\""
        case let .invalidValue(file, key, reason): return "\(file): key \"\(key)\": \(reason)"
        case let .unsupported(file, key, reason): return "\(file): key \"\(key)\" is not supported: \(reason)"
        case let .unknownPreset(name):
            return "unknown adapter config \"\(name)\" (known: seq_bn, pfeiffer, double_seq_bn, houlsby, par_bn, parallel, scaled_parallel)"
        case let .pytorchWeightsOnly(file):
            return "\(file): only PyTorch pickle weights found; convert them with scripts/convert_bin_to_safetensors.py"
        case let .missingWeight(file, key): return "\(file): missing weight \"\(key)\""
        case let .wrongShape(file, key, expected, actual): return "\(file): weight \"\(key)\" has shape \(actual), expected \(expected)"
        case let .unexpectedWeight(file, key): return "\(file): unexpected weight \"\(key)\""
        case let .unknownAdapter(name): return "no adapter named \"\(name)\""
        case let .duplicateAdapter(name): return "an adapter named \"\(name)\" already exists"
        case let .unknownFusion(name): return "no AdapterFusion named \"\(name)\""
        case let .unknownHead(name): return "no prediction head named \"\(name)\""
        case let .duplicateHead(name, file, existing):
            return "\(file): a prediction head named \"\(name)\" is already loaded" + (existing.map { " from \($0)" } ?? "")
                + "; two heads may not share a name"
        case let .fusionConfigMismatch(fusion, key, adapters):
            return "AdapterFusion \"\(fusion)\": adapters \(adapters) must define the same value for config attribute \(key)"
        case let .fusionAdapterMismatch(fusion, reason): return "AdapterFusion \"\(fusion)\": \(reason)"
        case let .illegalNesting(parent, child): return "cannot nest \(child) inside \(parent)"
        case let .compositionTooDeep(block, level): return "adapter setup is too deep: cannot have \(block) at level \(level)"
        case let .invalidSetup(text, reason): return "invalid adapter setup \"\(text)\": \(reason)"
        case let .parallelHeadCount(channels, heads):
            return "Parallel block has \(channels) channels but \(heads) heads were given (they must match)"
        case let .batchSplitSizes(sizes, batch): return "BatchSplit sizes \(sizes) do not sum to the batch size \(batch)"
        case let .unsupportedBlock(name): return "composition block \(name) is not supported"
        case let .invalidLabels(head, reason): return "head \"\(head)\": \(reason)"
        }
    }
}

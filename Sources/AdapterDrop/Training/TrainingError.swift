// Typed errors of the trainer: every user-reachable check (options, adapter config, heads, targets, layer
// counts, checkpoints, non-finite values) throws one of these, naming the key, value or tensor at fault.

/// An error of `AdapterTrainer` setup, training, evaluation or checkpointing.
public enum TrainingError: Error, Equatable, Sendable {
    /// A training option is out of range. `key` is the option's name as the CLI spells it
    /// (`batch_size`, `epochs`, `learning_rate`, …), `value` its text.
    case invalidOption(key: String, value: String, reason: String)
    /// The AdapterDrop policy drops more layers than the model has (n must lie in `0…numberOfLayers`).
    case invalidDropPolicy(policy: String, numberOfLayers: Int)
    /// The number of dropped layers asked for evaluation is not in `0…numberOfLayers`.
    case invalidDroppedLayers(droppedLayers: Int, numberOfLayers: Int)
    /// An adapter's config uses a variant training does not support; `key` is the `adapter_config.json` key.
    case unsupportedAdapterConfig(adapter: String, key: String, reason: String)
    /// A module or head does not fit the model (`what` names the dimension: hidden size, layer index …).
    case shapeMismatch(name: String, what: String, expected: Int, found: Int)
    /// A head variant training does not support; `key` is the `head_config.json` key.
    case unsupportedHead(head: String, key: String, reason: String)
    /// The number of heads does not match the module's branches (one head per Parallel branch).
    case headCountMismatch(heads: Int, branches: Int)
    /// Targets that do not fit the head or the dataset. `index` is the 0-based example (−1: the whole set).
    case invalidTargets(head: String, index: Int, reason: String)
    /// A loss or gradient became NaN/±Inf. `step` is the 0-based optimizer step, `tensor` the first tensor
    /// found non-finite (a parameter, `encoder output`, `logits of head …`, `loss of head …`, or a gradient
    /// `grad(name)`), with its NaN and Inf counts.
    case nonFinite(step: Int, tensor: String, nanCount: Int, infinityCount: Int)
    /// A checkpoint folder is missing a file or holds something unreadable. `file` is the path.
    case invalidCheckpoint(file: String, reason: String)
    /// A checkpoint was written for a different run: `key` differs (`expected` is this run's value).
    case checkpointMismatch(file: String, key: String, expected: String, found: String)
    /// Writing a checkpoint failed; `path` is the folder, nothing was replaced.
    case checkpointWriteFailed(path: String, reason: String)
    /// A folder written without replacing (`TrainerCheckpoint.writeFolderAtomically(_:replacing: false, …)`) was
    /// found not empty when the new content was to be put in place (e.g. another process published it
    /// meanwhile); `path` is the folder, which is left as it is.
    case folderExists(path: String)
}

extension TrainingError: CustomStringConvertible {
    /// One line naming the key, value or tensor.
    public var description: String {
        switch self {
        case let .invalidOption(key, value, reason):
            return "training option \(key) = \(value): \(reason)"
        case let .invalidDropPolicy(policy, layers):
            return "AdapterDrop policy \(policy) does not fit a model with \(layers) layers (dropped layers must be in 0…\(layers))"
        case let .invalidDroppedLayers(n, layers):
            return "dropped layers \(n) not in 0…\(layers) for a model with \(layers) layers"
        case let .unsupportedAdapterConfig(adapter, key, reason):
            return "adapter \(adapter): config key \(key): \(reason) (not supported for training)"
        case let .shapeMismatch(name, what, expected, found):
            return "\(name): \(what) is \(found), the model needs \(expected)"
        case let .unsupportedHead(head, key, reason):
            return "head \(head): \(key): \(reason) (not supported for training)"
        case let .headCountMismatch(heads, branches):
            return "\(heads) heads for a module with \(branches) branches (one head per branch)"
        case let .invalidTargets(head, index, reason):
            return index < 0 ? "targets for head \(head): \(reason)" : "targets for head \(head), example \(index): \(reason)"
        case let .nonFinite(step, tensor, nans, infs):
            return "non-finite values at step \(step) in \(tensor) (\(nans) NaN, \(infs) Inf)"
        case let .invalidCheckpoint(file, reason):
            return "\(file): invalid checkpoint: \(reason)"
        case let .checkpointMismatch(file, key, expected, found):
            return "\(file): checkpoint \(key) is \(found), this run has \(expected)"
        case let .checkpointWriteFailed(path, reason):
            return "\(path): cannot write checkpoint: \(reason)"
        case let .folderExists(path):
            return "\(path): the folder is not empty (written by another process meanwhile?); it was not replaced"
        }
    }
}

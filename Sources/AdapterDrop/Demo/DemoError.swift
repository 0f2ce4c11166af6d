// User-input errors of the demo: each is one line naming the setting, folder or file.

/// Errors of `AdapterDropDemo` that are not already typed errors of the loaders (`DatasetError`,
/// `ModelFolderError`, `TokenizerError`, `ReportError`, … pass through unchanged).
public enum DemoError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A setting is out of range.
    case invalidSetting(name: String, value: String, rule: String)
    /// A folder does not exist.
    case missingFolder(path: String, what: String)
    /// `maxSequenceLength` is larger than the model accepts.
    case sequenceLengthTooLong(requested: Int, maximum: Int, model: String)
    /// A task's split has fewer than 2 examples after sampling, or a class never occurs in its training sample.
    case taskTooSmall(task: String, reason: String)
    /// The run folder exists already.
    case runExists(path: String)
    /// The results folder is a file, is not writable, or cannot be created (checked before any work).
    case resultsFolderUnusable(path: String, reason: String)

    public var description: String {
        switch self {
        case let .invalidSetting(name, value, rule): return "invalid \(name) \(value): must be \(rule)"
        case let .missingFolder(path, what): return "\(path): \(what) not found"
        case let .sequenceLengthTooLong(requested, maximum, model):
            return "max sequence length \(requested) is longer than the model's maximum of \(maximum) tokens (\(model))"
        case let .taskTooSmall(task, reason): return "task \(task): \(reason)"
        case let .runExists(path): return "\(path) exists already; choose another --run name or remove it"
        case let .resultsFolderUnusable(path, reason): return "results folder \(path): \(reason)"
        }
    }
}

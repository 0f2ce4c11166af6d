/// Errors thrown while loading a tokenizer or encoding text. Every case names the file, key or value at
/// fault, so a bad input can be located without a debugger. The library never traps on user input.
public enum TokenizerError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The file could not be read (missing, a directory, permissions).
    case fileUnreadable(path: String, reason: String)
    /// The file is larger than the loading limit (bytes).
    case fileTooLarge(path: String, bytes: Int, limit: Int)
    /// The file is not valid UTF-8; `byteOffset` is the first invalid byte.
    case invalidUTF8(path: String, byteOffset: Int)
    /// The vocabulary holds no entries.
    case emptyVocabulary(path: String)
    /// The vocabulary holds more entries than the loading limit.
    case tooManyEntries(path: String, count: Int, limit: Int)
    /// A token occurs twice (`line` is 1-based for text files, 0 for JSON).
    case duplicateVocabularyEntry(path: String, token: String, line: Int)
    /// Two tokens claim the same id (JSON vocabularies).
    case duplicateTokenID(path: String, id: Int)
    /// The JSON text is malformed at `byteOffset`.
    case invalidJSON(path: String, byteOffset: Int, reason: String)
    /// A required key is missing or has the wrong type (`key` is a dotted path such as `model.vocab`).
    case missingKey(path: String, key: String)
    /// `model.type` (or a normalizer/pre-tokenizer/post-processor type) is not supported.
    case unsupportedModelType(path: String, key: String, value: String)
    /// A configuration value is not supported by this implementation.
    case unsupportedOption(path: String, key: String, value: String)
    /// A token the configuration needs (unknown, separator, merge result, ...) is not in the vocabulary.
    case tokenNotInVocabulary(path: String, token: String)
    /// A line of `merges.txt` is not two space-separated tokens (`line` is 1-based).
    case invalidMerge(path: String, line: Int, text: String)
    /// Truncation was requested without a `maxLength`.
    case missingMaxLength
    /// `maxLength` cannot hold the special tokens (`required` of them) that encoding adds.
    case maxLengthTooSmall(maxLength: Int, required: Int)
    /// `only_first`/`only_second` truncation would have to remove the whole sequence (HF: "Sequence to
    /// truncate too short to respect the provided max_length").
    case sequenceTooShortToTruncate(maxLength: Int, sequenceLength: Int, tokensToRemove: Int)
    /// `only_second` truncation of an input without a second sequence.
    case secondSequenceNotProvided
    /// Padding to `maxLength` was requested without a `maxLength`, or a pad multiple is not positive.
    case invalidPadding(reason: String)

    /// A one-line explanation naming the file and key, token or value.
    public var description: String {
        switch self {
        case let .fileUnreadable(p, r): return "cannot read \(p): \(r)"
        case let .fileTooLarge(p, b, l): return "\(p): \(b) bytes exceeds the limit of \(l) bytes"
        case let .invalidUTF8(p, o): return "\(p): invalid UTF-8 at byte \(o)"
        case let .emptyVocabulary(p): return "\(p): empty vocabulary"
        case let .tooManyEntries(p, c, l): return "\(p): \(c) entries exceeds the limit of \(l)"
        case let .duplicateVocabularyEntry(p, t, l): return "\(p): duplicate vocabulary entry \(t.debugDescription) (line \(l))"
        case let .duplicateTokenID(p, i): return "\(p): id \(i) is used by two tokens"
        case let .invalidJSON(p, o, r): return "\(p): invalid JSON at byte \(o): \(r)"
        case let .missingKey(p, k): return "\(p): missing or mistyped key '\(k)'"
        case let .unsupportedModelType(p, k, v): return "\(p): unsupported \(k) '\(v)'"
        case let .unsupportedOption(p, k, v): return "\(p): unsupported value \(v) for '\(k)'"
        case let .tokenNotInVocabulary(p, t): return "\(p): token \(t.debugDescription) is not in the vocabulary"
        case let .invalidMerge(p, l, t): return "\(p): line \(l) is not a merge: \(t.debugDescription)"
        case .missingMaxLength: return "truncation requires maxLength"
        case let .maxLengthTooSmall(m, r): return "maxLength \(m) cannot hold the \(r) special tokens"
        case let .sequenceTooShortToTruncate(m, s, t):
            return "sequence of \(s) tokens is too short to remove \(t) tokens for maxLength \(m)"
        case .secondSequenceNotProvided: return "only_second truncation needs a second sequence"
        case let .invalidPadding(r): return "invalid padding: \(r)"
        }
    }
}

/// Bounds applied while parsing tokenizer files, so a corrupt or hostile file cannot exhaust memory.
public struct TokenizerLoadingLimits: Sendable {
    /// Largest accepted file, in bytes (default 256 MiB).
    public var maxFileBytes: Int
    /// Largest accepted number of vocabulary entries or merges (default 4,000,000; ids are 32-bit, so values
    /// above `Int32.max` act as `Int32.max`).
    public var maxEntries: Int
    /// Deepest accepted JSON nesting (default 64).
    public var maxJSONDepth: Int

    /// Creates limits; the defaults accept every published BERT/RoBERTa/XLM-R tokenizer.
    public init(maxFileBytes: Int = 256 << 20, maxEntries: Int = 4_000_000, maxJSONDepth: Int = 64) {
        self.maxFileBytes = maxFileBytes
        self.maxEntries = min(maxEntries, Int(Int32.max))
        self.maxJSONDepth = maxJSONDepth
    }
}

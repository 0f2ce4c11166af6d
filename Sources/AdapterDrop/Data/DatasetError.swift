// Typed errors for loading text-classification datasets. Every case names the file and, where one is
// involved, the 1-based line and the offending value, so a user can fix the file without a debugger.

/// A dataset file could not be read or violates the expected JSONL/CSV layout.
///
/// `file` is the path as given to the loader. `line` is the 1-based physical line where the offending record
/// starts (for CSV with quoted multi-line fields, the line of the record's first character).
public enum DatasetError: Error, Equatable, Sendable {
    /// The file could not be opened or read. `reason` is the system's message.
    case ioFailure(file: String, reason: String)
    /// The path is not a regular file (a directory, a device, ...).
    case notARegularFile(file: String)
    /// The file is larger than the loader's limit (`DatasetLoadOptions.maxFileBytes`). Sizes in bytes.
    case fileTooLarge(file: String, size: Int, limit: Int)
    /// The file holds no example (zero bytes, only blank lines, or a CSV header without rows).
    case emptyFile(file: String)
    /// The file's extension is neither `.jsonl`/`.json`/`.ndjson` nor `.csv` and no format was given.
    case unknownFormat(file: String)
    /// A line is not valid UTF-8. `byteColumn` is the 1-based byte offset of the first invalid byte in it.
    case invalidUTF8(file: String, line: Int, byteColumn: Int)
    /// A JSONL line is not valid JSON. `reason` is the JSON decoder's explanation.
    case invalidJSON(file: String, line: Int, reason: String)
    /// A JSONL line is valid JSON but not an object; `found` names its type (`array`, `string`, ...).
    case notAnObject(file: String, line: Int, found: String)
    /// A required field (JSONL key or CSV column) is absent. For CSV, `line` is 1 (the header).
    case missingField(file: String, line: Int, field: String)
    /// A field has the wrong JSON type; `found` names the type that was there.
    case invalidFieldType(file: String, line: Int, field: String, expected: String, found: String)
    /// The CSV header names the same column twice.
    case duplicateColumn(file: String, column: String)
    /// The CSV violates RFC 4180 (unterminated quoted field, a quote inside an unquoted field, text after a
    /// closing quote).
    case malformedCSV(file: String, line: Int, reason: String)
    /// A CSV record has a different number of fields than the header.
    case fieldCountMismatch(file: String, line: Int, expected: Int, found: Int)
    /// A label is not in the given label list.
    case unknownLabel(file: String, line: Int, label: String, known: [String])
    /// A label list is empty or repeats a label. `file` is the label file, or `"<argument>"` when the list
    /// was passed in code.
    case invalidLabelList(file: String, reason: String)
}

extension DatasetError: CustomStringConvertible {
    /// A one-line explanation naming the file, the line and the value.
    public var description: String {
        switch self {
        case let .ioFailure(file, reason):
            return "\(file): cannot read: \(reason)"
        case let .notARegularFile(file):
            return "\(file): not a regular file"
        case let .fileTooLarge(file, size, limit):
            return "\(file): file is \(size) bytes, larger than the limit of \(limit) bytes"
        case let .emptyFile(file):
            return "\(file): the file holds no examples"
        case let .unknownFormat(file):
            return "\(file): unknown format (expected a .jsonl or .csv file)"
        case let .invalidUTF8(file, line, column):
            return "\(file):\(line): invalid UTF-8 at byte \(column) of the line"
        case let .invalidJSON(file, line, reason):
            return "\(file):\(line): invalid JSON: \(reason)"
        case let .notAnObject(file, line, found):
            return "\(file):\(line): expected a JSON object, found \(found)"
        case let .missingField(file, line, field):
            return "\(file):\(line): missing field \"\(field)\""
        case let .invalidFieldType(file, line, field, expected, found):
            return "\(file):\(line): field \"\(field)\" must be \(expected), found \(found)"
        case let .duplicateColumn(file, column):
            return "\(file):1: column \"\(column)\" appears twice in the header"
        case let .malformedCSV(file, line, reason):
            return "\(file):\(line): malformed CSV: \(reason)"
        case let .fieldCountMismatch(file, line, expected, found):
            return "\(file):\(line): expected \(expected) fields (as in the header), found \(found)"
        case let .unknownLabel(file, line, label, known):
            return "\(file):\(line): unknown label \"\(label)\" (known: \(known.joined(separator: ", ")))"
        case let .invalidLabelList(file, reason):
            return "\(file): invalid label list: \(reason)"
        }
    }
}

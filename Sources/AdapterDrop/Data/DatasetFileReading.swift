// Bounded file reading, UTF-8 validation with a line number, and the two record readers (JSONL, RFC 4180
// CSV) behind `TextClassificationDataset`. Internal: the public surface is the dataset type.
//
// Why our own CSV reader: the mirror's CSV packages (SwiftCSV 0.10.0, CSV.swift 2.5.2) both accept an
// unterminated quoted field silently (the rest of the file becomes one field) and report no line numbers,
// and this loader must reject such files with the line. The RFC 4180 grammar is small enough to own.
import Foundation

/// A file's bytes (UTF-8 BOM removed) with the path it came from.
struct DatasetFileBytes {
    var file: String
    var bytes: [UInt8]

    /// Reads `path`, refusing non-regular files and files larger than `limit` bytes, and validates UTF-8.
    /// - Throws: `DatasetError.ioFailure`, `.notARegularFile`, `.fileTooLarge`, `.invalidUTF8`.
    init(path: String, limit: Int) throws {
        file = path
        let attributes: [FileAttributeKey: Any]
        do {
            attributes = try FileManager.default.attributesOfItem(atPath: path)
        } catch {
            throw DatasetError.ioFailure(file: path, reason: Self.reason(error))
        }
        if let type = attributes[.type] as? FileAttributeType, type != .typeRegular {
            throw DatasetError.notARegularFile(file: path)
        }
        if let size = (attributes[.size] as? NSNumber)?.intValue, size > limit {
            throw DatasetError.fileTooLarge(file: path, size: size, limit: limit)
        }
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw DatasetError.ioFailure(file: path, reason: "cannot open")
        }
        defer { try? handle.close() }
        let data: Data
        do {
            // Read at most limit + 1 bytes, so a file that grew after the size check is still caught.
            data = try handle.read(upToCount: limit == Int.max ? limit : limit + 1) ?? Data()
        } catch {
            throw DatasetError.ioFailure(file: path, reason: Self.reason(error))
        }
        if data.count > limit {
            throw DatasetError.fileTooLarge(file: path, size: data.count, limit: limit)
        }
        var bytes = [UInt8](data)
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes.removeFirst(3) }
        self.bytes = bytes
        if let bad = Self.firstInvalidUTF8(bytes) {
            let lineStart = bytes[..<bad].lastIndex(of: 0x0A).map { $0 + 1 } ?? 0
            let line = bytes[..<bad].reduce(1) { $1 == 0x0A ? $0 + 1 : $0 }
            throw DatasetError.invalidUTF8(file: path, line: line, byteColumn: bad - lineStart + 1)
        }
    }

    private static func reason(_ error: Error) -> String {
        let ns = error as NSError
        if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError,
           ns.domain == NSCocoaErrorDomain, underlying.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(underlying.code)))
        }
        return ns.localizedDescription
    }

    /// Index of the first byte that does not start a well-formed UTF-8 sequence (RFC 3629: no overlong forms,
    /// no surrogates, nothing above U+10FFFF), or nil when all of `bytes` is valid (the JSON parser's validator).
    static func firstInvalidUTF8(_ bytes: [UInt8]) -> Int? { JSONParser.firstInvalidUTF8Offset(bytes) }
}

/// One record read from a file, before label mapping.
struct RawTextRecord {
    var line: Int
    var text: String
    var textPair: String?
    var label: String
    /// JSONL read with `anyLabel`: the label field as it is (any JSON type); `label` is then its string or "".
    var labelValue: JSONValue? = nil
}

// MARK: - JSONL

extension JSONValue {
    /// The type as the dataset errors name it (`a string`, `an array`, ...).
    fileprivate var datasetTypeName: String {
        switch self {
        case .string: return "a string"
        case .number: return "a number"
        case .bool: return "a boolean"
        case .null: return "null"
        case .array: return "an array"
        case .object: return "an object"
        }
    }
}

enum JSONLRecordReader {
    /// Reads one record per non-blank line. `text` and `label` are required; `textPair` is optional (absent or
    /// null). A label may be a string or an integer (taken as its decimal text); with `anyLabel` it may be any
    /// JSON value, kept in `labelValue` for the caller to check (regression values, label lists).
    static func read(_ file: DatasetFileBytes, options: DatasetLoadOptions, anyLabel: Bool = false) throws -> [RawTextRecord] {
        let bytes = file.bytes
        var records: [RawTextRecord] = []
        var lineNumber = 0
        var start = 0
        while start < bytes.count {
            lineNumber += 1
            let end = bytes[start...].firstIndex(of: 0x0A) ?? bytes.count
            var lineEnd = end
            if lineEnd > start && bytes[lineEnd - 1] == 0x0D { lineEnd -= 1 }
            let line = bytes[start..<lineEnd]
            start = end + 1
            guard line.contains(where: { !Self.isJSONWhitespace($0) }) else { continue }  // blank line

            // The file was validated as UTF-8 already; the shared parser bounds depth and rejects duplicate keys.
            let value: JSONValue
            do {
                value = try JSONParser.parse(Array(line), limits: Self.lineLimits, keyEquality: .canonicalEquivalence)
            } catch {
                throw DatasetError.invalidJSON(file: file.file, line: lineNumber, reason: error.message)
            }
            guard value.members != nil else {
                throw DatasetError.notAnObject(file: file.file, line: lineNumber, found: value.typeName)
            }

            func string(_ key: String, required: Bool, allowInteger: Bool = false) throws -> String? {
                guard let field = value[key] else {
                    if required { throw DatasetError.missingField(file: file.file, line: lineNumber, field: key) }
                    return nil
                }
                switch field {
                case let .string(s): return s
                case .number where allowInteger && field.exactInt != nil: return String(field.exactInt!)
                case .null where !required: return nil
                default:
                    throw DatasetError.invalidFieldType(
                        file: file.file, line: lineNumber, field: key,
                        expected: allowInteger ? "a string or an integer" : "a string", found: field.datasetTypeName)
                }
            }
            let text = try string(options.textField, required: true)!
            let pair = try string(options.textPairField, required: false)
            if anyLabel {
                guard let field = value[options.labelField] else {
                    throw DatasetError.missingField(file: file.file, line: lineNumber, field: options.labelField)
                }
                records.append(RawTextRecord(line: lineNumber, text: text, textPair: pair, label: field.string ?? "", labelValue: field))
                continue
            }
            let label = try string(options.labelField, required: true, allowInteger: true)!
            records.append(RawTextRecord(line: lineNumber, text: text, textPair: pair, label: label))
        }
        return records
    }

    private static func isJSONWhitespace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D
    }

    /// Bounds for one JSONL line: nesting depth 64 (the file size is bounded by the caller).
    static let lineLimits = JSONParser.Limits(maxDepth: 64, maxBytes: Int.max)
}

// MARK: - CSV (RFC 4180)

enum CSVRecordReader {
    private static let quote = UInt8(ascii: "\""), comma = UInt8(ascii: ","), cr: UInt8 = 0x0D, lf: UInt8 = 0x0A

    /// Splits RFC 4180 CSV into records of fields, each with the 1-based line where it starts.
    ///
    /// Records end at CRLF, LF or a lone CR; a quoted field may hold commas, line breaks and doubled quotes
    /// (`""` → `"`). Completely empty lines are skipped. A quote inside an unquoted field, a character other
    /// than a comma or line break after a closing quote, and a quoted field still open at the end of the file
    /// are errors.
    static func records(_ file: DatasetFileBytes) throws -> [(line: Int, fields: [String])] {
        let bytes = file.bytes
        let n = bytes.count
        var result: [(line: Int, fields: [String])] = []
        var i = 0
        var line = 1

        func skipLineBreak() {
            if bytes[i] == cr {
                i += 1
                if i < n && bytes[i] == lf { i += 1 }
            } else {
                i += 1
            }
            line += 1
        }

        while i < n {
            if bytes[i] == lf || bytes[i] == cr {  // empty line
                skipLineBreak()
                continue
            }
            let recordLine = line
            var fields: [String] = []
            while true {
                var field: ArraySlice<UInt8>
                if i < n && bytes[i] == quote {
                    let openLine = line
                    i += 1
                    var buffer: [UInt8] = []
                    while true {
                        guard i < n else {
                            throw DatasetError.malformedCSV(
                                file: file.file, line: openLine,
                                reason: "quoted field opened here is never closed")
                        }
                        let c = bytes[i]
                        if c == quote {
                            if i + 1 < n && bytes[i + 1] == quote {
                                buffer.append(quote)
                                i += 2
                                continue
                            }
                            i += 1
                            break
                        }
                        if c == lf || (c == cr && !(i + 1 < n && bytes[i + 1] == lf)) { line += 1 }
                        buffer.append(c)
                        i += 1
                    }
                    if i < n && bytes[i] != comma && bytes[i] != cr && bytes[i] != lf {
                        let shown = String(decoding: bytes[i..<min(n, i + 12)], as: UTF8.self)
                        throw DatasetError.malformedCSV(
                            file: file.file, line: line,
                            reason: "unexpected text after a closing quote: \"\(shown)\"")
                    }
                    field = buffer[...]
                } else {
                    let s = i
                    while i < n && bytes[i] != comma && bytes[i] != lf && bytes[i] != cr {
                        if bytes[i] == quote {
                            let shown = String(decoding: bytes[s..<min(n, i + 12)], as: UTF8.self)
                            throw DatasetError.malformedCSV(
                                file: file.file, line: line,
                                reason: "quote inside an unquoted field: \"\(shown)\" (quote the whole field and double its quotes)")
                        }
                        i += 1
                    }
                    field = bytes[s..<i]
                }
                fields.append(String(decoding: field, as: UTF8.self))
                if i >= n { break }
                if bytes[i] == comma {
                    i += 1
                    continue
                }
                skipLineBreak()
                break
            }
            result.append((recordLine, fields))
        }
        return result
    }

    /// Reads a CSV whose first record is the header. Columns are found by exact name; `textPair` is optional
    /// and an empty `textPair` field counts as absent. Columns other than these three are ignored.
    static func read(_ file: DatasetFileBytes, options: DatasetLoadOptions) throws -> [RawTextRecord] {
        let all = try records(file)
        guard let header = all.first else { throw DatasetError.emptyFile(file: file.file) }
        var index: [String: Int] = [:]
        for (position, name) in header.fields.enumerated() {
            if index.updateValue(position, forKey: name) != nil {
                throw DatasetError.duplicateColumn(file: file.file, column: name)
            }
        }
        guard let textColumn = index[options.textField] else {
            throw DatasetError.missingField(file: file.file, line: header.line, field: options.textField)
        }
        guard let labelColumn = index[options.labelField] else {
            throw DatasetError.missingField(file: file.file, line: header.line, field: options.labelField)
        }
        let pairColumn = index[options.textPairField]
        var out: [RawTextRecord] = []
        out.reserveCapacity(all.count - 1)
        for record in all.dropFirst() {
            guard record.fields.count == header.fields.count else {
                throw DatasetError.fieldCountMismatch(
                    file: file.file, line: record.line, expected: header.fields.count, found: record.fields.count)
            }
            let pair = pairColumn.map { record.fields[$0] }
            out.append(RawTextRecord(line: record.line, text: record.fields[textColumn],
                                     textPair: pair?.isEmpty == false ? pair : nil,
                                     label: record.fields[labelColumn]))
        }
        return out
    }
}

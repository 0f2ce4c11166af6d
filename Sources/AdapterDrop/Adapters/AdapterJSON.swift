// JSON values for AdapterHub config files, read with the library's one JSON parser (Support/JSONParser.swift) and written the way Python's
// `json.dump(obj, indent=2, sort_keys=True)` writes them (what `adapters` 1.3.0 does, `loading.py` L82).
import Foundation

/// A JSON value from or for an AdapterHub config file (`adapter_config.json`, `head_config.json`,
/// `adapter_fusion_config.json`). Numbers keep their literal text so that `4` and `4.0` survive a round trip.
public enum AdapterJSON: Sendable, Equatable {
    /// An object (key order is irrelevant; writing sorts the keys).
    case object([String: AdapterJSON])
    /// An array.
    case array([AdapterJSON])
    /// A string.
    case string(String)
    /// A number's literal text, e.g. `"16"`, `"0.0001"`.
    case number(String)
    /// `true` / `false`.
    case bool(Bool)
    /// `null`.
    case null

    /// An integer number value.
    public static func int(_ value: Int) -> AdapterJSON { .number(String(value)) }

    /// A float number value, spelled as Python's `repr(float)` would (`1.0`, `0.0001`, `1e-05`).
    public static func double(_ value: Double) -> AdapterJSON {
        if value.isFinite, value == value.rounded(), abs(value) < 1e16 { return .number(String(format: "%.1f", value)) }
        return .number("\(value)")
    }

    /// The members of an object, nil otherwise.
    public var objectValue: [String: AdapterJSON]? { if case let .object(o) = self { return o } else { return nil } }
    /// The elements of an array, nil otherwise.
    public var arrayValue: [AdapterJSON]? { if case let .array(a) = self { return a } else { return nil } }
    /// The value of a number, nil otherwise.
    public var doubleValue: Double? { if case let .number(t) = self { return Double(t) } else { return nil } }
    /// The value of an integer number (no fraction or exponent in the text), nil otherwise.
    public var intValue: Int? {
        guard case let .number(t) = self, !t.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }) else { return nil }
        return Int(t)
    }
    /// The value of a string, nil otherwise.
    public var stringValue: String? { if case let .string(s) = self { return s } else { return nil } }
    /// The value of a boolean, nil otherwise.
    public var boolValue: Bool? { if case let .bool(b) = self { return b } else { return nil } }
    /// True for `null`.
    public var isNull: Bool { self == .null }

    /// Converts a parsed value (object keys are unique under `String` equality: the parser was asked for
    /// `.canonicalEquivalence`).
    init(_ value: JSONValue) {
        switch value {
        case let .object(members):
            var out: [String: AdapterJSON] = [:]
            for (k, v) in members { out[k] = AdapterJSON(v) }
            self = .object(out)
        case let .array(a): self = .array(a.map(AdapterJSON.init))
        case let .string(s): self = .string(s)
        case let .number(n): self = .number(n)
        case let .bool(b): self = .bool(b)
        case .null: self = .null
        }
    }

    /// The bounds for AdapterHub config files: nesting depth 32, 16 MiB.
    static let limits = JSONParser.Limits.configFile

    /// Parses a JSON document with the library's strict parser (`JSONParser`: UTF-8 only, depth ≤ 32,
    /// ≤ 16 MiB, no duplicate keys — canonically equivalent keys count as duplicates because objects become
    /// `Dictionary`s).
    /// - Parameters:
    ///   - data: the document's bytes.
    ///   - file: the path named in errors.
    /// - Throws: `AdapterError.invalidJSON` naming `file`, the reason and the byte offset.
    public static func parse(_ data: Data, file: String) throws -> AdapterJSON {
        do {
            return AdapterJSON(try JSONParser.parse([UInt8](data), limits: limits, keyEquality: .canonicalEquivalence))
        } catch {
            throw AdapterError.invalidJSON(file: file, reason: error.message)
        }
    }

    /// Reads and parses a JSON file.
    /// - Throws: `AdapterError.missingFile` (absent or unreadable), `.invalidJSON` (including a file larger
    ///   than 16 MiB), each naming the file.
    public static func read(_ url: URL) throws -> AdapterJSON {
        if let size = (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? NSNumber)?.intValue,
           size > limits.maxBytes {
            throw AdapterError.invalidJSON(
                file: url.path, reason: "file of \(size) bytes exceeds the limit of \(limits.maxBytes) bytes")
        }
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw AdapterError.missingFile(path: url.path)
        }
        return try parse(data, file: url.path)
    }

    /// The text Python's `json.dumps(value, indent=2, sort_keys=True)` produces (keys sorted by code point,
    /// non-ASCII escaped as `\uXXXX` as `ensure_ascii` does).
    public func pythonJSONText() -> String {
        var out = ""
        write(into: &out, indent: 0)
        return out
    }

    private func write(into out: inout String, indent: Int) {
        let pad = String(repeating: " ", count: indent + 2), closePad = String(repeating: " ", count: indent)
        switch self {
        case let .object(members):
            if members.isEmpty { out += "{}"; return }
            out += "{\n"
            let keys = members.keys.sorted { Array($0.utf16).lexicographicallyPrecedes(Array($1.utf16)) }
            for (i, key) in keys.enumerated() {
                out += pad + AdapterJSON.quoted(key) + ": "
                members[key]!.write(into: &out, indent: indent + 2)
                out += i == keys.count - 1 ? "\n" : ",\n"
            }
            out += closePad + "}"
        case let .array(elements):
            if elements.isEmpty { out += "[]"; return }
            out += "[\n"
            for (i, e) in elements.enumerated() {
                out += pad
                e.write(into: &out, indent: indent + 2)
                out += i == elements.count - 1 ? "\n" : ",\n"
            }
            out += closePad + "]"
        case let .string(s): out += AdapterJSON.quoted(s)
        case let .number(n): out += n
        case let .bool(b): out += b ? "true" : "false"
        case .null: out += "null"
        }
    }

    private static func quoted(_ s: String) -> String {
        var out = "\""
        for unit in s.utf16 {
            switch unit {
            case 0x22: out += "\\\""
            case 0x5C: out += "\\\\"
            case 0x0A: out += "\\n"
            case 0x0D: out += "\\r"
            case 0x09: out += "\\t"
            case 0x08: out += "\\b"
            case 0x0C: out += "\\f"
            case 0x20..<0x7F: out += String(UnicodeScalar(UInt8(unit)))
            default: out += String(format: "\\u%04x", unit)
            }
        }
        return out + "\""
    }

    /// Writes `pythonJSONText()` to `url` atomically (temporary file, fsync, rename).
    /// - Throws: `SafetensorsWriterError.ioFailure` naming the failed call.
    public func writeAtomically(to url: URL) throws {
        let bytes = Array(pythonJSONText().utf8)
        try atomicWrite(path: url.path) { emit in try bytes.withUnsafeBytes { try emit($0) } }
    }
}

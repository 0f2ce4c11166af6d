// The one JSON reader of the library. Every JSON file AdapterDrop reads — safetensors headers, Hugging Face
// `config.json` and `tokenizer.json`/`vocab.json`, AdapterHub configs — goes through `JSONParser`, so all of
// them share the same bounds and the same notion of valid input:
//
// - RFC 8259 grammar, nothing more: no comments, no trailing commas, no leading zeros, no `+1`, `.5`, `NaN`.
// - The input must be UTF-8 (validated before parsing; the error names the first invalid byte) and strings
//   must not hold raw control characters or unpaired `\u` surrogates.
// - Numbers keep their literal text, so integers convert exactly (`JSONValue.exactInt`), never through Double.
// - Nesting depth and document size are bounded (`JSONParser.Limits`), so hostile input such as 10⁶ `[`
//   cannot exhaust the stack.
// - Duplicate object keys are an error. Keys are compared byte for byte (`"é"` and `"e\u0301"` are two keys,
//   as in Python and Rust); a caller that stores keys in a Swift `Dictionary`/`Set` — where those two are
//   equal — asks for `.canonicalEquivalence` so that the parser rejects them instead of one silently winning.
//
// Errors carry a byte offset into the document; each loader wraps them in its own typed error naming the file.

/// A failure to parse a JSON document, with the byte offset (0-based, into the document) where it was found.
struct JSONParseError: Error, Equatable, Sendable {
    /// What kind of rule was broken. Loaders map `.invalidUTF8` to their own encoding errors.
    enum Kind: Equatable, Sendable {
        /// The bytes are not UTF-8; `offset` is the first byte of the invalid sequence.
        case invalidUTF8
        /// The document is larger than `Limits.maxBytes`.
        case tooLarge
        /// Arrays/objects nest deeper than `Limits.maxDepth`.
        case tooDeep
        /// An object holds the same key twice.
        case duplicateKey
        /// Any other violation of the JSON grammar.
        case syntax
    }

    /// The broken rule.
    var kind: Kind
    /// A short English description, e.g. `expected ',' or '}'` or `duplicate key "a"`.
    var reason: String
    /// Byte offset in the document.
    var offset: Int

    /// `"<reason> at byte <offset>"`, the form loaders put into their one-line errors.
    var message: String { "\(reason) at byte \(offset)" }
}

/// Strict, bounded recursive-descent JSON parser over UTF-8 bytes (see the file comment for the rules).
struct JSONParser {
    /// Bounds on a document.
    struct Limits: Sendable {
        /// The deepest nesting of arrays/objects accepted (a scalar root is depth 0, `[1]` depth 1).
        var maxDepth: Int
        /// The largest document accepted, in bytes.
        var maxBytes: Int

        /// Creates limits.
        init(maxDepth: Int, maxBytes: Int) {
            self.maxDepth = maxDepth
            self.maxBytes = maxBytes
        }

        /// Small configuration files (`config.json`, AdapterHub configs): depth 32, 16 MiB.
        static let configFile = Limits(maxDepth: 32, maxBytes: 16 << 20)
    }

    /// How object keys are compared when looking for duplicates.
    enum KeyEquality: Sendable {
        /// Byte-for-byte (UTF-8): the JSON/Python/Rust notion of equal keys.
        case exactBytes
        /// Swift `String` equality (canonical equivalence); rejects everything `.exactBytes` rejects and more.
        case canonicalEquivalence
    }

    private let bytes: UnsafeRawBufferPointer
    private let limits: Limits
    private let keyEquality: KeyEquality
    private var index = 0

    private init(_ bytes: UnsafeRawBufferPointer, limits: Limits, keyEquality: KeyEquality) {
        self.bytes = bytes
        self.limits = limits
        self.keyEquality = keyEquality
    }

    /// Parses one JSON value, optionally surrounded by whitespace, that makes up the whole of `bytes`.
    /// - Throws: `JSONParseError` with the offset of the first problem.
    static func parse(
        _ bytes: UnsafeRawBufferPointer, limits: Limits, keyEquality: KeyEquality = .exactBytes
    ) throws(JSONParseError) -> JSONValue {
        if bytes.count > limits.maxBytes {
            throw JSONParseError(kind: .tooLarge, reason: "document of \(bytes.count) bytes exceeds the limit of "
                                 + "\(limits.maxBytes) bytes", offset: limits.maxBytes)
        }
        if let offset = firstInvalidUTF8Offset(bytes) {
            throw JSONParseError(kind: .invalidUTF8, reason: "invalid UTF-8", offset: offset)
        }
        var parser = JSONParser(bytes, limits: limits, keyEquality: keyEquality)
        parser.skipWhitespace()
        let value = try parser.parseValue(depth: 0)
        parser.skipWhitespace()
        if parser.index != bytes.count { throw parser.failure("unexpected data after the JSON value") }
        return value
    }

    /// `parse` over an array of bytes.
    static func parse(
        _ bytes: [UInt8], limits: Limits, keyEquality: KeyEquality = .exactBytes
    ) throws(JSONParseError) -> JSONValue {
        let result: Result<JSONValue, JSONParseError> = bytes.withUnsafeBytes { buffer in
            do throws(JSONParseError) {
                return .success(try parse(buffer, limits: limits, keyEquality: keyEquality))
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    // MARK: UTF-8

    /// The offset of the first byte of the first ill-formed UTF-8 sequence (Unicode Table 3-7: no overlong
    /// forms, no surrogates, nothing above U+10FFFF), or nil if all of `bytes` is well-formed.
    static func firstInvalidUTF8Offset(_ bytes: UnsafeRawBufferPointer) -> Int? {
        let count = bytes.count
        var i = 0
        while i < count {
            // ASCII fast path, eight bytes at a time.
            while i + 8 <= count, bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self) & 0x8080_8080_8080_8080 == 0 {
                i += 8
            }
            guard i < count else { break }
            let lead = bytes[i]
            if lead < 0x80 { i += 1; continue }
            func continuation(_ k: Int, _ range: ClosedRange<UInt8> = 0x80...0xBF) -> Bool {
                i + k < count && range.contains(bytes[i + k])
            }
            let length: Int
            switch lead {
            case 0xC2...0xDF: length = continuation(1) ? 2 : 0
            case 0xE0: length = continuation(1, 0xA0...0xBF) && continuation(2) ? 3 : 0
            case 0xE1...0xEC, 0xEE...0xEF: length = continuation(1) && continuation(2) ? 3 : 0
            case 0xED: length = continuation(1, 0x80...0x9F) && continuation(2) ? 3 : 0
            case 0xF0: length = continuation(1, 0x90...0xBF) && continuation(2) && continuation(3) ? 4 : 0
            case 0xF1...0xF3: length = continuation(1) && continuation(2) && continuation(3) ? 4 : 0
            case 0xF4: length = continuation(1, 0x80...0x8F) && continuation(2) && continuation(3) ? 4 : 0
            default: length = 0
            }
            if length == 0 { return i }
            i += length
        }
        return nil
    }

    /// `firstInvalidUTF8Offset` over an array of bytes.
    static func firstInvalidUTF8Offset(_ bytes: [UInt8]) -> Int? {
        bytes.withUnsafeBytes { firstInvalidUTF8Offset($0) }
    }

    // MARK: Grammar

    private func failure(_ reason: String, kind: JSONParseError.Kind = .syntax) -> JSONParseError {
        JSONParseError(kind: kind, reason: reason, offset: index)
    }

    private var current: UInt8? { index < bytes.count ? bytes[index] : nil }

    private mutating func skipWhitespace() {
        while let byte = current, byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D { index += 1 }
    }

    private mutating func expect(_ literal: StaticString) throws(JSONParseError) {
        let count = literal.utf8CodeUnitCount
        guard index + count <= bytes.count else { throw failure("truncated literal") }
        for k in 0..<count where bytes[index + k] != literal.utf8Start[k] {
            throw failure("invalid literal")
        }
        index += count
    }

    private mutating func parseValue(depth: Int) throws(JSONParseError) -> JSONValue {
        guard let byte = current else { throw failure("unexpected end of input") }
        switch byte {
        case UInt8(ascii: "{"): return try parseObject(depth: depth + 1)
        case UInt8(ascii: "["): return try parseArray(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expect("true"); return .bool(true)
        case UInt8(ascii: "f"): try expect("false"); return .bool(false)
        case UInt8(ascii: "n"): try expect("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try parseNumber())
        default: throw failure("unexpected character")
        }
    }

    private func checkDepth(_ depth: Int) throws(JSONParseError) {
        if depth > limits.maxDepth { throw failure("nested deeper than \(limits.maxDepth) levels", kind: .tooDeep) }
    }

    /// Remembers the keys of one object to find duplicates under the parser's `KeyEquality`.
    private struct KeySet {
        /// Hashes and compares a key by its UTF-8 bytes.
        struct ExactKey: Hashable {
            let text: String
            static func == (a: ExactKey, b: ExactKey) -> Bool { a.text.utf8.elementsEqual(b.text.utf8) }
            func hash(into hasher: inout Hasher) {
                var text = text
                text.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
            }
        }
        var exact = Set<ExactKey>()
        var canonical = Set<String>()

        mutating func insert(_ key: String, _ equality: KeyEquality) -> Bool {
            switch equality {
            case .exactBytes: return exact.insert(ExactKey(text: key)).inserted
            case .canonicalEquivalence: return canonical.insert(key).inserted
            }
        }
    }

    private mutating func parseObject(depth: Int) throws(JSONParseError) -> JSONValue {
        try checkDepth(depth)
        index += 1  // {
        var members: [JSONMember] = []
        var keys = KeySet()
        skipWhitespace()
        if current == UInt8(ascii: "}") {
            index += 1
            return .object(members)
        }
        while true {
            skipWhitespace()
            guard current == UInt8(ascii: "\"") else {
                throw failure(current == nil ? "unexpected end of input" : "expected a string key")
            }
            let keyOffset = index
            let key = try parseString()
            guard keys.insert(key, keyEquality) else {
                throw JSONParseError(kind: .duplicateKey, reason: "duplicate key \(quoted(key))", offset: keyOffset)
            }
            skipWhitespace()
            guard current == UInt8(ascii: ":") else { throw failure("expected ':'") }
            index += 1
            skipWhitespace()
            members.append((key, try parseValue(depth: depth)))
            skipWhitespace()
            switch current {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "}"): index += 1; return .object(members)
            case nil: throw failure("unexpected end of input")
            default: throw failure("expected ',' or '}'")
            }
        }
    }

    private func quoted(_ key: String) -> String {
        "\"" + (key.utf8.count > 80 ? String(key.prefix(80)) + "…" : key) + "\""
    }

    private mutating func parseArray(depth: Int) throws(JSONParseError) -> JSONValue {
        try checkDepth(depth)
        index += 1  // [
        var elements: [JSONValue] = []
        skipWhitespace()
        if current == UInt8(ascii: "]") {
            index += 1
            return .array(elements)
        }
        while true {
            skipWhitespace()
            elements.append(try parseValue(depth: depth))
            skipWhitespace()
            switch current {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "]"): index += 1; return .array(elements)
            case nil: throw failure("unexpected end of input")
            default: throw failure("expected ',' or ']'")
            }
        }
    }

    private mutating func parseHex4() throws(JSONParseError) -> UInt32 {
        guard index + 4 <= bytes.count else { throw failure("truncated \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[index]
            let digit: UInt32
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
            default: throw failure("invalid hex digit in \\u escape")
            }
            value = value * 16 + digit
            index += 1
        }
        return value
    }

    private mutating func parseString() throws(JSONParseError) -> String {
        index += 1  // opening quote
        // Fast path: no escapes, so the string is a slice of the (validated) input.
        let start = index
        while let byte = current, byte != UInt8(ascii: "\""), byte != UInt8(ascii: "\\") {
            if byte < 0x20 { throw failure("unescaped control character in string") }
            index += 1
        }
        guard let stop = current else { throw failure("unterminated string") }
        if stop == UInt8(ascii: "\"") {
            index += 1
            return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<(index - 1)]), as: UTF8.self)
        }
        var utf8 = Array(UnsafeRawBufferPointer(rebasing: bytes[start..<index]))
        while true {
            guard let byte = current else { throw failure("unterminated string") }
            switch byte {
            case UInt8(ascii: "\""):
                index += 1
                // The input was validated as UTF-8 and escapes produce valid scalars.
                return String(decoding: utf8, as: UTF8.self)
            case UInt8(ascii: "\\"):
                index += 1
                guard let escaped = current else { throw failure("unterminated escape") }
                index += 1
                switch escaped {
                case UInt8(ascii: "\""): utf8.append(0x22)
                case UInt8(ascii: "\\"): utf8.append(0x5C)
                case UInt8(ascii: "/"): utf8.append(0x2F)
                case UInt8(ascii: "b"): utf8.append(0x08)
                case UInt8(ascii: "f"): utf8.append(0x0C)
                case UInt8(ascii: "n"): utf8.append(0x0A)
                case UInt8(ascii: "r"): utf8.append(0x0D)
                case UInt8(ascii: "t"): utf8.append(0x09)
                case UInt8(ascii: "u"):
                    var scalarValue = try parseHex4()
                    if (0xD800...0xDBFF).contains(scalarValue) {
                        guard index + 6 <= bytes.count, bytes[index] == UInt8(ascii: "\\"),
                              bytes[index + 1] == UInt8(ascii: "u")
                        else { throw failure("lone high surrogate in \\u escape") }
                        index += 2
                        let low = try parseHex4()
                        guard (0xDC00...0xDFFF).contains(low) else { throw failure("invalid surrogate pair") }
                        scalarValue = 0x10000 + ((scalarValue - 0xD800) << 10) + (low - 0xDC00)
                    }
                    guard let scalar = Unicode.Scalar(scalarValue) else { throw failure("lone low surrogate") }
                    utf8.append(contentsOf: String(scalar).utf8)
                default:
                    throw failure("invalid escape")
                }
            case 0x00..<0x20:
                throw failure("unescaped control character in string")
            default:
                utf8.append(byte)
                index += 1
            }
        }
    }

    private mutating func parseNumber() throws(JSONParseError) -> String {
        let start = index
        func isDigit(_ byte: UInt8?) -> Bool { byte.map { (0x30...0x39).contains($0) } ?? false }
        if current == UInt8(ascii: "-") { index += 1 }
        if current == UInt8(ascii: "0") {
            index += 1
        } else if isDigit(current) {
            while isDigit(current) { index += 1 }
        } else {
            throw failure("invalid number")
        }
        if current == UInt8(ascii: ".") {
            index += 1
            guard isDigit(current) else { throw failure("invalid number: digit expected after '.'") }
            while isDigit(current) { index += 1 }
        }
        if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
            index += 1
            if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { index += 1 }
            guard isDigit(current) else { throw failure("invalid number: digit expected in exponent") }
            while isDigit(current) { index += 1 }
        }
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
    }
}

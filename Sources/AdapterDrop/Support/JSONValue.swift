// The parsed form of a JSON document (made by `JSONParser`) and the small writer the safetensors writer uses.

/// One object member, in file order.
typealias JSONMember = (key: String, value: JSONValue)

/// A parsed JSON value. Objects keep their members in file order as (key, value) pairs — keys are not
/// hashed as Swift `String`s, so vocabulary keys that are canonically equivalent but differ in Unicode scalars
/// (`"é"` vs `"e\u{301}"`) stay distinct, as in Hugging Face `tokenizers`. Numbers keep their literal text.
enum JSONValue: Equatable {
    case object([JSONMember])
    case array([JSONValue])
    case string(String)
    /// The number's literal text, e.g. `"-12"`, `"1.5e3"` (always valid JSON number syntax).
    case number(String)
    case bool(Bool)
    case null

    /// Structural equality; object members compare in order, keys by exact UTF-8 bytes.
    static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case let (.object(a), .object(b)):
            return a.count == b.count
                && zip(a, b).allSatisfy { $0.key.utf8.elementsEqual($1.key.utf8) && $0.value == $1.value }
        case let (.array(a), .array(b)): return a == b
        case let (.string(a), .string(b)): return a.utf8.elementsEqual(b.utf8)
        case let (.number(a), .number(b)): return a == b
        case let (.bool(a), .bool(b)): return a == b
        case (.null, .null): return true
        default: return false
        }
    }

    /// The member named `key` of an object (keys compared by exact UTF-8 bytes); nil for a missing key or a
    /// value that is not an object.
    subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        for member in members where member.key.utf8.elementsEqual(key.utf8) { return member.value }
        return nil
    }

    /// The members of an object, nil otherwise.
    var members: [JSONMember]? { if case .object(let m) = self { return m }; return nil }
    /// The elements of an array, nil otherwise.
    var array: [JSONValue]? { if case .array(let a) = self { return a }; return nil }
    /// The value of a string, nil otherwise.
    var string: String? { if case .string(let s) = self { return s }; return nil }
    /// The value of a boolean, nil otherwise.
    var bool: Bool? { if case .bool(let b) = self { return b }; return nil }
    /// True for `null`.
    var isNull: Bool { if case .null = self { return true }; return false }

    /// The value as an exact `Int` if it is an integer literal that fits (no fraction, no exponent: `4.0` and
    /// `4e0` are not integers, as for serde's `u32` and Python's `int` checks), nil otherwise.
    var exactInt: Int? {
        guard case let .number(text) = self else { return nil }
        guard !text.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }) else { return nil }
        return Int(text)
    }

    /// The value of a number as the nearest `Double` (`±infinity` if its magnitude is beyond `Double`), nil
    /// for other types.
    var double: Double? { if case let .number(text) = self { return Double(text) }; return nil }

    /// A short name of the value's JSON type for error messages.
    var typeName: String {
        switch self {
        case .object: return "object"
        case .array: return "array"
        case .string: return "string"
        case .number: return "number"
        case .bool: return "boolean"
        case .null: return "null"
        }
    }
}

// MARK: - Writing

/// Appends `text` as a JSON string literal (quotes, escapes for `"`, `\` and control characters; other
/// characters as UTF-8).
func appendJSONString(_ text: String, to out: inout [UInt8]) {
    out.append(UInt8(ascii: "\""))
    for byte in text.utf8 {
        switch byte {
        case UInt8(ascii: "\""): out.append(contentsOf: [0x5C, 0x22])
        case UInt8(ascii: "\\"): out.append(contentsOf: [0x5C, 0x5C])
        case 0x0A: out.append(contentsOf: [0x5C, UInt8(ascii: "n")])
        case 0x0D: out.append(contentsOf: [0x5C, UInt8(ascii: "r")])
        case 0x09: out.append(contentsOf: [0x5C, UInt8(ascii: "t")])
        case 0x00..<0x20:
            let hex = Array("0123456789abcdef".utf8)
            out.append(contentsOf: [0x5C, UInt8(ascii: "u"), 0x30, 0x30, hex[Int(byte >> 4)], hex[Int(byte & 0xF)]])
        default: out.append(byte)
        }
    }
    out.append(UInt8(ascii: "\""))
}

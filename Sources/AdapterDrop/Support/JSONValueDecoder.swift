// A `Decoder` over a parsed `JSONValue`, so `Codable` configs (e.g. `BertConfig`) are read with the library's
// one JSON parser instead of Foundation's `JSONDecoder`. Integers are converted exactly from the number's
// text (`384.0`, `3.84e2` and `1e400` are not integers); floating-point types accept any number.
//
// Errors are `DecodingError`s with the coding path, which the caller turns into its own one-line error naming
// the file and key.

/// Decodes `Decodable` types from a `JSONValue`.
struct JSONValueDecoder {
    /// Passed to the decoded types as `Decoder.userInfo`.
    var userInfo: [CodingUserInfoKey: any Sendable] = [:]

    /// Decodes a `T` from `value`.
    /// - Throws: `DecodingError` (`typeMismatch`, `keyNotFound`, `valueNotFound`, `dataCorrupted`) with the
    ///   coding path, or whatever `T.init(from:)` throws.
    func decode<T: Decodable>(_ type: T.Type, from value: JSONValue) throws -> T {
        try T(from: ValueDecoder(value: value, codingPath: [], userInfo: userInfo))
    }
}

/// A coding key for array positions and for keys not known at compile time.
private struct IndexKey: CodingKey {
    var stringValue: String
    var intValue: Int?
    init(stringValue: String) { self.stringValue = stringValue }
    init(intValue: Int) { stringValue = String(intValue); self.intValue = intValue }
}

private struct ValueDecoder: Decoder {
    let value: JSONValue
    let codingPath: [any CodingKey]
    let userInfoStorage: [CodingUserInfoKey: any Sendable]
    var userInfo: [CodingUserInfoKey: Any] { userInfoStorage }

    init(value: JSONValue, codingPath: [any CodingKey], userInfo: [CodingUserInfoKey: any Sendable]) {
        self.value = value
        self.codingPath = codingPath
        self.userInfoStorage = userInfo
    }

    func mismatch(_ type: Any.Type, _ expected: String) -> DecodingError {
        .typeMismatch(type, .init(codingPath: codingPath, debugDescription: "expected \(expected), found \(value.typeName)"))
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard let members = value.members else { throw mismatch([String: Any].self, "an object") }
        return KeyedDecodingContainer(KeyedContainer<Key>(members: members, decoder: self))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        guard let elements = value.array else { throw mismatch([Any].self, "an array") }
        return UnkeyedContainer(elements: elements, decoder: self)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer { SingleValueContainer(decoder: self) }

    func child(_ value: JSONValue, _ key: any CodingKey) -> ValueDecoder {
        ValueDecoder(value: value, codingPath: codingPath + [key], userInfo: userInfoStorage)
    }

    /// Decodes the primitive types from this decoder's value; anything else through `T.init(from:)`.
    func decodeValue<T: Decodable>(_ type: T.Type) throws -> T {
        func integer<I: FixedWidthInteger>(_: I.Type) throws -> I {
            guard case let .number(text) = value else { throw mismatch(I.self, "an integer") }
            guard let int = value.exactInt, let exact = I(exactly: int) else {
                throw DecodingError.dataCorrupted(.init(
                    codingPath: codingPath, debugDescription: "expected an integer that fits \(I.self), found \(text)"))
            }
            return exact
        }
        switch type {
        case is Bool.Type:
            guard let b = value.bool else { throw mismatch(Bool.self, "a boolean") }
            return b as! T
        case is String.Type:
            guard let s = value.string else { throw mismatch(String.self, "a string") }
            return s as! T
        case is Double.Type:
            guard let d = value.double else { throw mismatch(Double.self, "a number") }
            return d as! T
        case is Float.Type:
            guard let d = value.double else { throw mismatch(Float.self, "a number") }
            return Float(d) as! T
        case is Int.Type: return try integer(Int.self) as! T
        case is Int8.Type: return try integer(Int8.self) as! T
        case is Int16.Type: return try integer(Int16.self) as! T
        case is Int32.Type: return try integer(Int32.self) as! T
        case is Int64.Type: return try integer(Int64.self) as! T
        case is UInt.Type: return try integer(UInt.self) as! T
        case is UInt8.Type: return try integer(UInt8.self) as! T
        case is UInt16.Type: return try integer(UInt16.self) as! T
        case is UInt32.Type: return try integer(UInt32.self) as! T
        case is UInt64.Type: return try integer(UInt64.self) as! T
        default: return try T(from: self)
        }
    }
}

private struct KeyedContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let members: [JSONMember]
    let decoder: ValueDecoder
    var codingPath: [any CodingKey] { decoder.codingPath }
    var allKeys: [Key] { members.compactMap { Key(stringValue: $0.key) } }

    func lookup(_ key: Key) -> JSONValue? {
        members.first { $0.key.utf8.elementsEqual(key.stringValue.utf8) }?.value
    }
    func contains(_ key: Key) -> Bool { lookup(key) != nil }

    func childDecoder(_ key: Key) throws -> ValueDecoder {
        guard let value = lookup(key) else {
            throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "missing key"))
        }
        return decoder.child(value, key)
    }

    func decodeNil(forKey key: Key) throws -> Bool { try childDecoder(key).value.isNull }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        let child = try childDecoder(key)
        if child.value.isNull {
            throw DecodingError.valueNotFound(type, .init(codingPath: child.codingPath, debugDescription: "found null"))
        }
        return try child.decodeValue(type)
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws
        -> KeyedDecodingContainer<NestedKey> {
        try childDecoder(key).container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try childDecoder(key).unkeyedContainer()
    }

    func superDecoder() throws -> any Decoder { decoder }
    func superDecoder(forKey key: Key) throws -> any Decoder { try childDecoder(key) }
}

private struct UnkeyedContainer: UnkeyedDecodingContainer {
    let elements: [JSONValue]
    let decoder: ValueDecoder
    var currentIndex = 0
    var codingPath: [any CodingKey] { decoder.codingPath }
    var count: Int? { elements.count }
    var isAtEnd: Bool { currentIndex >= elements.count }

    init(elements: [JSONValue], decoder: ValueDecoder) {
        self.elements = elements
        self.decoder = decoder
    }

    mutating func next() throws -> ValueDecoder {
        guard !isAtEnd else {
            throw DecodingError.valueNotFound(Any.self, .init(codingPath: codingPath, debugDescription: "array ended"))
        }
        defer { currentIndex += 1 }
        return decoder.child(elements[currentIndex], IndexKey(intValue: currentIndex))
    }

    mutating func decodeNil() throws -> Bool {
        guard !isAtEnd, elements[currentIndex].isNull else { return false }
        currentIndex += 1
        return true
    }

    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
        let child = try next()
        if child.value.isNull {
            throw DecodingError.valueNotFound(type, .init(codingPath: child.codingPath, debugDescription: "found null"))
        }
        return try child.decodeValue(type)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws
        -> KeyedDecodingContainer<NestedKey> {
        try next().container(keyedBy: type)
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer { try next().unkeyedContainer() }
    mutating func superDecoder() throws -> any Decoder { try next() }
}

private struct SingleValueContainer: SingleValueDecodingContainer {
    let decoder: ValueDecoder
    var codingPath: [any CodingKey] { decoder.codingPath }
    func decodeNil() -> Bool { decoder.value.isNull }
    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        if decoder.value.isNull {
            throw DecodingError.valueNotFound(type, .init(codingPath: codingPath, debugDescription: "found null"))
        }
        return try decoder.decodeValue(type)
    }
}

extension DecodingError {
    /// One line for a user-facing error: `key "a.b": <what was expected and found>` (the key is omitted for the
    /// root). Keeps Foundation's multi-line `DecodingError` text out of messages.
    var oneLineDescription: String {
        let context: DecodingError.Context?
        var detail: String
        switch self {
        case let .typeMismatch(_, c), let .valueNotFound(_, c), let .dataCorrupted(c):
            context = c
            detail = c.debugDescription
        case let .keyNotFound(key, c):
            context = c
            detail = "missing key \"\(key.stringValue)\""
        @unknown default:
            context = nil
            detail = "invalid value"
        }
        detail = detail.split(whereSeparator: \.isNewline).joined(separator: " ")
        let path = context?.codingPath.map(\.stringValue).joined(separator: ".") ?? ""
        return path.isEmpty ? detail : "key \"\(path)\": \(detail)"
    }

    /// The dotted coding path of the error (`""` for the root).
    var keyPath: String {
        switch self {
        case let .typeMismatch(_, c), let .valueNotFound(_, c), let .dataCorrupted(c), let .keyNotFound(_, c):
            return c.codingPath.map(\.stringValue).joined(separator: ".")
        @unknown default:
            return ""
        }
    }
}

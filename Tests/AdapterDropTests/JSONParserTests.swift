// The library's one JSON parser (Sources/AdapterDrop/Support/JSONParser.swift) and the loaders built on it.
@testable import AdapterDrop
import Foundation
import Testing

private func parse(_ text: String, maxDepth: Int = 8, maxBytes: Int = 1 << 20,
                   keys: JSONParser.KeyEquality = .exactBytes) throws(JSONParseError) -> JSONValue {
    try JSONParser.parse(Array(text.utf8), limits: .init(maxDepth: maxDepth, maxBytes: maxBytes), keyEquality: keys)
}

private func parseError(_ bytes: [UInt8], maxDepth: Int = 8, maxBytes: Int = 1 << 20,
                        keys: JSONParser.KeyEquality = .exactBytes) -> JSONParseError? {
    do {
        _ = try JSONParser.parse(bytes, limits: .init(maxDepth: maxDepth, maxBytes: maxBytes), keyEquality: keys)
        return nil
    } catch {
        return error
    }
}

private func parseError(_ text: String, maxDepth: Int = 8, maxBytes: Int = 1 << 20,
                        keys: JSONParser.KeyEquality = .exactBytes) -> JSONParseError? {
    parseError(Array(text.utf8), maxDepth: maxDepth, maxBytes: maxBytes, keys: keys)
}

@Suite("JSON parser: one strict, bounded reader for every JSON file")
struct JSONParserTests {
    @Test("Values, member order, escapes and surrogate pairs")
    func values() throws {
        let value = try parse(#" {"b": [1, -2.5e3, true, false, null], "a": "x\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00"} "#)
        let members = try #require(value.members)
        #expect(members.map(\.key) == ["b", "a"])
        #expect(value["b"] == .array([.number("1"), .number("-2.5e3"), .bool(true), .bool(false), .null]))
        #expect(value["a"]?.string == "x\"\\/\u{8}\u{c}\n\r\té😀")
        #expect(value["missing"] == nil)
        #expect(try parse("\"plain\"") == .string("plain"))
    }

    @Test("Integers convert exactly from the literal text; fractions and exponents are not integers")
    func exactIntegers() throws {
        #expect(try parse("9223372036854775807").exactInt == Int.max)
        #expect(try parse("-9223372036854775808").exactInt == Int.min)
        #expect(try parse("9223372036854775808").exactInt == nil)  // does not fit: nil, never rounded
        #expect(try parse("9007199254740993").exactInt == 9_007_199_254_740_993)  // not representable in Double
        #expect(try parse("4.0").exactInt == nil)
        #expect(try parse("4e0").exactInt == nil)
        #expect(try parse("4.0").double == 4)
        #expect(try parse("\"4\"").exactInt == nil)
    }

    @Test("Grammar violations name the reason and the byte offset", arguments: [
        ("[1,]", "unexpected character", 3),
        ("{\"a\":1,}", "expected a string key", 7),
        ("01", "unexpected data after the JSON value", 1),
        ("+1", "unexpected character", 0),
        (".5", "unexpected character", 0),
        ("1.", "invalid number: digit expected after '.'", 2),
        ("1e", "invalid number: digit expected in exponent", 2),
        ("NaN", "unexpected character", 0),
        ("tru", "truncated literal", 0),
        ("[1 2]", "expected ',' or ']'", 3),
        ("\"a\u{1}\"", "unescaped control character in string", 2),
        (#""\x""#, "invalid escape", 3),
        (#""\udc00""#, "lone low surrogate", 7),
        (#""\ud800x""#, "lone high surrogate in \\u escape", 7),
        ("// c\n1", "unexpected character", 0),
        ("", "unexpected end of input", 0),
    ])
    func syntaxErrors(text: String, reason: String, offset: Int) {
        let error = parseError(text)
        #expect(error == JSONParseError(kind: .syntax, reason: reason, offset: offset), "\(text)")
    }

    @Test("Duplicate keys: byte-exact by default, canonical equivalence on request; offset of the second key")
    func duplicateKeys() throws {
        #expect(parseError(#"{"a":1,"a":2}"#) == JSONParseError(kind: .duplicateKey, reason: "duplicate key \"a\"", offset: 7))
        #expect(parseError(#"{"a":{"k":1},"b":{"k":2}}"#) == nil)  // the same key in two objects is fine
        let equivalent = "{\"\u{e9}\":1,\"e\u{301}\":2}"
        #expect(try parse(equivalent).members?.count == 2)  // two keys, as in Python and Rust
        #expect(parseError(equivalent, keys: .canonicalEquivalence)?.kind == .duplicateKey)
        // Many keys (the set-based check) and one repeated at the end.
        let many = (0..<1000).map { "\"k\($0)\":\($0)" }.joined(separator: ",")
        #expect(try parse("{" + many + "}").members?.count == 1000)
        #expect(parseError("{" + many + ",\"k17\":0}")?.kind == .duplicateKey)
    }

    @Test("Depth and size limits")
    func limits() throws {
        #expect(try parse("[[1]]", maxDepth: 2).array?.count == 1)
        #expect(parseError("[[[1]]]", maxDepth: 2) == JSONParseError(kind: .tooDeep, reason: "nested deeper than 2 levels", offset: 2))
        #expect(parseError(#"{"a":{"b":{}}}"#, maxDepth: 2)?.offset == 10)
        #expect(try parse("1", maxDepth: 0) == .number("1"))
        #expect(parseError("[]", maxDepth: 0)?.kind == .tooDeep)
        let deep = String(repeating: "[", count: 1_000_000)
        #expect(parseError(deep, maxDepth: 64)?.kind == .tooDeep)  // bounded, no stack overflow
        #expect(parseError("[1,2,3]", maxBytes: 6)?.kind == .tooLarge)
        #expect(try parse("[1,2,3]", maxBytes: 7).array?.count == 3)
    }

    @Test("Invalid UTF-8 anywhere is an error at the first bad byte", arguments: [
        ([0x22, 0xC3, 0x28, 0x22], 1),               // lead byte without continuation
        ([0x22, 0xC0, 0x80, 0x22], 1),               // overlong NUL
        ([0x22, 0xE0, 0x80, 0x80, 0x22], 1),         // overlong 3-byte form
        ([0x22, 0xED, 0xA0, 0x80, 0x22], 1),         // encoded surrogate U+D800
        ([0x22, 0xF4, 0x90, 0x80, 0x80, 0x22], 1),   // above U+10FFFF
        ([0x22, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x80, 0x22], 9),  // past the 8-byte fast path
        ([0x20, 0xFF], 1),                           // outside a string
    ] as [([UInt8], Int)])
    func invalidUTF8(bytes: [UInt8], offset: Int) {
        #expect(parseError(bytes) == JSONParseError(kind: .invalidUTF8, reason: "invalid UTF-8", offset: offset))
    }

    @Test("Valid multi-byte UTF-8 passes the validator")
    func validUTF8() throws {
        let text = "\"é€😀\u{10FFFF}\u{D7FF}\u{E000}\""
        #expect(JSONParser.firstInvalidUTF8Offset(Array(text.utf8)) == nil)
        #expect(try parse(text).string == "é€😀\u{10FFFF}\u{D7FF}\u{E000}")
    }
}

@Suite("JSON loaders: one-line errors naming the file and the key or offset")
struct JSONLoaderErrorTests {
    private func configError(_ text: String) -> ModelConfigError? {
        do {
            _ = try BertConfig(jsonData: Data(text.utf8), file: "m/config.json")
            return nil
        } catch {
            return error as? ModelConfigError
        }
    }

    private static let valid = #"{"model_type":"bert","hidden_size":32,"num_hidden_layers":2,"num_attention_heads":2,"#
        + #""intermediate_size":64,"hidden_act":"gelu","layer_norm_eps":1e-12,"max_position_embeddings":64,"#
        + #""type_vocab_size":2,"vocab_size":100"#

    @Test("config.json: empty, garbage, truncated, duplicate keys and non-integer sizes give one-line errors")
    func configErrors() throws {
        #expect(configError("") == .invalidJSON(file: "m/config.json", reason: "the file is empty"))
        #expect(configError(" {") == .invalidJSON(file: "m/config.json", reason: "unexpected end of input at byte 2"))
        #expect(configError("garbage") == .invalidJSON(file: "m/config.json", reason: "unexpected character at byte 0"))
        #expect(configError(Self.valid) == .invalidJSON(file: "m/config.json", reason: "unexpected end of input at byte \(Self.valid.utf8.count)"))
        #expect(configError(Self.valid + #","hidden_size":64}"#)
            == .invalidJSON(file: "m/config.json", reason: "duplicate key \"hidden_size\" at byte \(Self.valid.utf8.count + 1)"))
        #expect(configError(Self.valid.replacingOccurrences(of: "\"hidden_size\":32", with: "\"hidden_size\":32.0") + "}")
            == .invalidValue(file: "m/config.json", key: "hidden_size", reason: "expected an integer"))
        #expect(configError(Self.valid.replacingOccurrences(of: "\"hidden_size\":32", with: "\"hidden_size\":1e400") + "}")
            == .invalidValue(file: "m/config.json", key: "hidden_size", reason: "expected an integer"))
        #expect(configError(Self.valid.replacingOccurrences(of: "\"vocab_size\":100", with: "\"vocab_size\":null") + "}")
            == .missingKey(file: "m/config.json", key: "vocab_size"))
        #expect(configError(Self.valid + "}") == nil)
        for text in ["", "garbage", "{\"a\":", "[1]", "\u{FEFF}{}", Self.valid + "} x"] {
            let description = "\(configError(text).map { "\($0)" } ?? "accepted")"
            #expect(description.hasPrefix("m/config.json: ") && !description.contains("\n"), "\(description)")
        }
    }

    @Test("Adapter configs: invalid UTF-8, duplicate and canonically equivalent keys are rejected with the offset")
    func adapterJSONErrors() throws {
        func reason(_ bytes: [UInt8]) -> String? {
            do {
                _ = try AdapterJSON.parse(Data(bytes), file: "a/adapter_config.json")
                return nil
            } catch let AdapterError.invalidJSON(file, reason) {
                #expect(file == "a/adapter_config.json")
                return reason
            } catch {
                return "\(error)"
            }
        }
        #expect(reason(Array(#"{"a":"x"#.utf8) + [0xFF] + Array(#""}"#.utf8)) == "invalid UTF-8 at byte 7")
        #expect(reason(Array(#"{"a":1,"a":1}"#.utf8)) == "duplicate key \"a\" at byte 7")
        #expect(reason(Array("{\"\u{e9}\":1,\"e\u{301}\":2}".utf8)) == "duplicate key \"e\u{301}\" at byte 8")
        #expect(reason(Array(#"{"a":1}"#.utf8)) == nil)
    }

    @Test("Safetensors headers: canonically equivalent tensor names are duplicates, not silently merged")
    func safetensorsEquivalentNames() throws {
        let header = "{\"\u{e9}\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},"
            + "\"e\u{301}\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}}"
        var image = [UInt8]()
        let headerBytes = Array(header.utf8)
        withUnsafeBytes(of: UInt64(headerBytes.count).littleEndian) { image.append(contentsOf: $0) }
        image += headerBytes
        let url = URL(fileURLWithPath: "/x/e.safetensors")
        #expect(throws: SafetensorsError.invalidHeaderJSON(file: url.path, reason: "duplicate key \"e\u{301}\"", offset: 55)) {
            try SafetensorsFile(bytes: image, url: url)
        }
    }

    @Test("tokenizer.json: a key repeated byte for byte is an error; invalid UTF-8 names the byte")
    func tokenizerErrors() throws {
        let path = "t/tokenizer.json"
        #expect(throws: TokenizerError.invalidJSON(path: path, byteOffset: 35, reason: "duplicate key \"a\"")) {
            try TokenizerFiles.parseJSON(Array(#"{"model":{"vocab":{"[UNK]":0,"a":1,"a":2}}}"#.utf8), path: path,
                                         limits: TokenizerLoadingLimits())
        }
        #expect(throws: TokenizerError.invalidUTF8(path: path, byteOffset: 2)) {
            try TokenizerFiles.parseJSON([0x7B, 0x22, 0xC3, 0x22, 0x3A, 0x31, 0x7D], path: path, limits: TokenizerLoadingLimits())
        }
    }
}

import Foundation
import Testing
@testable import AdapterDrop

/// Every Unicode code point through the BERT normalizer, against HF's `BertNormalizer` output per code point
/// (`unicode_normalization.json`): this checks Swift's NFD and lowercase data against the Rust crates HF is
/// built with, and the generated class tables. Tier D (exact).
@Suite("Tokenizer Unicode tables against HF, all code points")
struct TokenizerUnicodeTests {
    /// Rows "CP:OUT OUT…" (hex) for every code point whose output is not itself, empty, a space or " cp ".
    static func rows(_ normalizer: BertNormalizer) -> [String] {
        var rows: [String] = []
        for cp in UInt32(0)...0x10FFFF where !(0xD800...0xDFFF).contains(cp) {
            let out = normalizer.normalize([cp][...])
            if out == [cp] || out.isEmpty || out == [0x20] || out == [0x20, cp, 0x20] { continue }
            rows.append(String(cp, radix: 16, uppercase: true) + ":" + out.map { String($0, radix: 16, uppercase: true) }.joined(separator: " "))
        }
        return rows
    }

    @Test("Per-code-point normalization equals HF in three configurations",
          arguments: [("uncased", true, true), ("lower_keep_accents", true, false), ("strip_only", false, true)])
    func perCodePoint(name: String, lowercase: Bool, stripAccents: Bool) throws {
        let bytes = [UInt8](try Data(contentsOf: TokenizerFixtures.url("unicode_normalization.json")))
        let root = try TokenizerFiles.parseJSON(bytes, path: "unicode_normalization.json", limits: TokenizerLoadingLimits(maxJSONDepth: 8))
        let normalizer = BertNormalizer(cleanText: true, handleChineseChars: true, stripAccents: stripAccents, lowercase: lowercase)
        let got = Self.rows(normalizer)
        #expect(got.count == root["count"]![name]!.exactInt!, "\(name): \(got.count) changed code points")
        if let explicit = root["explicit"]?[name]?.array?.map({ $0.string! }) {
            let hangul = UInt32(0xAC00)...0xD7A3
            let gotExplicit = got.filter { !hangul.contains(UInt32($0.split(separator: ":")[0], radix: 16)!) }
            let wanted = Set(explicit)
            let diff = gotExplicit.filter { !wanted.contains($0) } + explicit.filter { !Set(gotExplicit).contains($0) }
            #expect(diff.isEmpty, "\(name): first differences \(diff.prefix(10))")
        }
        #expect(TokenizerFixtures.fnv1a64(got.joined(separator: "\n")) == root["digest"]![name]!.string!, "\(name)")
    }

    @Test("CJK padding: exactly the code points HF pads with spaces")
    func chineseCharacters() throws {
        let bytes = [UInt8](try Data(contentsOf: TokenizerFixtures.url("unicode_normalization.json")))
        let root = try TokenizerFiles.parseJSON(bytes, path: "unicode_normalization.json", limits: TokenizerLoadingLimits(maxJSONDepth: 8))
        let expected = root["chinese_ranges"]!.array!.map { UInt32($0.array![0].exactInt!)...UInt32($0.array![1].exactInt!) }
        var got: [ClosedRange<UInt32>] = []
        for cp in UInt32(0)...0x10FFFF where CharacterClasses.isCJK(cp) {
            if let last = got.last, last.upperBound + 1 == cp { got[got.count - 1] = last.lowerBound...cp } else { got.append(cp...cp) }
        }
        #expect(got == expected)
        let normalizer = BertNormalizer(cleanText: false, handleChineseChars: true, stripAccents: false, lowercase: false)
        #expect(normalizer.normalize([0x2B820, 0x2B920][...]) == [0x2B820, 0x20, 0x2B920, 0x20])
    }

    @Test("Class tables: spot checks of the probed HF classes")
    func spotChecks() {
        #expect(CharacterClasses.bertControl.contains(0x00AD))    // soft hyphen (Cf) removed
        #expect(CharacterClasses.bertControl.contains(0x0085))    // NEL is Cc: removed, not a space
        #expect(!CharacterClasses.bertControl.contains(0x0378))   // unassigned (Cn) is kept by HF
        #expect(CharacterClasses.bertWhitespace.contains(0x3000))
        #expect(CharacterClasses.bertPunctuation.contains(0x24))  // '$' (ASCII symbol counts as punctuation)
        #expect(!CharacterClasses.bertPunctuation.contains(0x2E4F)) // newer P* not in HF's Unicode tables
        #expect(CharacterClasses.regexLetter.contains(0x00E9) && !CharacterClasses.regexLetter.contains(0x0031))
        #expect(CharacterClasses.regexNumber.contains(0x00BD))    // ½ is \p{N}
        #expect(CharacterClasses.regexWhitespace.contains(0x00A0))
    }

    @Test("Vocabulary lookup uses exact scalars: é (U+00E9) and e + U+0301 are different tokens")
    func exactScalarLookup() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tok-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let vocab = dir.appendingPathComponent("vocab.txt")
        try Data("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n\u{E9}\ne\u{301}\n".utf8).write(to: vocab)
        let tokenizer = try SubwordTokenizer.bertWordPiece(vocabularyFile: vocab, lowercase: false)
        #expect(tokenizer.id(forToken: "\u{E9}") == 5)
        #expect(tokenizer.id(forToken: "e\u{301}") == 6)
        #expect(tokenizer.tokenize("\u{E9} e\u{301}") == [5, 6])
    }
}

import Foundation
import Testing
@testable import AdapterDrop

/// Bad input gives typed errors that name the file, key or value; nothing traps.
@Suite("Tokenizer loading and encoding errors")
struct TokenizerErrorTests {
    final class TempDir {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("tokerr-\(UUID().uuidString)")
        init() { try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true) }
        deinit { try? FileManager.default.removeItem(at: url) }
        func write(_ name: String, _ bytes: [UInt8]) -> URL {
            let file = url.appendingPathComponent(name)
            try! Data(bytes).write(to: file)
            return file
        }
        func write(_ name: String, _ text: String) -> URL { write(name, Array(text.utf8)) }
    }

    static let specials = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n"

    @Test("vocab.txt: missing, directory, empty, duplicate, invalid UTF-8, missing [UNK], limits")
    func vocabTxt() throws {
        let dir = TempDir()
        let missing = dir.url.appendingPathComponent("nope.txt")
        #expect(throws: TokenizerError.fileUnreadable(path: missing.path, reason: "no such file")) {
            try SubwordTokenizer.bertWordPiece(vocabularyFile: missing)
        }
        #expect(throws: TokenizerError.fileUnreadable(path: dir.url.path, reason: "is a directory")) {
            try SubwordTokenizer.bertWordPiece(vocabularyFile: dir.url)
        }
        let empty = dir.write("empty.txt", "")
        #expect(throws: TokenizerError.emptyVocabulary(path: empty.path)) {
            try SubwordTokenizer.bertWordPiece(vocabularyFile: empty)
        }
        let duplicate = dir.write("dup.txt", Self.specials + "hello\nworld\nhello\n")
        #expect(throws: TokenizerError.duplicateVocabularyEntry(path: duplicate.path, token: "hello", line: 8)) {
            try SubwordTokenizer.bertWordPiece(vocabularyFile: duplicate)
        }
        let invalid = dir.write("bad.txt", Array(Self.specials.utf8) + [0x61, 0xC3, 0x28, 0x0A])
        #expect(throws: TokenizerError.invalidUTF8(path: invalid.path, byteOffset: Self.specials.utf8.count + 1)) {
            try SubwordTokenizer.bertWordPiece(vocabularyFile: invalid)
        }
        let noUnk = dir.write("nounk.txt", "[PAD]\n[CLS]\n[SEP]\nhello\n")
        #expect(throws: TokenizerError.tokenNotInVocabulary(path: noUnk.path, token: "[UNK]")) {
            try SubwordTokenizer.bertWordPiece(vocabularyFile: noUnk)
        }
        let ok = dir.write("ok.txt", Self.specials + "hello\n")
        #expect(throws: TokenizerError.fileTooLarge(path: ok.path, bytes: Self.specials.utf8.count + 6, limit: 10)) {
            try SubwordTokenizer.bertWordPiece(vocabularyFile: ok, limits: TokenizerLoadingLimits(maxFileBytes: 10))
        }
        #expect(throws: TokenizerError.tooManyEntries(path: ok.path, count: 6, limit: 3)) {
            try SubwordTokenizer.bertWordPiece(vocabularyFile: ok, limits: TokenizerLoadingLimits(maxEntries: 3))
        }
    }

    @Test("vocab.txt splits on LF only: CRLF endings are trimmed, U+2028/U+0085 inside a token are kept")
    func vocabLineSplitting() throws {
        let dir = TempDir()
        let file = dir.write("v.txt", "[PAD]\r\n[UNK]\r\n[CLS]\r\n[SEP]\r\n[MASK]\r\na\u{2028}b\nc\u{85}d\n\ne")
        let tokenizer = try SubwordTokenizer.bertWordPiece(vocabularyFile: file)
        #expect(tokenizer.vocabularySize == 9)
        #expect(tokenizer.id(forToken: "[UNK]") == 1)
        #expect(tokenizer.id(forToken: "a\u{2028}b") == 5)
        #expect(tokenizer.id(forToken: "c\u{85}d") == 6)
        #expect(tokenizer.id(forToken: "") == 7)   // an empty line is a token, as in HF
        #expect(tokenizer.id(forToken: "e") == 8)  // no final newline needed
    }

    @Test("tokenizer.json: unsupported model type, missing keys, invalid JSON, depth, single_word")
    func tokenizerJSON() throws {
        let dir = TempDir()
        let unigram = dir.write("u.json", #"{"model":{"type":"Unigram","vocab":[["a",0.0]]}}"#)
        #expect(throws: TokenizerError.missingKey(path: unigram.path, key: "model.vocab")) {
            try SubwordTokenizer(tokenizerJSON: unigram)
        }
        let unigram2 = dir.write("u2.json", #"{"model":{"type":"Unigram","vocab":{"a":0}},"pre_tokenizer":null}"#)
        #expect(throws: TokenizerError.unsupportedModelType(path: unigram2.path, key: "model.type", value: "Unigram")) {
            try SubwordTokenizer(tokenizerJSON: unigram2)
        }
        let noModel = dir.write("n.json", #"{"version":"1.0"}"#)
        #expect(throws: TokenizerError.missingKey(path: noModel.path, key: "model")) {
            try SubwordTokenizer(tokenizerJSON: noModel)
        }
        let badPre = dir.write("p.json", #"{"model":{"type":"WordPiece","vocab":{"[UNK]":0}},"pre_tokenizer":{"type":"Whitespace"}}"#)
        #expect(throws: TokenizerError.unsupportedModelType(path: badPre.path, key: "pre_tokenizer.type", value: "Whitespace")) {
            try SubwordTokenizer(tokenizerJSON: badPre)
        }
        let truncated = dir.write("t.json", #"{"model":{"type":"WordPiece","vocab":{"a":0"#)
        #expect(throws: TokenizerError.invalidJSON(path: truncated.path, byteOffset: 43, reason: "unexpected end of input")) {
            try SubwordTokenizer(tokenizerJSON: truncated)
        }
        let deep = dir.write("d.json", String(repeating: "[", count: 100) + String(repeating: "]", count: 100))
        #expect(throws: TokenizerError.invalidJSON(path: deep.path, byteOffset: 64, reason: "nested deeper than 64 levels")) {
            try SubwordTokenizer(tokenizerJSON: deep)
        }
        let duplicateID = dir.write("i.json", #"{"model":{"type":"WordPiece","vocab":{"[UNK]":0,"a":0}},"pre_tokenizer":{"type":"BertPreTokenizer"}}"#)
        #expect(throws: TokenizerError.duplicateTokenID(path: duplicateID.path, id: 0)) {
            try SubwordTokenizer(tokenizerJSON: duplicateID)
        }
        var text = try String(contentsOf: TokenizerFixtures.url("bpe/tokenizer.json"), encoding: .utf8)
        text = text.replacingOccurrences(of: "\"single_word\": false", with: "\"single_word\": true")
        let singleWord = dir.write("s.json", text)
        #expect(throws: TokenizerError.unsupportedOption(path: singleWord.path, key: "added_tokens[0].single_word", value: "true")) {
            try SubwordTokenizer(tokenizerJSON: singleWord)
        }
    }

    @Test("merges.txt / vocab.json: malformed line, merge outside the vocabulary, canonically equivalent keys")
    func bpeFiles() throws {
        let dir = TempDir()
        let vocab = dir.write("vocab.json", #"{"<s>":0,"<pad>":1,"</s>":2,"a":3,"b":4,"ab":5,"\u00e9":6,"e\u0301":7}"#)
        let badLine = dir.write("m1.txt", "#version: 0.2\na b\nab\n")
        #expect(throws: TokenizerError.invalidMerge(path: badLine.path, line: 3, text: "ab")) {
            try SubwordTokenizer.byteLevelBPE(vocabularyFile: vocab, mergesFile: badLine)
        }
        let outside = dir.write("m2.txt", "#version: 0.2\na b\nb a\n")
        #expect(throws: TokenizerError.tokenNotInVocabulary(path: outside.path, token: "ba")) {
            try SubwordTokenizer.byteLevelBPE(vocabularyFile: vocab, mergesFile: outside)
        }
        let good = dir.write("m3.txt", "#version: 0.2\na b\n")
        let tokenizer = try SubwordTokenizer.byteLevelBPE(vocabularyFile: vocab, mergesFile: good)
        #expect(tokenizer.vocabularySize == 8)  // "é" and "e\u{301}" are two entries
        #expect(tokenizer.tokenize("ab") == [5])
    }

    @Test("Encoding options: maxLength too small, truncation without maxLength, bad padding")
    func encodingOptions() throws {
        let tokenizer = try SubwordTokenizer.bertWordPiece(vocabularyFile: TokenizerFixtures.url("bert/vocab.txt"))
        #expect(throws: TokenizerError.maxLengthTooSmall(maxLength: 1, required: 2)) {
            try tokenizer.encode(batch: [.single("hello")], options: EncodingOptions(truncation: .longestFirst, maxLength: 1))
        }
        #expect(throws: TokenizerError.maxLengthTooSmall(maxLength: 2, required: 3)) {
            try tokenizer.encode(batch: [.pair("a", "b")], options: EncodingOptions(truncation: .onlyFirst, maxLength: 2))
        }
        #expect(throws: TokenizerError.missingMaxLength) {
            try tokenizer.encode(batch: [.single("hello")], options: EncodingOptions(truncation: .longestFirst))
        }
        #expect(throws: TokenizerError.invalidPadding(reason: "padding to maxLength requires maxLength")) {
            try tokenizer.encode(batch: [.single("hello")], options: EncodingOptions(padding: .maxLength))
        }
        #expect(throws: TokenizerError.invalidPadding(reason: "padToMultipleOf must be positive, got 0")) {
            try tokenizer.encode(batch: [.single("hello")], options: EncodingOptions(padding: .longest, padToMultipleOf: 0))
        }
        // exactly the special tokens: sequences are emptied (HF behaviour)
        let e = try tokenizer.encode(batch: [.pair("a b", "c")], options: EncodingOptions(truncation: .onlySecond, maxLength: 3))
        #expect(e.tokens[0] == ["[CLS]", "[SEP]", "[SEP]"])
    }
}

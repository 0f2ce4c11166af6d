import Foundation
import Testing
@testable import AdapterDrop

/// Parity with the Hugging Face fast tokenizer (`tokenizers` 0.22.2 / `transformers` 4.57.6) on the shared
/// corpus (~2,000 rows of real text plus hard cases, singles and pairs). Tier D: exact ids and type ids.
@Suite("Tokenizer parity with HF fast tokenizers")
struct TokenizerParityTests {
    @Test("BERT WordPiece from vocab.txt (all-MiniLM-L6-v2) matches BertTokenizerFast")
    func bertVocabTxt() throws {
        let tokenizer = try SubwordTokenizer.bertWordPiece(vocabularyFile: TokenizerFixtures.url("bert/vocab.txt"))
        let report = try TokenizerFixtures.checkParity(tokenizer, expectedFile: "bert/minilm_expected.jsonl")
        #expect(report.checked == TokenizerFixtures.corpus.count)
        #expect(report.mismatches.isEmpty, "\(report)")
    }

    /// The trimmed (ids < 3000) MiniLM tokenizer.json with each normalizer configuration, rewritten the same
    /// way the generator rewrote it before asking HF.
    @Test("BERT WordPiece from tokenizer.json, four normalizer configurations",
          arguments: [("uncased", "true", "null"), ("cased", "false", "false"),
                      ("lower_keep_accents", "true", "false"), ("strip_only", "false", "true")])
    func bertTokenizerJSON(name: String, lowercase: String, stripAccents: String) throws {
        var text = try String(contentsOf: TokenizerFixtures.url("bert/small.tokenizer.json"), encoding: .utf8)
        let original = "\"strip_accents\":null,\"lowercase\":true"
        #expect(text.contains(original))
        text = text.replacingOccurrences(of: original, with: "\"strip_accents\":\(stripAccents),\"lowercase\":\(lowercase)")
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("small_\(name)_\(UUID().uuidString).json")
        try Data(text.utf8).write(to: tmp)
        defer { try? FileManager.default.removeItem(at: tmp) }
        let tokenizer = try SubwordTokenizer(tokenizerJSON: tmp)
        let report = try TokenizerFixtures.checkParity(tokenizer, expectedFile: "bert/small_\(name)_expected.jsonl")
        #expect(report.checked == 621)  // hard cases + every 4th row
        #expect(report.mismatches.isEmpty, "\(report)")
    }

    @Test("Byte-level BPE from tokenizer.json matches the HF fast tokenizer")
    func bpeTokenizerJSON() throws {
        let tokenizer = try SubwordTokenizer(tokenizerJSON: TokenizerFixtures.url("bpe/tokenizer.json"))
        let report = try TokenizerFixtures.checkParity(tokenizer, expectedFile: "bpe/expected.jsonl")
        #expect(report.checked == TokenizerFixtures.corpus.count)
        #expect(report.mismatches.isEmpty, "\(report)")
    }

    /// Expected outputs come from `RobertaTokenizerFast(vocab_file:merges_file:add_prefix_space:)`.
    @Test("Byte-level BPE from vocab.json + merges.txt matches RobertaTokenizerFast, with and without add_prefix_space",
          arguments: [(false, "bpe/expected_roberta_fast.jsonl"), (true, "bpe/expected_roberta_fast_prefix_space.jsonl")])
    func bpeVocabMerges(addPrefixSpace: Bool, expectedFile: String) throws {
        let tokenizer = try SubwordTokenizer.byteLevelBPE(
            vocabularyFile: TokenizerFixtures.url("bpe/vocab.json"), mergesFile: TokenizerFixtures.url("bpe/merges.txt"),
            addPrefixSpace: addPrefixSpace)
        let report = try TokenizerFixtures.checkParity(tokenizer, expectedFile: expectedFile)
        #expect(report.checked == 621)
        #expect(report.mismatches.isEmpty, "\(report)")
    }
}

/// 1,500 seeded random strings over pre-tokenizer edge cases (all kinds of spaces, contractions, marks,
/// digits, symbols, special-token text), against the HF fast tokenizers.
@Suite("Tokenizer parity on random edge-case strings")
struct TokenizerFuzzParityTests {
    @Test("BERT WordPiece (MiniLM vocab.txt)")
    func bert() throws {
        let tokenizer = try SubwordTokenizer.bertWordPiece(vocabularyFile: TokenizerFixtures.url("bert/vocab.txt"))
        let report = try TokenizerFixtures.checkParity(tokenizer, expectedFile: "bert/fuzz_expected.jsonl", rows: TokenizerFixtures.fuzz)
        #expect(report.checked == 1500)
        #expect(report.mismatches.isEmpty, "\(report)")
    }

    @Test("Byte-level BPE: tokenizer.json, and vocab.json + merges.txt with add_prefix_space")
    func bpe() throws {
        let fromJSON = try SubwordTokenizer(tokenizerJSON: TokenizerFixtures.url("bpe/tokenizer.json"))
        var report = try TokenizerFixtures.checkParity(fromJSON, expectedFile: "bpe/fuzz_expected.jsonl", rows: TokenizerFixtures.fuzz)
        #expect(report.checked == 1500)
        #expect(report.mismatches.isEmpty, "\(report)")
        let prefixed = try SubwordTokenizer.byteLevelBPE(
            vocabularyFile: TokenizerFixtures.url("bpe/vocab.json"), mergesFile: TokenizerFixtures.url("bpe/merges.txt"),
            addPrefixSpace: true)
        report = try TokenizerFixtures.checkParity(prefixed, expectedFile: "bpe/fuzz_expected_roberta_fast_prefix_space.jsonl",
                                                   rows: TokenizerFixtures.fuzz)
        #expect(report.mismatches.isEmpty, "\(report)")
    }
}

/// Loading paths beyond the corpus fixtures.
@Suite("Tokenizer loading paths")
struct TokenizerLoadingTests {
    /// Expected ids from `tokenizers.Tokenizer.from_str(...)` with the same added token (0.22.2).
    @Test("An added token past the model vocabulary extends it (normalized true and false)", arguments: [true, false])
    func addedTokenBeyondVocabulary(normalized: Bool) throws {
        var text = try String(contentsOf: TokenizerFixtures.url("bpe/tokenizer.json"), encoding: .utf8)
        let anchor = "\"added_tokens\": ["
        #expect(text.contains(anchor))
        text = text.replacingOccurrences(of: anchor, with: anchor + """
            {"id": 1000, "content": "<extra>", "single_word": false, "lstrip": false, "rstrip": false, \
            "normalized": \(normalized), "special": false},
            """)
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("added-\(UUID().uuidString).json")
        try Data(text.utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let tokenizer = try SubwordTokenizer(tokenizerJSON: file)
        let e = tokenizer.encode("a<extra>b <extra>")
        #expect(e.ids == [0, 69, 1000, 70, 225, 1000, 2])
        #expect(e.tokens == ["<s>", "a", "<extra>", "b", "Ġ", "<extra>", "</s>"])
        #expect(tokenizer.id(forToken: "<extra>") == 1000)
    }

    /// HF normalizes the content of a `normalized: true` added token and matches it in the normalized text;
    /// `normalized: false` tokens match the raw text exactly. Expected ids from `tokenizers` 0.22.2.
    @Test("Added tokens on a BERT tokenizer.json: normalized and raw matching")
    func bertAddedTokens() throws {
        var text = try String(contentsOf: TokenizerFixtures.url("bert/small.tokenizer.json"), encoding: .utf8)
        let anchor = "\"added_tokens\":["
        #expect(text.contains(anchor))
        text = text.replacingOccurrences(of: anchor, with: anchor + """
            {"id":3000,"content":"HeLLo Wörld","single_word":false,"lstrip":false,"rstrip":false,"normalized":true,"special":false},\
            {"id":3001,"content":"Zz","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":false},
            """)
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("bert-added-\(UUID().uuidString).json")
        try Data(text.utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let tokenizer = try SubwordTokenizer(tokenizerJSON: file)
        #expect(tokenizer.encode("hello world HELLO WÖRLD HeLLo Wörld x").ids == [101, 3000, 3000, 3000, 1060, 102])
        #expect(tokenizer.encode("zz Zz ZZ").ids == [101, 1062, 2480, 3001, 1062, 2480, 102])
    }

    static let fullMiniLM = TokenizerFixtures.directory.deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("models/all-MiniLM-L6-v2/tokenizer.json")

    /// Runs when `scripts/fetch-model.sh` has put the real checkpoint into `models/` (git-ignored).
    @Test("Full all-MiniLM-L6-v2 tokenizer.json matches the fast tokenizer on the corpus",
          .enabled(if: FileManager.default.fileExists(atPath: fullMiniLM.path)))
    func fullMiniLMTokenizerJSON() throws {
        let tokenizer = try SubwordTokenizer(tokenizerJSON: Self.fullMiniLM)
        let report = try TokenizerFixtures.checkParity(tokenizer, expectedFile: "bert/minilm_expected.jsonl")
        #expect(report.checked == TokenizerFixtures.corpus.count)
        #expect(report.mismatches.isEmpty, "\(report)")
    }
}

// Reliability: inputs that used to cost far more than their size (found while making the fuzz targets cheaper,
// docs/reliability.md "Pathological inputs"). Each test would take hours, or tens of GiB, before its fix; the
// time bounds are generous (debug build, loaded machine) because the gap is orders of magnitude.
import AdapterCore
@testable import AdapterDrop
import Foundation
import TestSupport
import Testing

private func seconds(_ body: () throws -> Void) rethrows -> Double {
    let start = Date()
    try body()
    return Date().timeIntervalSince(start)
}

private func fixtureBPE() throws -> (SubwordTokenizer, ByteLevelBPEModel) {
    let t = try SubwordTokenizer.byteLevelBPE(vocabularyFile: fixtureURL("tokenizer/bpe/vocab.json"),
                                              mergesFile: fixtureURL("tokenizer/bpe/merges.txt"))
    guard case let .byteLevelBPE(model, _) = t.model else { throw CocoaError(.featureUnsupported) }
    return (t, model)
}

@Suite("Reliability: pathological inputs")
struct ReliabilityPathologicalInputTests {
    /// The heap merge (used for pre-tokens longer than `heapThreshold` symbols) gives exactly the ids of the
    /// scan merge it replaced, on random words over small alphabets (many merges apply) and on long runs.
    @Test func bpeHeapMergeMatchesTheScan() throws {
        let (_, model) = try fixtureBPE()
        var rng = TestRNG(seed: 99)
        let alphabets: [[UInt8]] = [Array("the".utf8), Array("aeinrst".utf8), Array("ab".utf8), Array("a".utf8),
                                    Array(" thinger'sd".utf8), Array("Ġé東".utf8)]
        var compared = 0
        for round in 0..<400 {
            let alphabet = alphabets[round % alphabets.count]
            let n = 1 + Int(rng.next() % (round < 300 ? 120 : 1500))
            let bytes = (0..<n).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] }
            var symbols = bytes.map { model.byteIDs[Int($0)] }.filter { $0 >= 0 }
            var scanned = symbols
            model.mergeByScanning(&scanned)
            model.mergeWithHeap(&symbols)
            #expect(symbols == scanned, "round \(round): \(String(decoding: bytes, as: UTF8.self))")
            compared += 1
        }
        #expect(compared == 400)
    }

    /// One pre-token of 200 000 letters: the scan merge did ~n²/2 = 2·10¹⁰ pair lookups (hours); the heap
    /// merge is O(n log n). The ids must match the tokenization of the same text in pieces that merge alike.
    @Test func longBPEWordIsNotQuadratic() throws {
        let (tokenizer, _) = try fixtureBPE()
        let word = String(repeating: "ab", count: 100_000)
        var ids: [Int] = []
        let t = seconds { ids = tokenizer.tokenize(word) }
        #expect(t < 30, "200 000-letter word took \(t) s")
        // "ab" repeated: whatever the merges make of it, the result spells the word back.
        let text = ids.compactMap { tokenizer.token(forID: $0) }.joined()
        #expect(text == word)
    }

    /// WordPiece tries candidates from the longest down; with `max_input_chars_per_word` set high (tokenizer.json
    /// allows any value) a long word cost O(n²) lookups of O(n) bytes each. Candidates longer than the longest
    /// vocabulary entry are now skipped: O(n · longest).
    @Test func longWordPieceWordIsNotQuadratic() throws {
        var vocabulary = Vocabulary(capacity: 4)
        for (i, token) in ["[UNK]", "a", "##a", "##aa"].enumerated() { _ = vocabulary.insert(token, id: Int32(i)) }
        let model = WordPieceModel(vocabulary: vocabulary, unknownID: 0, continuingPrefix: Array("##".utf8),
                                   maxInputCharsPerWord: 1 << 30)
        let n = 100_001
        let word = [UInt32](repeating: 0x61, count: n)
        var ids: [Int32] = []
        let t = seconds { model.tokenize(word[...], into: &ids) }
        #expect(t < 30, "100 001-letter word took \(t) s")
        #expect(ids.first == 1 && ids.dropFirst().allSatisfy { $0 == 3 } && ids.count == 1 + (n - 1) / 2, "\(ids.prefix(5)) … \(ids.count)")
        // Longest-first is unchanged: the candidates it skips could never match.
        var short: [Int32] = []
        model.tokenize([0x61, 0x61, 0x61, 0x61][...], into: &short)
        #expect(short == [1, 3, 2])
    }

    /// `{"a": 2147483646}` in a 50-byte vocab.json: the id → token table used to be dense up to the largest id
    /// (2³¹ entries of 16 bytes, 32 GiB). Ids far past the entry count are now kept in a sparse table.
    @Test func hugeTokenIDsDoNotAllocateADenseTable() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("adapterdrop-huge-id-\(getpid())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let vocab = folder.appendingPathComponent("vocab.json"), merges = folder.appendingPathComponent("merges.txt")
        try Data(#"{"<s>": 0, "</s>": 1, "<pad>": 2, "a": 2147483646, "b": 2000000000}"#.utf8).write(to: vocab)
        try Data("#version: 0.2\n".utf8).write(to: merges)
        let t = try SubwordTokenizer.byteLevelBPE(vocabularyFile: vocab, mergesFile: merges)
        #expect(t.token(forID: 2_147_483_646) == "a" && t.token(forID: 2_000_000_000) == "b" && t.token(forID: 2) == "<pad>")
        #expect(t.id(forToken: "a") == 2_147_483_646 && t.token(forID: 5) == nil && t.token(forID: 2_147_483_645) == nil)
        #expect(t.tokenize("ab") == [2_147_483_646, 2_000_000_000])
        // tokenizer.json: an added token with a huge id extends the vocabulary the same way.
        let json = folder.appendingPathComponent("tokenizer.json")
        try Data(#"""
        {"model": {"type": "WordPiece", "vocab": {"[UNK]": 0, "[CLS]": 1, "[SEP]": 2, "[PAD]": 3, "x": 4}},
         "normalizer": null, "pre_tokenizer": {"type": "BertPreTokenizer"}, "post_processor": null,
         "added_tokens": [{"id": 2147483646, "content": "<big>", "special": true}]}
        """#.utf8).write(to: json)
        let w = try SubwordTokenizer(tokenizerJSON: json)
        #expect(w.token(forID: 2_147_483_646) == "<big>" && w.tokenize("x <big>") == [4, 2_147_483_646])
    }
}

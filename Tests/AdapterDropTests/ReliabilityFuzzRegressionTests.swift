// Reliability: replays the fuzzing seeds (Fuzz/corpus/<target>), the inputs kept from long campaigns
// (Fuzz/found/<target>) and every kept crasher (Fuzz/crashers/<target>)
// through the same loaders the libFuzzer harness (Fuzz/Sources/AdapterDropFuzz) calls. A thrown error is fine;
// a crash fails the test run. Under scripts/sanitize.sh this also runs with ASan/UBSan.
import AdapterCore
@testable import AdapterDrop
import Foundation
import TestSupport
import Testing

/// `Fuzz/` of this checkout.
private let fuzzFolder = fixtureURL("").deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fuzz")

/// Files under `Fuzz/{corpus,found,crashers}/<target>` (`found`: minimised inputs of the long fuzzing campaigns
/// that added coverage beyond the seeds, docs/reliability.md).
private func fuzzInputs(_ target: String) -> [URL] {
    ["corpus", "found", "crashers"].flatMap { kind -> [URL] in
        let dir = fuzzFolder.appendingPathComponent(kind).appendingPathComponent(target)
        return ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).sorted().map { dir.appendingPathComponent($0) }
    }
}

/// The harness's `exercise` (Fuzz/Sources/AdapterDropFuzz/main.swift), plus `tokenize` of the whole text.
private func exercise(_ t: SubwordTokenizer, _ text: String) {
    let short = String(text.unicodeScalars.prefix(40))
    let e = t.encode(text, pair: text.isEmpty ? nil : String(text.prefix(7)))
    _ = t.tokenize(text)
    for id in e.ids.prefix(64) { _ = t.token(forID: id) }
    _ = try? t.encode(batch: [.single(short), .pair(short, short)],
                      options: EncodingOptions(truncation: .longestFirst, maxLength: 9, padding: .longest))
    _ = try? t.encode(batch: [.single(text), .pair(text, text)],
                      options: EncodingOptions(truncation: .longestFirst, maxLength: 9, padding: .longest))
}

/// The composition with Average weights rounded to 5 decimals: `parse` normalises weights by their sum, and
/// normalising already-normalised Float weights again can move the last bit (e.g. 0.11666667 → 0.116666675).
private func roundedWeights(_ c: AdapterComposition) -> AdapterComposition {
    switch c {
    case .adapter: return c
    case let .stack(children): return .stack(children.map(roundedWeights))
    case let .parallel(children): return .parallel(children.map(roundedWeights))
    case let .fuse(children, name): return .fuse(children.map(roundedWeights), name: name)
    case let .batchSplit(children, sizes): return .batchSplit(children.map(roundedWeights), batchSizes: sizes)
    case let .average(children, weights):
        return .average(children.map(roundedWeights), weights: weights.map { ($0 * 1e5).rounded() / 1e5 })
    }
}

@Suite("Reliability: fuzz corpus and crashers replay")
struct ReliabilityFuzzRegressionTests {
    @Test func seedsArePresent() {
        for t in ["safetensors", "bert_config", "adapter_config", "wordpiece_vocab", "tokenizer_json", "bpe_files",
                  "tokenize_text", "composition", "dataset"] {
            #expect(!fuzzInputs(t).isEmpty, "no seeds for \(t) (python3 Fuzz/make_corpus.py)")
        }
    }

    @Test func replayFileLoaders() throws {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("adapterdrop-replay-\(getpid())")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        var loaded = 0
        for url in fuzzInputs("safetensors") {
            guard let f = try? SafetensorsFile(url: url) else { continue }
            loaded += 1
            for n in f.tensorNames where (try? f.floats(n)) == nil { _ = try? f.integers(n) }
        }
        for url in fuzzInputs("bert_config") {
            if let c = try? BertConfig(jsonData: try Data(contentsOf: url)) { try? c.validate(); loaded += 1 }
        }
        for url in fuzzInputs("adapter_config") {
            guard let json = try? AdapterJSON.parse(try Data(contentsOf: url), file: url.path) else { continue }
            for d in [json] + (json.objectValue?["config"].map { [$0] } ?? []) {
                if let o = d.objectValue, (try? BottleneckConfig(object: o, file: url.path)) != nil { loaded += 1 }
                _ = try? BottleneckConfig(object: d.objectValue ?? [:], legacy: true, file: url.path)
                if (try? PredictionHeadConfig(json: d, file: url.path)) != nil { loaded += 1 }
                if (try? AdapterFusionConfig(json: d, file: url.path)) != nil { loaded += 1 }
            }
        }
        let sample = "Hello, World! Héllo wörld 東京 can't  stop\t123 <mask> [MASK] ##ing"
        for url in fuzzInputs("wordpiece_vocab") {
            if let t = try? SubwordTokenizer.bertWordPiece(vocabularyFile: url) { exercise(t, sample); loaded += 1 }
        }
        for url in fuzzInputs("tokenizer_json") {
            if let t = try? SubwordTokenizer(tokenizerJSON: url) { exercise(t, sample); loaded += 1 }
        }
        for url in fuzzInputs("bpe_files") {
            let bytes = try [UInt8](Data(contentsOf: url))
            let split = bytes.firstIndex(of: 0) ?? bytes.count
            let vocab = scratch.appendingPathComponent("vocab.json"), merges = scratch.appendingPathComponent("merges.txt")
            try Data(bytes[..<split]).write(to: vocab)
            try Data(bytes[min(split + 1, bytes.count)...]).write(to: merges)
            if let t = try? SubwordTokenizer.byteLevelBPE(vocabularyFile: vocab, mergesFile: merges) { exercise(t, sample); loaded += 1 }
        }
        var datasets = 0
        for url in fuzzInputs("dataset") {
            let bytes = try [UInt8](Data(contentsOf: url))
            guard let first = bytes.first else { continue }
            let file = scratch.appendingPathComponent(first & 1 == 0 ? "data.jsonl" : "data.csv")
            try Data(bytes.dropFirst()).write(to: file)
            if let d = try? TextClassificationDataset(contentsOf: file.path) {
                #expect(d.examples.allSatisfy { $0.label >= 0 && $0.label < d.labels.count })
                _ = d.batches(size: 1 + Int(first >> 4), shuffleSeed: UInt64(first))
                datasets += 1
            }
            let labels = scratch.appendingPathComponent("labels.json")
            try Data(bytes.dropFirst()).write(to: labels)
            if (try? TextClassificationDataset.readLabelList(path: labels.path)) != nil { datasets += 1 }
        }
        #expect(datasets >= 2, "the CSV seed and the label-list seed load")
        // Every committed seed of a loader is a valid file (they come from the fixtures).
        #expect(loaded >= 10, "only \(loaded) seeds loaded")
    }

    @Test func replayTextInputs() throws {
        let wordPiece = try SubwordTokenizer.bertWordPiece(vocabularyFile: fixtureURL("tokenizer/bert/vocab.txt"))
        let bpe = try SubwordTokenizer.byteLevelBPE(vocabularyFile: fixtureURL("tokenizer/bpe/vocab.json"),
                                                    mergesFile: fixtureURL("tokenizer/bpe/merges.txt"))
        for url in fuzzInputs("tokenize_text") {
            let text = String(decoding: try Data(contentsOf: url), as: UTF8.self)
            exercise(wordPiece, text)
            exercise(bpe, text)
        }
        var parsed = 0
        for url in fuzzInputs("composition") {
            let text = String(decoding: try Data(contentsOf: url), as: UTF8.self)
            if let c = try? AdapterComposition.parse(text) {
                parsed += 1
                #expect(try AdapterComposition.parse(c.description).map(roundedWeights) == roundedWeights(c), "round trip of \(text) via \(c)")
            }
        }
        #expect(parsed >= 8)
    }
}

/// Regression for a fuzzing find: `description` printed names with special characters bare, so
/// `'\0use(.'` or `Stack('a b',c)` did not parse back to the same composition.
@Test func compositionNamesWithSpecialCharactersRoundTrip() throws {
    for text in ["Stack('a b',c)", "'x(y'", "Fuse(\"a,b\",'c\"d')", "Parallel('none',b)", "Fuse(a,b,name=x\"y)", "Fuse(a,b,name='p q')", "'\u{0}use(.'"] {
        let c = try #require(try AdapterComposition.parse(text), "\(text)")
        #expect(try AdapterComposition.parse(c.description) == c, "\(text) printed as \(c.description)")
    }
}

/// Regression for a fuzzing find (`Fuzz/crashers/composition/combining-mark-name`): a name starting with a
/// combining mark fused with the quote (or `(`, `,`) before it into one `Character`, so its printed form did not
/// parse back. The parser now walks Unicode scalars.
@Test func compositionNamesStartingWithACombiningMarkRoundTrip() throws {
    for name in ["\u{31D}a", "\u{301}", "\u{31D}\"x", "\u{300}(", "a\u{301} b"] {
        for c in [AdapterComposition.adapter(name), .stack([.adapter(name), .adapter("b")]),
                  .fuse([.adapter("b"), .adapter(name)], name: name)] {
            #expect(try AdapterComposition.parse(c.description) == c, "\(c.unicodeDebug) printed as \(c.description.unicodeScalars.map { String($0.value, radix: 16) })")
        }
    }
    let text = String(decoding: try Data(contentsOf: fuzzInputs("composition").first { $0.lastPathComponent == "combining-mark-name" }!), as: UTF8.self)
    let c = try #require(try AdapterComposition.parse(text))
    #expect(try AdapterComposition.parse(c.description) == c)
}

/// Regression for a fuzzing find (`Fuzz/crashers/composition/both-quotes-after-first-char`, bytes
/// `d6 27 22 d9 91`): a bare name holding both quote characters after its first one was printed quoted, which
/// cannot read back; it is now printed bare (quotes only matter at the start of a bare name). Names that start
/// with a quote and hold both kinds still have no printed form (`isPrintable(name:)` is false).
@Test func namesWithBothQuotesPrintBare() throws {
    for name in ["a'b\"c", "\u{FFFD}'\"\u{651}", "x\"'"] {
        #expect(AdapterComposition.isPrintable(name: name))
        for c in [AdapterComposition.adapter(name), .fuse([.adapter("b"), .adapter(name)], name: name)] {
            #expect(try AdapterComposition.parse(c.description) == c, "\(c.description)")
        }
    }
    #expect(!AdapterComposition.isPrintable(name: "'a\"") && !AdapterComposition.isPrintable(name: "a b'\""))
}

/// `Parallel(a,a)` and `Fuse(a,a)` would collapse two channels into one; `checkDistinctChildren` (called by
/// `adapterdrop predict`) rejects them with the reason. `Stack(a,a)` (the same adapter applied twice) passes.
@Test func duplicateChildrenInParallelAndFuseAreRejected() throws {
    for text in ["Parallel(a,a)", "Fuse(a,b,a)", "Parallel(Stack(a,b),Stack(a,b))", "Stack(Fuse(c,c),d)"] {
        let setup = try #require(try AdapterComposition.parse(text))
        let error = #expect(throws: AdapterError.self) { try setup.checkDistinctChildren() }
        #expect("\(error!)".contains("twice"), "\(text): \(error!)")
    }
    for text in ["Stack(a,a)", "Parallel(Stack(a,b),Stack(a,c))", "BatchSplit(a,a,batch_sizes=[1,1])"] {
        try #require(try AdapterComposition.parse(text)).checkDistinctChildren()
    }
}

private extension AdapterComposition {
    var unicodeDebug: String { description.unicodeScalars.map { String($0.value, radix: 16) }.joined(separator: " ") }
}

/// Regression for a fuzzing find (`Fuzz/crashers/composition/batch-sizes-above-int-max`, CI's 6 s fuzz pass):
/// `BatchSplit(a,b,batch_sizes=155…5)` trapped converting the Double to Int. Entries are now bounded first, and
/// non-finite numbers (`inf`, `nan`) in `batch_sizes`/`weights` are rejected.
@Test func batchSplitSizesAreBoundedBeforeConversion() throws {
    let file = try #require(fuzzInputs("composition").first { $0.lastPathComponent == "batch-sizes-above-int-max" })
    let text = String(decoding: try Data(contentsOf: file), as: UTF8.self)
    #expect(throws: AdapterError.self) { try AdapterComposition.parse(text) }
    for bad in ["BatchSplit(a,b,batch_sizes=[1,1e30])", "BatchSplit(a,b,batch_sizes=[1,16777217])",
                "BatchSplit(a,b,batch_sizes=inf)", "Average(a,b,weights=[nan,1])", "Average(a,b,weights=[inf,1])"] {
        #expect(throws: AdapterError.self, "\(bad)") { try AdapterComposition.parse(bad) }
    }
    #expect(try AdapterComposition.parse("BatchSplit(a,b,batch_sizes=[2,16777216])") ==
            .batchSplit([.adapter("a"), .adapter("b")], batchSizes: [2, 1 << 24]))
}

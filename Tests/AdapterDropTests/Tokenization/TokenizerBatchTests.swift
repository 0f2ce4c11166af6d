import Foundation
import Testing
@testable import AdapterDrop

/// Truncation, padding, type ids and attention masks against the `transformers` call API
/// (`tokenizer(texts, pairs, truncation=…, max_length=…, padding=…)`, fast tokenizers), tier D (exact).
@Suite("Tokenizer batch encoding: truncation and padding")
struct TokenizerBatchTests {
    static func loadTokenizer(_ kind: String) throws -> SubwordTokenizer {
        kind == "bert"
            ? try SubwordTokenizer.bertWordPiece(vocabularyFile: TokenizerFixtures.url("bert/vocab.txt"))
            : try SubwordTokenizer(tokenizerJSON: TokenizerFixtures.url("bpe/tokenizer.json"))
    }

    @Test("Every truncation/padding case of the fixture matches HF (or throws the matching error)",
          arguments: [("bert", "bert/minilm_batch.json"), ("bpe", "bpe/batch.json")])
    func batchCases(kind: String, file: String) throws {
        let tokenizer = try Self.loadTokenizer(kind)
        let bytes = [UInt8](try Data(contentsOf: TokenizerFixtures.url(file)))
        let root = try TokenizerFiles.parseJSON(bytes, path: file, limits: TokenizerLoadingLimits(maxJSONDepth: 16))
        let singles = root["singles"]!.array!.map { TokenizerInput.single($0.string!) }
        let pairs = root["pairs"]!.array!.map { TokenizerInput.pair($0.array![0].string!, $0.array![1].string!) }
        var checked = 0
        for c in root["cases"]!.array! {
            let kindName = c["kind"]!.string!
            let batch = kindName == "single" ? singles : pairs
            var options = EncodingOptions()
            options.maxLength = c["max_length"]?.exactInt
            if let t = c["truncation"]?.string { options.truncation = TruncationStrategy(rawValue: t)! }
            switch c["padding"]?.string {
            case "longest": options.padding = .longest
            case "max_length": options.padding = .maxLength
            default: options.padding = .doNotPad
            }
            let label = "\(kind) \(kindName) truncation=\(c["truncation"]?.string ?? "none") max_length=\(options.maxLength.map(String.init) ?? "none") padding=\(c["padding"]?.string ?? "false")"
            let added = kindName == "single" ? tokenizer.numSpecialTokensSingle : tokenizer.numSpecialTokensPair
            if let error = c["error"]?.string {
                // HF errors: map the Rust TruncationError messages to our cases.
                #expect(throws: TokenizerError.self, "\(label)") { _ = try tokenizer.encode(batch: batch, options: options) }
                do {
                    _ = try tokenizer.encode(batch: batch, options: options)
                } catch let e as TokenizerError {
                    if error.contains("Second sequence not provided") {
                        #expect(e == .secondSequenceNotProvided, "\(label): \(e)")
                    } else {
                        #expect(error.contains("too short"), "\(label): unexpected HF error \(error)")
                        if case .sequenceTooShortToTruncate = e {} else { Issue.record("\(label): got \(e), HF: \(error)") }
                    }
                }
            } else if options.truncation != nil, let m = options.maxLength, m < added {
                // Documented deviation: HF silently skips truncation when max_length cannot hold the special
                // tokens; we refuse with a typed error instead.
                #expect(throws: TokenizerError.maxLengthTooSmall(maxLength: m, required: added), "\(label)") {
                    _ = try tokenizer.encode(batch: batch, options: options)
                }
            } else {
                let got = try tokenizer.encode(batch: batch, options: options)
                let ids = c["ids"]!.array!.map { TokenizerFixtures.ints($0)! }
                let types = c["types"]!.array!.map { TokenizerFixtures.ints($0)! }
                let mask = c["mask"]!.array!.map { TokenizerFixtures.ints($0)! }
                #expect(got.inputIDs == ids, "\(label)")
                #expect(got.tokenTypeIDs == types, "\(label)")
                #expect(got.attentionMask == mask, "\(label)")
                for e in got.encodings {
                    #expect(e.tokens.count == e.ids.count)
                    #expect(e.tokens == e.ids.map { tokenizer.token(forID: $0)! }, "\(label)")
                }
            }
            checked += 1
        }
        #expect(checked == 58)
    }

    @Test("Token strings, special-token masks and pad-to-multiple")
    func tokensAndMultiple() throws {
        let tokenizer = try Self.loadTokenizer("bert")
        let e = tokenizer.encode("Hello, wörld!", pair: "unaffable")
        #expect(e.tokens == ["[CLS]", "hello", ",", "world", "!", "[SEP]", "una", "##ffa", "##ble", "[SEP]"])
        #expect(e.typeIDs == [0, 0, 0, 0, 0, 0, 1, 1, 1, 1])
        #expect(e.specialTokensMask == [1, 0, 0, 0, 0, 1, 0, 0, 0, 1])
        let batch = try tokenizer.encode(batch: [.single("a"), .single("a b c")],
                                         options: EncodingOptions(padding: .longest, padToMultipleOf: 8))
        #expect(batch.inputIDs.map(\.count) == [8, 8])
        #expect(batch.attentionMask[0] == [1, 1, 1, 0, 0, 0, 0, 0])
        #expect(batch.tokens[0].suffix(5) == ["[PAD]", "[PAD]", "[PAD]", "[PAD]", "[PAD]"])
        let noSpecials = try tokenizer.encode(batch: [.pair("a b", "c")], options: EncodingOptions(addSpecialTokens: false))
        #expect(noSpecials.tokens[0] == ["a", "b", "c"])
        #expect(noSpecials.tokenTypeIDs[0] == [0, 0, 1])
    }

    @Test("RoBERTa pair layout <s> A </s></s> B </s> with type ids 0")
    func robertaPair() throws {
        let tokenizer = try Self.loadTokenizer("bpe")
        let e = tokenizer.encode("hi", pair: "yo")
        #expect(e.tokens.first == "<s>" && e.tokens.last == "</s>")
        let seps = e.tokens.enumerated().filter { $0.element == "</s>" }.map(\.offset)
        #expect(seps.count == 3 && seps[1] == seps[0] + 1)
        #expect(e.typeIDs.allSatisfy { $0 == 0 })
        #expect(tokenizer.numSpecialTokensPair == 4)
        #expect(tokenizer.padToken == "<pad>" && tokenizer.padTokenID == 1)
    }
}

import Foundation
import Testing
@testable import AdapterDrop

/// Tokenization throughput on the parity corpus. Opt-in (`TOKENIZER_THROUGHPUT=1`) and meaningful only in a
/// release build: `TOKENIZER_THROUGHPUT=1 swift test -c release --filter TokenizerThroughput`.
@Suite("Tokenizer throughput", .enabled(if: ProcessInfo.processInfo.environment["TOKENIZER_THROUGHPUT"] == "1"))
struct TokenizerThroughputTests {
    static func measure(_ name: String, _ tokenizer: SubwordTokenizer, repeats: Int = 5) -> Double {
        let inputs: [TokenizerInput] = TokenizerFixtures.corpus.map { row in
            row.second.map { .pair(row.first, $0) } ?? .single(row.first)
        }
        let bytes = TokenizerFixtures.corpus.reduce(0) { $0 + $1.first.utf8.count + ($1.second?.utf8.count ?? 0) }
        var times: [Double] = []
        var tokens = 0
        for _ in 0..<repeats {
            let start = DispatchTime.now().uptimeNanoseconds
            let batch = try! tokenizer.encode(batch: inputs)
            times.append(Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9)
            tokens = batch.encodings.reduce(0) { $0 + $1.ids.count }
        }
        let median = times.sorted()[repeats / 2]
        print("""
            [throughput] \(name): \(inputs.count) inputs, \(bytes) bytes, \(tokens) tokens; median of \(repeats): \
            \(String(format: "%.1f", median * 1e3)) ms = \(String(format: "%.0f", Double(inputs.count) / median)) inputs/s, \
            \(String(format: "%.2f", Double(bytes) / median / 1e6)) MB/s, \(String(format: "%.0f", Double(tokens) / median)) tokens/s
            """)
        #expect(tokens > inputs.count * 2)
        return median
    }

    @Test("BERT WordPiece (MiniLM vocab) and byte-level BPE, single thread")
    func throughput() throws {
        _ = Self.measure("bert-wordpiece", try SubwordTokenizer.bertWordPiece(vocabularyFile: TokenizerFixtures.url("bert/vocab.txt")))
        _ = Self.measure("byte-level-bpe", try SubwordTokenizer(tokenizerJSON: TokenizerFixtures.url("bpe/tokenizer.json")))
    }
}

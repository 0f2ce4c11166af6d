// A text's result must not depend on the other texts in its batch: the tokenizer pads a batch to its longest
// text, and those pad positions must be masked out of attention. (Found by a new-user trial: the padded
// tokenizer output was turned into encoder input through the ragged-rows initializer, which saw equal-length
// rows and set the mask to all ones, so `embed`, `predict`, `eval` and `train` attended to [PAD].)
import AdapterCore
import AdapterDrop
import Foundation
import Testing
import TestSupport

@Suite struct PaddedBatchTests {
    /// The tiny BERT fixture (vocab 100) with a 100-entry WordPiece vocabulary written next to it.
    static func tinyModelFolder() throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("padded-batch-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        for file in ["config.json", "model.safetensors"] {
            try FileManager.default.copyItem(at: fixtureURL("tiny-bert/\(file)"), to: folder.appendingPathComponent(file))
        }
        let words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + (0..<95).map { "w\($0)" }
        try (words.joined(separator: "\n") + "\n").write(to: folder.appendingPathComponent("vocab.txt"), atomically: true, encoding: .utf8)
        return folder
    }

    @Test func tokenizerPaddingIsMaskedInEncoderInput() throws {
        let folder = try Self.tinyModelFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let model = try PretrainedModel(folder: folder)
        let (batch, input) = try model.tokenize([.single("w1 w2 w3 w4 w5"), .single("w7")])
        #expect(input.sequenceLength == 7)
        #expect(input.attentionMask == batch.attentionMask.flatMap { $0 })
        #expect(input.attentionMask == [1, 1, 1, 1, 1, 1, 1] + [1, 1, 1, 0, 0, 0, 0])
    }

    /// Every row of a batch with texts of different lengths equals the text run alone. Mean pooling and [CLS]
    /// both: [CLS] sees every position through attention, so it is the one that exposes attended padding.
    /// Tolerance: the same kernels on a different M; 1e-5 abs (docs/numerics.md, encoder rows).
    @Test(arguments: [Pooling.Mode.mean, .cls])
    func embeddingDoesNotDependOnBatchNeighbours(pooling: Pooling.Mode) throws {
        let folder = try Self.tinyModelFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let model = try PretrainedModel(folder: folder)
        let texts = ["w10 w11 w12 w13 w14 w15 w16 w17", "w20", "w30 w31 w32"]
        let batched = try model.embed(texts, pooling: pooling, context: ComputeContext())
        let hidden = model.encoder.config.hiddenSize
        #expect(batched.shape == [texts.count, hidden])
        for (row, text) in texts.enumerated() {
            let alone = try model.embed([text], pooling: pooling, context: ComputeContext())
            expectClose(Array(batched.scalars[row * hidden ..< (row + 1) * hidden]), alone.scalars, atol: 1e-5, rtol: 0)
        }
    }

    @Test func raggedRowsWithMaskKeepTheGivenMask() throws {
        let input = try EncoderInput(ids: [[2, 10, 3, 0], [2, 3]], attentionMask: [[1, 1, 1, 0], [1, 1]], padTokenId: 0)
        #expect(input.attentionMask == [1, 1, 1, 0, 1, 1, 0, 0])
        #expect(throws: EncoderError.self) { try EncoderInput(ids: [[2, 3]], attentionMask: [[1]]) }
        #expect(throws: EncoderError.self) { try EncoderInput(ids: [[2, 3]], attentionMask: [[1, 2]]) }
    }
}

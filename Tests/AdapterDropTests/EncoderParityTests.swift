// Tier D: the encoder against hidden states produced by transformers 4.57.6 (eager attention, fp32),
// see docs/fixtures.md. Tolerances: docs/numerics.md, "Encoder parity".
import AdapterCore
@testable import AdapterDrop
import Foundation
import TestSupport
import Testing

/// Reads `expected.safetensors` of a fixture folder and the input batch stored in it.
private func loadExpected(_ folder: String) throws -> (SafetensorsFile, EncoderInput) {
    let file = try SafetensorsFile(url: fixtureURL("\(folder)/expected.safetensors"))
    let shape = try file.info("input_ids").shape
    let input = try EncoderInput(batchSize: shape[0], sequenceLength: shape[1],
                                 inputIds: try file.integers("input_ids"),
                                 attentionMask: try file.integers("attention_mask"),
                                 tokenTypeIds: try file.integers("token_type_ids"))
    return (file, input)
}

@Suite struct EncoderParityTests {
    /// Tiny random-init models: every layer's output, the last hidden state (padding rows included) and the
    /// pooler, for 1 and 2 threads. Tolerance 1e-5 abs + 1e-4 rel (the bar); the measured maxima are
    /// printed and recorded in docs/numerics.md.
    @Test(arguments: ["tiny-bert", "tiny-roberta"])
    func tinyModelMatchesTransformers(_ name: String) throws {
        let encoder = try BertEncoder(modelFolder: fixtureURL(name))
        let (expected, input) = try loadExpected(name)
        #expect(encoder.positionIds(for: input) == (try expected.integers("position_ids")))
        for threadCount in [1, 2] {
            let threads = threadCount
            let context = ComputeContext(threads: threads)
            let out = try encoder(input, keepHiddenStates: true, context: context)
            let hidden = try expected.floats("hidden_states")
            let per = input.batchSize * input.sequenceLength * encoder.config.hiddenSize
            for (l, state) in out.hiddenStates.enumerated() {
                let r = expectClose(state.scalars, Array(hidden[(l * per)..<((l + 1) * per)]), atol: 1e-5, rtol: 1e-4,
                                    "\(name) hidden_states[\(l)] threads \(threads)")
                print("\(name) hidden_states[\(l)] threads \(threads): \(r)")
            }
            let r = expectClose(out.lastHiddenState.scalars, try expected.floats("last_hidden_state"),
                                atol: 1e-5, rtol: 1e-4, "\(name) last_hidden_state")
            print("\(name) last_hidden_state threads \(threads): \(r)")
            let pooled = try #require(out.pooled)
            let p = expectClose(pooled.scalars, try expected.floats("pooler_output"), atol: 1e-5, rtol: 1e-4,
                                "\(name) pooler_output")
            print("\(name) pooler_output threads \(threads): \(p)")
        }
    }

    /// Results do not depend on the thread count (bitwise).
    @Test func threadCountDoesNotChangeResults() throws {
        let encoder = try BertEncoder(modelFolder: fixtureURL("tiny-bert"))
        let (_, input) = try loadExpected("tiny-bert")
        let one = try encoder(input, context: ComputeContext(threads: 1)).lastHiddenState.scalars
        let three = try encoder(input, context: ComputeContext(threads: 3)).lastHiddenState.scalars
        expectBitwiseEqual(three, one, "1 vs 3 threads")
    }

    /// Text in, embedding out: 16 of the 64 sentences as text through `PretrainedModel.embed` (our tokenizer, one padded
    /// batch, the encoder, mean pooling) against the transformers embeddings of the same sentences. Catches what
    /// the id-level test above cannot: padding added by the tokenizer must be masked (it once was not).
    @Test(.enabled(if: fetchedModelURL("all-MiniLM-L6-v2") != nil, "run scripts/fetch-model.sh first"))
    func miniLMTextToEmbeddingMatchesTransformers() throws {
        let model = try PretrainedModel(folder: try #require(fetchedModelURL("all-MiniLM-L6-v2")))
        let sentences = try #require(try JSONSerialization.jsonObject(
            with: Data(contentsOf: fixtureURL("minilm/sentences.json"))) as? [String: Any])["sentences"] as? [[String: Any]]
        let all = try #require(sentences).compactMap { $0["text"] as? String }
        #expect(all.count == 64)
        // Every 4th sentence (16, of 5–53 tokens: all rows but one padded) keeps the debug-build test short.
        let picked = Array(stride(from: 0, to: all.count, by: 4))
        let (expected, _) = try loadExpected("minilm")
        let reference = try expected.floats("embeddings_mean"), hidden = model.encoder.config.hiddenSize
        let embeddings = try model.embed(picked.map { all[$0] }, pooling: .mean, context: ComputeContext())
        let r = expectClose(embeddings.scalars, picked.flatMap { reference[$0 * hidden ..< ($0 + 1) * hidden] },
                            atol: 1e-4, rtol: 0, "MiniLM text → mean embeddings")
        print("MiniLM text → mean embeddings: \(r)")
    }

    /// The real all-MiniLM-L6-v2 (fetched by scripts/fetch-model.sh) on 64 real sentences: sentence
    /// embeddings (mean pooling, raw and L2-normalised) and token states within 1e-4 abs (the bar).
    @Test(.enabled(if: fetchedModelURL("all-MiniLM-L6-v2") != nil, "run scripts/fetch-model.sh first"))
    func miniLMMatchesTransformers() throws {
        let encoder = try BertEncoder(modelFolder: try #require(fetchedModelURL("all-MiniLM-L6-v2")))
        let (expected, input) = try loadExpected("minilm")
        let out = try encoder(input, context: ComputeContext())
        let mean = expectClose(out.sentenceEmbeddings(.mean).scalars, try expected.floats("embeddings_mean"),
                               atol: 1e-4, rtol: 0, "MiniLM mean embeddings")
        let normalized = expectClose(out.sentenceEmbeddings(.mean, normalize: true).scalars,
                                     try expected.floats("embeddings_normalized"), atol: 1e-4, rtol: 0,
                                     "MiniLM normalised embeddings")
        // token_states_first3: sentences 0-2 cut to their longest length (21), padding rows included.
        let cut = try expected.info("token_states_first3").shape[1]
        let hidden = encoder.config.hiddenSize, seq = input.sequenceLength
        let states = out.lastHiddenState.scalars
        var first3: [Float] = []
        for b in 0..<3 { first3 += states[(b * seq * hidden)..<((b * seq + cut) * hidden)] }
        let tokens = expectClose(first3, try expected.floats("token_states_first3"), atol: 1e-4, rtol: 0,
                                 "MiniLM token states")
        let pooler = expectClose(try #require(out.pooled).scalars, try expected.floats("pooler_output"),
                                 atol: 1e-4, rtol: 0, "MiniLM pooler")
        print("MiniLM mean: \(mean)\nMiniLM normalized: \(normalized)\nMiniLM tokens: \(tokens)\nMiniLM pooler: \(pooler)")
    }

    /// Ids, type ids and lengths outside the model's tables are thrown errors, never out-of-bounds reads.
    @Test func badInputThrows() throws {
        let encoder = try BertEncoder(modelFolder: fixtureURL("tiny-bert"))
        let context = ComputeContext(threads: 1)
        #expect(throws: EncoderError.tokenIdOutOfRange(id: 100, batch: 0, position: 1, vocabSize: 100)) {
            try encoder(try EncoderInput(ids: [[2, 100, 3]]), context: context)
        }
        #expect(throws: EncoderError.tokenIdOutOfRange(id: -1, batch: 1, position: 0, vocabSize: 100)) {
            try encoder(try EncoderInput(ids: [[2, 3], [-1]]), context: context)
        }
        #expect(throws: EncoderError.tokenTypeOutOfRange(id: 2, batch: 0, position: 2, typeVocabSize: 2)) {
            try encoder(try EncoderInput(ids: [[2, 5, 3]], tokenTypeIds: [[0, 0, 2]]), context: context)
        }
        #expect(throws: EncoderError.sequenceTooLong(length: 17, maximum: 16)) {
            try encoder(try EncoderInput(ids: [Array(repeating: 5, count: 17)]), context: context)
        }
        #expect(throws: EncoderError.self) {
            try EncoderInput(batchSize: 2, sequenceLength: 3, inputIds: [1, 2, 3])
        }
        #expect(throws: EncoderError.self) {
            try EncoderInput(batchSize: 1, sequenceLength: 2, inputIds: [1, 2], attentionMask: [1, 2])
        }
    }
}

@Suite struct EncoderEmptyInputTests {
    /// A sequence of length 0 is an error (pooling would otherwise read a token that does not exist).
    @Test func emptySequenceThrows() throws {
        let encoder = try BertEncoder(modelFolder: fixtureURL("tiny-bert"))
        #expect(throws: EncoderError.self) {
            try encoder(try EncoderInput(ids: [[]]), context: ComputeContext(threads: 1))
        }
    }
}

// Reliability: one loaded model (tiny-bert fixture + the seq_bn adapter "a" with its head) serves many
// concurrent requests. Every task has its own ComputeContext; the model is shared read-only. Results must be
// bitwise equal to a sequential run of the same requests (docs/reliability.md, "Concurrency"). Also run under
// ThreadSanitizer by scripts/sanitize.sh.
import AdapterCore
@testable import AdapterDrop
import Foundation
import TestSupport
import Testing

/// One request: an input batch and the AdapterDrop layers to skip.
private struct ServingRequest: Sendable {
    var input: EncoderInput
    var skipLayers: Set<Int>
}

/// The outputs compared bitwise.
private struct ServingResult: Sendable, Equatable {
    var hidden: [UInt32]
    var logits: [UInt32]
}

/// Distinct requests: batch 1–3, sequence 1–16 (the fixture's max_position_embeddings), random ids < 100,
/// a padded tail in some rows, every skip-layer variant.
private func makeRequests(count: Int) throws -> [ServingRequest] {
    var rng = TestRNG(seed: 0x5EED_C0DE)
    let skips: [Set<Int>] = [[], [0], [1], [0, 1]]
    return try (0..<count).map { i in
        let batch = Int(rng.next() % 3) + 1
        let seq = Int(rng.next() % 16) + 1
        let ids = (0..<batch * seq).map { _ in Int(rng.next() % 100) }
        var mask = [Int](repeating: 1, count: batch * seq)
        for b in 0..<batch {
            let padded = Int(rng.next() % UInt64(seq))  // 0..<seq padded positions, at least one real token
            for s in (seq - padded)..<seq { mask[b * seq + s] = 0 }
        }
        let types = (0..<batch * seq).map { _ in Int(rng.next() % 2) }
        return ServingRequest(input: try EncoderInput(batchSize: batch, sequenceLength: seq, inputIds: ids,
                                                      attentionMask: mask, tokenTypeIds: types),
                              skipLayers: skips[i % skips.count])
    }
}

private func serve(_ model: AdapterModel, _ request: ServingRequest, _ context: ComputeContext) throws -> ServingResult {
    let out = try model(request.input, setup: .adapter("a"), skipLayers: request.skipLayers, context: context)
    return ServingResult(hidden: out.encoder.lastHiddenState.scalars.map(\.bitPattern),
                         logits: (out[head: "a"]?.scalars ?? []).map(\.bitPattern))
}

@Suite("Reliability: concurrent serving")
struct ReliabilityConcurrencyTests {
    /// 8 tasks × 100 requests against one shared model; each task has its own ComputeContext (1 or 2 threads,
    /// alternating, since results must not depend on the thread count either). Bitwise equal to sequential.
    @Test func eightTasksTimesHundredRequestsMatchSequential() async throws {
        let model = try adapterFixtureModel("seq_bn", adapters: ["a"])
        #expect(model.heads["a"] != nil, "the fixture adapter comes with its head")
        let requests = try makeRequests(count: 37)  // prime, so tasks hit requests in different orders
        let sequentialContext = ComputeContext(threads: 1)
        let expected = try requests.map { try serve(model, $0, sequentialContext) }
        #expect(expected.allSatisfy { !$0.logits.isEmpty && !$0.hidden.isEmpty })
        // The requests differ from each other, so a mix-up between tasks would be seen.
        #expect(Set(expected.map(\.hidden)).count == requests.count)

        let tasks = 8, perTask = 100
        let mismatches = try await withThrowingTaskGroup(of: [String].self) { group in
            for t in 0..<tasks {
                group.addTask {
                    let context = ComputeContext(threads: t % 2 + 1)
                    var bad: [String] = []
                    for r in 0..<perTask {
                        let index = (t * 11 + r * 7) % requests.count
                        let got = try serve(model, requests[index], context)
                        if got != expected[index] { bad.append("task \(t) request \(r) (input \(index))") }
                    }
                    return bad
                }
            }
            var all: [String] = []
            for try await bad in group { all += bad }
            return all
        }
        #expect(mismatches.isEmpty, "\(mismatches.count) of \(tasks * perTask) results differ, first: \(mismatches.prefix(3))")
    }

    /// One tokenizer shared by 8 tasks: encodings equal the sequential ones.
    @Test func sharedTokenizerIsDeterministicAcrossTasks() async throws {
        let tokenizer = try SubwordTokenizer.bertWordPiece(vocabularyFile: fixtureURL("tokenizer/bert/vocab.txt"))
        let texts = (0..<50).map { "Sentence \($0): héllo, wörld! can't stop 東京 \(String(repeating: "ab", count: $0 % 7))" }
        let expected = texts.map { tokenizer.encode($0).ids }
        let bad = await withTaskGroup(of: Int.self) { group in
            for t in 0..<8 {
                group.addTask {
                    var n = 0
                    for r in 0..<100 where tokenizer.encode(texts[(t + r) % texts.count]).ids != expected[(t + r) % texts.count] { n += 1 }
                    return n
                }
            }
            return await group.reduce(0, +)
        }
        #expect(bad == 0)
    }
}

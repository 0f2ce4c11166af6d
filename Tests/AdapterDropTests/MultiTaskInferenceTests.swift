// Multi-task inference: the encoder's buffered adapter path (RowGroupAdapterPlan) against the general
// CompositionHook path (bitwise), mixed-task batches against each example run alone, the per-task API, and
// AdapterDrop for AdapterFusion (skipped fusion layers equal the base model's layers bitwise).
import AdapterCore
@testable import AdapterDrop
import Foundation
import TestSupport
import Testing

@Suite struct MultiTaskInferenceTests {
    /// Runs both paths and requires bitwise-equal logits, last hidden state and every layer's hidden state.
    /// (Same kernels on the same rows; the C kernels' per-element arithmetic does not depend on tiling or row
    /// count, so nothing but a wrong row, buffer or step can make them differ.)
    func expectPathsAgree(_ model: AdapterModel, _ input: EncoderInput, _ setup: AdapterComposition, heads: [String]? = nil,
                          skip: Set<Int>, threads: Int, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let context = ComputeContext(threads: threads)
        #expect(RowGroupAdapterPlan.make(setup: setup, adapters: model.adapters, batch: input.batchSize, skipLayers: skip) != nil,
                "\(setup) should take the buffered path", sourceLocation: sourceLocation)
        let fast = try model.run(input, setup: setup, heads: heads, skipLayers: skip, outputFusionAttentions: false,
                                 keepHiddenStates: true, buffered: true, context: context)
        let slow = try model.run(input, setup: setup, heads: heads, skipLayers: skip, outputFusionAttentions: false,
                                 keepHiddenStates: true, buffered: false, context: context)
        let what = "\(setup) skip \(skip.sorted()) t\(threads)"
        #expect(fast.heads.map(\.name) == slow.heads.map(\.name), sourceLocation: sourceLocation)
        #expect(fast.heads.map(\.rows) == slow.heads.map(\.rows), sourceLocation: sourceLocation)
        for (f, s) in zip(fast.heads, slow.heads) {
            expectBitwiseEqual(f.logits.scalars, s.logits.scalars, "\(what) head \(f.name)", sourceLocation: sourceLocation)
        }
        #expect(fast.encoder.lastHiddenState.shape == slow.encoder.lastHiddenState.shape, sourceLocation: sourceLocation)
        expectBitwiseEqual(fast.encoder.lastHiddenState.scalars, slow.encoder.lastHiddenState.scalars, "\(what) last",
                           sourceLocation: sourceLocation)
        #expect(fast.encoder.hiddenStates.count == slow.encoder.hiddenStates.count, sourceLocation: sourceLocation)
        for (l, (f, s)) in zip(fast.encoder.hiddenStates, slow.encoder.hiddenStates).enumerated() {
            #expect(f.shape == s.shape, "\(what) state \(l)", sourceLocation: sourceLocation)
            expectBitwiseEqual(f.scalars, s.scalars, "\(what) state \(l)", sourceLocation: sourceLocation)
        }
        #expect(fast.encoder.pooled?.scalars == slow.encoder.pooled?.scalars, sourceLocation: sourceLocation)
    }

    /// Single adapter, Parallel and BatchSplit over seq_bn and double_seq_bn (Houlsby: adapters at both
    /// locations, no original LayerNorm before) adapters, every skip set of the 2-layer model, 1 and 2 threads.
    @Test(arguments: ["parallel", "parallel_double_seq_bn"])
    func bufferedPathEqualsHookPath(_ name: String) throws {
        let model = try adapterFixtureModel(name, adapters: ["p1", "p2"])
        let (_, input) = try adapterFixture(name)
        let setups: [AdapterComposition] = [.adapter("p1"), .stack([.adapter("p2")]), .parallel([.adapter("p1"), .adapter("p2")]),
                                            .parallel([.adapter("p2"), .adapter("p1"), .adapter("p2")]),
                                            .batchSplit([.adapter("p1"), .adapter("p2")], batchSizes: [1, 2])]
        for threads in [1, 2] {
            for setup in setups {
                for skip: Set<Int> in [[], [0], [1], [0, 1]] {
                    try expectPathsAgree(model, input, setup, skip: skip, threads: threads)
                }
            }
        }
    }

    /// Adapters the buffered steps do not cover (parallel architecture, learned/channel scaling, adapter
    /// LayerNorms and gating, post_add, leave_out, no original_ln_after) run through their own forward steps on
    /// the group's rows inside the buffered path: same values as the hook path.
    @Test(arguments: ["par", "scaled_par", "channel", "lns", "post_add", "leave0", "no_ln_after", "legacy"])
    func bufferedPathCoversEveryVariant(_ name: String) throws {
        let model = try adapterFixtureModel("bn_variants", adapters: [name])
        let (expected, input) = try adapterFixture("bn_variants")
        for skip: Set<Int> in [[], [0]] { try expectPathsAgree(model, input, .adapter(name), skip: skip, threads: 2) }
        // and still the reference's values
        let out = try model(input, setup: .adapter(name), context: ComputeContext(threads: 1))
        try expectParity(try #require(out[head: name]), expected, "\(name).logits", "bn_variants buffered")
    }

    /// Setups the plan does not take: nested blocks, Fuse, Stack of two, Parallel over adapters with different
    /// sites or pre/post settings (the reference runs the first child's pre_forward for all channels there).
    @Test func planDeclinesOtherSetups() throws {
        let model = try adapterFixtureModel("bn_variants", adapters: ["par", "leave0", "channel"])
        let adapters = model.adapters
        func plan(_ text: String) throws -> RowGroupAdapterPlan? {
            RowGroupAdapterPlan.make(setup: try #require(try AdapterComposition.parse(text)), adapters: adapters, batch: 2, skipLayers: [])
        }
        #expect(try plan("Stack(par,channel)") == nil)
        #expect(try plan("Parallel(par,channel)") == nil)     // is_parallel differs
        #expect(try plan("Parallel(channel,leave0)") == nil)  // sites differ
        #expect(try plan("Parallel(Stack(channel),leave0)") == nil)
        #expect(try plan("Parallel(channel,channel)") != nil)
        #expect(try plan("BatchSplit(channel,channel,batch_sizes=[1,1])") != nil)
        #expect(try plan("BatchSplit(channel,channel,batch_sizes=[1,2])") == nil)  // does not sum to the batch
    }

    /// Every head of a Parallel run reads its own task's rows: the per-task API gives the same logits as one
    /// single-adapter run per task (bitwise: the replicated rows are computed like the single run's rows).
    @Test func predictTasksEqualsOneRunPerTask() throws {
        let model = try adapterFixtureModel("parallel", adapters: ["p1", "p2"])
        let (_, input) = try adapterFixture("parallel")
        let context = ComputeContext(threads: 2)
        for n in 0...2 {
            let result = try model.predictTasks(input, tasks: ["p2", "p1"], droppedLayers: n, context: context)
            #expect(result.heads.map(\.name) == ["p2", "p1"])
            for head in result.heads {
                let alone = try model.predict(input, setup: .adapter(head.name), skipLayers: Set(0..<n), context: context)
                #expect(head == alone.heads[0], "task \(head.name) n \(n)")
            }
        }
        #expect(throws: MultiTaskError.noTasks) { try model.predictTasks(input, tasks: [], droppedLayers: 0, context: context) }
        #expect(throws: MultiTaskError.droppedLayersOutOfRange(droppedLayers: 3, layers: 2)) {
            try model.predictTasks(input, tasks: ["p1"], droppedLayers: 3, context: context)
        }
        #expect(throws: AdapterError.unknownAdapter("x")) { try model.predictTasks(input, tasks: ["p1", "x"], droppedLayers: 0, context: context) }
    }

    /// One example of a batch as its own batch of one, at the batch's padded length or trimmed to its tokens.
    func example(_ input: EncoderInput, _ i: Int, trimmed: Bool) throws -> EncoderInput {
        let seq = input.sequenceLength
        let mask = Array(input.attentionMask[i * seq ..< (i + 1) * seq])
        let length = trimmed ? (mask.lastIndex(of: 1).map { $0 + 1 } ?? 1) : seq
        return try EncoderInput(batchSize: 1, sequenceLength: length, inputIds: Array(input.inputIds[i * seq ..< i * seq + length]),
                                attentionMask: Array(mask[0..<length]),
                                tokenTypeIds: Array(input.tokenTypeIds[i * seq ..< i * seq + length]))
    }

    /// A mixed-task batch equals running each example alone with its own adapter and head: bitwise at the same
    /// padded length, within 1e-5 abs + 1e-5 rel when the example runs unpadded (softmax and LayerNorm sum in
    /// a different order over a different key count; docs/numerics.md "Multi-task inference").
    @Test(arguments: ["parallel", "parallel_double_seq_bn"])
    func mixedTaskBatchEqualsExamplesAlone(_ name: String) throws {
        let model = try adapterFixtureModel(name, adapters: ["p1", "p2"])
        let (_, input) = try adapterFixture(name)
        #expect(input.attentionMask.contains(0), "the fixture batch should have padding")
        for threads in [1, 2] {
            let context = ComputeContext(threads: threads)
            for tasks in [["p2", "p1", "p2"], ["p1", "p1", "p1"], ["p1", "p2", "p2"]] {
                for n in 0...2 {
                    let mixed = try model.mixedTaskLogits(input, tasks: tasks, droppedLayers: n, context: context)
                    #expect(mixed.count == 3)
                    for (i, task) in tasks.enumerated() {
                        let padded = try model(try example(input, i, trimmed: false), setup: .adapter(task), heads: [task],
                                               skipLayers: Set(0..<n), context: context)
                        let expected = try #require(padded[head: task])
                        #expect(mixed[i].shape == Array(expected.shape.dropFirst()))
                        expectBitwiseEqual(mixed[i].scalars, expected.scalars, "\(tasks) n \(n) example \(i) t\(threads)")
                        let trimmed = try model(try example(input, i, trimmed: true), setup: .adapter(task), heads: [task],
                                                skipLayers: Set(0..<n), context: context)
                        let r = expectClose(mixed[i].scalars, try #require(trimmed[head: task]).scalars.map(Double.init),
                                            atol: 1e-5, rtol: 1e-5, "\(tasks) n \(n) example \(i) unpadded")
                        if threads == 1 && n == 0 { print("mixed-task vs unpadded alone \(name) \(tasks) example \(i): \(r)") }
                    }
                }
            }
        }
    }

    /// Labels and errors of the mixed-task API; the text variant tokenizes like the tokenizer does.
    @Test func predictMixedLabelsAndErrors() throws {
        let model = try adapterFixtureModel("parallel", adapters: ["p1", "p2"])
        let (_, input) = try adapterFixture("parallel")
        let context = ComputeContext(threads: 1)
        let predictions = try model.predictMixed(input, tasks: ["p2", "p1", "p2"], droppedLayers: 1, context: context)
        let logits = try model.mixedTaskLogits(input, tasks: ["p2", "p1", "p2"], droppedLayers: 1, context: context)
        for (p, l) in zip(predictions, logits) {
            #expect(p.logits == l.scalars)
            let best = l.scalars.indices.max { l.scalars[$0] < l.scalars[$1] }!
            #expect(p.label == model.heads[p.task]!.config.id2label?[best] ?? String(best))
        }
        #expect(predictions.map(\.task) == ["p2", "p1", "p2"])
        #expect(throws: MultiTaskError.taskCount(tasks: 2, examples: 3)) {
            try model.mixedTaskLogits(input, tasks: ["p1", "p2"], droppedLayers: 0, context: context)
        }
        #expect(throws: MultiTaskError.droppedLayersOutOfRange(droppedLayers: -1, layers: 2)) {
            try model.mixedTaskLogits(input, tasks: ["p1", "p1", "p1"], droppedLayers: -1, context: context)
        }
        var headless = model
        try headless.removeHead("p2")
        #expect(throws: MultiTaskError.missingHead(task: "p2")) {
            try headless.mixedTaskLogits(input, tasks: ["p1", "p2", "p1"], droppedLayers: 0, context: context)
        }
        #expect(try model.mixedTaskLogits(try EncoderInput(batchSize: 0, sequenceLength: 4, inputIds: []), tasks: [],
                                          droppedLayers: 0, context: context).isEmpty)
    }

    /// AdapterDrop for AdapterFusion: with the lowest n layers skipped, those layers run neither the fusion nor its
    /// adapters (their outputs equal the base model's bitwise, no fusion attentions are recorded there) and the
    /// layers above still fuse; with every layer skipped the result is the base model's.
    @Test func fusionSkipsLowerLayers() throws {
        var model = try adapterFixtureModel("fusion", adapters: ["f1", "f2", "f3"])
        try model.loadFusion(from: fixtureURL("adapters/fusion/fusion"))
        try model.loadHead(from: fixtureURL("adapters/fusion/head"))
        let (expected, input) = try adapterFixture("fusion")
        let context = ComputeContext(threads: 2)
        let setup = try #require(try AdapterComposition.parse("Fuse(f1,f2,f3)"))
        let base = try model.encoder(input, keepHiddenStates: true, context: context)
        let full = try model(input, setup: setup, heads: ["fusion"], outputFusionAttentions: true, keepHiddenStates: true, context: context)
        let dropped = try model(input, setup: setup, heads: ["fusion"], skipLayers: [0], outputFusionAttentions: true,
                                keepHiddenStates: true, context: context)
        expectBitwiseEqual(dropped.encoder.hiddenStates[1].scalars, base.hiddenStates[1].scalars, "layer 0 skipped = base")
        #expect(full.encoder.hiddenStates[1].scalars != base.hiddenStates[1].scalars, "layer 0 fuses without drop")
        #expect(dropped.encoder.hiddenStates[2].scalars != base.hiddenStates[2].scalars, "layer 1 still fuses")
        #expect(Set(try #require(dropped.fusionAttentions["f1,f2,f3"]).keys.map(\.layer)) == [1])
        try expectParity(try #require(dropped[head: "fusion"]), expected, "skip_0.logits", "fusion drop")
        let all = try model(input, setup: setup, heads: ["fusion"], skipLayers: [0, 1], outputFusionAttentions: true, context: context)
        expectBitwiseEqual(all.encoder.lastHiddenState.scalars, base.lastHiddenState.scalars, "all skipped = base")
        #expect(all.fusionAttentions.isEmpty)
        // The pruned fusion drops the same way.
        let pruned = try #require(try AdapterComposition.parse("Fuse(f1,f2,name=\"f1,f2,f3\")"))
        let prunedAll = try model(input, setup: pruned, heads: ["fusion"], skipLayers: [0, 1], context: context)
        expectBitwiseEqual(prunedAll.encoder.lastHiddenState.scalars, base.lastHiddenState.scalars, "pruned, all skipped = base")
    }
}

// Tier D: adapters, heads, Parallel/Stack composition and AdapterFusion against adapters 1.3.0 fixtures
// (Tests/Fixtures/adapters, docs/fixtures.md "Adapter fixtures"). Tolerance 1e-5 abs + 1e-5 rel (the issue's
// bar); measured maxima are printed and recorded in docs/numerics.md ("Adapters").
import AdapterCore
@testable import AdapterDrop
import Foundation
import TestSupport
import Testing

/// The fixture's expected tensors and its input batch.
func adapterFixture(_ folder: String) throws -> (SafetensorsFile, EncoderInput) {
    let file = try SafetensorsFile(url: fixtureURL("adapters/\(folder)/expected.safetensors"))
    let shape = try file.info("input_ids").shape
    let input = try EncoderInput(batchSize: shape[0], sequenceLength: shape[1], inputIds: try file.integers("input_ids"),
                                 attentionMask: try file.integers("attention_mask"),
                                 tokenTypeIds: try file.integers("token_type_ids"))
    return (file, input)
}

/// A model over the tiny base model with the named adapter folders loaded (with their heads).
func adapterFixtureModel(base: String = "tiny-bert", _ case_: String, adapters: [String]) throws -> AdapterModel {
    var model = AdapterModel(encoder: try BertEncoder(modelFolder: fixtureURL(base)), modelName: base)
    for a in adapters { try model.loadAdapter(from: fixtureURL("adapters/\(case_)/\(a)")) }
    return model
}

/// Compares and prints (the printed maxima go to docs/numerics.md).
@discardableResult
func expectParity(_ actual: Tensor, _ file: SafetensorsFile, _ key: String, _ what: String,
                  sourceLocation: SourceLocation = #_sourceLocation) throws -> CloseReport {
    let expected = try file.floats(key)
    #expect(actual.count == expected.count, "\(what) \(key): \(actual.shape)", sourceLocation: sourceLocation)
    let r = expectClose(actual.scalars, expected, atol: 1e-5, rtol: 1e-5, "\(what) \(key)", sourceLocation: sourceLocation)
    print("adapter parity \(what) \(key): \(r)")
    return r
}

/// The skip-layer variants in the fixtures.
let skipVariants: [(prefix: String, layers: Set<Int>)] = [("", []), ("skip_0.", [0]), ("skip_1.", [1]), ("skip_all.", [0, 1])]

@Suite struct AdapterParityTests {
    /// seq_bn (Pfeiffer), double_seq_bn (Houlsby) on tiny BERT and seq_bn on tiny RoBERTa, each with its
    /// classification head, without and with AdapterDrop (skip_layers [0], [1], [0, 1]); 1 and 2 threads.
    @Test(arguments: [("seq_bn", "a", "tiny-bert"), ("double_seq_bn", "b", "tiny-bert"), ("roberta_seq_bn", "r", "tiny-roberta")])
    func singleAdapterMatchesReference(_ c: (String, String, String)) throws {
        let (name, adapter, base) = c
        let model = try adapterFixtureModel(base: base, name, adapters: [adapter])
        let (expected, input) = try adapterFixture(name)
        for threads in [1, 2] {
            let context = ComputeContext(threads: threads)
            for (prefix, skip) in skipVariants {
                let out = try model(input, setup: .adapter(adapter), skipLayers: skip, context: context)
                try expectParity(try #require(out[head: adapter]), expected, "\(prefix)logits", "\(name) t\(threads)")
                try expectParity(out.encoder.lastHiddenState, expected, "\(prefix)last_hidden_state", "\(name) t\(threads)")
            }
            let base = try model(input, setup: nil, heads: [adapter], context: context)
            try expectParity(try #require(base[head: adapter]), expected, "base.logits", "\(name) t\(threads)")
        }
    }

    /// Skipping every layer is bit-identical to no adapter (the reference's own check).
    @Test func skippingAllLayersEqualsBaseModel() throws {
        let model = try adapterFixtureModel("seq_bn", adapters: ["a"])
        let (_, input) = try adapterFixture("seq_bn")
        let context = ComputeContext(threads: 1)
        let skipped = try model(input, setup: .adapter("a"), skipLayers: [0, 1], context: context)
        let base = try model(input, setup: nil, heads: ["a"], context: context)
        expectBitwiseEqual(skipped.encoder.lastHiddenState.scalars, base.encoder.lastHiddenState.scalars, "skip all vs base")
        let plain = try model.encoder(input, context: context)
        expectBitwiseEqual(base.encoder.lastHiddenState.scalars, plain.lastHiddenState.scalars, "base vs encoder")
    }

    /// Parallel("p1","p2") with seq_bn and with double_seq_bn adapters, without and with skip_layers [0]:
    /// each head's logits and its rows of the replicated encoder output.
    @Test(arguments: ["parallel", "parallel_double_seq_bn"])
    func parallelMatchesReference(_ name: String) throws {
        let model = try adapterFixtureModel(name, adapters: ["p1", "p2"])
        let (expected, input) = try adapterFixture(name)
        let setup = try #require(try AdapterComposition.parse("Parallel(p1,p2)"))
        for (prefix, skip) in [("", Set<Int>()), ("skip_0.", [0])] {
            let out = try model(input, setup: setup, skipLayers: skip, context: ComputeContext(threads: 2))
            #expect(out.encoder.lastHiddenState.shape == [6, 12, 32])
            #expect(out.heads.map(\.name) == ["p1", "p2"])
            let all = out.encoder.lastHiddenState.reshaped([6, 12 * 32])
            for (i, head) in ["p1", "p2"].enumerated() {
                try expectParity(try #require(out[head: head]), expected, "\(prefix)\(head).logits", name)
                try expectParity(all.slice(rows: i * 3 ..< (i + 1) * 3), expected, "\(prefix)\(head).last_hidden_state", name)
            }
        }
    }

    /// Stack("s1","s2") with head s2, without and with skip_layers [0].
    @Test func stackMatchesReference() throws {
        var model = try adapterFixtureModel("stack", adapters: ["s1", "s2"])
        let (expected, input) = try adapterFixture("stack")
        let setup = try #require(try AdapterComposition.parse("Stack(s1,s2)"))
        #expect(model.defaultHeads(for: setup) == ["s2"])
        for (prefix, skip) in [("", Set<Int>()), ("skip_0.", [0])] {
            let out = try model(input, setup: setup, skipLayers: skip, context: ComputeContext(threads: 1))
            try expectParity(try #require(out[head: "s2"]), expected, "\(prefix)logits", "stack")
            try expectParity(out.encoder.lastHiddenState, expected, "\(prefix)last_hidden_state", "stack")
        }
        try model.removeAdapter("s1")
        #expect(throws: AdapterError.unknownAdapter("s1")) { try model(input, setup: setup, context: ComputeContext(threads: 1)) }
    }

    /// Fuse("f1","f2","f3") with head `fusion`: logits, states and the fusion attentions per layer; with
    /// skip_layers [0]; and the pruning path Fuse("f1","f2", name="f1,f2,f3").
    @Test func fusionMatchesReference() throws {
        var model = try adapterFixtureModel("fusion", adapters: ["f1", "f2", "f3"])
        try model.loadFusion(from: fixtureURL("adapters/fusion/fusion"))
        try model.loadHead(from: fixtureURL("adapters/fusion/head"))
        let (expected, input) = try adapterFixture("fusion")
        let context = ComputeContext(threads: 2)
        let cases: [(String, String, Set<Int>, [Int])] = [
            ("", "Fuse(f1,f2,f3)", [], [0, 1]), ("skip_0.", "Fuse(f1,f2,f3)", [0], [1]),
            ("pruned_f1_f2.", "Fuse(f1,f2,name=\"f1,f2,f3\")", [], [0, 1]),
        ]
        for (prefix, text, skip, layers) in cases {
            let setup = try #require(try AdapterComposition.parse(text))
            let out = try model(input, setup: setup, heads: ["fusion"], skipLayers: skip, outputFusionAttentions: true, context: context)
            try expectParity(try #require(out[head: "fusion"]), expected, "\(prefix)logits", "fusion")
            try expectParity(out.encoder.lastHiddenState, expected, "\(prefix)last_hidden_state", "fusion")
            let attentions = try #require(out.fusionAttentions["f1,f2,f3"])
            #expect(Set(attentions.keys.map(\.layer)) == Set(layers))
            for l in layers {
                let p = try #require(attentions[AdapterSite(layer: l, location: .output)])
                try expectParity(p, expected, "\(prefix)fusion_attentions.layer\(l)", "fusion")
            }
        }
    }
}

@Suite struct AdapterConfigParityTests {
    /// BnConfig variants: par_bn (scaling 4), scaled_parallel-style learned scaling with leakyrelu, channel
    /// scaling with exact gelu, ln_before + ln_after + gating + residual after LN + per-layer reduction
    /// factor (Houlsby placement), post_add with adapter_residual_before_ln, leave_out [0], no
    /// original_ln_after with constant scaling 0.5, and a legacy file (no "version", "gelu" meaning gelu_new,
    /// no key prefix, v1 collection name). The ln_before adapter was converted from the pickle with
    /// scripts/convert_bin_to_safetensors.py (adapters 1.3.0 cannot save it as safetensors).
    @Test(arguments: ["par", "scaled_par", "channel", "lns", "post_add", "leave0", "no_ln_after", "legacy"])
    func variantMatchesReference(_ name: String) throws {
        let model = try adapterFixtureModel("bn_variants", adapters: [name])
        let (expected, input) = try adapterFixture("bn_variants")
        let out = try model(input, setup: .adapter(name), context: ComputeContext(threads: 2))
        try expectParity(try #require(out[head: name]), expected, "\(name).logits", "bn_variants")
        try expectParity(out.encoder.lastHiddenState, expected, "\(name).last_hidden_state", "bn_variants")
    }

    /// The legacy file's config was renamed on load and its keys mapped.
    @Test func legacyConfigIsRenamed() throws {
        let model = try adapterFixtureModel("bn_variants", adapters: ["legacy", "lns"])
        let legacy = try #require(model.adapters["legacy"])
        #expect(legacy.config.nonLinearity == "gelu_new")
        #expect(legacy.config.activation == .geluTanh)
        #expect(legacy.weights.count == 2)
        let lns = try #require(model.adapters["lns"])
        #expect(lns.weights[AdapterSite(layer: 0, location: .output)]?.bottleneckSize == 8)
        #expect(lns.weights[AdapterSite(layer: 1, location: .attentionOutput)]?.bottleneckSize == 4)
        let leave0 = try adapterFixtureModel("bn_variants", adapters: ["leave0"]).adapters["leave0"]!
        #expect(leave0.weights.keys.map(\.layer) == [1])
    }

    /// BatchSplit(c1,c2,batch_sizes=[1,2]) (one head per child), Average(c1,c2,weights=[0.3,0.9]),
    /// Stack(Fuse(c1,c2),c3) with a fusion using query_before_ln, residual_before and value after softmax
    /// (also with skip_layers [0]), the "static" fusion preset (no value matrix) as Fuse(c2,c3), and
    /// Parallel(Stack(c1,c3),c2).
    @Test func compositionsMatchReference() throws {
        var model = try adapterFixtureModel("compositions", adapters: ["c1", "c2", "c3"])
        try model.loadFusion(from: fixtureURL("adapters/compositions/fusion"))
        try model.loadFusion(from: fixtureURL("adapters/compositions/fusion_static"))
        let (expected, input) = try adapterFixture("compositions")
        let context = ComputeContext(threads: 2)
        func setup(_ text: String) throws -> AdapterComposition { try #require(try AdapterComposition.parse(text)) }

        var out = try model(input, setup: try setup("BatchSplit(c1,c2,batch_sizes=[1,2])"), context: context)
        #expect(out.heads.map(\.name) == ["c1", "c2"])
        #expect(out.heads.map(\.rows) == [0..<1, 1..<3])
        try expectParity(try #require(out[head: "c1"]), expected, "batch_split.c1.logits", "compositions")
        try expectParity(try #require(out[head: "c2"]), expected, "batch_split.c2.logits", "compositions")
        try expectParity(out.encoder.lastHiddenState, expected, "batch_split.last_hidden_state", "compositions")

        out = try model(input, setup: try setup("Average(c1,c2,weights=[0.3,0.9])"), heads: ["c2"], context: context)
        try expectParity(try #require(out[head: "c2"]), expected, "average.logits", "compositions")
        try expectParity(out.encoder.lastHiddenState, expected, "average.last_hidden_state", "compositions")

        for (prefix, skip) in [("", Set<Int>()), ("skip_0.", [0])] {
            out = try model(input, setup: try setup("Stack(Fuse(c1,c2),c3)"), skipLayers: skip, context: context)
            #expect(out.heads.map(\.name) == ["c3"])
            try expectParity(try #require(out[head: "c3"]), expected, "\(prefix)stack_fuse.logits", "compositions")
            try expectParity(out.encoder.lastHiddenState, expected, "\(prefix)stack_fuse.last_hidden_state", "compositions")
        }

        out = try model(input, setup: try setup("Fuse(c2,c3)"), heads: ["c3"], context: context)
        try expectParity(try #require(out[head: "c3"]), expected, "static_fuse.logits", "compositions")
        try expectParity(out.encoder.lastHiddenState, expected, "static_fuse.last_hidden_state", "compositions")

        out = try model(input, setup: try setup("Parallel(Stack(c1,c3),c2)"), context: context)
        #expect(out.heads.map(\.name) == ["c3", "c2"])
        try expectParity(try #require(out[head: "c3"]), expected, "parallel_stack.c3.logits", "compositions")
        try expectParity(try #require(out[head: "c2"]), expected, "parallel_stack.c2.logits", "compositions")
        try expectParity(out.encoder.lastHiddenState, expected, "parallel_stack.last_hidden_state", "compositions")
    }

    /// Tagging (2 layers, relu; every token), multi-label (1 layer) and regression (1 label, 3 layers, exact
    /// gelu, pooler input) heads.
    @Test func headsMatchReference() throws {
        var model = try adapterFixtureModel("heads", adapters: ["h"])
        for h in ["tag", "ml", "reg"] { try model.loadHead(from: fixtureURL("adapters/heads/\(h)")) }
        let (expected, input) = try adapterFixture("heads")
        let out = try model(input, setup: .adapter("h"), heads: ["tag", "ml", "reg"], context: ComputeContext(threads: 1))
        #expect(try #require(out[head: "tag"]).shape == [3, 12, 5])
        #expect(try #require(out[head: "reg"]).shape == [3, 1])
        for h in ["tag", "ml", "reg"] { try expectParity(try #require(out[head: h]), expected, "\(h).logits", "heads") }
        try expectParity(out.encoder.lastHiddenState, expected, "last_hidden_state", "heads")
        #expect(model.heads["tag"]?.config.id2label?[4] == "LABEL_4")
    }
}

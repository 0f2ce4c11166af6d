// Fusion pruning (AdapterDrop paper Section 5.2) on the fusion fixture (Tests/Fixtures/adapters/fusion,
// docs/fixtures.md): activations against the fixture's attentions averaged by hand, and the pruned fusion
// against the reference's `Fuse("f1","f2", name="f1,f2,f3")` run.
import AdapterCore
@testable import AdapterDrop
import Foundation
import TestSupport
import Testing

/// The fusion fixture's model: f1, f2, f3, the fusion `f1,f2,f3` and the head `fusion`.
func fusionFixtureModel() throws -> AdapterModel {
    var model = try adapterFixtureModel("fusion", adapters: ["f1", "f2", "f3"])
    try model.loadFusion(from: fixtureURL("adapters/fusion/fusion"))
    try model.loadHead(from: fixtureURL("adapters/fusion/head"))
    return model
}

@Suite struct PruningTests {
    /// The collected means equal the fixture's `fusion_attentions.layer{0,1}` [3, 12, 3] averaged in Double over
    /// tokens with mask 1 (per layer and over both layers). Tolerance 1e-5: the fixture attentions are
    /// matched to 1e-5 by AdapterParityTests, and a mean of values each within 1e-5 is within 1e-5.
    @Test func activationsMatchFixtureAttentionsAveragedOverUnmaskedTokens() throws {
        let model = try fusionFixtureModel()
        let (expected, input) = try adapterFixture("fusion")
        #expect(input.attentionMask.contains(0), "the fixture must have padding for this test to mean anything")
        var collector = try FusionActivationCollector(model: model, fusion: "f1,f2,f3")
        try collector.add(input, context: ComputeContext(threads: 2))
        let table = try collector.table()
        #expect(table.adapterNames == ["f1", "f2", "f3"])
        #expect(table.sites.map(\.layer) == [0, 1])
        var all = [Double](repeating: 0, count: 3), total = 0
        for (s, layer) in zip(table.sites, [0, 1]) {
            let p = try expected.floats("fusion_attentions.layer\(layer)")
            var sum = [Double](repeating: 0, count: 3), count = 0
            var padded = [Double](repeating: 0, count: 3)
            for r in 0..<3 { for t in 0..<12 {
                for i in 0..<3 {
                    if input.attentionMask[r * 12 + t] == 1 { sum[i] += Double(p[(r * 12 + t) * 3 + i]) } else { padded[i] += Double(p[(r * 12 + t) * 3 + i]) }
                }
                if input.attentionMask[r * 12 + t] == 1 { count += 1 }
            } }
            #expect(s.tokens == count)
            let mean = sum.map { $0 / Double(count) }
            expectClose(s.mean.map(Float.init), mean.map(Float.init), atol: 1e-5, rtol: 0, "layer \(layer) means")
            // Including the padding would give a different answer (so the mask matters in this test).
            let withPadding = zip(sum, padded).map { ($0 + $1) / 36 }
            #expect(zip(withPadding, mean).map { abs($0 - $1) }.max()! > 1e-4)
            for i in 0..<3 { all[i] += sum[i] }
            total += count
        }
        expectClose(table.overall.map(Float.init), all.map { Float($0 / Double(total)) }, atol: 1e-5, rtol: 0, "overall")
        #expect(abs(table.overall.reduce(0, +) - 1) < 1e-5)
        // The table prints and round-trips through JSON.
        #expect(table.description.contains("all layers"))
        let data = try JSONEncoder().encode(table)
        #expect(try JSONDecoder().decode(FusionActivationTable.self, from: data) == table)
        #expect(String(decoding: data, as: UTF8.self).contains("\"adapter_names\""))
    }

    /// Two batches accumulate exactly as the tokens pooled (row 0 alone + rows 1–2 vs all three rows).
    @Test func batchesAccumulate() throws {
        let model = try fusionFixtureModel()
        let (_, input) = try adapterFixture("fusion")
        let context = ComputeContext(threads: 1)
        func rows(_ r: Range<Int>) throws -> EncoderInput {
            let s = input.sequenceLength
            return try EncoderInput(batchSize: r.count, sequenceLength: s, inputIds: Array(input.inputIds[r.lowerBound * s ..< r.upperBound * s]),
                                    attentionMask: Array(input.attentionMask[r.lowerBound * s ..< r.upperBound * s]),
                                    tokenTypeIds: Array(input.tokenTypeIds[r.lowerBound * s ..< r.upperBound * s]))
        }
        var whole = try FusionActivationCollector(model: model, fusion: "f1,f2,f3")
        try whole.add(input, context: context)
        var split = try FusionActivationCollector(model: model, fusion: "f1,f2,f3")
        try split.add(try rows(0..<1), context: context)
        try split.add(try rows(1..<3), context: context)
        let a = try whole.table(), b = try split.table()
        #expect(a.sites.map(\.tokens) == b.sites.map(\.tokens))
        // Per-row results differ from the batched run only by GEMM blocking (fp32, H = 32): 1e-6.
        expectClose(b.overall.map(Float.init), a.overall.map(Float.init), atol: 1e-6, rtol: 0, "split vs whole")
    }

    /// The pruned fusion over f1, f2 reuses the trained Q/K/V and gives the reference's pruned logits
    /// (`pruned_f1_f2.logits`, Fuse("f1","f2", name="f1,f2,f3")) within 1e-5 (the parity bar of docs/numerics.md).
    @Test func prunedFusionMatchesReferencePrunedRun() throws {
        let model = try fusionFixtureModel()
        let (expected, input) = try adapterFixture("fusion")
        let result = try model.pruningFusion("f1,f2,f3", keeping: ["f2", "f1"])
        #expect(result.fusion.adapterNames == ["f1", "f2"])
        #expect(result.fusion.name == "f1,f2")
        #expect(result.dropped == ["f3"])
        #expect(result.model.adapters["f3"] == nil)
        #expect(result.model.fusions["f1,f2,f3"] == nil)
        #expect(result.fusion.weights == model.fusions["f1,f2,f3"]!.weights)
        #expect(result.setup == .fuse([.adapter("f1"), .adapter("f2")], name: nil))
        let out = try result.model(input, setup: result.setup, heads: ["fusion"], outputFusionAttentions: true,
                                   context: ComputeContext(threads: 2))
        try expectParity(try #require(out[head: "fusion"]), expected, "pruned_f1_f2.logits", "pruned fusion")
        let p = try #require(out.fusionAttentions["f1,f2"]?[AdapterSite(layer: 1, location: .output)])
        try expectParity(p, expected, "pruned_f1_f2.fusion_attentions.layer1", "pruned fusion")
    }

    /// The top-k selection on the fixture and the end-to-end `pruneFusion`; k = 0 or k > N throws.
    @Test func keepSelectionAndErrors() throws {
        let model = try fusionFixtureModel()
        let (_, input) = try adapterFixture("fusion")
        let context = ComputeContext(threads: 1)
        let (table, pruned) = try model.pruneFusion("f1,f2,f3", keep: 2, batches: [input], context: context)
        let order = table.adapterNames.indices.sorted { table.overall[$0] > table.overall[$1] }
        #expect(pruned.fusion.adapterNames == order.prefix(2).sorted().map { table.adapterNames[$0] })
        #expect(try table.adaptersToKeep(3) == ["f1", "f2", "f3"])
        let perLayer = try table.keptPerLayer(1)
        #expect(perLayer.keys.sorted() == [0, 1])
        #expect(try table.adaptersToKeep(1, scope: .perLayer) == Set(perLayer.values.joined()).sorted())
        for k in [0, 4] {
            #expect(throws: PruningError.invalidKeep(keep: k, adapters: 3)) {
                try model.pruneFusion("f1,f2,f3", keep: k, batches: [input], context: context)
            }
            #expect(throws: PruningError.invalidKeep(keep: k, adapters: 3)) { try table.adaptersToKeep(k) }
        }
        #expect(throws: PruningError.invalidKeep(keep: 0, adapters: 3)) { try model.fusions["f1,f2,f3"]!.pruned(keeping: []) }
        #expect(throws: PruningError.unknownFusion("nope")) { try FusionActivationCollector(model: model, fusion: "nope") }
        #expect(throws: AdapterError.self) { try model.pruningFusion("f1,f2,f3", keeping: ["f1", "zz"]) }
        let empty = try FusionActivationCollector(model: model, fusion: "f1,f2,f3")
        #expect(throws: PruningError.noActivations(fusion: "f1,f2,f3")) { try empty.table() }
        #expect(PruningError.invalidKeep(keep: 4, adapters: 3).description.contains("between 1 and 3"))
    }

    /// Save → load round trip of the pruned fusion with the AdapterHub writers: same names, weights and logits.
    @Test func prunedFusionSaveLoadRoundTrip() throws {
        let model = try fusionFixtureModel()
        let (_, input) = try adapterFixture("fusion")
        let result = try model.pruningFusion("f1,f2,f3", keeping: ["f1", "f2"])
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pruning-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try result.model.saveFusion("f1,f2", to: dir)
        var fresh = try adapterFixtureModel("fusion", adapters: ["f1", "f2"])
        try fresh.loadHead(from: fixtureURL("adapters/fusion/head"))
        #expect(try fresh.loadFusion(from: dir) == "f1,f2")
        let loaded = try #require(fresh.fusions["f1,f2"])
        #expect(loaded.adapterNames == ["f1", "f2"])
        #expect(loaded.config == result.fusion.config)
        #expect(loaded.weights == result.fusion.weights)
        let context = ComputeContext(threads: 1)
        let a = try result.model(input, setup: result.setup, heads: ["fusion"], context: context)
        let b = try fresh(input, setup: result.setup, heads: ["fusion"], context: context)
        expectBitwiseEqual(try #require(b[head: "fusion"]).scalars, try #require(a[head: "fusion"]).scalars, "reloaded logits")

        // PrunedFusionModel.save writes the fusion and the kept adapters; loading only those reproduces the logits.
        let all = dir.appendingPathComponent("all")
        let written = try result.save(to: all)
        #expect(written.map(\.lastPathComponent) == ["f1,f2", "f1", "f2"])
        var again = AdapterModel(encoder: try BertEncoder(modelFolder: fixtureURL("tiny-bert")), modelName: "tiny-bert")
        for u in written.dropFirst() { try again.loadAdapter(from: u) }
        try again.loadFusion(from: written[0])
        try again.loadHead(from: fixtureURL("adapters/fusion/head"))
        #expect(again.adapters.keys.sorted() == ["f1", "f2"])
        let c = try again(input, setup: result.setup, heads: ["fusion"], context: context)
        expectBitwiseEqual(try #require(c[head: "fusion"]).scalars, try #require(a[head: "fusion"]).scalars, "saved pruned model logits")
    }
}

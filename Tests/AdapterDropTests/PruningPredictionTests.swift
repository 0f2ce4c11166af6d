// The library side of `adapterdrop predict` (Sources/AdapterDrop/Pruning/Prediction.swift) on the adapter
// fixtures: logits equal the reference's (1e-5, the parity bar), labels via id2label, and one-line errors.
import AdapterCore
@testable import AdapterDrop
import Foundation
import TestSupport
import Testing

@Suite struct PruningPredictionTests {
    let f = fixtureURL("adapters/fusion").path

    func fusionModel() throws -> AdapterModel {
        try AdapterModel.loading(modelFolder: fixtureURL("tiny-bert").path, adapterFolders: ["\(f)/f1", "\(f)/f2", "\(f)/f3"],
                                 fusionFolders: ["\(f)/fusion"], headFolders: ["\(f)/head"])
    }

    /// Fuse(f1,f2,f3), the pruned Fuse(f1,f2,name="f1,f2,f3") and skip_layers [0], as the CLI parses them.
    @Test func fusionSetupsMatchReference() throws {
        let model = try fusionModel()
        let (expected, input) = try adapterFixture("fusion")
        for (text, skip, key) in [("Fuse(f1,f2,f3)", Set<Int>(), "logits"), ("Fuse(f1,f2,name=\"f1,f2,f3\")", [], "pruned_f1_f2.logits"),
                                  ("Fuse(f1,f2,f3)", [0], "skip_0.logits")] {
            let result = try model.predict(input, setup: try AdapterComposition.parse(text), heads: ["fusion"], skipLayers: skip,
                                           context: ComputeContext(threads: 1))
            #expect(result.heads.map(\.name) == ["fusion"])
            let h = result.heads[0]
            #expect(h.logits.count == 3 && h.logits.allSatisfy { $0.count == 3 })
            try expectParity(Tensor(shape: [3, 3], scalars: h.logits.flatMap { $0 }), expected, key, "predict \(text)")
            let want = try expected.floats(key)
            #expect(h.labels == (0..<3).map { r in "LABEL_\((0..<3).max { want[r * 3 + $0] < want[r * 3 + $1] }!)" })
        }
    }

    /// Parallel(p1,p2): two heads, each with its own rows; JSON has the documented keys.
    @Test func parallelHeadsAndJSON() throws {
        let p = fixtureURL("adapters/parallel").path
        let model = try AdapterModel.loading(modelFolder: fixtureURL("tiny-bert").path, adapterFolders: ["\(p)/p1", "\(p)/p2"])
        let (expected, input) = try adapterFixture("parallel")
        let result = try model.predict(input, setup: try AdapterComposition.parse("Parallel(p1,p2)"), context: ComputeContext(threads: 1))
        #expect(result.heads.map(\.name) == ["p1", "p2"])
        for h in result.heads {
            try expectParity(Tensor(shape: [3, h.logits[0].count], scalars: h.logits.flatMap { $0 }), expected, "\(h.name).logits", "predict parallel")
        }
        let json = try JSONSerialization.jsonObject(with: try JSONEncoder().encode(result)) as? [String: Any]
        let first = try #require((json?["heads"] as? [[String: Any]])?.first)
        #expect(Set(first.keys) == ["name", "logits", "labels"])
    }

    /// Bad input gives typed errors with one-line messages naming the problem.
    @Test func errors() throws {
        let model = try fusionModel()
        let (_, input) = try adapterFixture("fusion")
        let context = ComputeContext(threads: 1)
        #expect(throws: PredictionError.missingFolder(path: "/no/such", what: "model folder")) {
            try AdapterModel.loading(modelFolder: "/no/such", adapterFolders: [])
        }
        #expect(throws: PredictionError.missingFolder(path: "\(f)/zz", what: "adapter folder")) {
            try AdapterModel.loading(modelFolder: fixtureURL("tiny-bert").path, adapterFolders: ["\(f)/zz"])
        }
        let fuse = try AdapterComposition.parse("Fuse(f1,f2,f3)")
        #expect(throws: PredictionError.skipLayerOutOfRange(layer: 2, layers: 2)) {
            try model.predict(input, setup: fuse, heads: ["fusion"], skipLayers: [2], context: context)
        }
        #expect(throws: AdapterError.unknownAdapter("zz")) {
            try model.predict(input, setup: try AdapterComposition.parse("Stack(zz)"), heads: ["fusion"], context: context)
        }
        #expect(throws: AdapterError.self) { try AdapterComposition.parse("Stack(f1") }
        #expect(throws: PredictionError.noHead(setup: "none")) { try model.predict(input, setup: nil, context: context) }
        let message = PredictionError.skipLayerOutOfRange(layer: 2, layers: 2).description
        #expect(message.contains("2") && !message.contains("\n"))
    }
}

// Loading refuses what would otherwise run silently wrong or not at all (session-3 new-user trial, D2/D3):
// a config.json asking for more layers than the checkpoint holds (10¹² layers made the loader list 16·10¹²
// missing tensors: a hang), and NaN/±Inf weights in a model, adapter or head (they loaded and predicted NaN).
import AdapterCore
import AdapterDrop
import Foundation
import Testing
import TestSupport

@Suite struct LoadingDefaultsTests {
    /// A copy of `source` in a fresh temporary folder.
    static func copyFolder(_ source: URL) throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("loading-\(UUID().uuidString)")
        try FileManager.default.copyItem(at: source, to: folder)
        return folder
    }

    /// A copy of the tiny-bert fixture (2 layers) whose config.json says `num_hidden_layers: value`.
    static func tinyBert(numHiddenLayers value: String) throws -> URL {
        let folder = try copyFolder(fixtureURL("tiny-bert"))
        let configURL = folder.appendingPathComponent("config.json")
        let text = try String(contentsOf: configURL, encoding: .utf8)
            .replacingOccurrences(of: "\"num_hidden_layers\": 2", with: "\"num_hidden_layers\": \(value)")
        try text.write(to: configURL, atomically: true, encoding: .utf8)
        return folder
    }

    /// Rewrites `file` with one value of `tensor` replaced by `value` (every other tensor as stored, as F32).
    static func poison(_ file: URL, tensor: String, with value: Float) throws {
        let original = try SafetensorsFile(url: file)
        var writer = SafetensorsWriter()
        for name in original.tensorNames {
            var values = try original.floats(name)
            if name == tensor { values[values.count / 2] = value }
            try writer.add(name, shape: try original.info(name).shape, floats: values)
        }
        try writer.write(to: file)
    }

    @Test func configWithMoreLayersThanTheCheckpointIsRejectedAtOnce() throws {
        let folder = try Self.tinyBert(numHiddenLayers: "1000000000000")
        defer { try? FileManager.default.removeItem(at: folder) }
        let start = Date()
        let source = folder.appendingPathComponent("model.safetensors").path
        #expect(throws: WeightLoadingError.missingLayers(source: source, configLayers: 1_000_000_000_000, checkpointLayers: 2)) {
            try BertEncoder(modelFolder: folder)
        }
        #expect(Date().timeIntervalSince(start) < 10)
        #expect(WeightLoadingError.missingLayers(source: "m.safetensors", configLayers: 7, checkpointLayers: 2).description
                == "m.safetensors: config.json has num_hidden_layers = 7, but the checkpoint holds layers 0..<2 only")
    }

    @Test func fewerLayersThanTheCheckpointStillLoad() throws {
        let folder = try Self.tinyBert(numHiddenLayers: "1")
        defer { try? FileManager.default.removeItem(at: folder) }
        #expect(try BertEncoder(modelFolder: folder).config.numHiddenLayers == 1)
    }

    @Test(arguments: [Float.nan, .infinity])
    func nonFiniteModelWeightIsRejectedByDefault(value: Float) throws {
        let folder = try Self.copyFolder(fixtureURL("tiny-bert"))
        defer { try? FileManager.default.removeItem(at: folder) }
        let tensor = "encoder.layer.0.attention.self.query.weight"
        let file = folder.appendingPathComponent("model.safetensors")
        let stored = try #require(try SafetensorsFile(url: file).tensorNames.first { $0.hasSuffix(tensor) })
        try Self.poison(file, tensor: stored, with: value)
        do {
            _ = try BertEncoder(modelFolder: folder)
            Issue.record("a \(value) weight loaded")
        } catch let error as WeightLoadingError {
            #expect(error.description.contains(tensor) && error.description.contains(value.isNaN ? "1 NaN" : "1 Inf"),
                    "\(error)")
        }
        // Reading as stored stays possible on request.
        #expect(try ModelFolder(folder).loadBert(options: .init(rejectNonFinite: false)).config.numHiddenLayers == 2)
    }

    @Test func nonFiniteAdapterOrHeadWeightIsRejected() throws {
        for (file, fragment) in [("adapter.safetensors", "adapter_up.weight"), ("model_head.safetensors", "weight")] {
            let folder = try Self.copyFolder(fixtureURL("adapters/seq_bn/a"))
            defer { try? FileManager.default.removeItem(at: folder) }
            let url = folder.appendingPathComponent(file)
            let tensor = try #require(try SafetensorsFile(url: url).tensorNames.first { $0.hasSuffix(fragment) })
            try Self.poison(url, tensor: tensor, with: .nan)
            var model = AdapterModel(encoder: try BertEncoder(modelFolder: fixtureURL("tiny-bert")), modelName: "tiny-bert")
            #expect(throws: SafetensorsError.nonFiniteValues(file: url.path, tensor: tensor, nanCount: 1, infinityCount: 0)) {
                try model.loadAdapter(from: folder)
            }
        }
    }
}

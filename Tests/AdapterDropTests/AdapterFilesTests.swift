// AdapterHub files: round trips (bytes of the config files, tensors, logits), and the typed errors for bad
// files (missing weight, wrong shape, pickle only, unsupported keys, mismatched hidden size).
import AdapterCore
@testable import AdapterDrop
import Foundation
import TestSupport
import Testing

/// A fresh temporary folder.
func temporaryFolder(_ name: String = #function) throws -> URL {
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("adapterdrop-\(name.filter { $0.isLetter })-\(UInt32.random(in: 0...UInt32.max))")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// Copies a fixture folder to a temporary folder (to damage it).
func copyFixture(_ path: String) throws -> URL {
    let dest = try temporaryFolder(path).appendingPathComponent("copy")
    try FileManager.default.copyItem(at: fixtureURL(path), to: dest)
    return dest
}

@Suite struct AdapterFilesTests {
    /// Saving what was loaded reproduces the reference's config files byte for byte (json.dump indent 2,
    /// sort_keys) and the same tensors; loading the saved files gives identical logits.
    @Test func roundTripReproducesReferenceFiles() throws {
        var model = try adapterFixtureModel("fusion", adapters: ["f1", "f2", "f3"])
        try model.loadFusion(from: fixtureURL("adapters/fusion/fusion"))
        try model.loadHead(from: fixtureURL("adapters/fusion/head"))
        let out = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: out) }
        for a in ["f1", "f2", "f3"] { try model.saveAdapter(a, to: out.appendingPathComponent(a)) }
        try model.saveFusion("f1,f2,f3", to: out.appendingPathComponent("fusion"))
        try model.saveHead("fusion", to: out.appendingPathComponent("head"))
        let files = ["f1/adapter_config.json", "f3/adapter_config.json", "fusion/adapter_fusion_config.json", "head/head_config.json"]
        for f in files {
            let ours = try String(contentsOf: out.appendingPathComponent(f), encoding: .utf8)
            let reference = try String(contentsOf: fixtureURL("adapters/fusion/\(f)"), encoding: .utf8)
            #expect(ours == reference, "\(f)")
        }
        for (f, ref) in [("f2/adapter.safetensors", "f2/adapter.safetensors"), ("fusion/model_adapter_fusion.safetensors", "fusion/model_adapter_fusion.safetensors"),
                         ("head/model_head.safetensors", "head/model_head.safetensors")] {
            let ours = try SafetensorsFile(url: out.appendingPathComponent(f))
            let reference = try SafetensorsFile(url: fixtureURL("adapters/fusion/\(ref)"))
            #expect(ours.tensorNames == reference.tensorNames, "\(f)")
            for name in reference.tensorNames { #expect(try ours.floats(name) == reference.floats(name), "\(f) \(name)") }
        }
        var reloaded = AdapterModel(encoder: model.encoder, modelName: "tiny-bert")
        for a in ["f1", "f2", "f3"] { try reloaded.loadAdapter(from: out.appendingPathComponent(a)) }
        try reloaded.loadFusion(from: out.appendingPathComponent("fusion"))
        try reloaded.loadHead(from: out.appendingPathComponent("head"))
        let (_, input) = try adapterFixture("fusion")
        let setup = AdapterComposition.fuse([.adapter("f1"), .adapter("f2"), .adapter("f3")], name: nil)
        let context = ComputeContext(threads: 1)
        let a = try model(input, setup: setup, heads: ["fusion"], context: context)
        let b = try reloaded(input, setup: setup, heads: ["fusion"], context: context)
        expectBitwiseEqual(try #require(b[head: "fusion"]).scalars, try #require(a[head: "fusion"]).scalars, "reloaded logits")
    }

    /// New adapters of every preset and option survive save → load unchanged (weights and config), also
    /// with `load_as`, and with ln_before (stored twice) and learned scaling.
    @Test func newAdaptersRoundTrip() throws {
        let encoder = try BertEncoder(modelFolder: fixtureURL("tiny-bert"))
        var model = AdapterModel(encoder: encoder, modelName: "tiny-bert")
        try model.addAdapter(name: "x", config: try BottleneckConfig.preset("scaled_parallel"), seed: 1)
        try model.addAdapter(name: "y", config: try BottleneckConfig.preset("houlsby", overrides: [
            "ln_before": .bool(true), "ln_after": .bool(true), "use_gating": .bool(true), "scaling": .string("channel"),
            "reduction_factor": .object(["1": .int(2), "default": .int(8)]), "leave_out": .array([.int(0)])]), seed: 2)
        model.addHead(PredictionHead(name: "y", config: .classification(numLabels: 2), hiddenSize: 32, seed: 3))
        let out = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: out) }
        try model.saveAdapter("x", to: out.appendingPathComponent("x"))
        try model.saveAdapter("y", to: out.appendingPathComponent("y"))
        var other = AdapterModel(encoder: encoder)
        try other.loadAdapter(from: out.appendingPathComponent("x"))
        try other.loadAdapter(from: out.appendingPathComponent("y"), loadAs: "z")
        #expect(other.adapters["x"]!.weights == model.adapters["x"]!.weights)
        #expect(other.adapters["x"]!.config == model.adapters["x"]!.config)
        #expect(other.adapters["z"]!.weights == model.adapters["y"]!.weights)
        #expect(other.adapters["z"]!.weights.count == 2)  // layer 1, both locations
        #expect(other.heads["z"]?.linears.map(\.weight) == model.heads["y"]?.linears.map(\.weight))
        let keys = try SafetensorsFile(url: out.appendingPathComponent("y/adapter.safetensors")).tensorNames
        #expect(keys.contains("bert.encoder.layer.1.attention.output.adapters.y.adapter_norm_before.weight"))
        #expect(keys.contains("bert.encoder.layer.1.attention.output.adapters.y.adapter_down.0.weight"))
        #expect(keys.contains("bert.encoder.layer.1.attention.output.adapters.y.adapter_down.1.weight"))
        #expect(keys.contains("bert.encoder.layer.1.output.adapters.y.scaling"))
        let (_, input) = try adapterFixture("seq_bn")
        let context = ComputeContext(threads: 1)
        let a = try model(input, setup: .adapter("y"), context: context)
        let b = try other(input, setup: .adapter("z"), context: context)
        expectBitwiseEqual(try #require(b[head: "z"]).scalars, try #require(a[head: "y"]).scalars, "load_as logits")
    }

    @Test func missingWeightNamesTheKey() throws {
        let folder = try copyFixture("adapters/seq_bn/a")
        let url = folder.appendingPathComponent("adapter.safetensors")
        let file = try SafetensorsFile(url: url)
        var writer = SafetensorsWriter()
        for name in file.tensorNames where !name.contains("layer.1.output.adapters.a.adapter_up.bias") {
            try writer.add(name, tensor: try file.tensor(name))
        }
        try writer.write(to: url)
        let model = AdapterModel(encoder: try BertEncoder(modelFolder: fixtureURL("tiny-bert")))
        #expect(throws: AdapterError.missingWeight(file: url.path, key: "bert.encoder.layer.1.output.adapters.a.adapter_up.bias")) {
            _ = try BottleneckAdapter(folder: folder, model: model.modelDescription)
        }
    }

    @Test func wrongShapeNamesTheKey() throws {
        let folder = try copyFixture("adapters/seq_bn/a")
        let url = folder.appendingPathComponent("adapter.safetensors")
        let file = try SafetensorsFile(url: url)
        var writer = SafetensorsWriter()
        let bad = "bert.encoder.layer.0.output.adapters.a.adapter_down.0.weight"
        for name in file.tensorNames {
            try writer.add(name, tensor: name == bad ? Tensor(zeros: [4, 32]) : try file.tensor(name))
        }
        try writer.write(to: url)
        let description = ModelDescription(hiddenSize: 32, numLayers: 2, modelType: "bert")
        #expect(throws: AdapterError.wrongShape(file: url.path, key: bad, expected: [8, 32], actual: [4, 32])) {
            _ = try BottleneckAdapter(folder: folder, model: description)
        }
    }

    @Test func pickleOnlyPointsToTheConverter() throws {
        let folder = try copyFixture("adapters/seq_bn/a")
        try FileManager.default.moveItem(at: folder.appendingPathComponent("adapter.safetensors"),
                                         to: folder.appendingPathComponent("pytorch_adapter.bin"))
        let description = ModelDescription(hiddenSize: 32, numLayers: 2, modelType: "bert")
        let error = #expect(throws: AdapterError.self) { _ = try BottleneckAdapter(folder: folder, model: description) }
        #expect(error == .pytorchWeightsOnly(file: folder.appendingPathComponent("pytorch_adapter.bin").path))
        #expect(error.map { "\($0)" }?.contains("scripts/convert_bin_to_safetensors.py") == true)
    }

    @Test func hiddenSizeMismatchIsRejected() throws {
        let description = ModelDescription(hiddenSize: 64, numLayers: 2, modelType: "bert")
        #expect(throws: AdapterError.self) { _ = try BottleneckAdapter(folder: fixtureURL("adapters/seq_bn/a"), model: description) }
    }

    /// A fusion folder whose adapters are missing, and adapters that disagree on mh_adapter.
    @Test func fusionNeedsMatchingAdapters() throws {
        var model = try adapterFixtureModel("fusion", adapters: ["f1", "f2"])
        #expect(throws: AdapterError.unknownAdapter("f3")) { try model.loadFusion(from: fixtureURL("adapters/fusion/fusion")) }
        try model.loadAdapter(from: fixtureURL("adapters/double_seq_bn/b"))
        #expect(throws: AdapterError.fusionConfigMismatch(fusion: "f1,b", key: "mh_adapter", adapters: ["f1", "b"])) {
            try model.addFusion(adapterNames: ["f1", "b"])
        }
    }

    /// Fusion weights stored for layers where the adapters are left out are read and unused.
    @Test func fusionWeightsForLeftOutLayersAreAccepted() throws {
        var model = AdapterModel(encoder: try BertEncoder(modelFolder: fixtureURL("tiny-bert")))
        for a in ["f1", "f2", "f3"] { try model.loadAdapter(from: fixtureURL("adapters/fusion/\(a)"), leaveOut: [0]) }
        try model.loadFusion(from: fixtureURL("adapters/fusion/fusion"))
        #expect(model.fusions["f1,f2,f3"]!.weights.count == 2)
        let (expected, input) = try adapterFixture("fusion")
        let setup = AdapterComposition.fuse([.adapter("f1"), .adapter("f2"), .adapter("f3")], name: nil)
        let out = try model(input, setup: setup, heads: [], context: ComputeContext(threads: 1))
        // Left out in layer 0 equals skipping layer 0.
        try expectParity(out.encoder.lastHiddenState, expected, "skip_0.last_hidden_state", "fusion leave_out [0]")
    }
}

@Suite struct AdapterConfigTests {
    @Test func presetsMatchTheReferenceTable() throws {
        let seq = try BottleneckConfig.preset("pfeiffer")
        #expect(seq.originalLayerNormBefore && !seq.mhAdapter && seq.outputAdapter && seq.activation == .relu)
        #expect(try seq.bottleneckSize(hiddenSize: 768, layer: 0) == 48)
        let houlsby = try BottleneckConfig.preset("double_seq_bn")
        #expect(houlsby.mhAdapter && houlsby.activation == .silu && !houlsby.originalLayerNormBefore)
        let par = try BottleneckConfig.preset("par_bn")
        #expect(par.isParallel && par.scaling == .constant(4) && par.initialization == .mamAdapter)
        #expect(try par.bottleneckSize(hiddenSize: 768, layer: 3) == 384)
        #expect(try BottleneckConfig.preset("scaled_parallel").scaling == .learned)
        #expect(throws: AdapterError.unknownPreset("pfiefer")) { _ = try BottleneckConfig.preset("pfiefer") }
        #expect(throws: AdapterError.self) { _ = try BottleneckConfig.preset("lora") }
    }

    @Test func unsupportedKeysAreNamed() throws {
        let base = try BottleneckConfig.preset("seq_bn").json
        func config(_ key: String, _ value: AdapterJSON) throws -> BottleneckConfig {
            var o = base; o[key] = value
            return try BottleneckConfig(object: o, file: "c.json")
        }
        for (key, value) in [("phm_layer", AdapterJSON.bool(true)), ("phm_dim", .int(8)), ("inv_adapter", .string("nice")),
                             ("cross_adapter", .bool(true)), ("architecture", .string("lora"))] {
            let error = #expect(throws: AdapterError.self) { _ = try config(key, value) }
            if case let .unsupported(_, k, _)? = error { #expect(k == key) } else { Issue.record("\(key): \(String(describing: error))") }
        }
        _ = try config("phm_dim", .number("4.0"))  // the default, spelled as a float
        _ = try config("stochastic_depth", .number("0.1"))  // training-only, accepted
        #expect(throws: AdapterError.invalidValue(file: "c.json", key: "residual_before_ln", reason: "expected true, false or \"post_add\"")) {
            _ = try config("residual_before_ln", .string("yes"))
        }
        var missing = base; missing.removeValue(forKey: "reduction_factor")
        #expect(throws: AdapterError.missingKey(file: "c.json", key: "reduction_factor")) { _ = try BottleneckConfig(object: missing, file: "c.json") }
    }

    /// Configs without "version" rename gelu → gelu_new and gelu_orig → gelu; versioned ones keep gelu (erf).
    @Test func legacyActivationRename() throws {
        var o = try BottleneckConfig.preset("seq_bn").json
        o["non_linearity"] = .string("gelu")
        #expect(try BottleneckConfig(object: o, legacy: true).activation == .geluTanh)
        #expect(try BottleneckConfig(object: o, legacy: false).activation == .gelu)
        o["non_linearity"] = .string("gelu_orig")
        #expect(try BottleneckConfig(object: o, legacy: true).activation == .gelu)
        for (name, act) in [("swish", Activation.silu), ("silu", .silu), ("tanh", .tanh), ("sigmoid", .sigmoid),
                            ("leakyrelu", .leakyReLU(slope: 0.01)), ("identity", .identity), ("relu", .relu)] {
            o["non_linearity"] = .string(name)
            #expect(try BottleneckConfig(object: o).activation == act)
        }
    }

    /// A reduction-factor mapping is looked up by layer, then "default"; without either it throws.
    @Test func reductionFactorMapping() throws {
        let c = try BottleneckConfig.preset("seq_bn", overrides: ["reduction_factor": .object(["1": .int(2)])])
        #expect(try c.bottleneckSize(hiddenSize: 32, layer: 1) == 16)
        #expect(throws: AdapterError.self) { _ = try c.bottleneckSize(hiddenSize: 32, layer: 0) }
        let tiny = try BottleneckConfig.preset("seq_bn", overrides: ["reduction_factor": .int(64)])
        #expect(try tiny.bottleneckSize(hiddenSize: 32, layer: 0) == 1)  // clamped to ≥ 1
    }

    /// The three inits: "mam_adapter" starts as an exact identity (zero up-projection); "houlsby" is bounded.
    @Test func initialisations() throws {
        let (_, input) = try adapterFixture("seq_bn")
        var model = AdapterModel(encoder: try BertEncoder(modelFolder: fixtureURL("tiny-bert")))
        try model.addAdapter(name: "p", config: try BottleneckConfig.preset("par_bn"))
        try model.addAdapter(name: "h", config: try BottleneckConfig.preset("seq_bn", overrides: ["init_weights": .string("houlsby")]))
        let context = ComputeContext(threads: 1)
        let base = try model(input, setup: nil, context: context).encoder.lastHiddenState
        let p = try model(input, setup: .adapter("p"), context: context).encoder.lastHiddenState
        expectClose(p.scalars, base.scalars, atol: 1e-6, rtol: 1e-6, "mam_adapter init is the identity")
        let h = model.adapters["h"]!.weights.values.flatMap { $0.downWeight.scalars + $0.upWeight.scalars }
        #expect(h.allSatisfy { abs($0) <= 0.02 } && h.contains { $0 != 0 })
    }
}

/// Writes adapters, a fusion and heads created here, plus the logits we compute, into
/// `$ADAPTERDROP_EXPORT_DIR`, for `scripts/parity/check_swift_saved_adapters.py` to load them with adapters
/// 1.3.0 and compare (the round-trip check against the reference; docs/adapters.md).
@Suite struct AdapterExportForPythonCheck {
    @Test(.enabled(if: ProcessInfo.processInfo.environment["ADAPTERDROP_EXPORT_DIR"] != nil))
    func exportForPythonCheck() throws {
        let out = URL(fileURLWithPath: ProcessInfo.processInfo.environment["ADAPTERDROP_EXPORT_DIR"]!)
        let encoder = try BertEncoder(modelFolder: fixtureURL("tiny-bert"))
        var model = AdapterModel(encoder: encoder, modelName: "tiny-bert")
        // Larger-than-default init so that the adapters change the logits visibly.
        func scaledUp(_ a: BottleneckAdapter) -> BottleneckAdapter {
            var a = a
            var rng = SeededRNG(seed: 99)
            for (site, w) in a.weights {
                var w = w
                w.upWeight = Tensor(shape: w.upWeight.shape, scalars: w.upWeight.scalars.map { _ in rng.normal(mean: 0, std: 0.3) })
                w.upBias = Tensor(shape: w.upBias.shape, scalars: w.upBias.scalars.map { _ in rng.normal(mean: 0, std: 0.1) })
                a.weights[site] = w
            }
            return a
        }
        let configs: [(String, BottleneckConfig)] = [
            ("a", try .preset("seq_bn", overrides: ["reduction_factor": .int(4)])),
            ("b", try .preset("houlsby", overrides: ["reduction_factor": .int(8), "ln_before": .bool(true), "use_gating": .bool(true)])),
            ("c", try .preset("seq_bn", overrides: ["reduction_factor": .int(8), "non_linearity": .string("gelu")])),
        ]
        for (i, (name, config)) in configs.enumerated() {
            try model.addAdapter(scaledUp(try BottleneckAdapter(name: name, config: config, hiddenSize: 32, numLayers: 2, seed: UInt64(i))))
            model.addHead(PredictionHead(name: name, config: .classification(numLabels: 3), hiddenSize: 32, initializerRange: 0.5, seed: UInt64(10 + i)))
            try model.saveAdapter(name, to: out.appendingPathComponent(name))
        }
        try model.addFusion(adapterNames: ["a", "c"], seed: 5)
        try model.saveFusion("a,c", to: out.appendingPathComponent("fusion"))
        let (_, input) = try adapterFixture("seq_bn")
        let context = ComputeContext(threads: 1)
        var writer = SafetensorsWriter()
        for (key, text, head) in [("a", "a", "a"), ("b", "b", "b"), ("stack", "Stack(a,c)", "c"), ("fuse", "Fuse(a,c)", "c"),
                                  ("skip_0.b", "b", "b")] {
            let setup = try #require(try AdapterComposition.parse(text))
            let result = try model(input, setup: setup, heads: [head], skipLayers: key.hasPrefix("skip_0") ? [0] : [], context: context)
            try writer.add("\(key).logits", tensor: try #require(result[head: head]))
        }
        try writer.write(to: out.appendingPathComponent("swift_logits.safetensors"))
    }
}

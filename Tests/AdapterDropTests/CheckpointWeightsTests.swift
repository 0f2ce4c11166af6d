// BERT weight names, loading from model folders (single file, sharded, prefixed, gamma/beta), and the
// one-error-lists-everything rule for missing or mis-shaped weights.
import AdapterCore
import Foundation
import Testing

@testable import AdapterDrop

/// A tiny BERT config: hidden 8, 2 heads, intermediate 12, 2 layers.
let tinyBertConfig = BertConfig(
    hiddenSize: 8, numHiddenLayers: 2, numAttentionHeads: 2, intermediateSize: 12, maxPositionEmbeddings: 7,
    typeVocabSize: 2, vocabSize: 11)

/// Distinct deterministic values for every expected tensor: element k of the n-th parameter is n + k/1024
/// (exact in fp32; F16/BF16 round most of them).
func tinyBertTensors(_ config: BertConfig = tinyBertConfig) -> [String: Tensor] {
    var out: [String: Tensor] = [:]
    for (n, parameter) in BertWeights.expectedParameters(for: config).enumerated() {
        let count = parameter.shape.reduce(1, *)
        out[parameter.name] = Tensor(shape: parameter.shape, scalars: (0..<count).map { Float(n) + Float($0) / 1024 })
    }
    return out
}

/// Writes `tensors` (renamed by `rename`) plus extra non-encoder tensors into one safetensors file.
@discardableResult
func writeCheckpoint(
    _ tensors: [String: Tensor], to url: URL, dtype: SafetensorsDType = .f32, rename: (String) -> String = { $0 }
) throws -> URL {
    var writer = SafetensorsWriter(metadata: ["format": "pt"])
    for (name, tensor) in tensors { try writer.add(rename(name), tensor: tensor, as: dtype) }
    try writer.write(to: url)
    return url
}

/// A model folder with config.json and model.safetensors.
func makeModelFolder(
    _ folder: CheckpointTempFolder, tensors: [String: Tensor] = tinyBertTensors(), config: BertConfig = tinyBertConfig,
    rename: (String) -> String = { $0 }
) throws -> URL {
    try JSONEncoder().encode(config).write(to: folder.file("config.json"))
    try writeCheckpoint(tensors, to: folder.file("model.safetensors"), rename: rename)
    return folder.url
}

@Suite("Checkpoint BERT weights and model folders")
struct CheckpointWeightsTests {
    @Test("Canonical names: prefix stripping and LayerNorm gamma/beta", arguments: [
        ("bert.embeddings.word_embeddings.weight", "embeddings.word_embeddings.weight"),
        ("roberta.encoder.layer.3.attention.self.query.bias", "encoder.layer.3.attention.self.query.bias"),
        ("encoder.layer.0.output.LayerNorm.gamma", "encoder.layer.0.output.LayerNorm.weight"),
        ("bert.encoder.layer.0.attention.output.LayerNorm.beta", "encoder.layer.0.attention.output.LayerNorm.bias"),
        ("bert.embeddings.LayerNorm.gamma", "embeddings.LayerNorm.weight"),
        ("bert.bert.pooler.dense.weight", "bert.pooler.dense.weight"),  // only one prefix
        ("cls.predictions.bias", "cls.predictions.bias"),
        ("encoder.layer.0.output.dense.beta", "encoder.layer.0.output.dense.beta"),  // not a LayerNorm
        ("bertx.pooler.dense.weight", "bertx.pooler.dense.weight"),
    ])
    func canonicalNames(stored: String, canonical: String) {
        #expect(BertWeights.canonicalName(stored) == canonical)
    }

    @Test("Expected names follow transformers' BertModel state dict")
    func expectedNames() {
        let parameters = BertWeights.expectedParameters(for: tinyBertConfig)
        #expect(parameters.count == 5 + 16 * 2 + 2)
        #expect(parameters.prefix(5).map(\.name) == [
            "embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight",
            "embeddings.token_type_embeddings.weight", "embeddings.LayerNorm.weight", "embeddings.LayerNorm.bias",
        ])
        let layer1 = parameters.filter { $0.name.hasPrefix("encoder.layer.1.") }
        #expect(layer1.map(\.name) == [
            "attention.self.query.weight", "attention.self.query.bias", "attention.self.key.weight",
            "attention.self.key.bias", "attention.self.value.weight", "attention.self.value.bias",
            "attention.output.dense.weight", "attention.output.dense.bias", "attention.output.LayerNorm.weight",
            "attention.output.LayerNorm.bias", "intermediate.dense.weight", "intermediate.dense.bias",
            "output.dense.weight", "output.dense.bias", "output.LayerNorm.weight", "output.LayerNorm.bias",
        ].map { "encoder.layer.1." + $0 })
        #expect(layer1.map(\.shape) == [[8, 8], [8], [8, 8], [8], [8, 8], [8], [8, 8], [8], [8], [8], [12, 8], [12],
                                        [8, 12], [8], [8], [8]])
        #expect(parameters.suffix(2).map(\.name) == ["pooler.dense.weight", "pooler.dense.bias"])
    }

    /// Checks every tensor of `weights` against `tinyBertTensors()`.
    private func expectTinyValues(_ weights: BertWeights, pooler: Bool = true, sourceLocation: SourceLocation = #_sourceLocation) {
        let expected = tinyBertTensors()
        let got = weights.namedTensors(config: tinyBertConfig)
        #expect(got.count == expected.count - (pooler ? 0 : 2), sourceLocation: sourceLocation)
        for (name, tensor) in got {
            #expect(tensor == expected[name], "\(name)", sourceLocation: sourceLocation)
        }
        #expect(weights.layers.count == 2, sourceLocation: sourceLocation)
        #expect(weights.layers[1].intermediateWeight.shape == [12, 8], sourceLocation: sourceLocation)
        #expect(weights.layers[1].intermediateWeight == expected["encoder.layer.1.intermediate.dense.weight"],
                sourceLocation: sourceLocation)
        #expect(weights.embeddings.wordEmbeddings == expected["embeddings.word_embeddings.weight"], sourceLocation: sourceLocation)
        #expect((weights.pooler != nil) == pooler, sourceLocation: sourceLocation)
    }

    @Test("Loads a model folder; extra tensors (position_ids, heads) are ignored")
    func loadsFolder() throws {
        let folder = try CheckpointTempFolder()
        var tensors = tinyBertTensors()
        tensors["cls.predictions.bias"] = Tensor(zeros: [11])
        let url = try makeModelFolder(folder, tensors: tensors)
        // Add an I64 position_ids buffer as transformers does.
        var writer = SafetensorsWriter()
        for (name, tensor) in tensors { try writer.add(name, tensor: tensor) }
        try writer.add("embeddings.position_ids", shape: [1, 7], integers: Array(0..<7))
        try writer.write(to: folder.file("model.safetensors"))

        let model = try ModelFolder(url)
        #expect(model.weights == .single(folder.file("model.safetensors")))
        let (config, weights) = try model.loadBert()
        #expect(config == tinyBertConfig)
        expectTinyValues(weights)
        #expect(try model.openCheckpoint().file(containing: "embeddings.position_ids")!.integers("embeddings.position_ids")
                == Array(0..<7))
    }

    @Test("Loads with bert./roberta. prefixes and gamma/beta LayerNorm names", arguments: ["bert.", "roberta.", ""])
    func prefixesAndGammaBeta(prefix: String) throws {
        let folder = try CheckpointTempFolder()
        let url = try makeModelFolder(folder) { name in
            prefix + name.replacingOccurrences(of: "LayerNorm.weight", with: "LayerNorm.gamma")
                .replacingOccurrences(of: "LayerNorm.bias", with: "LayerNorm.beta")
        }
        let (_, weights) = try ModelFolder(url).loadBert()
        expectTinyValues(weights)
    }

    @Test("F16 and BF16 checkpoints load as fp32", arguments: [(SafetensorsDType.f16, Float(0x1p-11)), (SafetensorsDType.bf16, Float(0x1p-8))])
    func halfCheckpoint(dtype: SafetensorsDType, unitRoundoff: Float) throws {
        let folder = try CheckpointTempFolder()
        let tensors = tinyBertTensors()
        try JSONEncoder().encode(tinyBertConfig).write(to: folder.file("config.json"))
        try writeCheckpoint(tensors, to: folder.file("model.safetensors"), dtype: dtype)
        let weights = try ModelFolder(folder.url).loadBert().weights
        let query = weights.layers[0].queryWeight.scalars
        let reference = tensors["encoder.layer.0.attention.self.query.weight"]!.scalars
        // Round to nearest: |stored − x| ≤ u·|x| with u = 2^-11 (F16, 11-bit significand) or 2^-8 (BF16).
        var worst: Float = 0
        for (a, b) in zip(query, reference) { worst = max(worst, abs(a - b) / abs(b)) }
        #expect(worst <= unitRoundoff)
        #expect(worst > 0)  // the values really were rounded, so the dtype really was converted
    }

    @Test("Missing, mis-shaped, integer and ambiguous weights are reported together in one error")
    func everyProblemListed() throws {
        var tensors = tinyBertTensors()
        tensors["encoder.layer.1.output.dense.weight"] = nil
        tensors["embeddings.LayerNorm.bias"] = nil
        tensors["encoder.layer.0.intermediate.dense.weight"] = Tensor(zeros: [12, 7])
        tensors["embeddings.word_embeddings.weight"] = Tensor(zeros: [10, 8])
        tensors["bert.pooler.dense.bias"] = Tensor(zeros: [8])  // and the unprefixed one: ambiguous
        let folder = try CheckpointTempFolder()
        try JSONEncoder().encode(tinyBertConfig).write(to: folder.file("config.json"))
        var writer = SafetensorsWriter()
        for (name, tensor) in tensors where name != "encoder.layer.0.attention.self.key.bias" {
            try writer.add(name == "encoder.layer.0.output.LayerNorm.weight" ? "bert.encoder.layer.0.output.LayerNorm.gamma" : name,
                           tensor: tensor.reshaped(name == "encoder.layer.0.output.LayerNorm.weight" ? [2, 4] : tensor.shape))
        }
        try writer.add("encoder.layer.0.attention.self.key.bias", shape: [8], integers: Array(0..<8))
        try writer.write(to: folder.file("model.safetensors"))

        let path = folder.file("model.safetensors").path
        let expected = WeightLoadingError.invalidWeights(source: path, problems: [
            WeightProblem(name: "embeddings.word_embeddings.weight", expectedShape: [11, 8], kind: .shapeMismatch(found: [10, 8])),
            WeightProblem(name: "embeddings.LayerNorm.bias", expectedShape: [8], kind: .missing),
            WeightProblem(name: "encoder.layer.0.attention.self.key.bias", expectedShape: [8], kind: .notFloatingPoint(dtype: "I64")),
            WeightProblem(name: "encoder.layer.0.intermediate.dense.weight", expectedShape: [12, 8], kind: .shapeMismatch(found: [12, 7])),
            WeightProblem(name: "encoder.layer.0.output.LayerNorm.weight", checkpointName: "bert.encoder.layer.0.output.LayerNorm.gamma",
                          expectedShape: [8], kind: .shapeMismatch(found: [2, 4])),
            WeightProblem(name: "encoder.layer.1.output.dense.weight", expectedShape: [8, 12], kind: .missing),
            WeightProblem(name: "pooler.dense.bias", expectedShape: [8],
                          kind: .ambiguous(candidates: ["bert.pooler.dense.bias", "pooler.dense.bias"])),
        ])
        #expect(throws: expected) { try ModelFolder(folder.url).loadBert() }
        let text = expected.description
        #expect(text.hasPrefix("\(path): 7 weight problems"))
        #expect(text.contains("  encoder.layer.1.output.dense.weight: missing (expected shape [8, 12])"))
        #expect(text.contains("  encoder.layer.0.output.LayerNorm.weight (stored as 'bert.encoder.layer.0.output.LayerNorm.gamma'): expected shape [8], found [2, 4]"))
    }

    @Test("The pooler is optional, but half a pooler is an error")
    func optionalPooler() throws {
        var tensors = tinyBertTensors()
        tensors["pooler.dense.weight"] = nil
        tensors["pooler.dense.bias"] = nil
        let noPooler = try BertWeights(config: tinyBertConfig, namedTensors: tensors)
        expectTinyValues(noPooler, pooler: false)
        tensors["pooler.dense.bias"] = Tensor(zeros: [8])
        #expect(throws: WeightLoadingError.invalidWeights(source: "named tensors", problems: [
            WeightProblem(name: "pooler.dense.weight", expectedShape: [8, 8], kind: .missing),
        ])) { try BertWeights(config: tinyBertConfig, namedTensors: tensors) }
    }

    @Test("NaN/Inf weights are listed: loading rejects non-finite values by default")
    func nonFiniteWeights() throws {
        var tensors = tinyBertTensors()
        tensors["encoder.layer.0.attention.self.value.bias"] = Tensor(shape: [8], scalars: [0, .nan, 0, 0, .infinity, 0, .nan, 0])
        tensors["embeddings.position_embeddings.weight"] = Tensor(shape: [7, 8], repeating: -.infinity)
        let folder = try CheckpointTempFolder()
        let url = try makeModelFolder(folder, tensors: tensors)
        let model = try ModelFolder(url)
        _ = try model.loadBert(options: .init(rejectNonFinite: false))  // accepted on request
        #expect(try model.openCheckpoint().nonFiniteTensors() == [
            NonFiniteReport(tensor: "embeddings.position_embeddings.weight", nanCount: 0, infinityCount: 56),
            NonFiniteReport(tensor: "encoder.layer.0.attention.self.value.bias", nanCount: 2, infinityCount: 1),
        ])
        #expect(throws: WeightLoadingError.invalidWeights(source: folder.file("model.safetensors").path, problems: [
            WeightProblem(name: "embeddings.position_embeddings.weight", expectedShape: [7, 8], kind: .nonFinite(nanCount: 0, infinityCount: 56)),
            WeightProblem(name: "encoder.layer.0.attention.self.value.bias", expectedShape: [8], kind: .nonFinite(nanCount: 2, infinityCount: 1)),
        ])) { try model.loadBert() }
    }

    @Test("namedTensors with a prefix round-trips through a safetensors file")
    func saveAndReload() throws {
        let weights = try BertWeights(config: tinyBertConfig, namedTensors: tinyBertTensors())
        let folder = try CheckpointTempFolder()
        try writeCheckpoint(weights.namedTensors(config: tinyBertConfig, prefix: "bert."), to: folder.file("model.safetensors"))
        let file = try SafetensorsFile(url: folder.file("model.safetensors"))
        #expect(file.tensorNames.allSatisfy { $0.hasPrefix("bert.") })
        let reloaded = try BertWeights(config: tinyBertConfig, checkpoint: SafetensorsCheckpoint(files: [file]))
        expectTinyValues(reloaded)
    }

    // MARK: Model folders

    @Test("Folder errors: not a folder, no config, no weights, PyTorch pickles only")
    func folderErrors() throws {
        let folder = try CheckpointTempFolder()
        #expect(throws: ModelFolderError.notADirectory(path: folder.file("nope").path)) { try ModelFolder(folder.file("nope")) }
        #expect(throws: ModelFolderError.missingConfig(folder: folder.url.path)) { try ModelFolder(folder.url) }
        try JSONEncoder().encode(tinyBertConfig).write(to: folder.file("config.json"))
        #expect(throws: ModelFolderError.missingWeights(folder: folder.url.path)) { try ModelFolder(folder.url) }
        try folder.write("pytorch_model.bin", [0x80, 0x02])
        let pickle = ModelFolderError.pytorchWeightsOnly(folder: folder.url.path, file: "pytorch_model.bin")
        #expect(throws: pickle) { try ModelFolder(folder.url) }
        #expect(pickle.description.contains("convert to safetensors"))
        #expect(pickle.description.contains("safe_serialization=True"))
        // A safetensors file next to the pickle is preferred.
        try writeCheckpoint(tinyBertTensors(), to: folder.file("model.safetensors"))
        expectTinyValues(try ModelFolder(folder.url).loadBert().weights)
    }

    /// Writes a two-shard checkpoint of `tensors` with its index; returns the weight map.
    @discardableResult
    private func writeShards(_ folder: CheckpointTempFolder, tensors: [String: Tensor] = tinyBertTensors(),
                             mapOverride: [String: String] = [:]) throws -> [String: String] {
        try JSONEncoder().encode(tinyBertConfig).write(to: folder.file("config.json"))
        var map: [String: String] = [:]
        var shards = [SafetensorsWriter(), SafetensorsWriter()]
        for (name, tensor) in tensors {
            let shard = name.hasPrefix("encoder.layer.1.") || name.hasPrefix("pooler") ? 1 : 0
            try shards[shard].add(name, tensor: tensor)
            map[name] = "model-0000\(shard + 1)-of-00002.safetensors"
        }
        for (i, shard) in shards.enumerated() { try shard.write(to: folder.file("model-0000\(i + 1)-of-00002.safetensors")) }
        map.merge(mapOverride) { $1 }
        let index: [String: Any] = ["metadata": ["total_size": 1234], "weight_map": map]
        try JSONSerialization.data(withJSONObject: index).write(to: folder.file("model.safetensors.index.json"))
        return map
    }

    @Test("Sharded checkpoints load through model.safetensors.index.json")
    func sharded() throws {
        let folder = try CheckpointTempFolder()
        try writeShards(folder)
        let model = try ModelFolder(folder.url)
        #expect(model.weights == .sharded(index: folder.file("model.safetensors.index.json"), shards: [
            folder.file("model-00001-of-00002.safetensors"), folder.file("model-00002-of-00002.safetensors"),
        ]))
        let checkpoint = try model.openCheckpoint()
        #expect(checkpoint.files.count == 2)
        #expect(checkpoint.sourceDescription == "\(folder.url.path) (2 shards)")
        expectTinyValues(try model.loadBert().weights)
    }

    @Test("Shard index errors: missing shard, wrong mapping, path escape, duplicate tensor, bad JSON")
    func shardErrors() throws {
        do {
            let folder = try CheckpointTempFolder()
            try writeShards(folder, mapOverride: ["extra": "model-00003-of-00003.safetensors"])
            #expect(throws: ModelFolderError.missingShard(index: folder.file("model.safetensors.index.json").path,
                                                          shard: "model-00003-of-00003.safetensors")) { try ModelFolder(folder.url) }
        }
        do {
            let folder = try CheckpointTempFolder()
            try writeShards(folder, mapOverride: ["pooler.dense.bias": "model-00001-of-00002.safetensors"])
            #expect(throws: ModelFolderError.shardIndexMismatch(index: folder.file("model.safetensors.index.json").path,
                                                                tensor: "pooler.dense.bias", shard: "model-00001-of-00002.safetensors")) {
                try ModelFolder(folder.url).openCheckpoint()
            }
        }
        do {
            let folder = try CheckpointTempFolder()
            try writeShards(folder, mapOverride: ["x": "../model.safetensors"])
            #expect(throws: ModelFolderError.invalidShardIndex(file: folder.file("model.safetensors.index.json").path,
                                                               reason: "shard name \"../model.safetensors\" is not a file name in the folder")) {
                try ModelFolder(folder.url)
            }
        }
        do {
            let folder = try CheckpointTempFolder()
            try writeShards(folder)
            // Put a copy of a shard-0 tensor into shard 1 as well.
            var writer = SafetensorsWriter()
            for (name, tensor) in tinyBertTensors() where name.hasPrefix("encoder.layer.1.") || name.hasPrefix("pooler") || name == "embeddings.LayerNorm.bias" {
                try writer.add(name, tensor: tensor)
            }
            try writer.write(to: folder.file("model-00002-of-00002.safetensors"))
            #expect(throws: ModelFolderError.tensorInMultipleShards(tensor: "embeddings.LayerNorm.bias", files: [
                folder.file("model-00001-of-00002.safetensors").path, folder.file("model-00002-of-00002.safetensors").path,
            ])) { try ModelFolder(folder.url).openCheckpoint() }
        }
        do {
            let folder = try CheckpointTempFolder()
            try writeShards(folder)
            try Data("{\"weight_map\": [1]}".utf8).write(to: folder.file("model.safetensors.index.json"))
            do {
                _ = try ModelFolder(folder.url)
                Issue.record("expected invalidShardIndex")
            } catch let ModelFolderError.invalidShardIndex(file, _) {
                #expect(file == folder.file("model.safetensors.index.json").path)
            }
        }
    }

    // MARK: Real checkpoints (present only after a setup script ran)

    /// `models/all-MiniLM-L6-v2` (scripts/fetch-model.sh) relative to the package root.
    static let miniLMFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("models/all-MiniLM-L6-v2")

    @Test("Loads the real all-MiniLM-L6-v2 checkpoint (after scripts/fetch-model.sh)",
          .enabled(if: FileManager.default.fileExists(atPath: miniLMFolder.appendingPathComponent("model.safetensors").path)))
    func miniLM() throws {
        let model = try ModelFolder(Self.miniLMFolder)
        let (config, weights) = try model.loadBert(options: .init(rejectNonFinite: true))
        #expect(config.hiddenSize == 384 && config.numHiddenLayers == 6 && config.numAttentionHeads == 12)
        #expect(weights.layers.count == 6)
        #expect(weights.pooler != nil)
        // Reference values printed by Python safetensors 0.8.0 + numpy from the same file.
        let word = weights.embeddings.wordEmbeddings
        #expect(word.shape == [30522, 384])
        #expect([word[101, 0], word[101, 1], word[101, 2], word[101, 3]] ==
                [-0.01761939749121666, -0.007600549608469009, 0.047105543315410614, -0.08691827207803726])
        // Sum in Double of all 11.7M values: only summation order differs from numpy's pairwise float64 sum.
        let sum = word.scalars.reduce(0.0) { $0 + Double($1) }
        #expect(abs(sum - 138.05072214923618) < 1e-6)
        let ln = weights.layers[5].outputLayerNormWeight.scalars
        #expect(Array(ln.prefix(3)) == [0.645970344543457, 0.6747910976409912, 0.6716562509536743])
        #expect(abs(ln.reduce(0.0) { $0 + Double($1) } - 245.77615535109027) < 1e-9)
        #expect(try model.openCheckpoint().nonFiniteTensors().isEmpty)
    }

    // MARK: Fixtures generated by the reference Python stack (transformers 4.57.6)

    @Test("Loads the tiny-bert and tiny-roberta fixtures", arguments: [
        ("tiny-bert", BertConfig.ModelType.bert, [Float(-0.14165233075618744), -0.16781491041183472, -0.4330820143222809], -2.4632404901785776),
        ("tiny-roberta", .roberta, [-0.19957378506660461, -0.08638101071119308, -0.259472519159317], 5.2511267620539),
    ])
    func tinyFixtures(name: String, type: BertConfig.ModelType, row3: [Float], sum: Double) throws {
        let url = checkpointFixturesFolder().deletingLastPathComponent().appendingPathComponent(name)
        let (config, weights) = try ModelFolder(url).loadBert(options: .init(rejectNonFinite: true))
        #expect(config.modelType == type)
        #expect(config.hiddenSize == 32 && config.numHiddenLayers == 2 && config.intermediateSize == 128)
        let w = weights.layers[1].intermediateWeight
        #expect(w.shape == [128, 32])
        // Reference values printed by Python safetensors 0.8.0 + numpy from the same file.
        #expect([w[3, 0], w[3, 1], w[3, 2]] == row3)
        #expect(abs(w.scalars.reduce(0.0) { $0 + Double($1) } - sum) < 1e-9)
        #expect(weights.pooler != nil)
    }

    @Test("Every checked-in .safetensors fixture passes the reader's validation")
    func allFixturesValidate() throws {
        let root = checkpointFixturesFolder().deletingLastPathComponent()
        let enumerator = try #require(FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil))
        var count = 0
        for case let url as URL in enumerator where url.pathExtension == "safetensors" {
            let file = try SafetensorsFile(url: url)
            for name in file.tensorNames {
                let info = try file.info(name)
                if info.dtype.isFloatingPoint {
                    #expect(try file.floats(name).count == info.elementCount)
                } else {
                    #expect(try file.integers(name).count == info.elementCount)
                }
            }
            count += 1
        }
        #expect(count >= 3)  // at least reference-dtypes, tiny-bert, tiny-roberta
    }
}

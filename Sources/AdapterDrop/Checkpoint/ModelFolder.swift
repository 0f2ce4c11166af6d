// A Hugging Face model folder: config.json plus model.safetensors or a sharded safetensors set.
import Foundation

/// Errors from locating the files of a model folder.
public enum ModelFolderError: Error, Equatable, Sendable {
    /// The path does not exist or is not a directory.
    case notADirectory(path: String)
    /// The folder has no `config.json`.
    case missingConfig(folder: String)
    /// The folder has neither `model.safetensors` nor `model.safetensors.index.json`.
    case missingWeights(folder: String)
    /// The folder has only PyTorch pickle weights (`pytorch_model.bin` or its sharded index). They are
    /// never unpickled (arbitrary code execution); convert them to safetensors first.
    case pytorchWeightsOnly(folder: String, file: String)
    /// The shard index is not valid JSON or has no `weight_map` of strings, or names a shard outside the folder.
    case invalidShardIndex(file: String, reason: String)
    /// A shard listed in the index is not in the folder.
    case missingShard(index: String, shard: String)
    /// The index maps a tensor to a shard that does not contain it.
    case shardIndexMismatch(index: String, tensor: String, shard: String)
    /// Two shards contain the same tensor name.
    case tensorInMultipleShards(tensor: String, files: [String])
}

extension ModelFolderError: CustomStringConvertible {
    /// A one-line explanation naming the folder or file.
    public var description: String {
        switch self {
        case let .notADirectory(path): return "\(path): not a directory"
        case let .missingConfig(folder): return "\(folder): no config.json in the model folder"
        case let .missingWeights(folder):
            return "\(folder): no model.safetensors or model.safetensors.index.json in the model folder"
        case let .pytorchWeightsOnly(folder, file):
            return "\(folder): only PyTorch weights (\(file)) found; convert to safetensors first, e.g. "
                + "`python -c \"from transformers import AutoModel; m = AutoModel.from_pretrained('\(folder)'); "
                + "m.save_pretrained('\(folder)', safe_serialization=True)\"` (pickle files are never loaded)"
        case let .invalidShardIndex(file, reason): return "\(file): invalid shard index: \(reason)"
        case let .missingShard(index, shard): return "\(index): shard \"\(shard)\" is not in the folder"
        case let .shardIndexMismatch(index, tensor, shard):
            return "\(index): maps tensor '\(tensor)' to \"\(shard)\", which does not contain it"
        case let .tensorInMultipleShards(tensor, files):
            return "tensor '\(tensor)' appears in more than one shard: \(files.joined(separator: ", "))"
        }
    }
}

/// The files of a Hugging Face model folder (as written by `save_pretrained` or downloaded from the Hub).
///
/// Recognised layout: `config.json`, and either `model.safetensors` or `model.safetensors.index.json`
/// (`{"metadata": {...}, "weight_map": {tensor: shard file}}`) with its shards. A single file wins if both
/// exist. Folders holding only `pytorch_model.bin` (or `pytorch_model.bin.index.json`) are reported with
/// `ModelFolderError.pytorchWeightsOnly` and a conversion hint.
public struct ModelFolder: Sendable {
    /// Where the weights are.
    public enum Weights: Equatable, Sendable {
        /// One `model.safetensors`.
        case single(URL)
        /// A shard index and the distinct shard files it names, sorted.
        case sharded(index: URL, shards: [URL])
    }

    /// The folder.
    public let url: URL
    /// `config.json` inside the folder.
    public let configURL: URL
    /// The safetensors weights found.
    public let weights: Weights
    /// For sharded folders: the index's tensor → shard file name map (empty for a single file).
    public let weightMap: [String: String]

    /// Locates the files of a model folder.
    /// - Parameter url: the folder.
    /// - Throws: `ModelFolderError` (`notADirectory`, `missingConfig`, `missingWeights`,
    ///   `pytorchWeightsOnly`, `invalidShardIndex`, `missingShard`).
    public init(_ url: URL) throws {
        let manager = FileManager.default
        var isDirectory: ObjCBool = false
        guard manager.fileExists(atPath: url.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ModelFolderError.notADirectory(path: url.path)
        }
        self.url = url
        func exists(_ name: String) -> Bool { manager.fileExists(atPath: url.appendingPathComponent(name).path) }

        configURL = url.appendingPathComponent("config.json")
        guard exists("config.json") else { throw ModelFolderError.missingConfig(folder: url.path) }

        if exists("model.safetensors") {
            weights = .single(url.appendingPathComponent("model.safetensors"))
            weightMap = [:]
        } else if exists("model.safetensors.index.json") {
            let indexURL = url.appendingPathComponent("model.safetensors.index.json")
            let map = try Self.readWeightMap(indexURL)
            for shard in Set(map.values) where !exists(shard) {
                throw ModelFolderError.missingShard(index: indexURL.path, shard: shard)
            }
            weights = .sharded(index: indexURL, shards: Set(map.values).sorted().map { url.appendingPathComponent($0) })
            weightMap = map
        } else if let pickle = ["pytorch_model.bin", "pytorch_model.bin.index.json"].first(where: exists) {
            throw ModelFolderError.pytorchWeightsOnly(folder: url.path, file: pickle)
        } else {
            throw ModelFolderError.missingWeights(folder: url.path)
        }
    }

    private static func readWeightMap(_ indexURL: URL) throws -> [String: String] {
        struct Index: Decodable {
            var weightMap: [String: String]
            enum CodingKeys: String, CodingKey { case weightMap = "weight_map" }
        }
        let index: Index
        do {
            let data = try Data(contentsOf: indexURL)
            let root = try JSONParser.parse([UInt8](data), limits: .configFile, keyEquality: .canonicalEquivalence)
            index = try JSONValueDecoder().decode(Index.self, from: root)
        } catch let error as JSONParseError {
            throw ModelFolderError.invalidShardIndex(file: indexURL.path, reason: "not valid JSON: \(error.message)")
        } catch let error as DecodingError {
            throw ModelFolderError.invalidShardIndex(file: indexURL.path, reason: error.oneLineDescription)
        } catch {
            throw ModelFolderError.invalidShardIndex(file: indexURL.path, reason: "cannot read: \(error.localizedDescription)")
        }
        guard !index.weightMap.isEmpty else {
            throw ModelFolderError.invalidShardIndex(file: indexURL.path, reason: "weight_map is empty")
        }
        for shard in Set(index.weightMap.values) {
            // Shards must be plain file names inside the folder (no "../x", no absolute paths).
            guard !shard.isEmpty, !shard.contains("/"), !shard.contains("\\"), shard != ".", shard != ".." else {
                throw ModelFolderError.invalidShardIndex(file: indexURL.path, reason: "shard name \"\(shard)\" is not a file name in the folder")
            }
        }
        return index.weightMap
    }

    /// Reads and validates `config.json`.
    /// - Throws: `ModelConfigError`.
    public func loadConfig() throws -> BertConfig {
        try BertConfig.load(from: configURL)
    }

    /// Maps and validates every safetensors file; for a sharded set, checks that each tensor of the index
    /// is in the shard the index names.
    /// - Parameter options: reading options. The default rejects NaN/±Inf weights (a model with one NaN weight
    ///   otherwise loads silently and predicts NaN); pass `.init(rejectNonFinite: false)` to read them as stored.
    /// - Throws: `SafetensorsError` for a bad file, `ModelFolderError.shardIndexMismatch` /
    ///   `.tensorInMultipleShards`.
    public func openCheckpoint(options: SafetensorsFile.Options = .init(rejectNonFinite: true)) throws -> SafetensorsCheckpoint {
        switch weights {
        case let .single(file):
            return try SafetensorsCheckpoint(url: file, options: options)
        case let .sharded(index, shards):
            let files = try shards.map { try SafetensorsFile(url: $0, options: options) }
            let checkpoint = try SafetensorsCheckpoint(files: files)
            for (tensor, shard) in weightMap.sorted(by: { $0.key < $1.key }) {
                guard checkpoint.file(containing: tensor)?.url.lastPathComponent == shard else {
                    throw ModelFolderError.shardIndexMismatch(index: index.path, tensor: tensor, shard: shard)
                }
            }
            return checkpoint
        }
    }

    /// Loads the config and the encoder weights.
    /// - Parameter options: reading options; by default NaN/±Inf weights are rejected (listed as
    ///   `WeightProblem.Kind.nonFinite` problems naming each tensor).
    /// - Returns: the validated config and weights whose shapes match it.
    /// - Throws: `ModelConfigError`, `SafetensorsError`, `ModelFolderError`, `WeightLoadingError`.
    public func loadBert(options: SafetensorsFile.Options = .init(rejectNonFinite: true)) throws -> (config: BertConfig, weights: BertWeights) {
        let config = try loadConfig()
        let checkpoint = try openCheckpoint(options: options)
        return (config, try BertWeights(config: config, checkpoint: checkpoint))
    }
}

// Library side of `adapterdrop predict` (kept here, next to pruning, so the CLI's logic is testable):
// load a model with adapter/fusion/head folders, check a setup and skip layers, run it and label the logits.
import AdapterCore
import Foundation

/// User-input errors of prediction.
public enum PredictionError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A folder given on the command line does not exist.
    case missingFolder(path: String, what: String)
    /// A skip layer outside `0 ..< layers`.
    case skipLayerOutOfRange(layer: Int, layers: Int)
    /// The setup activates no head and none was named.
    case noHead(setup: String)

    /// A one-line explanation naming the offending layer, head or setup.
    public var description: String {
        switch self {
        case let .missingFolder(path, what):
            return FileManager.default.fileExists(atPath: path) ? "\(path): is a file, not a \(what)" : "\(path): \(what) not found"
        case let .skipLayerOutOfRange(layer, layers): return "skip layer \(layer) is out of range: the model has layers 0...\(layers - 1)"
        case let .noHead(setup): return "the setup \(setup) activates no prediction head; name one with --head"
        }
    }
}

/// One head's predictions, as `adapterdrop predict --json` prints them.
public struct HeadPrediction: Sendable, Equatable, Codable {
    /// The head's name.
    public var name: String
    /// Per example: the logits row `[labels]` (tagging: `[seq·labels]`, token-major).
    public var logits: [[Float]]
    /// Per example: `id2label[argmax]` (or the index as text without a mapping); tagging: the per-token labels
    /// joined by spaces; multi-label: the labels with a positive logit (sigmoid > 0.5) joined by commas;
    /// regression (1 label): the value as text.
    public var labels: [String]
}

/// The predictions of every active head.
public struct PredictionResult: Sendable, Equatable, Codable {
    /// In head order.
    public var heads: [HeadPrediction]
}

extension AdapterModel {
    /// Loads an encoder folder and then adapter folders (each with its head if present), fusion folders (after
    /// all adapters) and extra head folders.
    /// - Throws: `PredictionError.missingFolder` naming a path that is not a folder; loader errors
    ///   (`AdapterError`, `CheckpointError`, …).
    public static func loading(modelFolder: String, adapterFolders: [String], fusionFolders: [String] = [],
                               headFolders: [String] = []) throws -> AdapterModel {
        func folder(_ path: String, _ what: String) throws -> URL {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw PredictionError.missingFolder(path: path, what: what)
            }
            return URL(fileURLWithPath: path)
        }
        let modelURL = try folder(modelFolder, "model folder")
        let urls = (try adapterFolders.map { try folder($0, "adapter folder") }, try fusionFolders.map { try folder($0, "fusion folder") },
                    try headFolders.map { try folder($0, "head folder") })
        var model = AdapterModel(encoder: try BertEncoder(modelFolder: modelURL), modelName: modelURL.lastPathComponent)
        for u in urls.0 { try model.loadAdapter(from: u) }
        for u in urls.1 { try model.loadFusion(from: u) }
        for u in urls.2 { try model.loadHead(from: u) }
        return model
    }

    /// Runs a setup and returns each head's logits per example with labels.
    /// - Parameters:
    ///   - input: `[batch, seq]`.
    ///   - setup: nil for the base model (then `heads` must name at least one head).
    ///   - headNames: `heads`; nil = the setup's default heads.
    ///   - skipLayers: AdapterDrop layers, each in `0 ..< numHiddenLayers`.
    ///   - context: threads, GEMM backend and workspaces the op runs with.
    /// - Throws: `PredictionError.skipLayerOutOfRange`, `.noHead`; setup errors (`AdapterError.unknownAdapter`, …).
    public func predict(_ input: EncoderInput, setup: AdapterComposition?, heads headNames: [String]? = nil,
                        skipLayers: Set<Int> = [], context: ComputeContext) throws -> PredictionResult {
        let layers = encoder.config.numHiddenLayers
        for l in skipLayers.sorted() where l < 0 || l >= layers { throw PredictionError.skipLayerOutOfRange(layer: l, layers: layers) }
        if let setup { try validate(setup: setup, batchSize: input.batchSize) }
        let names = headNames ?? defaultHeads(for: setup)
        if names.isEmpty { throw PredictionError.noHead(setup: setup?.description ?? "none") }
        let out = try self(input, setup: setup, heads: names, skipLayers: skipLayers, context: context)
        return PredictionResult(heads: out.heads.map { h in
            HeadPrediction(name: h.name, logits: h.logits, config: heads[h.name]!.config)
        })
    }
}

extension HeadPrediction {
    /// Labels a head's logits `[rows, labels]` (tagging: `[rows, seq, labels]`) as `predict` does (see `labels`).
    /// - Parameters:
    ///   - name: the head's name.
    ///   - tensor: logits `[rows, labels]` (tagging `[rows, seq, labels]`).
    ///   - config: the head's config (type, label count, `id2label`).
    public init(name: String, logits tensor: Tensor, config: PredictionHeadConfig) {
        let rows = tensor.shape[0], width = tensor.count / max(rows, 1), values = tensor.scalars
        let labelCount = config.numLabels, id2label = config.id2label
        func label(_ row: ArraySlice<Float>) -> String {
            let best = row.indices.max { row[$0] < row[$1] || (row[$0] == row[$1] && $0 > $1) }! - row.startIndex
            return id2label?[best] ?? String(best)
        }
        var logits: [[Float]] = [], labels: [String] = []
        for r in 0..<rows {
            let row = values[(r * width)..<((r + 1) * width)]
            logits.append(Array(row))
            if config.headType == .tagging {
                labels.append(stride(from: row.startIndex, to: row.endIndex, by: labelCount)
                    .map { label(row[$0..<($0 + labelCount)]) }.joined(separator: " "))
            } else if config.headType == .multiLabelClassification {
                labels.append(row.indices.filter { row[$0] > 0 }.map { id2label?[$0 - row.startIndex] ?? String($0 - row.startIndex) }
                    .joined(separator: ","))
            } else if labelCount == 1 {
                labels.append(String(row[row.startIndex]))
            } else {
                labels.append(label(row))
            }
        }
        self.init(name: name, logits: logits, labels: labels)
    }
}

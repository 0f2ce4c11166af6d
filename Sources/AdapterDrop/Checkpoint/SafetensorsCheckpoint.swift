// A checkpoint made of one or more safetensors files (a sharded set), addressed by tensor name.
import AdapterCore
import Foundation

/// One or more safetensors files seen as a single name → tensor map (a Hugging Face sharded checkpoint, or
/// a single `model.safetensors`).
public struct SafetensorsCheckpoint: Sendable {
    /// The opened files, in the order given.
    public let files: [SafetensorsFile]
    private let fileIndex: [String: Int]

    /// Combines opened files.
    /// - Parameter files: the shards; a tensor name may appear in only one of them.
    /// - Throws: `ModelFolderError.tensorInMultipleShards` if two files hold the same name.
    public init(files: [SafetensorsFile]) throws {
        var index: [String: Int] = [:]
        for (position, file) in files.enumerated() {
            for name in file.tensors.keys {
                if let other = index[name] {
                    throw ModelFolderError.tensorInMultipleShards(
                        tensor: name, files: [files[other].url.path, file.url.path])
                }
                index[name] = position
            }
        }
        self.files = files
        fileIndex = index
    }

    /// Opens one file.
    /// - Throws: `SafetensorsError` from `SafetensorsFile.init`.
    public init(url: URL, options: SafetensorsFile.Options = .init()) throws {
        try self.init(files: [SafetensorsFile(url: url, options: options)])
    }

    /// Every tensor name, sorted.
    public var tensorNames: [String] { fileIndex.keys.sorted() }

    /// A short description of where the tensors come from (for error messages): the single file's path or
    /// the folder of the shards.
    public var sourceDescription: String {
        if files.count == 1 { return files[0].url.path }
        let folders = Set(files.map { $0.url.deletingLastPathComponent().path })
        return folders.count == 1 ? "\(folders.first!) (\(files.count) shards)" : files.map(\.url.path).joined(separator: ", ")
    }

    /// The file holding `name`, or nil.
    public func file(containing name: String) -> SafetensorsFile? {
        fileIndex[name].map { files[$0] }
    }

    /// The header entry of `name`, or nil if no file has it.
    public func info(_ name: String) -> SafetensorsTensorInfo? {
        file(containing: name)?.tensors[name]
    }

    /// Reads a float tensor as an fp32 `Tensor` of the stored shape.
    /// - Throws: `SafetensorsError.tensorNotFound`, `.dtypeMismatch` (integer tensor), `.nonFiniteValues` (when
    ///   the file was opened with `rejectNonFinite`).
    public func tensor(_ name: String) throws -> Tensor {
        guard let file = file(containing: name) else {
            throw SafetensorsError.tensorNotFound(file: sourceDescription, tensor: name)
        }
        return try file.tensor(name)
    }

    /// NaN/Inf report over every file (see `SafetensorsFile.nonFiniteTensors()`), sorted by tensor name.
    public func nonFiniteTensors() -> [NonFiniteReport] {
        files.flatMap { $0.nonFiniteTensors() }.sorted { $0.tensor < $1.tensor }
    }
}

extension SafetensorsFile {
    /// Reads a float tensor (F32, F16, BF16, F64) as an fp32 `Tensor` with the stored shape (`[]` for a scalar).
    /// - Throws: as `floats(_:)`.
    public func tensor(_ name: String) throws -> Tensor {
        let info = try info(name)
        return try Tensor(shape: info.shape) { buffer in try readFloats(name, into: buffer) }
    }
}

extension SafetensorsWriter {
    /// Adds a `Tensor` (any layout; non-contiguous views are copied first) with its shape.
    /// - Parameters:
    ///   - name: tensor name.
    ///   - tensor: the values.
    ///   - dtype: F32 (default), F64, F16 or BF16.
    /// - Throws: as `add(_:shape:floats:as:)`.
    public mutating func add(_ name: String, tensor: Tensor, as dtype: SafetensorsDType = .f32) throws {
        let contiguous = tensor.contiguous()
        try contiguous.withUnsafeBufferPointer { try add(name, shape: tensor.shape, floats: $0, as: dtype) }
    }
}

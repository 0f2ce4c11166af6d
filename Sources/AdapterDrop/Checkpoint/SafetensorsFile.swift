// Memory-mapped, validating reader for safetensors files.
import AdapterCore
import Foundation
import Logging

/// Where one tensor lives in a safetensors file and what it holds.
public struct SafetensorsTensorInfo: Equatable, Sendable {
    /// The tensor's name as written in the header, e.g. `encoder.layer.0.attention.self.query.weight`.
    public var name: String
    /// Element type.
    public var dtype: SafetensorsDType
    /// Shape, outermost dimension first (row-major). `[]` is a scalar with one element.
    public var shape: [Int]
    /// Byte range relative to the start of the data section (the header's `data_offsets`).
    public var dataOffsets: Range<Int>

    /// Number of elements (product of `shape`, 1 for a scalar).
    public var elementCount: Int { shape.reduce(1, *) }
    /// Number of bytes (`elementCount * dtype.itemSize`, equal to `dataOffsets.count`).
    public var byteCount: Int { dataOffsets.count }
}

/// Non-finite values found in one tensor by `SafetensorsFile.nonFiniteTensors()`.
public struct NonFiniteReport: Equatable, Sendable, CustomStringConvertible {
    /// Tensor name.
    public var tensor: String
    /// Number of NaN elements.
    public var nanCount: Int
    /// Number of +Inf or -Inf elements.
    public var infinityCount: Int

    /// "name: 3 NaN, 1 Inf".
    public var description: String { "\(tensor): \(nanCount) NaN, \(infinityCount) Inf" }
}

/// A read-only, memory-mapped safetensors file whose header has been fully validated.
///
/// Opening the file maps it with `mmap(PROT_READ, MAP_PRIVATE)`, parses and checks the header, and keeps
/// the mapping until the object is released. Tensor data is only touched when a tensor is read, so opening a
/// multi-gigabyte checkpoint is cheap.
///
/// Checks made at open (each failure throws the `SafetensorsError` case in parentheses):
/// - at least 8 bytes (`fileTooSmall`); header length ≤ `maxHeaderLength` (`headerTooLarge`) and
///   ≤ file size − 8 (`headerLengthPastEnd`);
/// - header is UTF-8 (`invalidHeaderEncoding`), strict JSON nested at most 16 deep, no duplicate keys
///   (`invalidHeaderJSON`), an object whose `__metadata__` (optional) maps strings to strings (`invalidHeader`);
/// - every tensor has a supported `dtype` (`unsupportedDType`), integer `shape` with non-negative dimensions
///   (`negativeDimension`) whose byte size does not overflow (`shapeOverflow`), integer `data_offsets`
///   `[begin, end]` with `begin ≤ end` (`invalidDataOffsets`), `end − begin == elements × item size`
///   (`shapeMismatch`), inside the data section (`tensorOutOfBounds`), not overlapping any other tensor
///   (`overlappingTensors`).
///
/// Unlike the reference reader, gaps between tensors and trailing bytes after the last tensor are accepted
/// (logged at `debug` level): they are harmless for reading and some writers align tensors.
///
/// Reading follows the Hugging Face `safetensors` format (Rust crate `safetensors/src/tensor.rs`).
/// The file must not be truncated while mapped (SIGBUS), as with every mmap-based reader.
public final class SafetensorsFile: @unchecked Sendable {
    // @unchecked Sendable: every stored property is immutable after init and the mapping is read-only.

    /// Largest accepted header, in bytes (the reference's `MAX_HEADER_SIZE`, 100 MB).
    public static let maxHeaderLength = 100_000_000

    /// JSON bounds for the header: at most `maxHeaderLength` bytes, nesting depth 16 (a header needs 3:
    /// root → tensor → shape; the bound keeps input like 10⁶ `[` from exhausting the stack).
    static let headerJSONLimits = JSONParser.Limits(maxDepth: 16, maxBytes: maxHeaderLength)

    /// Options for reading.
    public struct Options: Sendable {
        /// When true, reading a float tensor that contains NaN or ±Inf throws
        /// `SafetensorsError.nonFiniteValues`. Default false.
        public var rejectNonFinite: Bool

        /// - Parameter rejectNonFinite: see `rejectNonFinite`.
        public init(rejectNonFinite: Bool = false) {
            self.rejectNonFinite = rejectNonFinite
        }
    }

    /// The file URL this object was opened from.
    public let url: URL
    /// The string map under `__metadata__` (empty if absent).
    public let metadata: [String: String]
    /// All tensors keyed by name.
    public let tensors: [String: SafetensorsTensorInfo]
    /// Reading options given at open.
    public let options: Options
    /// Size of the data section in bytes (file size − 8 − header length).
    public let dataSectionSize: Int

    private let mapping: MappedFile
    private let dataStart: Int
    private static let logger = Logger(label: "AdapterDrop.Checkpoint")

    /// Tensor names in ascending order.
    public var tensorNames: [String] { tensors.keys.sorted() }

    /// Maps and validates a safetensors file.
    ///
    /// - Parameters:
    ///   - url: a `file:` URL.
    ///   - options: reading options (NaN/Inf rejection).
    /// - Throws: `SafetensorsError` for I/O failures and every format violation listed on the type.
    public convenience init(url: URL, options: Options = Options()) throws {
        try self.init(mapping: MappedFile(path: url.path), url: url, options: options)
    }

    /// Validates an in-memory image as if it were the file `url` (tests).
    convenience init(bytes: [UInt8], url: URL, options: Options = Options()) throws {
        try self.init(mapping: MappedFile(copying: bytes), url: url, options: options)
    }

    private init(mapping: MappedFile, url: URL, options: Options) throws {
        self.url = url
        self.options = options
        let path = url.path
        self.mapping = mapping
        let bytes = mapping.bytes
        guard bytes.count >= 8 else { throw SafetensorsError.fileTooSmall(file: path, size: bytes.count) }
        let headerLength = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
        guard headerLength <= UInt64(Self.maxHeaderLength) else {
            throw SafetensorsError.headerTooLarge(file: path, headerLength: headerLength, limit: Self.maxHeaderLength)
        }
        guard headerLength <= UInt64(bytes.count - 8) else {
            throw SafetensorsError.headerLengthPastEnd(file: path, headerLength: headerLength, fileSize: bytes.count)
        }
        let header = UnsafeRawBufferPointer(rebasing: bytes[8..<(8 + Int(headerLength))])
        dataStart = 8 + Int(headerLength)
        dataSectionSize = bytes.count - dataStart
        (metadata, tensors) = try Self.parseHeader(header, file: path, dataSectionSize: dataSectionSize)
    }

    /// Parses and validates the header bytes; returns the metadata map and the tensor table.
    static func parseHeader(
        _ header: UnsafeRawBufferPointer, file: String, dataSectionSize: Int
    ) throws -> ([String: String], [String: SafetensorsTensorInfo]) {
        let root: JSONValue
        do {
            // Tensor names become `Dictionary` keys, so canonically equivalent names count as duplicates.
            root = try JSONParser.parse(header, limits: headerJSONLimits, keyEquality: .canonicalEquivalence)
        } catch where error.kind == .invalidUTF8 {
            throw SafetensorsError.invalidHeaderEncoding(file: file)
        } catch {
            throw SafetensorsError.invalidHeaderJSON(file: file, reason: error.reason, offset: error.offset)
        }
        guard case let .object(members) = root else {
            throw SafetensorsError.invalidHeader(file: file, reason: "the header is a JSON \(root.typeName), not an object")
        }
        var metadata: [String: String] = [:]
        var tensors: [String: SafetensorsTensorInfo] = [:]
        for (name, value) in members {
            if name == "__metadata__" {
                guard case let .object(entries) = value else {
                    throw SafetensorsError.invalidHeader(file: file, reason: "__metadata__ is a \(value.typeName), not an object")
                }
                for (key, entry) in entries {
                    guard case let .string(text) = entry else {
                        throw SafetensorsError.invalidHeader(
                            file: file, reason: "__metadata__[\"\(key)\"] is a \(entry.typeName), not a string")
                    }
                    metadata[key] = text
                }
                continue
            }
            tensors[name] = try parseTensorEntry(name: name, value: value, file: file, dataSectionSize: dataSectionSize)
        }
        try checkOverlaps(tensors, file: file, dataSectionSize: dataSectionSize)
        return (metadata, tensors)
    }

    private static func parseTensorEntry(
        name: String, value: JSONValue, file: String, dataSectionSize: Int
    ) throws -> SafetensorsTensorInfo {
        func bad(_ reason: String) -> SafetensorsError { .invalidTensorEntry(file: file, tensor: name, reason: reason) }
        guard case .object = value else { throw bad("entry is a \(value.typeName), not an object") }
        func field(_ key: String) -> JSONValue? { value[key] }

        guard let dtypeValue = field("dtype") else { throw bad("missing \"dtype\"") }
        guard case let .string(dtypeName) = dtypeValue else { throw bad("\"dtype\" is not a string") }
        guard let dtype = SafetensorsDType(rawValue: dtypeName) else {
            throw SafetensorsError.unsupportedDType(file: file, tensor: name, dtype: dtypeName)
        }

        guard let shapeValue = field("shape") else { throw bad("missing \"shape\"") }
        guard case let .array(dims) = shapeValue else { throw bad("\"shape\" is not an array") }
        var shape: [Int] = []
        shape.reserveCapacity(dims.count)
        for dim in dims {
            guard let d = dim.exactInt else { throw bad("\"shape\" holds a non-integer or too large value") }
            shape.append(d)
        }
        if shape.contains(where: { $0 < 0 }) {
            throw SafetensorsError.negativeDimension(file: file, tensor: name, shape: shape)
        }
        var byteCount = dtype.itemSize
        for d in shape {
            let (product, overflow) = byteCount.multipliedReportingOverflow(by: d)
            if overflow { throw SafetensorsError.shapeOverflow(file: file, tensor: name, shape: shape) }
            byteCount = product
        }

        guard let offsetsValue = field("data_offsets") else { throw bad("missing \"data_offsets\"") }
        guard case let .array(offsets) = offsetsValue, offsets.count == 2 else {
            throw bad("\"data_offsets\" is not an array of two integers")
        }
        guard let begin = offsets[0].exactInt, let end = offsets[1].exactInt, begin >= 0, end >= 0 else {
            throw bad("\"data_offsets\" must be two non-negative integers that fit in Int")
        }
        guard begin <= end else {
            throw SafetensorsError.invalidDataOffsets(file: file, tensor: name, begin: begin, end: end)
        }
        guard end - begin == byteCount else {
            throw SafetensorsError.shapeMismatch(file: file, tensor: name, expectedBytes: byteCount, actualBytes: end - begin)
        }
        guard end <= dataSectionSize else {
            throw SafetensorsError.tensorOutOfBounds(
                file: file, tensor: name, begin: begin, end: end, dataSectionSize: dataSectionSize)
        }
        return SafetensorsTensorInfo(name: name, dtype: dtype, shape: shape, dataOffsets: begin..<end)
    }

    private static func checkOverlaps(
        _ tensors: [String: SafetensorsTensorInfo], file: String, dataSectionSize: Int
    ) throws {
        // Empty tensors occupy no bytes and cannot overlap anything.
        let ranges = tensors.values.filter { !$0.dataOffsets.isEmpty }
            .sorted { ($0.dataOffsets.lowerBound, $0.name) < ($1.dataOffsets.lowerBound, $1.name) }
        var covered = 0
        var previous: SafetensorsTensorInfo?
        for info in ranges {
            if let previous, info.dataOffsets.lowerBound < previous.dataOffsets.upperBound {
                throw SafetensorsError.overlappingTensors(file: file, first: previous.name, second: info.name)
            }
            covered += info.dataOffsets.count
            // Keep the range reaching furthest so a long tensor is compared against all later ones.
            if previous == nil || info.dataOffsets.upperBound > previous!.dataOffsets.upperBound { previous = info }
        }
        if covered != dataSectionSize {
            logger.debug("\(file): tensors cover \(covered) of \(dataSectionSize) data bytes (gaps or trailing bytes)")
        }
    }

    // MARK: Reading

    /// The header entry of `name`.
    /// - Throws: `SafetensorsError.tensorNotFound`.
    public func info(_ name: String) throws -> SafetensorsTensorInfo {
        guard let info = tensors[name] else { throw SafetensorsError.tensorNotFound(file: url.path, tensor: name) }
        return info
    }

    /// Calls `body` with the raw little-endian bytes of `name` inside the mapping (no copy, any alignment).
    /// The buffer is valid only during the call.
    /// - Throws: `SafetensorsError.tensorNotFound`, or whatever `body` throws.
    public func withRawBytes<R>(of name: String, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        let info = try info(name)
        let start = dataStart + info.dataOffsets.lowerBound
        return try body(UnsafeRawBufferPointer(rebasing: mapping.bytes[start..<(start + info.byteCount)]))
    }

    /// Decodes a float tensor (F32, F16, BF16 or F64) into `destination` as fp32 (exact except F64, which
    /// rounds to nearest).
    /// - Parameters:
    ///   - name: the tensor.
    ///   - destination: exactly `info(name).elementCount` elements.
    /// - Throws: `tensorNotFound`, `dtypeMismatch` for an integer tensor, `nonFiniteValues` if
    ///   `options.rejectNonFinite` is set and the converted tensor holds NaN/Inf (F64 values beyond the fp32
    ///   range count as Inf). `destination` may have been written when it throws.
    public func readFloats(_ name: String, into destination: UnsafeMutableBufferPointer<Float>) throws {
        let info = try info(name)
        guard info.dtype.isFloatingPoint else {
            throw SafetensorsError.dtypeMismatch(file: url.path, tensor: name, dtype: info.dtype.rawValue, requested: "float")
        }
        require(destination.count == info.elementCount,
                     "readFloats(\(name)): destination has \(destination.count) elements, tensor \(info.shape) has \(info.elementCount)")
        try withRawBytes(of: name) { raw in decodeFloats(raw, dtype: info.dtype, into: destination) }
        if options.rejectNonFinite {
            // Checked after conversion, so F64 values beyond the fp32 range count as Inf.
            let (nans, infinities) = countNonFinite(UnsafeRawBufferPointer(destination), dtype: .f32, count: destination.count)
            if nans + infinities > 0 {
                throw SafetensorsError.nonFiniteValues(file: url.path, tensor: name, nanCount: nans, infinityCount: infinities)
            }
        }
    }

    /// A float tensor's values as fp32, row-major, `info(name).elementCount` elements.
    /// - Throws: as `readFloats(_:into:)`.
    public func floats(_ name: String) throws -> [Float] {
        let count = try info(name).elementCount
        return try [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            try readFloats(name, into: UnsafeMutableBufferPointer(rebasing: buffer[0..<count]))
            initialized = count
        }
    }

    /// An integer tensor's values (I64 or I32), row-major.
    /// - Throws: `tensorNotFound`, `dtypeMismatch` for a float tensor, `integerOutOfRange` (32-bit
    ///   platforms only).
    public func integers(_ name: String) throws -> [Int] {
        let info = try info(name)
        let count = info.elementCount
        return try withRawBytes(of: name) { raw -> [Int] in
            switch info.dtype {
            case .i64:
                return try (0..<count).map { i in
                    let value = Int64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self))
                    guard let result = Int(exactly: value) else {
                        throw SafetensorsError.integerOutOfRange(file: url.path, tensor: name, index: i)
                    }
                    return result
                }
            case .i32:
                return (0..<count).map { i in
                    Int(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self)))
                }
            case .f32, .f16, .bf16, .f64:
                throw SafetensorsError.dtypeMismatch(file: url.path, tensor: name, dtype: info.dtype.rawValue, requested: "integer")
            }
        }
    }

    /// Scans every float tensor for NaN and ±Inf (without converting) and reports those that have any,
    /// sorted by name. Reads every float byte of the file once.
    public func nonFiniteTensors() -> [NonFiniteReport] {
        var reports: [NonFiniteReport] = []
        for name in tensorNames {
            guard let info = tensors[name], info.dtype.isFloatingPoint else { continue }
            let (nans, infinities) = (try? withRawBytes(of: name) {
                countNonFinite($0, dtype: info.dtype, count: info.elementCount)
            }) ?? (0, 0)
            if nans + infinities > 0 {
                reports.append(NonFiniteReport(tensor: name, nanCount: nans, infinityCount: infinities))
            }
        }
        return reports
    }
}

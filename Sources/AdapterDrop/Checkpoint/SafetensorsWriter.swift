// Builds safetensors files in memory and writes them atomically.
import Foundation

/// Collects tensors and writes them as one safetensors file.
///
/// Layout written (compatible with Hugging Face `safetensors`, checked by loading the output with the
/// Python package):
/// - 8-byte little-endian header length, then compact JSON: `__metadata__` first (if any), then tensor
///   entries with keys sorted by their UTF-8 bytes, each `{"dtype":…,"shape":[…],"data_offsets":[b,e]}`;
///   the header is padded with spaces to a multiple of 8 bytes, as the reference writer does;
/// - the data section holds the tensors ordered by item size (largest first) and then name, with no gaps,
///   so every tensor starts at an offset that is a multiple of its item size (the reference orders by dtype
///   alignment the same way).
///
/// `write(to:)` is atomic: a temporary file in the destination folder is written, `fsync`ed and renamed over
/// the destination, and the folder is `fsync`ed. A failure leaves an existing destination untouched and
/// removes the temporary file.
public struct SafetensorsWriter: Sendable {
    /// One encoded tensor.
    private struct Entry: Sendable {
        var dtype: SafetensorsDType
        var shape: [Int]
        var bytes: [UInt8]
    }

    /// String-to-string metadata written under `__metadata__` (omitted when empty).
    public var metadata: [String: String]
    private var entries: [String: Entry] = [:]

    /// Test hook: make the write fail with EIO after this many bytes.
    var failAfterBytesForTesting: Int?

    /// Creates an empty writer.
    /// - Parameter metadata: written under `__metadata__`, e.g. `["format": "pt"]`.
    public init(metadata: [String: String] = [:]) {
        self.metadata = metadata
    }

    /// Names of the tensors added so far, sorted.
    public var tensorNames: [String] { entries.keys.sorted() }

    private func check(name: String, shape: [Int], count: Int) throws {
        guard !name.isEmpty, name != "__metadata__" else { throw SafetensorsWriterError.invalidName(name) }
        guard entries[name] == nil else { throw SafetensorsWriterError.duplicateTensor(name) }
        var product = 1
        for d in shape {
            let (next, overflow) = product.multipliedReportingOverflow(by: d)
            guard d >= 0, !overflow else {
                throw SafetensorsWriterError.elementCountMismatch(tensor: name, shape: shape, count: count)
            }
            product = next
        }
        guard product == count else {
            throw SafetensorsWriterError.elementCountMismatch(tensor: name, shape: shape, count: count)
        }
    }

    /// Adds a float tensor.
    ///
    /// - Parameters:
    ///   - name: tensor name (non-empty, not `__metadata__`, not added before).
    ///   - shape: row-major shape; its product must equal `values.count` (`[]` for a scalar).
    ///   - values: fp32 values, row-major.
    ///   - dtype: F32 (default, exact), F64 (exact), F16 or BF16 (round to nearest even; F16 overflows to ±Inf).
    /// - Throws: `SafetensorsWriterError.invalidName`, `.duplicateTensor`, `.elementCountMismatch`,
    ///   `.dtypeMismatch` for an integer dtype.
    public mutating func add(_ name: String, shape: [Int], floats values: [Float], as dtype: SafetensorsDType = .f32) throws {
        try values.withUnsafeBufferPointer { try add(name, shape: shape, floats: $0, as: dtype) }
    }

    /// Adds a float tensor from a buffer (copied). See `add(_:shape:floats:as:)` for the rules.
    public mutating func add(
        _ name: String, shape: [Int], floats values: UnsafeBufferPointer<Float>, as dtype: SafetensorsDType = .f32
    ) throws {
        try check(name: name, shape: shape, count: values.count)
        guard dtype.isFloatingPoint else {
            throw SafetensorsWriterError.dtypeMismatch(tensor: name, dtype: dtype, given: "float")
        }
        entries[name] = Entry(dtype: dtype, shape: shape, bytes: encodeFloats(values, as: dtype))
    }

    /// Adds an integer tensor.
    ///
    /// - Parameters:
    ///   - name: tensor name (non-empty, not `__metadata__`, not added before).
    ///   - shape: row-major shape; its product must equal `values.count`.
    ///   - values: the integers, row-major.
    ///   - dtype: I64 (default) or I32.
    /// - Throws: as the float variant, plus `.integerOutOfRange` when a value does not fit I32.
    public mutating func add(_ name: String, shape: [Int], integers values: [Int], as dtype: SafetensorsDType = .i64) throws {
        try check(name: name, shape: shape, count: values.count)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(values.count * dtype.itemSize)
        switch dtype {
        case .i64:
            for v in values { withUnsafeBytes(of: Int64(v).littleEndian) { bytes.append(contentsOf: $0) } }
        case .i32:
            for v in values {
                guard let narrow = Int32(exactly: v) else {
                    throw SafetensorsWriterError.integerOutOfRange(tensor: name, value: v, dtype: dtype)
                }
                withUnsafeBytes(of: narrow.littleEndian) { bytes.append(contentsOf: $0) }
            }
        case .f32, .f16, .bf16, .f64:
            throw SafetensorsWriterError.dtypeMismatch(tensor: name, dtype: dtype, given: "integer")
        }
        entries[name] = Entry(dtype: dtype, shape: shape, bytes: bytes)
    }

    /// The header block: length prefix, JSON, space padding to a multiple of 8.
    private func headerBytes() -> [UInt8] {
        // Data layout: item size descending, then name; offsets are assigned in that order.
        var offsets: [String: (Int, Int)] = [:]
        var position = 0
        for name in dataOrder {
            let size = entries[name]!.bytes.count
            offsets[name] = (position, position + size)
            position += size
        }

        var json: [UInt8] = [UInt8(ascii: "{")]
        var first = true
        func separator() {
            if !first { json.append(UInt8(ascii: ",")) }
            first = false
        }
        if !metadata.isEmpty {
            separator()
            appendJSONString("__metadata__", to: &json)
            json.append(contentsOf: Array(":{".utf8))
            for (index, key) in metadata.keys.sorted(by: { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }).enumerated() {
                if index > 0 { json.append(UInt8(ascii: ",")) }
                appendJSONString(key, to: &json)
                json.append(UInt8(ascii: ":"))
                appendJSONString(metadata[key]!, to: &json)
            }
            json.append(UInt8(ascii: "}"))
        }
        for name in entries.keys.sorted(by: { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }) {
            let entry = entries[name]!
            let (begin, end) = offsets[name]!
            separator()
            appendJSONString(name, to: &json)
            json.append(contentsOf: Array(":{\"dtype\":".utf8))
            appendJSONString(entry.dtype.rawValue, to: &json)
            json.append(contentsOf: Array(",\"shape\":[\(entry.shape.map(String.init).joined(separator: ","))]".utf8))
            json.append(contentsOf: Array(",\"data_offsets\":[\(begin),\(end)]}".utf8))
        }
        json.append(UInt8(ascii: "}"))
        let padding = (8 - json.count % 8) % 8
        json.append(contentsOf: [UInt8](repeating: UInt8(ascii: " "), count: padding))

        var out: [UInt8] = []
        out.reserveCapacity(8 + json.count)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: json)
        return out
    }

    private var dataOrder: [String] {
        entries.keys.sorted { a, b in
            let (sa, sb) = (entries[a]!.dtype.itemSize, entries[b]!.dtype.itemSize)
            return sa != sb ? sa > sb : Array(a.utf8).lexicographicallyPrecedes(Array(b.utf8))
        }
    }

    /// The complete file contents in memory.
    public func serialized() -> [UInt8] {
        var out = headerBytes()
        for name in dataOrder { out.append(contentsOf: entries[name]!.bytes) }
        return out
    }

    /// Writes the file atomically (temporary file in the same folder, write, fsync, rename, fsync folder).
    ///
    /// - Parameter url: destination `file:` URL; an existing file is replaced only if everything succeeded.
    /// - Throws: `SafetensorsWriterError.ioFailure` naming the failed call; the destination is then
    ///   unchanged and no temporary file is left behind.
    public func write(to url: URL) throws {
        let header = headerBytes()
        let order = dataOrder
        try atomicWrite(path: url.path, failAfterBytes: failAfterBytesForTesting) { emit in
            try header.withUnsafeBytes { try emit($0) }
            for name in order { try entries[name]!.bytes.withUnsafeBytes { try emit($0) } }
        }
    }
}

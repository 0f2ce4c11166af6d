// Typed errors for reading and writing safetensors files. Every case names the file and, where one is
// involved, the tensor, so a user can find the offending entry without a debugger.

/// A safetensors file violates the format or one of the reader's safety bounds.
///
/// The format is the one defined by Hugging Face `safetensors` (the Rust crate's `Metadata::validate` and
/// `SafeTensors::read_metadata`): an 8-byte little-endian header length `N`, `N` bytes of UTF-8 JSON, then the
/// data section that every `data_offsets` pair indexes into. `file` is the path as given to the reader.
public enum SafetensorsError: Error, Equatable, Sendable {
    /// The file could not be opened, inspected or mapped. `errno` is the POSIX error number.
    case ioFailure(file: String, operation: String, errno: Int32)
    /// The path is not a regular file (a directory, a device, ...).
    case notARegularFile(file: String)
    /// The file is shorter than the 8-byte header-length prefix (this includes an empty file).
    case fileTooSmall(file: String, size: Int)
    /// The header length is larger than the reader's limit (`SafetensorsFile.maxHeaderLength`, 100 MB).
    case headerTooLarge(file: String, headerLength: UInt64, limit: Int)
    /// The header length points past the end of the file (`headerLength > fileSize - 8`).
    case headerLengthPastEnd(file: String, headerLength: UInt64, fileSize: Int)
    /// The header bytes are not valid UTF-8.
    case invalidHeaderEncoding(file: String)
    /// The header is not valid JSON (or nests deeper than the reader allows). `offset` is the byte offset
    /// inside the header where parsing failed.
    case invalidHeaderJSON(file: String, reason: String, offset: Int)
    /// The header is valid JSON but not a safetensors header (root not an object, `__metadata__` not a
    /// string map, ...).
    case invalidHeader(file: String, reason: String)
    /// A tensor entry is malformed: missing or mistyped `dtype`, `shape` or `data_offsets`.
    case invalidTensorEntry(file: String, tensor: String, reason: String)
    /// The same tensor name appears twice in the header.
    case duplicateTensor(file: String, tensor: String)
    /// The dtype string is not one this reader supports (F32, F16, BF16, F64, I64, I32).
    case unsupportedDType(file: String, tensor: String, dtype: String)
    /// A dimension of the shape is negative.
    case negativeDimension(file: String, tensor: String, shape: [Int])
    /// The element count or byte count of the shape overflows `Int`.
    case shapeOverflow(file: String, tensor: String, shape: [Int])
    /// `data_offsets` has `end < begin`.
    case invalidDataOffsets(file: String, tensor: String, begin: Int, end: Int)
    /// shape × item size differs from the byte range given by `data_offsets`.
    case shapeMismatch(file: String, tensor: String, expectedBytes: Int, actualBytes: Int)
    /// The byte range lies (partly) outside the data section of `dataSectionSize` bytes.
    case tensorOutOfBounds(file: String, tensor: String, begin: Int, end: Int, dataSectionSize: Int)
    /// Two tensors' byte ranges overlap.
    case overlappingTensors(file: String, first: String, second: String)
    /// No tensor of that name is in the file (or in any shard of a sharded checkpoint).
    case tensorNotFound(file: String, tensor: String)
    /// The caller asked for floating-point values of an integer tensor or vice versa.
    case dtypeMismatch(file: String, tensor: String, dtype: String, requested: String)
    /// The tensor holds NaN or ±Inf values (only thrown when the reader was asked to reject them).
    case nonFiniteValues(file: String, tensor: String, nanCount: Int, infinityCount: Int)
    /// An integer value does not fit `Int` (only possible on 32-bit platforms for I64 data).
    case integerOutOfRange(file: String, tensor: String, index: Int)
}

extension SafetensorsError: CustomStringConvertible {
    /// A one-line explanation naming the file and the tensor.
    public var description: String {
        switch self {
        case let .ioFailure(file, operation, code):
            return "\(file): \(operation) failed: \(posixErrorMessage(code)) (errno \(code))"
        case let .notARegularFile(file):
            return "\(file): not a regular file"
        case let .fileTooSmall(file, size):
            return "\(file): file is \(size) bytes, too small for a safetensors file (needs at least the "
                + "8-byte header length)"
        case let .headerTooLarge(file, length, limit):
            return "\(file): header length \(length) bytes exceeds the limit of \(limit) bytes"
        case let .headerLengthPastEnd(file, length, size):
            return "\(file): header length \(length) bytes points past the end of the file (\(size) bytes, "
                + "so at most \(max(size - 8, 0)) header bytes); the file is truncated or not safetensors"
        case let .invalidHeaderEncoding(file):
            return "\(file): header is not valid UTF-8"
        case let .invalidHeaderJSON(file, reason, offset):
            return "\(file): header is not valid JSON at byte \(offset): \(reason)"
        case let .invalidHeader(file, reason):
            return "\(file): invalid safetensors header: \(reason)"
        case let .invalidTensorEntry(file, tensor, reason):
            return "\(file): tensor '\(tensor)': \(reason)"
        case let .duplicateTensor(file, tensor):
            return "\(file): tensor '\(tensor)' appears more than once"
        case let .unsupportedDType(file, tensor, dtype):
            let supported = SafetensorsDType.allCases.map(\.rawValue).joined(separator: ", ")
            return "\(file): tensor '\(tensor)': unsupported dtype '\(dtype)' (supported: \(supported))"
        case let .negativeDimension(file, tensor, shape):
            return "\(file): tensor '\(tensor)': shape \(shape) has a negative dimension"
        case let .shapeOverflow(file, tensor, shape):
            return "\(file): tensor '\(tensor)': shape \(shape) is too large (element or byte count overflows)"
        case let .invalidDataOffsets(file, tensor, begin, end):
            return "\(file): tensor '\(tensor)': data_offsets [\(begin), \(end)] end before they begin"
        case let .shapeMismatch(file, tensor, expected, actual):
            return "\(file): tensor '\(tensor)': shape and dtype need \(expected) bytes but data_offsets "
                + "cover \(actual) bytes"
        case let .tensorOutOfBounds(file, tensor, begin, end, size):
            return "\(file): tensor '\(tensor)': data_offsets [\(begin), \(end)] lie outside the data "
                + "section of \(size) bytes"
        case let .overlappingTensors(file, first, second):
            return "\(file): tensors '\(first)' and '\(second)' have overlapping data_offsets"
        case let .tensorNotFound(file, tensor):
            return "\(file): no tensor named '\(tensor)'"
        case let .dtypeMismatch(file, tensor, dtype, requested):
            return "\(file): tensor '\(tensor)' has dtype \(dtype) and cannot be read as \(requested)"
        case let .nonFiniteValues(file, tensor, nans, infs):
            return "\(file): tensor '\(tensor)' contains non-finite values (\(nans) NaN, \(infs) Inf)"
        case let .integerOutOfRange(file, tensor, index):
            return "\(file): tensor '\(tensor)': element \(index) does not fit in Int"
        }
    }
}

/// Errors from `SafetensorsWriter`: invalid tensors handed to it, or I/O failures while writing.
public enum SafetensorsWriterError: Error, Equatable, Sendable {
    /// The tensor name is empty or reserved (`__metadata__`).
    case invalidName(String)
    /// A tensor of this name was already added.
    case duplicateTensor(String)
    /// The number of values does not equal the product of the shape (or a dimension is negative).
    case elementCountMismatch(tensor: String, shape: [Int], count: Int)
    /// Float values were given for an integer dtype or integers for a float dtype.
    case dtypeMismatch(tensor: String, dtype: SafetensorsDType, given: String)
    /// An integer value does not fit the target dtype (e.g. I32).
    case integerOutOfRange(tensor: String, value: Int, dtype: SafetensorsDType)
    /// A system call failed; the destination is untouched and the temporary file was removed.
    case ioFailure(file: String, operation: String, errno: Int32)
}

extension SafetensorsWriterError: CustomStringConvertible {
    /// A one-line explanation.
    public var description: String {
        switch self {
        case let .invalidName(name):
            return "invalid tensor name '\(name)' (empty or reserved)"
        case let .duplicateTensor(name):
            return "tensor '\(name)' was added twice"
        case let .elementCountMismatch(tensor, shape, count):
            return "tensor '\(tensor)': shape \(shape) does not match \(count) values"
        case let .dtypeMismatch(tensor, dtype, given):
            return "tensor '\(tensor)': cannot store \(given) values as \(dtype.rawValue)"
        case let .integerOutOfRange(tensor, value, dtype):
            return "tensor '\(tensor)': value \(value) does not fit \(dtype.rawValue)"
        case let .ioFailure(file, operation, code):
            return "\(file): \(operation) failed: \(posixErrorMessage(code)) (errno \(code)); "
                + "the destination was left unchanged"
        }
    }
}

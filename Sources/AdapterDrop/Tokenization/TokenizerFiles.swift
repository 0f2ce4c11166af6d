import Foundation

/// Reads whole tokenizer files with size and UTF-8 checks.
enum TokenizerFiles {
    static func readBytes(_ url: URL, limits: TokenizerLoadingLimits) throws -> [UInt8] {
        let path = url.path
        let attributes: [FileAttributeKey: Any]
        do {
            attributes = try FileManager.default.attributesOfItem(atPath: path)
        } catch {
            throw TokenizerError.fileUnreadable(path: path, reason: "no such file")
        }
        if let type = attributes[.type] as? FileAttributeType, type == .typeDirectory {
            throw TokenizerError.fileUnreadable(path: path, reason: "is a directory")
        }
        if let size = (attributes[.size] as? NSNumber)?.intValue, size > limits.maxFileBytes {
            throw TokenizerError.fileTooLarge(path: path, bytes: size, limit: limits.maxFileBytes)
        }
        // An empty regular file is read without `Data(contentsOf:)`: Foundation (swift-corelibs 6.3) reads a file
        // of size 0 into a 4 KiB buffer that it never frees (LeakSanitizer, docs/reliability.md).
        if (attributes[.size] as? NSNumber)?.intValue == 0, (attributes[.type] as? FileAttributeType) == .typeRegular {
            return []
        }
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw TokenizerError.fileUnreadable(path: path, reason: "\(error)")
        }
        if data.count > limits.maxFileBytes {
            throw TokenizerError.fileTooLarge(path: path, bytes: data.count, limit: limits.maxFileBytes)
        }
        return [UInt8](data)
    }

    /// Decodes UTF-8 strictly, reporting the first invalid byte.
    static func decodeUTF8(_ bytes: [UInt8], path: String) throws -> String {
        if let offset = firstInvalidUTF8Offset(bytes) {
            throw TokenizerError.invalidUTF8(path: path, byteOffset: offset)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func firstInvalidUTF8Offset(_ bytes: [UInt8]) -> Int? { JSONParser.firstInvalidUTF8Offset(bytes) }

    /// Parses a tokenizer JSON file's bytes with the library's JSON parser (`JSONParser`), bounded by
    /// `limits.maxJSONDepth` and `limits.maxFileBytes`. Keys are compared byte for byte, so canonically
    /// equivalent vocabulary entries stay distinct; a key repeated byte for byte is an error.
    /// - Throws: `TokenizerError.invalidUTF8` or `.invalidJSON` naming `path` and the byte offset.
    static func parseJSON(_ bytes: [UInt8], path: String, limits: TokenizerLoadingLimits) throws -> JSONValue {
        do {
            return try JSONParser.parse(
                bytes, limits: JSONParser.Limits(maxDepth: limits.maxJSONDepth, maxBytes: limits.maxFileBytes))
        } catch where error.kind == .invalidUTF8 {
            throw TokenizerError.invalidUTF8(path: path, byteOffset: error.offset)
        } catch {
            throw TokenizerError.invalidJSON(path: path, byteOffset: error.offset, reason: error.reason)
        }
    }

    static func readText(_ url: URL, limits: TokenizerLoadingLimits) throws -> String {
        try decodeUTF8(readBytes(url, limits: limits), path: url.path)
    }
}

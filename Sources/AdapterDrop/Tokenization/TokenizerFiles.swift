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

    static func firstInvalidUTF8Offset(_ bytes: [UInt8]) -> Int? {
        var parser = Unicode.UTF8.ForwardParser()
        var iterator = bytes.makeIterator()
        var offset = 0
        while true {
            switch parser.parseScalar(from: &iterator) {
            case .valid(let encoded): offset += encoded.count
            case .emptyInput: return nil
            case .error(let length): _ = length; return offset
            }
        }
    }

    static func readText(_ url: URL, limits: TokenizerLoadingLimits) throws -> String {
        try decodeUTF8(readBytes(url, limits: limits), path: url.path)
    }
}

// Helpers shared by the Checkpoint*Tests suites: temporary folders and raw safetensors byte builders for
// hand-made bad inputs (every corrupt file is generated here by code, never stored as bytes).
import Foundation
import Testing

/// A fresh temporary folder, removed when the value is released.
final class CheckpointTempFolder {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory
            .appendingPathComponent("adapterdrop-checkpoint-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: url) }

    /// A path inside the folder.
    func file(_ name: String) -> URL { url.appendingPathComponent(name) }

    /// Writes raw bytes and returns the URL.
    @discardableResult
    func write(_ name: String, _ bytes: [UInt8]) throws -> URL {
        let target = file(name)
        try Data(bytes).write(to: target)
        return target
    }

    /// Names of all entries in the folder (including hidden ones), sorted.
    func listing() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: url.path).sorted()
    }
}

/// Builds a safetensors byte image from a header JSON string and a data section, with the header length
/// taken from the JSON unless `claimedHeaderLength` overrides it.
func safetensorsImage(header: String, data: [UInt8] = [], claimedHeaderLength: UInt64? = nil) -> [UInt8] {
    safetensorsImage(headerBytes: Array(header.utf8), data: data, claimedHeaderLength: claimedHeaderLength)
}

/// As above with raw header bytes (for invalid UTF-8).
func safetensorsImage(headerBytes: [UInt8], data: [UInt8] = [], claimedHeaderLength: UInt64? = nil) -> [UInt8] {
    var out: [UInt8] = []
    withUnsafeBytes(of: (claimedHeaderLength ?? UInt64(headerBytes.count)).littleEndian) { out.append(contentsOf: $0) }
    out.append(contentsOf: headerBytes)
    out.append(contentsOf: data)
    return out
}

/// Little-endian bytes of fp32 values.
func float32Bytes(_ values: [Float]) -> [UInt8] {
    values.flatMap { v in withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) } }
}

/// The folder holding checked-in checkpoint fixtures (`Tests/Fixtures/checkpoint`).
func checkpointFixturesFolder(_ filePath: String = #filePath) -> URL {
    URL(fileURLWithPath: filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/checkpoint")
}

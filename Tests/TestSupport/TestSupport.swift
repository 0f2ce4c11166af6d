// Shared helpers for the test targets: tolerance checks that report the worst mismatches, a seeded
// generator for test data, and NaN-filled buffers for the beta-zero and padding rules.
import Foundation
import Testing

/// A small, seeded, platform-independent generator (SplitMix64) for test data.
public struct TestRNG: Sendable {
    private var state: UInt64

    /// - Parameter seed: the same seed gives the same sequence on every platform.
    public init(seed: UInt64) { state = seed }

    /// Next raw 64-bit value.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [lo, hi).
    public mutating func uniform(_ lo: Float = -1, _ hi: Float = 1) -> Float {
        let u = Float(next() >> 40) / Float(1 << 24)
        return lo + (hi - lo) * u
    }

    /// `count` uniform values in [lo, hi).
    public mutating func uniformArray(_ count: Int, _ lo: Float = -1, _ hi: Float = 1) -> [Float] {
        (0..<count).map { _ in uniform(lo, hi) }
    }

    /// `count` small integers in [-range, range] as Float: products and sums of these are exact in
    /// fp32 for the sizes the tests use, so every ISA must agree bitwise (tier A).
    public mutating func smallIntegers(_ count: Int, range: Int = 4) -> [Float] {
        (0..<count).map { _ in Float(Int(next() % UInt64(2 * range + 1)) - range) }
    }
}

/// Result of comparing an fp32 result against a reference.
public struct CloseReport: CustomStringConvertible, Sendable {
    /// Largest |actual - expected|.
    public var maxAbsError: Double = 0
    /// Largest |actual - expected| / max(|expected|, tiny).
    public var maxRelError: Double = 0
    /// Number of elements outside atol + rtol * |expected|.
    public var failures = 0
    /// The first few failing elements as "index: actual vs expected".
    public var firstFailures: [String] = []

    public var description: String {
        let head = firstFailures.isEmpty ? "" : ", first: " + firstFailures.joined(separator: "; ")
        return "max abs err \(maxAbsError), max rel err \(maxRelError), failures \(failures)\(head)"
    }
}

/// Compares elementwise with `|actual - expected| <= atol + rtol * |expected|`. NaN in either side
/// fails unless both are NaN; infinities must match exactly.
public func compareClose(_ actual: [Float], _ expected: [Double], atol: Double, rtol: Double) -> CloseReport {
    var report = CloseReport()
    precondition(actual.count == expected.count, "compareClose: \(actual.count) vs \(expected.count) elements")
    for i in 0..<actual.count {
        let a = Double(actual[i]), e = expected[i]
        var ok: Bool
        if a.isNaN || e.isNaN {
            ok = a.isNaN && e.isNaN
        } else if a.isInfinite || e.isInfinite {
            ok = a == e
        } else {
            let err = abs(a - e)
            report.maxAbsError = max(report.maxAbsError, err)
            report.maxRelError = max(report.maxRelError, err / max(abs(e), 1e-30))
            ok = err <= atol + rtol * abs(e)
        }
        if !ok {
            report.failures += 1
            if report.firstFailures.count < 5 { report.firstFailures.append("[\(i)]: \(a) vs \(e)") }
        }
    }
    return report
}

/// Records a test issue (at the caller's location) when `actual` is not within tolerance of
/// `expected`, printing the worst errors and first mismatches. Returns the report so tests can log it.
@discardableResult
public func expectClose(
    _ actual: [Float], _ expected: [Double], atol: Double, rtol: Double, _ what: String = "",
    sourceLocation: SourceLocation = #_sourceLocation
) -> CloseReport {
    let report = compareClose(actual, expected, atol: atol, rtol: rtol)
    if report.failures > 0 {
        Issue.record("\(what): \(report)", sourceLocation: sourceLocation)
    }
    return report
}

/// Overload for fp32 expectations.
@discardableResult
public func expectClose(
    _ actual: [Float], _ expected: [Float], atol: Double, rtol: Double, _ what: String = "",
    sourceLocation: SourceLocation = #_sourceLocation
) -> CloseReport {
    expectClose(actual, expected.map(Double.init), atol: atol, rtol: rtol, what, sourceLocation: sourceLocation)
}

/// Records a test issue unless the two arrays are bitwise identical (tier A), naming the first
/// differing index.
public func expectBitwiseEqual(
    _ actual: [Float], _ expected: [Float], _ what: String = "",
    sourceLocation: SourceLocation = #_sourceLocation
) {
    guard actual.count == expected.count else {
        Issue.record("\(what): \(actual.count) vs \(expected.count) elements", sourceLocation: sourceLocation)
        return
    }
    for i in 0..<actual.count where actual[i].bitPattern != expected[i].bitPattern {
        Issue.record("\(what): first bitwise difference at [\(i)]: \(actual[i]) vs \(expected[i])",
                     sourceLocation: sourceLocation)
        return
    }
}

/// A buffer of `count` quiet NaNs: outputs that must not be read (beta == 0) and padding beyond a
/// row (ld > cols) start out as NaN so a kernel that reads them is caught.
public func nanFilled(_ count: Int) -> [Float] { [Float](repeating: .nan, count: count) }

/// The committed fixtures folder, `Tests/Fixtures`, located from this source file so tests work from
/// any working directory.
public func fixtureURL(_ relativePath: String) -> URL {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures").appendingPathComponent(relativePath)
}

/// The repository's `models/` folder (git-ignored; filled by `scripts/fetch-model.sh`), or nil if the
/// named model has not been fetched.
public func fetchedModelURL(_ name: String) -> URL? {
    let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("models").appendingPathComponent(name)
    return FileManager.default.fileExists(atPath: url.appendingPathComponent("config.json").path) ? url : nil
}

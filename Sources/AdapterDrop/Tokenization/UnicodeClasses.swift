/// A set of Unicode scalars stored as sorted inclusive ranges, with a bitmap for the Latin-1 block.
import AdapterCore
struct ScalarSet: Sendable {
    private let starts: [UInt32]
    private let ends: [UInt32]
    private let low: [Bool]  // 0..<256

    /// Parses the `GeneratedUnicodeTables` format: comma-separated hex code points or ranges `A-B`, wrapped
    /// at a fixed width.
    init(table: String) {
        var starts: [UInt32] = []
        var ends: [UInt32] = []
        // the literal is wrapped at fixed width, possibly inside a number: drop the line breaks first
        for item in String(table.unicodeScalars.filter { $0 != "\n" }).split(separator: ",") {
            let parts = item.split(separator: "-")
            guard let a = UInt32(parts[0], radix: 16) else { preconditionFailure("bad table entry \(item)") }
            let b = parts.count > 1 ? UInt32(parts[1], radix: 16)! : a
            starts.append(a)
            ends.append(b)
        }
        require(zip(starts.dropFirst(), ends).allSatisfy { $0 > $1 }, "table not sorted")
        self.starts = starts
        self.ends = ends
        var low = [Bool](repeating: false, count: 256)
        for (a, b) in zip(starts, ends) where a < 256 {
            for v in a...min(b, 255) { low[Int(v)] = true }
        }
        self.low = low
    }

    @inline(__always)
    func contains(_ value: UInt32) -> Bool {
        if value < 256 { return low[Int(value)] }
        var lo = 0
        var hi = starts.count
        while lo < hi {
            let mid = (lo + hi) >> 1
            if starts[mid] <= value { lo = mid + 1 } else { hi = mid }
        }
        return lo > 0 && value <= ends[lo - 1]
    }
}

/// Character classes shared by the tokenizers, probed from HF `tokenizers` (see `GeneratedUnicodeTables`).
enum CharacterClasses {
    static let bertControl = ScalarSet(table: GeneratedUnicodeTables.bertControl)
    static let bertWhitespace = ScalarSet(table: GeneratedUnicodeTables.bertWhitespace)
    static let bertPunctuation = ScalarSet(table: GeneratedUnicodeTables.bertPunctuation)
    static let nonspacingMark = ScalarSet(table: GeneratedUnicodeTables.nonspacingMark)
    static let regexLetter = ScalarSet(table: GeneratedUnicodeTables.regexLetter)
    static let regexNumber = ScalarSet(table: GeneratedUnicodeTables.regexNumber)
    static let regexWhitespace = ScalarSet(table: GeneratedUnicodeTables.regexWhitespace)

    /// The CJK ideograph blocks HF's `BertNormalizer` pads with spaces. As in HF `tokenizers` (and unlike
    /// Google BERT's `_is_chinese_char`, which starts that block at U+2B820), the Extension E block starts at
    /// U+2B920; the exhaustive Unicode test checks the ranges against HF.
    @inline(__always)
    static func isCJK(_ v: UInt32) -> Bool {
        (0x4E00...0x9FFF).contains(v) || (0x3400...0x4DBF).contains(v) || (0x20000...0x2A6DF).contains(v)
            || (0x2A700...0x2B73F).contains(v) || (0x2B740...0x2B81F).contains(v) || (0x2B920...0x2CEAF).contains(v)
            || (0xF900...0xFAFF).contains(v) || (0x2F800...0x2FA1F).contains(v)
    }

    /// Rust `char::is_whitespace` (Unicode White_Space), used by `BertPreTokenizer`'s whitespace split.
    @inline(__always)
    static func isWhitespace(_ v: UInt32) -> Bool {
        if v < 0x80 { return v == 0x20 || (v >= 0x09 && v <= 0x0D) }
        return Unicode.Scalar(v)?.properties.isWhitespace ?? false
    }
}

// Composition blocks (adapters 1.3.0 `composition.py`): the setup tree, its validation and a parser for the
// reference notation.
import Foundation

/// An adapter setup: which adapters run and how they combine (AdapterHub composition blocks).
///
/// Allowed nestings (composition.py L166–174): Stack ⊃ {name, Fuse, Parallel, BatchSplit, Average};
/// Fuse ⊃ {name, Stack}; Parallel ⊃ {name, Stack, BatchSplit, Average}; BatchSplit ⊃ {name, Stack,
/// BatchSplit, Average}; Average ⊃ {name, Stack, BatchSplit}. Below level 1 only Stack or a name is allowed,
/// and a Stack below level 0 may only hold names. `validate()` checks this.
public indirect enum AdapterComposition: Sendable, Equatable, CustomStringConvertible {
    /// One adapter by name.
    case adapter(String)
    /// Adapters applied one after the other.
    case stack([AdapterComposition])
    /// The same input through each child; the batch is replicated N times at the first active layer.
    case parallel([AdapterComposition])
    /// AdapterFusion over the children; `name` selects a fusion trained over a superset (pruning).
    case fuse([AdapterComposition], name: String?)
    /// Consecutive batch slices of the given sizes through the children.
    case batchSplit([AdapterComposition], batchSizes: [Int])
    /// The children's outputs averaged with weights (already normalised when parsed): (Σ wᵢ hᵢ)/N.
    case average([AdapterComposition], weights: [Float])

    /// The block's children (empty for a name).
    public var children: [AdapterComposition] {
        switch self {
        case .adapter: return []
        case let .stack(c), let .parallel(c), let .fuse(c, _), let .batchSplit(c, _), let .average(c, _): return c
        }
    }

    /// The block's class name as in the reference (`Stack`, `Fuse`, …) or the adapter name in quotes.
    public var typeName: String {
        switch self {
        case let .adapter(n): return "\"\(n)\""
        case .stack: return "Stack"
        case .parallel: return "Parallel"
        case .fuse: return "Fuse"
        case .batchSplit: return "BatchSplit"
        case .average: return "Average"
        }
    }

    /// The first adapter name (depth-first), as `first()`.
    public var first: String {
        if case let .adapter(n) = self { return n }
        return children[0].first
    }

    /// The last adapter name, as `last()`.
    public var last: String {
        if case let .adapter(n) = self { return n }
        return children[children.count - 1].last
    }

    /// All adapter names in the setup.
    public var flattened: Set<String> {
        if case let .adapter(n) = self { return [n] }
        return children.reduce(into: Set<String>()) { $0.formUnion($1.flattened) }
    }

    /// The replication factor: a Parallel's child count, else the largest among children (`parallel_channels`).
    public var parallelChannels: Int {
        switch self {
        case .adapter: return 1
        case let .parallel(c): return c.count
        default: return children.map(\.parallelChannels).max() ?? 1
        }
    }

    /// A Fuse block's fusion name: the explicit name, else the children's (last) names joined by commas.
    public var fusionName: String? {
        guard case let .fuse(c, name) = self else { return nil }
        return name ?? c.map(\.last).joined(separator: ",")
    }

    /// The reference notation, e.g. `Stack(Fuse(a,b),c)`.
    public var description: String {
        func list(_ c: [AdapterComposition]) -> String { c.map(\.description).joined(separator: ",") }
        switch self {
        case let .adapter(n): return Self.quotedIfNeeded(n)
        case let .stack(c): return "Stack(\(list(c)))"
        case let .parallel(c): return "Parallel(\(list(c)))"
        case let .fuse(c, name): return "Fuse(\(list(c))\(name.map { ",name=\(Self.quotedIfNeeded($0))" } ?? ""))"
        case let .batchSplit(c, sizes): return "BatchSplit(\(list(c)),batch_sizes=[\(sizes.map(String.init).joined(separator: ","))])"
        case let .average(c, w): return "Average(\(list(c)),weights=[\(w.map { "\($0)" }.joined(separator: ","))])"
        }
    }

    /// A name as `parse` reads it back: bare when it is non-empty, does not start with a quote and has none of
    /// `(),=[]` or whitespace (a bare name may contain quotes after its first character), else in double quotes
    /// (single quotes if it contains a double quote). Checked on Unicode scalars, as `parse` reads them: a quote
    /// followed by a combining mark is still a quote.
    static func quotedIfNeeded(_ name: String) -> String {
        isBare(name) ? name : quoted(name)
    }

    /// True when `name` can be printed without quotes (see `quotedIfNeeded`).
    static func isBare(_ name: String) -> Bool {
        let special: Set<Unicode.Scalar> = ["(", ")", ",", "=", "[", "]"]
        guard let first = name.unicodeScalars.first, first != "\"", first != "'" else { return false }
        return !name.unicodeScalars.contains { special.contains($0) || $0.properties.isWhitespace }
            && name != "none" && name != "None"
    }

    /// True when `name` has a printed form that `parse` reads back: bare, or without one of the two quote
    /// characters (a quoted name cannot contain its own quote; there is no escape, as in the reference).
    public static func isPrintable(name: String) -> Bool {
        isBare(name) || !(name.unicodeScalars.contains("\"") && name.unicodeScalars.contains("'"))
    }

    /// `name` in double quotes, or in single quotes if it contains a double quote. (A name with both kinds of
    /// quote, which a bare name in `parse` may have, has no printed form that reads back.)
    static func quoted(_ name: String) -> String {
        name.unicodeScalars.contains("\"") ? "'\(name)'" : "\"\(name)\""
    }

    /// The setup as the reference activates it: a bare name at the top becomes `Stack(name)`
    /// (`parse_composition` level 0).
    public var normalized: AdapterComposition {
        if case .adapter = self { return .stack([self]) }
        return self
    }

    /// Checks nesting and depth as `validate_composition` and `check_composition_valid` do.
    /// - Throws: `AdapterError.illegalNesting(parent:child:)` naming both blocks, `.compositionTooDeep`,
    ///   `.invalidSetup` for an empty block or mismatched sizes/weights.
    public func validate(level: Int = 0) throws {
        if level > 1 {
            switch self {
            case .adapter, .stack: break
            default: throw AdapterError.compositionTooDeep(block: typeName, level: level)
            }
        }
        if case .adapter = self { return }
        guard !children.isEmpty else { throw AdapterError.invalidSetup(text: description, reason: "\(typeName) has no children") }
        if case let .batchSplit(c, sizes) = self, sizes.count != c.count || sizes.contains(where: { $0 < 0 }) {
            throw AdapterError.invalidSetup(text: description, reason: "BatchSplit needs one non-negative size per child")
        }
        if case let .average(c, w) = self, w.count != c.count {
            throw AdapterError.invalidSetup(text: description, reason: "Average needs one weight per child")
        }
        for child in children {
            if case .adapter = child { continue }
            let allowed: Bool
            switch (self, child) {
            case (.stack, .fuse), (.stack, .parallel), (.stack, .batchSplit), (.stack, .average): allowed = true
            case (.fuse, .stack): allowed = true
            case (.parallel, .stack), (.parallel, .batchSplit), (.parallel, .average): allowed = true
            case (.batchSplit, .stack), (.batchSplit, .batchSplit), (.batchSplit, .average): allowed = true
            case (.average, .stack), (.average, .batchSplit): allowed = true
            default: allowed = false
            }
            guard allowed else { throw AdapterError.illegalNesting(parent: typeName, child: child.typeName) }
            if case .stack = self, level >= 1 { throw AdapterError.compositionTooDeep(block: child.typeName, level: level + 1) }
            try child.validate(level: level + 1)
        }
    }

    /// Throws if a `Parallel` or `Fuse` anywhere in the setup lists the same child twice (`Parallel(a,a)`).
    ///
    /// Parallel channels and Fuse members are keyed by adapter (head outputs, fusion weights), so the same child
    /// twice silently collapses two channels into one. The reference accepts it and so do `parse` and `validate`
    /// (the multi-task plan tests replicate one adapter on purpose); user-facing entry points (`adapterdrop
    /// predict`) call this to reject it.
    /// - Throws: `AdapterError.invalidSetup` naming the block and the repeated child.
    public func checkDistinctChildren() throws {
        switch self {
        case .parallel, .fuse:
            var seen = Set<String>()
            for child in children where !seen.insert(child.description).inserted {
                throw AdapterError.invalidSetup(text: description, reason: "\(typeName) lists \(child.description) twice")
            }
        default: break
        }
        for child in children { try child.checkDistinctChildren() }
    }

    // MARK: - Parsing

    /// Parses the reference notation: `a`, `Stack(a,b)`, `Parallel(a,b)`, `Fuse(a,b)`,
    /// `Fuse(a,b,name="a,b,c")`, `Stack(Fuse(a,b),c)`, `BatchSplit(a,b,batch_sizes=[1,2])` (or one integer for
    /// all), `Average(a,b,weights=[0.3,0.7])` (normalised by their sum), and `none` (nil). Names may be
    /// quoted; whitespace is ignored. Split and MultiTask are rejected as unsupported. The result is
    /// validated (a bare name stays a name; see `normalized`).
    /// - Throws: `AdapterError.invalidSetup` with the reason, `.unsupportedBlock`, nesting errors.
    public static func parse(_ text: String) throws -> AdapterComposition? {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed == "none" || trimmed == "None" || trimmed.isEmpty { return nil }
        var parser = SetupParser(text: text)
        let result = try parser.parseBlock()
        parser.skipSpaces()
        guard parser.atEnd else { throw AdapterError.invalidSetup(text: text, reason: "unexpected text after position \(parser.position)") }
        try result.validate()
        return result
    }
}

/// Recursive-descent parser for the setup notation. It walks Unicode scalars, not `Character`s: a name that
/// starts with a combining mark (U+0300…) would otherwise fuse with the preceding quote, `(` or `,` into one
/// grapheme and hide it from the parser, so the printed form of such a name did not read back.
/// Positions in error messages count Unicode scalars.
private struct SetupParser {
    let text: String
    let chars: [Unicode.Scalar]
    var index = 0
    init(text: String) { self.text = text; chars = Array(text.unicodeScalars) }
    /// Largest accepted `BatchSplit` entry (rows of one split); far above any batch this library can hold.
    static let maxBatchSplitSize = 1 << 24
    var atEnd: Bool { index >= chars.count }
    var position: Int { index }

    mutating func skipSpaces() { while index < chars.count, chars[index].properties.isWhitespace { index += 1 } }

    func fail(_ reason: String) -> AdapterError { .invalidSetup(text: text, reason: reason) }

    mutating func expect(_ c: Unicode.Scalar) throws {
        skipSpaces()
        guard index < chars.count, chars[index] == c else { throw fail("expected '\(c)' at position \(index)") }
        index += 1
    }

    mutating func peek() -> Unicode.Scalar? { skipSpaces(); return index < chars.count ? chars[index] : nil }

    /// A name: quoted string, or a run of characters other than `(),=[]` and whitespace.
    mutating func parseName() throws -> String {
        skipSpaces()
        guard index < chars.count else { throw fail("expected a name at the end") }
        if chars[index] == "\"" || chars[index] == "'" {
            let quote = chars[index]; index += 1
            var s = String.UnicodeScalarView()
            while index < chars.count, chars[index] != quote { s.append(chars[index]); index += 1 }
            guard index < chars.count else { throw fail("unterminated quoted name") }
            index += 1
            guard !s.isEmpty else { throw fail("empty name") }
            return String(s)
        }
        var s = String.UnicodeScalarView()
        while index < chars.count, !"(),=[]".unicodeScalars.contains(chars[index]), !chars[index].properties.isWhitespace {
            s.append(chars[index]); index += 1
        }
        guard !s.isEmpty else { throw fail("expected a name at position \(index)") }
        return String(s)
    }

    mutating func parseNumberList() throws -> [Double] {
        skipSpaces()
        if peek() != "[" {
            let t = try parseName()
            guard let v = Double(t), v.isFinite else { throw fail("\"\(t)\" is not a finite number") }
            return [v]
        }
        try expect("[")
        var out: [Double] = []
        if peek() == "]" { index += 1; return out }
        while true {
            let t = try parseName()
            guard let v = Double(t), v.isFinite else { throw fail("\"\(t)\" is not a finite number") }
            out.append(v)
            if peek() == "," { index += 1; continue }
            try expect("]")
            return out
        }
    }

    mutating func parseBlock() throws -> AdapterComposition {
        let name = try parseName()
        guard peek() == "(" else { return .adapter(name) }
        let blocks = ["Stack", "Parallel", "Fuse", "BatchSplit", "Average"]
        guard blocks.contains(name) else {
            if name == "Split" || name == "MultiTask" { throw AdapterError.unsupportedBlock(name) }
            throw fail("unknown block \"\(name)\" (Stack, Parallel, Fuse, BatchSplit, Average)")
        }
        index += 1
        var children: [AdapterComposition] = []
        var kwargs: [String: [Double]] = [:]
        var fuseName: String?
        if peek() == ")" { throw fail("\(name) has no children") }
        while true {
            let save = index
            let word = try parseName()
            if peek() == "=" {
                index += 1
                switch (name, word) {
                case ("Fuse", "name"): fuseName = try parseName()
                case ("BatchSplit", "batch_sizes"), ("Average", "weights"): kwargs[word] = try parseNumberList()
                case ("Average", "normalize_weights"):
                    let v = try parseName()
                    kwargs[word] = [v == "True" || v == "true" ? 1 : 0]
                default: throw fail("\(name) has no argument \"\(word)\"")
                }
            } else {
                index = save
                guard kwargs.isEmpty && fuseName == nil else { throw fail("child after a keyword argument in \(name)") }
                children.append(try parseBlock())
            }
            if peek() == "," { index += 1; continue }
            try expect(")")
            break
        }
        switch name {
        case "Stack": return .stack(children)
        case "Parallel": return .parallel(children)
        case "Fuse": return .fuse(children, name: fuseName)
        case "BatchSplit":
            guard let sizes = kwargs["batch_sizes"] else { throw fail("BatchSplit needs batch_sizes=[…]") }
            // Bounded before converting: Int(Double) traps above Int.max (a fuzz find: batch_sizes=155…5).
            let ints = try sizes.map { size -> Int in
                guard size == size.rounded(), size >= 0 else { throw fail("batch_sizes must be non-negative integers") }
                guard let int = Int(exactly: size), int <= Self.maxBatchSplitSize else {
                    throw fail("batch_sizes entry \(size) is larger than \(Self.maxBatchSplitSize)")
                }
                return int
            }
            return .batchSplit(children, batchSizes: ints.count == 1 && children.count > 1 ? Array(repeating: ints[0], count: children.count) : ints)
        default:
            var weights = kwargs["weights"] ?? Array(repeating: 1 / Double(children.count), count: children.count)
            if kwargs["weights"] != nil, (kwargs["normalize_weights"]?.first ?? 1) != 0 {
                let sum = weights.reduce(0, +)
                weights = weights.map { $0 / (sum == 0 ? 1 : sum) }
            }
            return .average(children, weights: weights.map { Float($0) })
        }
    }
}

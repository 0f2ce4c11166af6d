/// The GPT-2 split of HF's `ByteLevel` pre-tokenizer, written as a scanner with the exact leftmost-first
/// semantics of the Oniguruma regex
/// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`.
enum ByteLevelPreTokenizer {
    @inline(__always) static func isLetter(_ v: UInt32) -> Bool { CharacterClasses.regexLetter.contains(v) }
    @inline(__always) static func isNumber(_ v: UInt32) -> Bool { CharacterClasses.regexNumber.contains(v) }
    @inline(__always) static func isSpace(_ v: UInt32) -> Bool { CharacterClasses.regexWhitespace.contains(v) }
    @inline(__always) static func isOther(_ v: UInt32) -> Bool { !isSpace(v) && !isLetter(v) && !isNumber(v) }

    static func split(_ s: [UInt32], into pieces: inout [Range<Int>]) {
        let n = s.count
        var i = 0
        while i < n {
            let c = s[i]
            // contractions
            if c == 0x27, i + 1 < n {
                let c1 = s[i + 1]
                if c1 == 0x73 || c1 == 0x74 || c1 == 0x6D || c1 == 0x64 {  // s t m d
                    pieces.append(i..<(i + 2)); i += 2; continue
                }
                if i + 2 < n {
                    let c2 = s[i + 2]
                    if (c1 == 0x72 && c2 == 0x65) || (c1 == 0x76 && c2 == 0x65) || (c1 == 0x6C && c2 == 0x6C) {  // re ve ll
                        pieces.append(i..<(i + 3)); i += 3; continue
                    }
                }
            }
            // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+` in that order (a space is never L, N or other)
            let hasSpace = c == 0x20 && i + 1 < n
            var matched = false
            for predicate in [isLetter, isNumber, isOther] as [(UInt32) -> Bool] {
                var j: Int
                if predicate(c) {
                    j = i + 1
                } else if hasSpace && predicate(s[i + 1]) {
                    j = i + 2
                } else {
                    continue
                }
                while j < n && predicate(s[j]) { j += 1 }
                pieces.append(i..<j)
                i = j
                matched = true
                break
            }
            if matched { continue }
            // whitespace: `\s+(?!\S)` (backs off one so the last space joins the next word), then `\s+`
            var j = i + 1
            while j < n && isSpace(s[j]) { j += 1 }
            if j == n || j - i == 1 {
                pieces.append(i..<j)
                i = j
            } else {
                pieces.append(i..<(j - 1))
                i = j - 1
            }
        }
    }

    /// GPT-2 `bytes_to_unicode`: printable bytes map to themselves, the rest to U+0100 upward in byte order.
    static let byteToScalar: [UInt32] = {
        var table = [UInt32](repeating: 0, count: 256)
        var next: UInt32 = 256
        for b in 0..<256 {
            if (33...126).contains(b) || (161...172).contains(b) || (174...255).contains(b) {
                table[b] = UInt32(b)
            } else {
                table[b] = next
                next += 1
            }
        }
        return table
    }()
}

/// Byte-level BPE (HF `models/bpe` with a `ByteLevel` pre-tokenizer): each pre-token's UTF-8 bytes start
/// as single-byte symbols, then the adjacent pair with the lowest merge rank is merged (leftmost first)
/// until no ranked pair remains.
struct ByteLevelBPEModel: Sendable {
    let vocabulary: Vocabulary
    /// (left id, right id) → (rank, merged id)
    let merges: MergeTable
    /// vocabulary id of each byte's mapped character, or -1
    let byteIDs: [Int32]
    let unknownID: Int32?
    let ignoreMerges: Bool

    func tokenize(_ bytes: [UInt8], into ids: inout [Int32]) {
        if ignoreMerges {
            var mapped: [UInt8] = []
            for b in bytes { UTF8.encode(Unicode.Scalar(ByteLevelPreTokenizer.byteToScalar[Int(b)])!) { mapped.append($0) } }
            if let id = mapped.withUnsafeBufferPointer({ vocabulary.lookup($0) }) { ids.append(id); return }
        }
        var symbols: [Int32] = []
        symbols.reserveCapacity(bytes.count)
        for b in bytes {
            let id = byteIDs[Int(b)]
            if id >= 0 { symbols.append(id) } else if let unk = unknownID { symbols.append(unk) }
        }
        while symbols.count > 1 {
            var bestRank = UInt64.max
            var bestPosition = -1
            var bestID: Int32 = 0
            for i in 0..<(symbols.count - 1) {
                let m = merges.lookup(symbols[i], symbols[i + 1])
                if m != MergeTable.missing, m >> 32 < bestRank {
                    bestRank = m >> 32
                    bestPosition = i
                    bestID = Int32(truncatingIfNeeded: m & 0xFFFF_FFFF)
                }
            }
            if bestPosition < 0 { break }
            symbols[bestPosition] = bestID
            symbols.remove(at: bestPosition + 1)
        }
        ids.append(contentsOf: symbols)
    }
}

/// Open-addressing map (left id, right id) → (rank << 32 | merged id), with a multiplicative hash: merge
/// lookups dominate BPE time and the standard `Dictionary`'s SipHash is several times slower.
struct MergeTable: Sendable {
    static let missing = UInt64.max
    private var keys: [UInt64]
    private var values: [UInt64]
    private let shift: UInt64
    private let mask: Int

    init(capacity: Int) {
        var bits: UInt64 = 4
        while (1 << bits) < capacity * 2 { bits += 1 }
        keys = [UInt64](repeating: .max, count: 1 << bits)
        values = [UInt64](repeating: .max, count: 1 << bits)
        shift = 64 - bits
        mask = (1 << Int(bits)) - 1
    }

    @inline(__always)
    private static func key(_ a: Int32, _ b: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: a)) << 32 | UInt64(UInt32(bitPattern: b))
    }

    /// Inserts unless present (the first, lowest-rank occurrence of a pair wins, as in HF).
    mutating func insertIfAbsent(_ a: Int32, _ b: Int32, rank: Int, mergedID: Int32) {
        let k = Self.key(a, b)
        var slot = Int((k &* 0x9E37_79B9_7F4A_7C15) >> shift)
        while keys[slot] != .max {
            if keys[slot] == k { return }
            slot = (slot + 1) & mask
        }
        keys[slot] = k
        values[slot] = UInt64(rank) << 32 | UInt64(UInt32(bitPattern: mergedID))
    }

    @inline(__always)
    func lookup(_ a: Int32, _ b: Int32) -> UInt64 {
        let k = Self.key(a, b)
        var slot = Int((k &* 0x9E37_79B9_7F4A_7C15) >> shift)
        while true {
            let stored = keys[slot]
            if stored == k { return values[slot] }
            if stored == .max { return Self.missing }
            slot = (slot + 1) & mask
        }
    }
}

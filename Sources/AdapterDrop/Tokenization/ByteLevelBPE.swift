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
        if symbols.count > Self.heapThreshold && symbols.count < Int(UInt32.max) {
            mergeWithHeap(&symbols)
        } else {
            mergeByScanning(&symbols)
        }
        ids.append(contentsOf: symbols)
    }

    /// Pre-tokens with more symbols than this are merged with `mergeWithHeap` (a scan per merge is faster
    /// for the short pieces of ordinary text).
    static let heapThreshold = 32

    /// Applies merges by rescanning every adjacent pair before each merge: O(n²) for n symbols.
    func mergeByScanning(_ symbols: inout [Int32]) {
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
    }

    /// The same merges as `mergeByScanning` in O(n log n) (HF `Word::merge_all` also keeps a priority queue):
    /// a min-heap of (rank, position of the left symbol) over a linked list of symbols. Equal ranks pop the
    /// leftmost position first, which is the scan's "lowest rank, leftmost" choice. An entry whose pair has
    /// since changed (either symbol merged away) is skipped when popped: a pair's rank identifies the pair,
    /// so the entry is current exactly when the pair now at its position has that rank.
    /// A long run of letters or digits is one pre-token, so without this a 1 MB word took ~10¹² lookups.
    func mergeWithHeap(_ symbols: inout [Int32]) {
        let n = symbols.count
        var next = [Int](unsafeUninitializedCapacity: n) { b, c in for i in 0..<n { b[i] = i + 1 }; c = n }
        var previous = [Int](unsafeUninitializedCapacity: n) { b, c in for i in 0..<n { b[i] = i - 1 }; c = n }
        var removed = [Bool](repeating: false, count: n)
        var heap = MinHeap()
        heap.reserve(n)
        @inline(__always) func push(_ i: Int) {
            let j = next[i]
            guard j < n else { return }
            let m = merges.lookup(symbols[i], symbols[j])
            if m != MergeTable.missing { heap.push((m >> 32) << 32 | UInt64(i)) }
        }
        for i in 0..<(n - 1) { push(i) }
        while let top = heap.pop() {
            let i = Int(top & 0xFFFF_FFFF)
            let rank = top >> 32
            if removed[i] { continue }
            let j = next[i]
            guard j < n else { continue }
            let m = merges.lookup(symbols[i], symbols[j])
            guard m != MergeTable.missing, m >> 32 == rank else { continue }
            symbols[i] = Int32(truncatingIfNeeded: m & 0xFFFF_FFFF)
            removed[j] = true
            next[i] = next[j]
            if next[j] < n { previous[next[j]] = i }
            if previous[i] >= 0 { push(previous[i]) }
            push(i)
        }
        var out: [Int32] = []
        out.reserveCapacity(n)
        var i = 0
        while i < n { out.append(symbols[i]); i = next[i] }
        symbols = out
    }
}

/// A binary min-heap of `UInt64` keys (BPE merges: rank in the high half, position in the low half).
struct MinHeap {
    private var items: [UInt64] = []

    mutating func reserve(_ n: Int) { items.reserveCapacity(n) }

    mutating func push(_ key: UInt64) {
        items.append(key)
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            if items[parent] <= items[i] { break }
            items.swapAt(parent, i)
            i = parent
        }
    }

    mutating func pop() -> UInt64? {
        guard let last = items.popLast() else { return nil }
        guard !items.isEmpty else { return last }
        let top = items[0]
        items[0] = last
        var i = 0
        let count = items.count
        while true {
            let l = 2 * i + 1
            if l >= count { break }
            let r = l + 1
            let child = r < count && items[r] < items[l] ? r : l
            if items[i] <= items[child] { break }
            items.swapAt(i, child)
            i = child
        }
        return top
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

/// Token ↔ id map keyed by the exact UTF-8 bytes of each token (so exact Unicode scalars, as in HF; Swift
/// `String` equality would merge canonically equivalent tokens). Open addressing over a flat byte buffer.
struct Vocabulary: Sendable {
    private var storage: [UInt8] = []
    private var offsets: [Int] = [0]          // token i occupies storage[offsets[i]..<offsets[i+1]]
    private var tokenIDs: [Int32] = []         // id of token i
    private var slots: [Int32]                 // index into tokens, -1 = empty
    private var mask: Int
    /// id → token string for ids below `denseIDLimit` (missing ids map to nil).
    private var tokensByID: [String?] = []
    /// id → token string for ids at or above `denseIDLimit`: a file may give any id up to `Int32.max`, and
    /// a dense table up to such an id would take up to 32 GiB (`{"a": 2147483646}` in a 20-byte vocab.json).
    private var sparseTokensByID: [Int32: String] = [:]
    /// Ids below this are kept in the dense table: 4 × the capacity + 1024, so ids a little past the entry
    /// count (added tokens, gaps) stay dense while the table stays linear in the file's size.
    private let denseIDLimit: Int
    /// Longest token, in UTF-8 bytes (WordPiece bounds its candidate lengths by it).
    private(set) var maxTokenBytes = 0

    var count: Int { tokenIDs.count }

    init(capacity: Int) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        slots = [Int32](repeating: -1, count: size)
        mask = size - 1
        denseIDLimit = min(max(capacity, 0), Int(Int32.max) / 8) * 4 + 1024
    }

    @inline(__always)
    private static func hash(_ bytes: UnsafeBufferPointer<UInt8>) -> Int {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 }
        return Int(truncatingIfNeeded: h ^ (h >> 29))
    }

    /// Inserts `token` with `id`; returns false if the token is already present (nothing changes).
    mutating func insert(_ token: String, id: Int32) -> Bool {
        var bytes = Array(token.utf8)
        let existing = bytes.withUnsafeBufferPointer { lookup($0) }
        if existing != nil { return false }
        if (tokenIDs.count + 1) * 2 > slots.count { grow() }
        let index = Int32(tokenIDs.count)
        storage.append(contentsOf: bytes)
        offsets.append(storage.count)
        tokenIDs.append(id)
        let h = bytes.withUnsafeBufferPointer { Self.hash($0) }
        var slot = h & mask
        while slots[slot] >= 0 { slot = (slot + 1) & mask }
        slots[slot] = index
        maxTokenBytes = max(maxTokenBytes, bytes.count)
        if Int(id) >= denseIDLimit {
            sparseTokensByID[id] = token
        } else {
            if Int(id) >= tokensByID.count { tokensByID.append(contentsOf: repeatElement(nil, count: Int(id) + 1 - tokensByID.count)) }
            tokensByID[Int(id)] = token
        }
        bytes.removeAll()
        return true
    }

    private mutating func grow() {
        let size = slots.count * 2
        slots = [Int32](repeating: -1, count: size)
        mask = size - 1
        storage.withUnsafeBufferPointer { all in
            for i in 0..<tokenIDs.count {
                let key = UnsafeBufferPointer(rebasing: all[offsets[i]..<offsets[i + 1]])
                var slot = Self.hash(key) & mask
                while slots[slot] >= 0 { slot = (slot + 1) & mask }
                slots[slot] = Int32(i)
            }
        }
    }

    /// The id of the token whose UTF-8 bytes are exactly `key`.
    @inline(__always)
    func lookup(_ key: UnsafeBufferPointer<UInt8>) -> Int32? {
        var slot = Self.hash(key) & mask
        return storage.withUnsafeBufferPointer { all -> Int32? in
            while true {
                let index = Int(slots[slot])
                if index < 0 { return nil }
                let start = offsets[index]
                let end = offsets[index + 1]
                if end - start == key.count {
                    var equal = true
                    var i = 0
                    while i < key.count {
                        if all[start + i] != key[i] { equal = false; break }
                        i += 1
                    }
                    if equal { return tokenIDs[index] }
                }
                slot = (slot + 1) & mask
            }
        }
    }

    func id(of token: String) -> Int32? {
        var t = token
        return t.withUTF8 { lookup($0) }
    }

    func token(of id: Int32) -> String? {
        let i = Int(id)
        if i >= denseIDLimit { return sparseTokensByID[id] }
        return i >= 0 && i < tokensByID.count ? tokensByID[i] : nil
    }
}

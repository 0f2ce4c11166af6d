/// Token ↔ id map keyed by the exact UTF-8 bytes of each token (so exact Unicode scalars, as in HF; Swift
/// `String` equality would merge canonically equivalent tokens). Open addressing over a flat byte buffer.
struct Vocabulary: Sendable {
    private var storage: [UInt8] = []
    private var offsets: [Int] = [0]          // token i occupies storage[offsets[i]..<offsets[i+1]]
    private var tokenIDs: [Int32] = []         // id of token i
    private var slots: [Int32]                 // index into tokens, -1 = empty
    private var mask: Int
    /// id → token string (ids need not be dense; missing ids map to nil).
    private(set) var tokensByID: [String?] = []

    var count: Int { tokenIDs.count }

    init(capacity: Int) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        slots = [Int32](repeating: -1, count: size)
        mask = size - 1
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
        if Int(id) >= tokensByID.count { tokensByID.append(contentsOf: repeatElement(nil, count: Int(id) + 1 - tokensByID.count)) }
        tokensByID[Int(id)] = token
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
        return i >= 0 && i < tokensByID.count ? tokensByID[i] : nil
    }
}

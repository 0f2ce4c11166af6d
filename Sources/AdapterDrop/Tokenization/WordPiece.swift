import Foundation

/// `BertNormalizer` of HF `tokenizers` (normalizers/bert.rs): clean text, pad CJK ideographs with spaces,
/// strip accents (NFD, drop Mn), lowercase — in that order, as the Rust fast tokenizer does (the Python
/// slow tokenizer lowercases before stripping accents; the outputs agree except where they differ, and we
/// follow the fast one).
struct BertNormalizer: Sendable {
    var cleanText: Bool
    var handleChineseChars: Bool
    var stripAccents: Bool
    var lowercase: Bool

    func normalize(_ input: ArraySlice<UInt32>) -> [UInt32] {
        var out: [UInt32] = []
        out.reserveCapacity(input.count + 8)
        var nonASCII = false
        for v in input {
            if cleanText {
                if CharacterClasses.bertControl.contains(v) { continue }
                if CharacterClasses.bertWhitespace.contains(v) { out.append(0x20); continue }
            }
            if handleChineseChars && v >= 0x3400 && CharacterClasses.isCJK(v) {
                out.append(0x20); out.append(v); out.append(0x20)
                nonASCII = true
                continue
            }
            if v >= 0x80 { nonASCII = true }
            out.append(v)
        }
        if stripAccents && nonASCII {
            let input = out
            out.removeAll(keepingCapacity: true)
            // NFD run by run; scalars HF's (older) normalization data does not decompose are kept as they are
            var runStart = 0
            func flush(_ end: Int) {
                guard end > runStart else { return }
                var s = String.UnicodeScalarView()
                s.append(contentsOf: input[runStart..<end].map { Unicode.Scalar($0)! })
                for scalar in String(s).decomposedStringWithCanonicalMapping.unicodeScalars
                where !CharacterClasses.nonspacingMark.contains(scalar.value) {
                    out.append(scalar.value)
                }
            }
            for (i, v) in input.enumerated() where v >= 0x1_1900 && UnicodeOverrides.keepUndecomposed.contains(v) {
                flush(i)
                out.append(v)
                runStart = i + 1
            }
            flush(input.count)
        }
        if lowercase {
            if nonASCII {
                var lowered: [UInt32] = []
                lowered.reserveCapacity(out.count)
                for v in out {
                    if v < 0x80 {
                        lowered.append(v >= 0x41 && v <= 0x5A ? v + 32 : v)
                    } else if let mapped = UnicodeOverrides.lowercase[v] {
                        lowered.append(contentsOf: mapped)
                    } else {
                        let scalar = Unicode.Scalar(v)!
                        if scalar.properties.changesWhenLowercased {
                            lowered.append(contentsOf: scalar.properties.lowercaseMapping.unicodeScalars.map(\.value))
                        } else {
                            lowered.append(v)
                        }
                    }
                }
                out = lowered
            } else {
                for i in out.indices where out[i] >= 0x41 && out[i] <= 0x5A { out[i] += 32 }
            }
        }
        return out
    }
}

/// Per-code-point corrections where Swift's Unicode data differs from the Rust crates HF uses, found by the
/// exhaustive test in `TokenizerUnicodeTests` (every code point through every normalizer configuration).
enum UnicodeOverrides {
    /// Lowercase mappings that differ (none with Swift 6.3 vs `tokenizers` 0.22.2).
    static let lowercase: [UInt32: [UInt32]] = [:]
    /// Scalars with a canonical decomposition in Swift's Unicode data but not in HF's
    /// `unicode-normalization-alignments` tables: U+11938 DIVES AKURU VOWEL SIGN O (Unicode 13).
    static let keepUndecomposed: Set<UInt32> = [0x11938]
}

/// `BertPreTokenizer`: split on whitespace (dropped) and isolate every punctuation character.
enum BertPreTokenizer {
    /// Appends the word ranges of `text` to `words`.
    static func split(_ text: [UInt32], into words: inout [Range<Int>]) {
        var start = -1
        for (i, v) in text.enumerated() {
            if CharacterClasses.isWhitespace(v) {
                if start >= 0 { words.append(start..<i); start = -1 }
            } else if CharacterClasses.bertPunctuation.contains(v) {
                if start >= 0 { words.append(start..<i); start = -1 }
                words.append(i..<(i + 1))
            } else if start < 0 {
                start = i
            }
        }
        if start >= 0 { words.append(start..<text.count) }
    }
}

/// WordPiece greedy longest-match-first (HF `models/wordpiece`): a word longer than
/// `maxInputCharsPerWord` Unicode scalars, or one with any unmatched remainder, becomes the unknown token.
struct WordPieceModel: Sendable {
    let vocabulary: Vocabulary
    let unknownID: Int32
    let continuingPrefix: [UInt8]
    let maxInputCharsPerWord: Int

    /// Buffers reused across the words of one text.
    struct Scratch {
        var bytes: [UInt8] = []
        var bounds: [Int] = []
        var candidate: [UInt8] = []
    }

    func tokenize(_ word: ArraySlice<UInt32>, into ids: inout [Int32]) {
        var scratch = Scratch()
        tokenize(word, into: &ids, scratch: &scratch)
    }

    func tokenize(_ word: ArraySlice<UInt32>, into ids: inout [Int32], scratch buffers: inout Scratch) {
        let n = word.count
        if n > maxInputCharsPerWord { ids.append(unknownID); return }
        var bytes = buffers.bytes
        var bounds = buffers.bounds
        var scratch = buffers.candidate
        buffers = Scratch()  // take ownership (no copy-on-write), give back at the end
        defer { buffers = Scratch(bytes: bytes, bounds: bounds, candidate: scratch) }
        bytes.removeAll(keepingCapacity: true)
        bounds.removeAll(keepingCapacity: true)
        for v in word {
            bounds.append(bytes.count)
            if v < 0x80 { bytes.append(UInt8(v)) } else { UTF8.encode(Unicode.Scalar(v)!) { bytes.append($0) } }
        }
        bounds.append(bytes.count)
        let mark = ids.count
        scratch.removeAll(keepingCapacity: true)
        scratch.append(contentsOf: continuingPrefix)
        let p = continuingPrefix.count
        // No candidate longer than the longest vocabulary entry can match: skipping those keeps a long word at
        // O(n · longest token) lookups instead of O(n²) (a tokenizer.json may set max_input_chars_per_word high).
        let longest = vocabulary.maxTokenBytes
        var start = 0
        while start < n {
            let prefixBytes = start == 0 ? 0 : p
            // Every scalar takes at least one byte, so candidates end at most `longest − prefix` scalars on.
            var end = min(n, start + max(longest - prefixBytes, 0))
            while end > start && prefixBytes + bounds[end] - bounds[start] > longest { end -= 1 }
            var found: Int32? = nil
            if start == 0 {
                bytes.withUnsafeBufferPointer { all in
                    while end > start {
                        if let id = vocabulary.lookup(UnsafeBufferPointer(rebasing: all[bounds[start]..<bounds[end]])) {
                            found = id
                            break
                        }
                        end -= 1
                    }
                }
            } else {
                scratch.removeSubrange(p...)
                scratch.append(contentsOf: bytes[bounds[start]..<bounds[end]])  // (not to the word's end: O(n²) copies)
                scratch.withUnsafeBufferPointer { all in
                    while end > start {
                        let length = p + bounds[end] - bounds[start]
                        if let id = vocabulary.lookup(UnsafeBufferPointer(rebasing: all[0..<length])) {
                            found = id
                            break
                        }
                        end -= 1
                    }
                }
            }
            guard let id = found else {
                ids.removeSubrange(mark...)
                ids.append(unknownID)
                return
            }
            ids.append(id)
            start = end
        }
    }
}

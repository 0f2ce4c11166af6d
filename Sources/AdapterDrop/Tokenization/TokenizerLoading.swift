import Foundation

extension SubwordTokenizer {
    /// Loads a BERT WordPiece tokenizer from a `vocab.txt` (one token per line, id = line index), built like
    /// `transformers.BertTokenizerFast(vocab_file)`: `BertNormalizer` + `BertPreTokenizer` + WordPiece +
    /// `[CLS] A [SEP] B [SEP]` with the special tokens as non-normalized added tokens.
    ///
    /// Lines are split on "\n" only (a trailing "\r" is removed, as Rust `BufRead::lines` does), so tokens
    /// containing U+0085, U+2028 or other Unicode line breaks stay intact.
    ///
    /// - Parameters:
    ///   - vocabularyFile: path of `vocab.txt` (UTF-8).
    ///   - lowercase: `do_lower_case`.
    ///   - stripAccents: `strip_accents`; nil follows `lowercase` (HF default).
    ///   - tokenizeChineseChars: pad CJK ideographs with spaces.
    ///   - unknownToken: replaces words the vocabulary cannot split (must be in the vocabulary).
    ///   - classifierToken: starts every sequence (must be in the vocabulary).
    ///   - separatorToken: ends each sequence of the input (must be in the vocabulary).
    ///   - padToken: fills padded positions (must be in the vocabulary).
    ///   - maskToken: registered as a special token when the vocabulary has it.
    ///   - maxInputCharsPerWord: longer words (in Unicode scalars) become `[UNK]` (HF default 100).
    ///   - limits: file size and entry count bounds.
    /// - Throws: `TokenizerError` naming the file: unreadable, too large, invalid UTF-8, empty, duplicate
    ///   entry (with its line), too many entries, or a required special token missing.
    public static func bertWordPiece(
        vocabularyFile: URL, lowercase: Bool = true, stripAccents: Bool? = nil, tokenizeChineseChars: Bool = true,
        unknownToken: String = "[UNK]", classifierToken: String = "[CLS]", separatorToken: String = "[SEP]",
        padToken: String = "[PAD]", maskToken: String = "[MASK]", maxInputCharsPerWord: Int = 100,
        limits: TokenizerLoadingLimits = TokenizerLoadingLimits()
    ) throws -> SubwordTokenizer {
        let path = vocabularyFile.path
        let bytes = try TokenizerFiles.readBytes(vocabularyFile, limits: limits)
        if let offset = TokenizerFiles.firstInvalidUTF8Offset(bytes) {
            throw TokenizerError.invalidUTF8(path: path, byteOffset: offset)
        }
        var lines = bytes.split(separator: 0x0A, omittingEmptySubsequences: false)
        if lines.last?.isEmpty == true { lines.removeLast() }
        if lines.isEmpty { throw TokenizerError.emptyVocabulary(path: path) }
        if lines.count > limits.maxEntries { throw TokenizerError.tooManyEntries(path: path, count: lines.count, limit: limits.maxEntries) }
        var vocabulary = Vocabulary(capacity: lines.count)
        for (index, line) in lines.enumerated() {
            let body = line.last == 0x0D ? line.dropLast() : line
            let token = String(decoding: body, as: UTF8.self)
            if !vocabulary.insert(token, id: Int32(index)) {
                throw TokenizerError.duplicateVocabularyEntry(path: path, token: token, line: index + 1)
            }
        }
        func require(_ token: String) throws -> Int32 {
            guard let id = vocabulary.id(of: token) else { throw TokenizerError.tokenNotInVocabulary(path: path, token: token) }
            return id
        }
        let unk = try require(unknownToken)
        let cls = try require(classifierToken)
        let sep = try require(separatorToken)
        let pad = try require(padToken)
        var added: [AddedToken] = []
        for token in [padToken, unknownToken, classifierToken, separatorToken, maskToken] {
            if let id = vocabulary.id(of: token) {
                added.append(AddedToken(content: token.unicodeScalars.map(\.value), id: id, special: true,
                                        lstrip: false, rstrip: false, normalized: false))
            }
        }
        let model = WordPieceModel(vocabulary: vocabulary, unknownID: unk, continuingPrefix: Array("##".utf8),
                                   maxInputCharsPerWord: maxInputCharsPerWord)
        return SubwordTokenizer(
            normalizer: BertNormalizer(cleanText: true, handleChineseChars: tokenizeChineseChars,
                                       stripAccents: stripAccents ?? lowercase, lowercase: lowercase),
            model: .wordPiece(model), addedTokens: added,
            singleTemplate: [.special(id: cls, token: classifierToken, typeID: 0), .sequence(first: true, typeID: 0),
                             .special(id: sep, token: separatorToken, typeID: 0)],
            pairTemplate: [.special(id: cls, token: classifierToken, typeID: 0), .sequence(first: true, typeID: 0),
                           .special(id: sep, token: separatorToken, typeID: 0), .sequence(first: false, typeID: 1),
                           .special(id: sep, token: separatorToken, typeID: 1)],
            vocabulary: vocabulary, padTokenID: Int(pad), padToken: padToken)
    }

    /// Loads a RoBERTa byte-level BPE tokenizer from `vocab.json` + `merges.txt`, built like
    /// `transformers.RobertaTokenizerFast(vocab_file, merges_file)`: `ByteLevel` pre-tokenizer, BPE without
    /// an unknown token, `<s> A </s></s> B </s>` (type ids all 0), `<mask>` with `lstrip`.
    ///
    /// - Parameters:
    ///   - vocabularyFile: `vocab.json`, an object token → id (read with the library's JSON parser: keys
    ///     compared byte for byte, ids integer literals).
    ///   - mergesFile: `merges.txt`, one `left right` pair per line in rank order (an optional `#version`
    ///     first line is skipped).
    ///   - addPrefixSpace: add a space before the text, as `add_prefix_space` does.
    ///   - beginToken: starts every sequence (must be in the vocabulary).
    ///   - endToken: ends every sequence (must be in the vocabulary).
    ///   - padToken: fills padded positions (must be in the vocabulary).
    ///   - unknownToken: registered as a special token when the vocabulary has it (byte-level BPE never
    ///     produces it).
    ///   - maskToken: registered as a special token with `lstrip` when the vocabulary has it.
    ///   - limits: file size, entry count and JSON depth bounds.
    /// - Throws: `TokenizerError` naming the file: unreadable, too large, invalid UTF-8 or JSON, empty or
    ///   duplicate entries, a malformed merge line, a merge whose parts or result are not in the vocabulary.
    public static func byteLevelBPE(
        vocabularyFile: URL, mergesFile: URL, addPrefixSpace: Bool = false,
        beginToken: String = "<s>", endToken: String = "</s>", padToken: String = "<pad>", unknownToken: String = "<unk>",
        maskToken: String = "<mask>", limits: TokenizerLoadingLimits = TokenizerLoadingLimits()
    ) throws -> SubwordTokenizer {
        let vocabPath = vocabularyFile.path
        let json = try TokenizerFiles.parseJSON(try TokenizerFiles.readBytes(vocabularyFile, limits: limits),
                                                path: vocabPath, limits: limits)
        guard let members = json.members else { throw TokenizerError.missingKey(path: vocabPath, key: "<top-level object>") }
        let vocabulary = try buildVocabulary(members, path: vocabPath, key: "", limits: limits)
        let mergesPath = mergesFile.path
        let text = try TokenizerFiles.readText(mergesFile, limits: limits)
        var pairs: [(String, String)] = []
        var lineNumber = 0
        for raw in text.utf8.split(separator: 0x0A, omittingEmptySubsequences: false) {
            lineNumber += 1
            let line = raw.last == 0x0D ? raw.dropLast() : raw
            if lineNumber == 1 && line.starts(with: Array("#version".utf8)) { continue }
            if line.isEmpty && lineNumber > 1 { continue }
            let parts = line.split(separator: 0x20, omittingEmptySubsequences: false)
            guard parts.count == 2 else {
                throw TokenizerError.invalidMerge(path: mergesPath, line: lineNumber, text: String(decoding: line, as: UTF8.self))
            }
            pairs.append((String(decoding: parts[0], as: UTF8.self), String(decoding: parts[1], as: UTF8.self)))
            if pairs.count > limits.maxEntries { throw TokenizerError.tooManyEntries(path: mergesPath, count: pairs.count, limit: limits.maxEntries) }
        }
        let model = try buildBPE(vocabulary: vocabulary, merges: pairs, unknownToken: nil, ignoreMerges: false, path: mergesPath)
        func require(_ token: String) throws -> Int32 {
            guard let id = vocabulary.id(of: token) else { throw TokenizerError.tokenNotInVocabulary(path: vocabPath, token: token) }
            return id
        }
        let bos = try require(beginToken)
        let eos = try require(endToken)
        let pad = try require(padToken)
        var added: [AddedToken] = []
        for token in [beginToken, padToken, endToken, unknownToken, maskToken] {
            if let id = vocabulary.id(of: token) {
                added.append(AddedToken(content: token.unicodeScalars.map(\.value), id: id, special: true,
                                        lstrip: token == maskToken, rstrip: false, normalized: false))
            }
        }
        return SubwordTokenizer(
            normalizer: nil, model: .byteLevelBPE(model, addPrefixSpace: addPrefixSpace), addedTokens: added,
            singleTemplate: robertaTemplate(bos, beginToken, eos, endToken, pair: false),
            pairTemplate: robertaTemplate(bos, beginToken, eos, endToken, pair: true),
            vocabulary: vocabulary, padTokenID: Int(pad), padToken: padToken)
    }

    static func robertaTemplate(_ cls: Int32, _ clsToken: String, _ sep: Int32, _ sepToken: String, pair: Bool) -> [TemplateItem] {
        var items: [TemplateItem] = [.special(id: cls, token: clsToken, typeID: 0), .sequence(first: true, typeID: 0),
                                     .special(id: sep, token: sepToken, typeID: 0)]
        if pair {
            items += [.special(id: sep, token: sepToken, typeID: 0), .sequence(first: false, typeID: 0),
                      .special(id: sep, token: sepToken, typeID: 0)]
        }
        return items
    }

    static func buildVocabulary(_ members: [JSONMember], path: String, key: String,
                                limits: TokenizerLoadingLimits) throws -> Vocabulary {
        if members.isEmpty { throw TokenizerError.emptyVocabulary(path: path) }
        if members.count > limits.maxEntries { throw TokenizerError.tooManyEntries(path: path, count: members.count, limit: limits.maxEntries) }
        var vocabulary = Vocabulary(capacity: members.count)
        var seenIDs = Set<Int32>()
        for member in members {
            guard let id = member.value.exactInt, id >= 0, id < Int(Int32.max) else {
                throw TokenizerError.missingKey(path: path, key: key.isEmpty ? member.key : "\(key).\(member.key)")
            }
            if !vocabulary.insert(member.key, id: Int32(id)) {
                throw TokenizerError.duplicateVocabularyEntry(path: path, token: member.key, line: 0)
            }
            if !seenIDs.insert(Int32(id)).inserted { throw TokenizerError.duplicateTokenID(path: path, id: id) }
        }
        return vocabulary
    }

    static func buildBPE(vocabulary: Vocabulary, merges: [(String, String)], unknownToken: String?, ignoreMerges: Bool,
                         path: String) throws -> ByteLevelBPEModel {
        var table = MergeTable(capacity: merges.count)
        for (rank, (left, right)) in merges.enumerated() {
            guard let a = vocabulary.id(of: left) else { throw TokenizerError.tokenNotInVocabulary(path: path, token: left) }
            guard let b = vocabulary.id(of: right) else { throw TokenizerError.tokenNotInVocabulary(path: path, token: right) }
            guard let merged = vocabulary.id(of: left + right) else { throw TokenizerError.tokenNotInVocabulary(path: path, token: left + right) }
            table.insertIfAbsent(a, b, rank: rank, mergedID: merged)
        }
        var byteIDs = [Int32](repeating: -1, count: 256)
        for b in 0..<256 {
            let token = String(Unicode.Scalar(ByteLevelPreTokenizer.byteToScalar[b])!)
            byteIDs[b] = vocabulary.id(of: token) ?? -1
        }
        var unknownID: Int32? = nil
        if let unknownToken {
            guard let id = vocabulary.id(of: unknownToken) else { throw TokenizerError.tokenNotInVocabulary(path: path, token: unknownToken) }
            unknownID = id
        }
        return ByteLevelBPEModel(vocabulary: vocabulary, merges: table, byteIDs: byteIDs, unknownID: unknownID, ignoreMerges: ignoreMerges)
    }
}

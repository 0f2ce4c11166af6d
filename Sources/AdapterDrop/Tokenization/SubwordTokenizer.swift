import Foundation

/// One input of a batch: a single text or a text pair (e.g. premise/hypothesis).
public enum TokenizerInput: Sendable, Hashable {
    case single(String)
    case pair(String, String)
}

/// How to shorten inputs longer than `maxLength` (HF `truncation=`); counts include the special tokens.
public enum TruncationStrategy: String, Sendable {
    /// Remove from the longer sequence first (`longest_first`; for pairs the HF Rust split rule).
    case longestFirst = "longest_first"
    /// Remove only from the first sequence (`only_first`).
    case onlyFirst = "only_first"
    /// Remove only from the second sequence (`only_second`; throws for single inputs that need it).
    case onlySecond = "only_second"
}

/// How to pad a batch (HF `padding=`), always on the right with the pad token, type id 0, mask 0.
public enum PaddingStrategy: Sendable, Equatable {
    /// No padding: rows keep their own lengths.
    case doNotPad
    /// Pad every row to the longest row of the batch (`padding="longest"`).
    case longest
    /// Pad every row to `EncodingOptions.maxLength` (`padding="max_length"`); longer rows are left as is
    /// unless truncation is on.
    case maxLength
}

/// Options of `SubwordTokenizer.encode(batch:options:)`, mirroring the `transformers` call arguments.
public struct EncodingOptions: Sendable {
    /// Add `[CLS] … [SEP]` / `<s> … </s>` (default true).
    public var addSpecialTokens: Bool
    /// Truncation strategy, or nil for none.
    public var truncation: TruncationStrategy?
    /// Maximum row length in tokens, special tokens included.
    public var maxLength: Int?
    /// Padding strategy.
    public var padding: PaddingStrategy
    /// Round the padded length up to a multiple of this (HF `pad_to_multiple_of`), if set.
    public var padToMultipleOf: Int?

    /// Creates options; the defaults add special tokens and neither truncate nor pad.
    public init(addSpecialTokens: Bool = true, truncation: TruncationStrategy? = nil, maxLength: Int? = nil,
                padding: PaddingStrategy = .doNotPad, padToMultipleOf: Int? = nil) {
        self.addSpecialTokens = addSpecialTokens
        self.truncation = truncation
        self.maxLength = maxLength
        self.padding = padding
        self.padToMultipleOf = padToMultipleOf
    }
}

/// The encoding of one input: parallel arrays of length `[seq]`.
public struct Encoding: Sendable, Equatable {
    /// Vocabulary ids `[seq]`.
    public var ids: [Int]
    /// Segment ids `[seq]`: 0 for the first text (and its specials), 1 for the second in BERT pairs; RoBERTa
    /// uses 0 throughout.
    public var typeIDs: [Int]
    /// 1 for real tokens, 0 for padding `[seq]`.
    public var attentionMask: [Int]
    /// Token strings `[seq]` (vocabulary entries; byte-level BPE tokens are in the GPT-2 byte alphabet).
    public var tokens: [String]
    /// 1 where the token is a special token added by post-processing or padding, else 0 `[seq]`.
    public var specialTokensMask: [Int]
}

/// The encodings of a batch, `[batch][seq]`.
public struct BatchEncoding: Sendable, Equatable {
    /// One encoding per input, in input order.
    public var encodings: [Encoding]
    /// `[batch][seq]` ids.
    public var inputIDs: [[Int]] { encodings.map(\.ids) }
    /// `[batch][seq]` segment ids.
    public var tokenTypeIDs: [[Int]] { encodings.map(\.typeIDs) }
    /// `[batch][seq]` attention mask.
    public var attentionMask: [[Int]] { encodings.map(\.attentionMask) }
    /// `[batch][seq]` token strings.
    public var tokens: [[String]] { encodings.map(\.tokens) }
}

/// A token that is matched in the text before normalization and model tokenization (HF `AddedToken`).
struct AddedToken: Sendable {
    var content: [UInt32]
    var id: Int32
    var special: Bool
    var lstrip: Bool
    var rstrip: Bool
    var normalized: Bool
}

/// Post-processing template item (HF `TemplateProcessing`, `BertProcessing`, `RobertaProcessing`).
enum TemplateItem: Sendable {
    case special(id: Int32, token: String, typeID: Int)
    case sequence(first: Bool, typeID: Int)
}

/// The tokenization model behind a `SubwordTokenizer`.
enum TokenizationModel: Sendable {
    case wordPiece(WordPieceModel)
    case byteLevelBPE(ByteLevelBPEModel, addPrefixSpace: Bool)
}

/// A BERT WordPiece or RoBERTa byte-level BPE tokenizer whose ids, type ids and masks are identical to the
/// Hugging Face fast (Rust `tokenizers`) tokenizer built from the same files.
///
/// Pipeline (HF `Tokenizer::encode`): split out added/special tokens in the raw text → normalizer (BERT
/// only) → pre-tokenizer (`BertPreTokenizer` or GPT-2 `ByteLevel`) → model (WordPiece / BPE) → truncation →
/// template (`[CLS] A [SEP] B [SEP]` or `<s> A </s></s> B </s>`) → padding.
///
/// Load with `bertWordPiece(vocabularyFile:…)`, `byteLevelBPE(vocabularyFile:mergesFile:…)` or
/// `init(tokenizerJSON:)`. Immutable and `Sendable`: share one instance across threads.
public final class SubwordTokenizer: Sendable {
    let normalizer: BertNormalizer?
    let model: TokenizationModel
    let addedTokens: [AddedToken]
    /// Added tokens matched in the raw text (`normalized: false`), longest first.
    let rawAddedTokens: [AddedToken]
    /// Added tokens matched in the normalized text (`normalized: true`), longest first.
    let normalizedAddedTokens: [AddedToken]
    let singleTemplate: [TemplateItem]
    let pairTemplate: [TemplateItem]
    let vocabulary: Vocabulary
    /// Id of the padding token.
    public let padTokenID: Int
    /// The padding token string (`[PAD]`, `<pad>`).
    public let padToken: String
    /// Number of special tokens added to a single input (2 for BERT and RoBERTa).
    public var numSpecialTokensSingle: Int { singleTemplate.filter { if case .special = $0 { true } else { false } }.count }
    /// Number of special tokens added to a pair (3 for BERT, 4 for RoBERTa).
    public var numSpecialTokensPair: Int { pairTemplate.filter { if case .special = $0 { true } else { false } }.count }
    /// Number of distinct vocabulary entries (including added tokens).
    public var vocabularySize: Int { vocabulary.count }

    init(normalizer: BertNormalizer?, model: TokenizationModel, addedTokens: [AddedToken],
         singleTemplate: [TemplateItem], pairTemplate: [TemplateItem], vocabulary: Vocabulary,
         padTokenID: Int, padToken: String) {
        self.normalizer = normalizer
        self.model = model
        self.addedTokens = addedTokens.sorted { $0.content.count > $1.content.count }
        self.rawAddedTokens = self.addedTokens.filter { !$0.normalized }
        // HF matches a `normalized` added token by its normalized content in the normalized text.
        self.normalizedAddedTokens = self.addedTokens.filter { $0.normalized }.map { token in
            var t = token
            if let normalizer { t.content = normalizer.normalize(token.content[...]) }
            return t
        }.filter { !$0.content.isEmpty }.sorted { $0.content.count > $1.content.count }
        self.singleTemplate = singleTemplate
        self.pairTemplate = pairTemplate
        self.vocabulary = vocabulary
        self.padTokenID = padTokenID
        self.padToken = padToken
    }

    /// The id of `token` (exact Unicode scalars), or nil.
    public func id(forToken token: String) -> Int? { vocabulary.id(of: token).map(Int.init) }

    /// The token string of `id`, or nil.
    public func token(forID id: Int) -> String? {
        guard id >= 0, id <= Int(Int32.max) else { return nil }
        return vocabulary.token(of: Int32(id))
    }

    // MARK: - Encoding

    /// Tokenizes one text into model ids without special tokens, truncation or padding.
    public func tokenize(_ text: String) -> [Int] { tokenizeSequence(text).map(Int.init) }

    /// Encodes one text or pair with special tokens and no truncation/padding (`tokenizer(text, pair)`).
    public func encode(_ text: String, pair: String? = nil, addSpecialTokens: Bool = true) -> Encoding {
        let a = tokenizeSequence(text)
        let b = pair.map { tokenizeSequence($0) }
        return assemble(a, b, addSpecialTokens: addSpecialTokens)
    }

    /// Encodes a batch with HF truncation and padding semantics.
    ///
    /// - Parameters:
    ///   - batch: `[batch]` inputs (singles and pairs may be mixed).
    ///   - options: special tokens, truncation, `maxLength`, padding.
    /// - Returns: `[batch][seq]` ids, type ids, masks and tokens.
    /// - Throws: `TokenizerError.missingMaxLength` (truncation or `.maxLength` padding without a length),
    ///   `.maxLengthTooSmall` (length below the special-token count — HF silently skips truncation there;
    ///   we refuse), `.sequenceTooShortToTruncate`, `.secondSequenceNotProvided` (as HF), `.invalidPadding`.
    public func encode(batch: [TokenizerInput], options: EncodingOptions = EncodingOptions()) throws -> BatchEncoding {
        if options.truncation != nil && options.maxLength == nil { throw TokenizerError.missingMaxLength }
        if options.padding == .maxLength && options.maxLength == nil {
            throw TokenizerError.invalidPadding(reason: "padding to maxLength requires maxLength")
        }
        if let m = options.padToMultipleOf, m <= 0 {
            throw TokenizerError.invalidPadding(reason: "padToMultipleOf must be positive, got \(m)")
        }
        if let m = options.maxLength, m < 0 { throw TokenizerError.maxLengthTooSmall(maxLength: m, required: 0) }
        var encodings: [Encoding] = []
        encodings.reserveCapacity(batch.count)
        for input in batch {
            var a: [Int32]
            var b: [Int32]?
            switch input {
            case .single(let text): a = tokenizeSequence(text); b = nil
            case .pair(let first, let second): a = tokenizeSequence(first); b = tokenizeSequence(second)
            }
            if let strategy = options.truncation, let maxLength = options.maxLength {
                let added = options.addSpecialTokens ? (b == nil ? numSpecialTokensSingle : numSpecialTokensPair) : 0
                if maxLength < added { throw TokenizerError.maxLengthTooSmall(maxLength: maxLength, required: added) }
                try Self.truncate(&a, &b, target: maxLength - added, strategy: strategy)
            }
            encodings.append(assemble(a, b, addSpecialTokens: options.addSpecialTokens))
        }
        var target: Int?
        switch options.padding {
        case .doNotPad: target = nil
        case .longest: target = encodings.map(\.ids.count).max() ?? 0
        case .maxLength: target = options.maxLength
        }
        if var length = target {
            if let m = options.padToMultipleOf, length % m != 0 { length += m - length % m }
            for i in encodings.indices where encodings[i].ids.count < length {
                let extra = length - encodings[i].ids.count
                encodings[i].ids += repeatElement(padTokenID, count: extra)
                encodings[i].typeIDs += repeatElement(0, count: extra)
                encodings[i].attentionMask += repeatElement(0, count: extra)
                encodings[i].tokens += repeatElement(padToken, count: extra)
                encodings[i].specialTokensMask += repeatElement(1, count: extra)
            }
        }
        return BatchEncoding(encodings: encodings)
    }

    /// HF Rust `truncate_encodings` (right side, stride 0) to `target` model tokens (special tokens excluded).
    static func truncate(_ a: inout [Int32], _ b: inout [Int32]?, target: Int, strategy: TruncationStrategy) throws {
        let total = a.count + (b?.count ?? 0)
        if total <= target { return }
        if target == 0 {  // HF: max_length equal to the special-token count empties both, whatever the strategy
            a.removeAll()
            if b != nil { b = [] }
            return
        }
        let toRemove = total - target
        switch strategy {
        case .longestFirst:
            guard var second = b else {
                a.removeSubrange(target...)
                return
            }
            var n1 = a.count
            var n2 = second.count
            let swap = n1 > n2
            if swap { Swift.swap(&n1, &n2) }
            if n1 > target { n2 = n1 } else { n2 = max(n1, target - n1) }
            if n1 + n2 > target {
                n1 = target / 2
                n2 = n1 + target % 2
            }
            if swap { Swift.swap(&n1, &n2) }
            if a.count > n1 { a.removeSubrange(n1...) }
            if second.count > n2 { second.removeSubrange(n2...) }
            b = second
        case .onlyFirst:
            guard a.count > toRemove else {
                throw TokenizerError.sequenceTooShortToTruncate(maxLength: target, sequenceLength: a.count, tokensToRemove: toRemove)
            }
            a.removeSubrange((a.count - toRemove)...)
        case .onlySecond:
            guard var second = b else { throw TokenizerError.secondSequenceNotProvided }
            guard second.count > toRemove else {
                throw TokenizerError.sequenceTooShortToTruncate(maxLength: target, sequenceLength: second.count, tokensToRemove: toRemove)
            }
            second.removeSubrange((second.count - toRemove)...)
            b = second
        }
    }

    func assemble(_ a: [Int32], _ b: [Int32]?, addSpecialTokens: Bool) -> Encoding {
        var e = Encoding(ids: [], typeIDs: [], attentionMask: [], tokens: [], specialTokensMask: [])
        func appendSequence(_ s: [Int32], typeID: Int) {
            for id in s {
                e.ids.append(Int(id))
                e.typeIDs.append(typeID)
                e.tokens.append(vocabulary.token(of: id) ?? "")
                e.specialTokensMask.append(0)
            }
        }
        if !addSpecialTokens {
            appendSequence(a, typeID: 0)
            if let b { appendSequence(b, typeID: 1) }
        } else {
            for item in (b == nil ? singleTemplate : pairTemplate) {
                switch item {
                case let .special(id, token, typeID):
                    e.ids.append(Int(id)); e.typeIDs.append(typeID); e.tokens.append(token); e.specialTokensMask.append(1)
                case let .sequence(first, typeID):
                    appendSequence(first ? a : (b ?? []), typeID: typeID)
                }
            }
        }
        e.attentionMask = [Int](repeating: 1, count: e.ids.count)
        return e
    }

    // MARK: - Pipeline

    /// Model ids of one text: added tokens, normalization, pre-tokenization, model.
    func tokenizeSequence(_ text: String) -> [Int32] {
        let scalars = text.unicodeScalars.map(\.value)
        var ids: [Int32] = []
        ids.reserveCapacity(scalars.count / 3 + 4)
        for segment in splitAddedTokens(scalars[...], normalizedPass: false) {
            switch segment {
            case .token(let id): ids.append(id)
            case .text(let raw):
                let normalized = normalizer?.normalize(raw) ?? Array(raw)
                for inner in splitAddedTokens(normalized[...], normalizedPass: true) {
                    switch inner {
                    case .token(let id): ids.append(id)
                    case .text(let piece): runModel(Array(piece), into: &ids)
                    }
                }
            }
        }
        return ids
    }

    enum Segment { case text(ArraySlice<UInt32>), token(Int32) }

    /// Splits out added tokens (leftmost, then longest), honouring `lstrip`/`rstrip`.
    func splitAddedTokens(_ text: ArraySlice<UInt32>, normalizedPass: Bool) -> [Segment] {
        let candidates = normalizedPass ? normalizedAddedTokens : rawAddedTokens
        if text.isEmpty { return [] }  // HF drops empty splits (no prefix space for them)
        if candidates.isEmpty { return [.text(text)] }
        var segments: [Segment] = []
        var textStart = text.startIndex
        var i = text.startIndex
        while i < text.endIndex {
            var match: AddedToken?
            for token in candidates where token.content.first == text[i] && text.endIndex - i >= token.content.count {
                if text[i..<(i + token.content.count)].elementsEqual(token.content) { match = token; break }
            }
            guard let token = match else { i += 1; continue }
            var start = i
            var end = i + token.content.count
            if token.lstrip { while start > textStart && CharacterClasses.isWhitespace(text[start - 1]) { start -= 1 } }
            if token.rstrip { while end < text.endIndex && CharacterClasses.isWhitespace(text[end]) { end += 1 } }
            if start > textStart { segments.append(.text(text[textStart..<start])) }
            segments.append(.token(token.id))
            textStart = end
            i = end
        }
        if textStart < text.endIndex { segments.append(.text(text[textStart..<text.endIndex])) }
        return segments
    }

    func runModel(_ text: [UInt32], into ids: inout [Int32]) {
        var pieces: [Range<Int>] = []
        switch model {
        case .wordPiece(let wordPiece):
            BertPreTokenizer.split(text, into: &pieces)
            var scratch = WordPieceModel.Scratch()
            for range in pieces { wordPiece.tokenize(text[range], into: &ids, scratch: &scratch) }
        case let .byteLevelBPE(bpe, addPrefixSpace):
            var s = text
            if addPrefixSpace && s.first != 0x20 { s.insert(0x20, at: 0) }
            ByteLevelPreTokenizer.split(s, into: &pieces)
            var bytes: [UInt8] = []
            for range in pieces {
                bytes.removeAll(keepingCapacity: true)
                for v in s[range] { UTF8.encode(Unicode.Scalar(v)!) { bytes.append($0) } }
                bpe.tokenize(bytes, into: &ids)
            }
        }
    }
}

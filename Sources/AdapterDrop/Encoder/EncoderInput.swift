import AdapterCore

/// A batch of token ids for the encoder, padded to one length: `[batch, seq]` row-major.
///
/// Usually produced by a tokenizer; `EncoderInput(ids:)` builds one from ragged rows.
public struct EncoderInput: Sendable, Equatable {
    /// Number of sequences, `batch`.
    public let batchSize: Int
    /// Padded length of every sequence, `seq`.
    public let sequenceLength: Int
    /// Token ids `[batch, seq]`, row-major.
    public let inputIds: [Int]
    /// 1 for real tokens, 0 for padding, `[batch, seq]`.
    public let attentionMask: [Int]
    /// Segment ids `[batch, seq]` (all 0 for single texts).
    public let tokenTypeIds: [Int]

    /// - Parameters:
    ///   - batchSize: `batch` (≥ 0).
    ///   - sequenceLength: `seq` (≥ 0).
    ///   - inputIds: `[batch, seq]` token ids.
    ///   - attentionMask: `[batch, seq]` of 0/1; nil means all ones.
    ///   - tokenTypeIds: `[batch, seq]`; nil means all zeros.
    /// - Throws: `EncoderError.inputShape` when a count is not `batch·seq`, or a mask value is not 0 or 1.
    public init(batchSize: Int, sequenceLength: Int, inputIds: [Int], attentionMask: [Int]? = nil,
                tokenTypeIds: [Int]? = nil) throws {
        guard batchSize >= 0, sequenceLength >= 0 else {
            throw EncoderError.inputShape("batch \(batchSize) and sequence length \(sequenceLength) must be non-negative")
        }
        let n = batchSize * sequenceLength
        guard inputIds.count == n else {
            throw EncoderError.inputShape("input_ids has \(inputIds.count) values, expected batch \(batchSize) × seq \(sequenceLength) = \(n)")
        }
        if let attentionMask {
            guard attentionMask.count == n else {
                throw EncoderError.inputShape("attention_mask has \(attentionMask.count) values, expected \(n)")
            }
            if let bad = attentionMask.firstIndex(where: { $0 != 0 && $0 != 1 }) {
                throw EncoderError.inputShape("attention_mask value \(attentionMask[bad]) at position \(bad) is not 0 or 1")
            }
        }
        if let tokenTypeIds, tokenTypeIds.count != n {
            throw EncoderError.inputShape("token_type_ids has \(tokenTypeIds.count) values, expected \(n)")
        }
        self.batchSize = batchSize
        self.sequenceLength = sequenceLength
        self.inputIds = inputIds
        self.attentionMask = attentionMask ?? Array(repeating: 1, count: n)
        self.tokenTypeIds = tokenTypeIds ?? Array(repeating: 0, count: n)
    }

    /// Pads ragged rows on the right to the longest one.
    /// - Parameters:
    ///   - ids: one array of token ids per sequence.
    ///   - tokenTypeIds: one array per sequence with the same lengths as `ids`, or nil for all zeros.
    ///   - attentionMask: one array of 0/1 per sequence with the same lengths as `ids`, or nil for all ones; the
    ///     positions added by this padding always get 0. A tokenizer's padded output must pass its mask here
    ///     (or use `init(_:padTokenId:)`): its pad positions are already in `ids` and only the mask marks them.
    ///   - padTokenId: the id written into padding positions (BERT 0, RoBERTa 1).
    /// - Throws: `EncoderError.inputShape` if a type-id or mask row's length differs from its id row, or a mask
    ///   value is not 0 or 1.
    public init(ids: [[Int]], tokenTypeIds: [[Int]]? = nil, attentionMask: [[Int]]? = nil, padTokenId: Int = 0) throws {
        let seq = ids.map(\.count).max() ?? 0
        var flat: [Int] = [], mask: [Int] = [], types: [Int] = []
        flat.reserveCapacity(ids.count * seq)
        mask.reserveCapacity(ids.count * seq)
        types.reserveCapacity(ids.count * seq)
        for (row, sequence) in ids.enumerated() {
            let pad = seq - sequence.count
            flat += sequence + repeatElement(padTokenId, count: pad)
            if let attentionMask {
                guard row < attentionMask.count, attentionMask[row].count == sequence.count else {
                    throw EncoderError.inputShape("attention_mask row \(row) does not match input_ids row length \(sequence.count)")
                }
                mask += attentionMask[row] + repeatElement(0, count: pad)
            } else {
                mask += Array(repeating: 1, count: sequence.count) + repeatElement(0, count: pad)
            }
            if let tokenTypeIds {
                guard row < tokenTypeIds.count, tokenTypeIds[row].count == sequence.count else {
                    throw EncoderError.inputShape("token_type_ids row \(row) does not match input_ids row length \(sequence.count)")
                }
                types += tokenTypeIds[row] + repeatElement(0, count: pad)
            } else {
                types += repeatElement(0, count: seq)
            }
        }
        try self.init(batchSize: ids.count, sequenceLength: seq, inputIds: flat, attentionMask: mask,
                      tokenTypeIds: types)
    }

    /// A tokenizer's batch as encoder input: its ids, segment ids and attention mask (so padding the tokenizer
    /// added is masked), rows padded to the longest if the batch was not padded.
    /// - Parameters:
    ///   - batch: `SubwordTokenizer.encode(batch:options:)`'s output, `[batch][seq]`.
    ///   - padTokenId: the tokenizer's pad id (`SubwordTokenizer.padTokenID`), written into any padding added here.
    /// - Throws: `EncoderError.inputShape` if an encoding's fields differ in length.
    public init(_ batch: BatchEncoding, padTokenId: Int) throws {
        try self.init(ids: batch.inputIDs, tokenTypeIds: batch.tokenTypeIDs, attentionMask: batch.attentionMask,
                      padTokenId: padTokenId)
    }
}

/// Errors for inputs the encoder cannot run.
public enum EncoderError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Counts of ids, masks or type ids do not fit `[batch, seq]`.
    case inputShape(String)
    /// A token id outside `0..<vocabSize`.
    case tokenIdOutOfRange(id: Int, batch: Int, position: Int, vocabSize: Int)
    /// A token type id outside `0..<typeVocabSize`.
    case tokenTypeOutOfRange(id: Int, batch: Int, position: Int, typeVocabSize: Int)
    /// The sequence is longer than the position embedding table allows.
    case sequenceTooLong(length: Int, maximum: Int)

    /// A one-line explanation naming the offending id, position or length.
    public var description: String {
        switch self {
        case .inputShape(let message):
            return "encoder input: \(message)"
        case let .tokenIdOutOfRange(id, batch, position, vocab):
            return "encoder input: token id \(id) at batch \(batch), position \(position) is outside the vocabulary (size \(vocab))"
        case let .tokenTypeOutOfRange(id, batch, position, typeVocab):
            return "encoder input: token type id \(id) at batch \(batch), position \(position) is outside 0..<\(typeVocab)"
        case let .sequenceTooLong(length, maximum):
            return "encoder input: sequence length \(length) exceeds the model's maximum of \(maximum) tokens"
        }
    }
}

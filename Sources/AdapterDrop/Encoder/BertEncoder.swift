import AdapterCore
import Foundation

/// A post-LayerNorm BERT / RoBERTa encoder for inference (transformers `BertModel` / `RobertaModel`,
/// `modeling_bert.py` / `modeling_roberta.py` in transformers 4.57.6, eager attention).
///
/// Per layer `l` on token states `x` `[tokens, hidden]` (`tokens = batch·seq`):
/// ```
/// q, k, v = x·Wqᵀ + bq, x·Wkᵀ + bk, x·Wvᵀ + bv          viewed as [batch, heads, seq, headSize]
/// p       = softmax(q·kᵀ / √headSize + mask)               mask: 0 for real keys, −FLT_MAX for padding
/// h₁      = (p·v)·Woᵀ + bo                                 (BertSelfOutput.dense)
/// x₁      = LN₁(h₁ + x)                                    ← the `mh_adapter` location
/// h₂      = act(x₁·Wiᵀ + bi)·Wo₂ᵀ + bo₂                    (BertIntermediate, BertOutput.dense)
/// x₂      = LN₂(h₂ + x₁)                                   ← the `output_adapter` location
/// ```
/// Embeddings: `LN(word[id] + type[tt] + position[p])`, in that order of addition, as transformers does.
/// Position ids are `0…seq−1` for BERT; for RoBERTa `cumsum(id ≠ pad)·(id ≠ pad) + pad` (from the ids,
/// not the attention mask).
///
/// The encoder is immutable after loading and `Sendable`: several tasks may run it at once, each with
/// its own `ComputeContext`.
public struct BertEncoder: Sendable {
    /// The model hyper-parameters.
    public let config: BertConfig
    /// The pre-trained weights.
    public let weights: BertWeights

    /// - Parameters:
    ///   - config: hyper-parameters (validated by the loader).
    ///   - weights: tensors whose shapes match `config` (checked by the loader).
    public init(config: BertConfig, weights: BertWeights) {
        self.config = config
        self.weights = weights
    }

    /// Loads `config.json` and the safetensors weights of a Hugging Face model folder.
    /// - Throws: `ModelFolderError`, `ModelConfigError`, `SafetensorsError` or `WeightLoadingError`,
    ///   each naming the file and key at fault.
    public init(modelFolder url: URL) throws {
        let folder = try ModelFolder(url)
        let (config, weights) = try folder.loadBert()
        self.init(config: config, weights: weights)
    }

    /// The longest sequence the position table allows (RoBERTa reserves `pad_token_id + 1` rows).
    public var maximumSequenceLength: Int {
        config.modelType == .roberta ? config.maxPositionEmbeddings - (config.padTokenId ?? 1) - 1
                                     : config.maxPositionEmbeddings
    }

    /// Checks ids, type ids and length against the model's tables.
    /// - Throws: `EncoderError` naming the offending batch row and position.
    public func validate(_ input: EncoderInput) throws {
        guard input.sequenceLength <= maximumSequenceLength else {
            throw EncoderError.sequenceTooLong(length: input.sequenceLength, maximum: maximumSequenceLength)
        }
        let seq = max(input.sequenceLength, 1)
        for (i, id) in input.inputIds.enumerated() where id < 0 || id >= config.vocabSize {
            throw EncoderError.tokenIdOutOfRange(id: id, batch: i / seq, position: i % seq, vocabSize: config.vocabSize)
        }
        for (i, t) in input.tokenTypeIds.enumerated() where t < 0 || t >= config.typeVocabSize {
            throw EncoderError.tokenTypeOutOfRange(id: t, batch: i / seq, position: i % seq,
                                                   typeVocabSize: config.typeVocabSize)
        }
    }

    /// Position ids `[batch, seq]` as transformers computes them for this model type.
    public func positionIds(for input: EncoderInput) -> [Int] {
        let seq = input.sequenceLength
        guard config.modelType == .roberta else {
            return (0..<input.batchSize * seq).map { $0 % max(seq, 1) }
        }
        let pad = config.padTokenId ?? 1
        var out = [Int](repeating: pad, count: input.inputIds.count)
        for b in 0..<input.batchSize {
            var running = 0
            for s in 0..<seq where input.inputIds[b * seq + s] != pad {
                running += 1
                out[b * seq + s] = running + pad
            }
        }
        return out
    }

    /// The additive attention mask `[batch, seq]`: 0 for real tokens, `−Float.greatestFiniteMagnitude`
    /// for padding (transformers adds `torch.finfo(float32).min`, not −∞).
    public func additiveMask(for input: EncoderInput) -> Tensor {
        Tensor(shape: [input.batchSize, input.sequenceLength],
               scalars: input.attentionMask.map { $0 == 1 ? 0 : -Float.greatestFiniteMagnitude })
    }

    /// The embedding output `LN(word + type + position)`, `[batch·seq, hidden]`.
    /// - Throws: `EncoderError` for ids outside the tables or a sequence that is too long.
    public func embed(_ input: EncoderInput, context: ComputeContext) throws -> Tensor {
        try validate(input)
        let e = weights.embeddings
        let words = gatherRows(e.wordEmbeddings, indices: input.inputIds, context: context)
        let types = gatherRows(e.tokenTypeEmbeddings, indices: input.tokenTypeIds, context: context)
        let positions = gatherRows(e.positionEmbeddings, indices: positionIds(for: input), context: context)
        let sum = add(add(words, types, context: context), positions, context: context)
        return layerNorm(sum, weight: e.layerNormWeight, bias: e.layerNormBias, eps: Float(config.layerNormEps),
                         context: context).output
    }

    /// Multi-head self-attention up to the attention output projection: returns `h₁ = (p·v)·Woᵀ + bo`
    /// `[tokens, hidden]` (before the residual and LayerNorm).
    /// - Parameters:
    ///   - x: `[batch·seq, hidden]`.
    ///   - mask: additive key mask `[batch, seq]` (see `additiveMask(for:)`).
    func selfAttention(layer l: Int, _ x: Tensor, mask: Tensor, batch: Int, seq: Int,
                       context: ComputeContext) -> Tensor {
        let w = weights.layers[l]
        let heads = config.numAttentionHeads, headSize = config.headSize, hidden = config.hiddenSize
        func split(_ t: Tensor) -> Tensor { t.reshaped([batch, seq, heads, headSize]).permuted([0, 2, 1, 3]) }
        let q = split(linear(x, weight: w.queryWeight, bias: w.queryBias, context: context))
        let k = split(linear(x, weight: w.keyWeight, bias: w.keyBias, context: context))
        let v = split(linear(x, weight: w.valueWeight, bias: w.valueBias, context: context))
        let scores = matmul(q, k, transposeB: true, context: context)                  // [b, heads, seq, seq]
        let probabilities = softmax(scores, scale: 1 / Float(headSize).squareRoot(), mask: mask, context: context)
        var attended = Tensor(zeros: [batch, seq, heads, headSize]).permuted([0, 2, 1, 3])
        matmul(probabilities, v, into: &attended, context: context)                    // lands token-major
        let merged = attended.permuted([0, 2, 1, 3]).reshaped([batch * seq, hidden])
        return linear(merged, weight: w.attentionOutputWeight, bias: w.attentionOutputBias, context: context)
    }

    /// The feed-forward block up to the output projection: `h₂ = act(x₁·Wiᵀ + bi)·Wo₂ᵀ + bo₂`.
    func feedForward(layer l: Int, _ x: Tensor, context: ComputeContext) -> Tensor {
        let w = weights.layers[l]
        let inner = linear(x, weight: w.intermediateWeight, bias: w.intermediateBias,
                           activation: config.hiddenActivation, context: context)
        return linear(inner, weight: w.outputWeight, bias: w.outputBias, context: context)
    }

    /// The layer's LayerNorm at an adapter location.
    public func sublayerLayerNorm(layer l: Int, _ location: AdapterLocation) -> SublayerLayerNorm {
        let w = weights.layers[l], eps = Float(config.layerNormEps)
        switch location {
        case .attentionOutput: return SublayerLayerNorm(weight: w.attentionLayerNormWeight, bias: w.attentionLayerNormBias, eps: eps)
        case .output: return SublayerLayerNorm(weight: w.outputLayerNormWeight, bias: w.outputLayerNormBias, eps: eps)
        }
    }

    /// One transformer layer: `x₂ = LN₂(h₂ + x₁)`, `x₁ = LN₁(h₁ + x)`, with `hook` (adapters) in place of either
    /// residual + LayerNorm step where it returns a value.
    /// - Parameters:
    ///   - x: `[batch·seq, hidden]`.
    ///   - mask: `[batch, seq]` additive.
    ///   - batch: the current batch (replicated if a `Parallel` block already replicated it).
    /// - Returns: `[batch'·seq, hidden]`, where `batch'` is `batch` times any replication the hook did.
    public func layer(_ l: Int, _ x: Tensor, mask: Tensor, batch: Int, seq: Int, hook: (any SublayerHook)? = nil,
                      context: ComputeContext) -> Tensor {
        func residualNorm(_ location: AdapterLocation, _ h: Tensor, _ a: Tensor, batch: Int) -> Tensor {
            let norm = sublayerLayerNorm(layer: l, location)
            return hook?.sublayerOutput(layer: l, location: location, hidden: h, residual: a, layerNorm: norm,
                                        batch: batch, sequenceLength: seq, context: context)
                ?? norm(h, residual: a, context: context)
        }
        let h1 = selfAttention(layer: l, x, mask: mask, batch: batch, seq: seq, context: context)
        let x1 = residualNorm(.attentionOutput, h1, x, batch: batch)
        let batch1 = x1.shape[0] / max(seq, 1)
        let h2 = feedForward(layer: l, x1, context: context)
        return residualNorm(.output, h2, x1, batch: batch1)
    }

    /// Runs the whole encoder.
    /// - Parameters:
    ///   - input: ids, mask and type ids `[batch, seq]`.
    ///   - hook: adapters (and composition) to run at each adapter location; nil for the base model.
    ///   - keepHiddenStates: also return the embedding output and every layer's output.
    ///   - context: threads and GEMM backend.
    /// - Returns: `lastHiddenState` `[batch', seq, hidden]` (`batch' = N·batch` after a `Parallel` block over N
    ///   channels, channel i in rows `i·batch ..< (i+1)·batch`), and the pooler output `[batch', hidden]` when the
    ///   checkpoint has a pooler.
    /// - Throws: `EncoderError` for ids or type ids outside the tables, or a sequence that is too long.
    public func callAsFunction(_ input: EncoderInput, hook: (any SublayerHook)? = nil, keepHiddenStates: Bool = false,
                               context: ComputeContext) throws -> EncoderOutput {
        let seq = input.sequenceLength, hidden = config.hiddenSize
        var batch = input.batchSize
        var x = try embed(input, context: context)
        let baseMask = additiveMask(for: input)
        var mask = baseMask
        var states: [Tensor] = keepHiddenStates ? [x.reshaped([batch, seq, hidden])] : []
        for l in 0..<config.numHiddenLayers {
            x = layer(l, x, mask: mask, batch: batch, seq: seq, hook: hook, context: context)
            let newBatch = seq == 0 ? batch : x.shape[0] / seq
            if newBatch != batch {  // a Parallel block replicated the batch: replicate the mask to match
                precondition(newBatch % input.batchSize == 0,
                             "encoder: layer \(l) returned \(newBatch) sequences, not a multiple of the batch \(input.batchSize)")
                batch = newBatch
                mask = Tensor(concatenating: Array(repeating: baseMask, count: batch / input.batchSize))
            }
            if keepHiddenStates { states.append(x.reshaped([batch, seq, hidden])) }
        }
        let last = x.reshaped([batch, seq, hidden])
        let replication = max(batch / max(input.batchSize, 1), 1)
        let fullMask = Array([[Int]](repeating: input.attentionMask, count: replication).joined())
        return EncoderOutput(lastHiddenState: last, attentionMask: fullMask,
                             pooled: pool(last, context: context), hiddenStates: states)
    }

    /// The BERT pooler `tanh(W·h[CLS] + b)`, `[batch, hidden]`, or nil without pooler weights.
    func pool(_ last: Tensor, context: ComputeContext) -> Tensor? {
        guard let pooler = weights.pooler else { return nil }
        return linear(Pooling.first(last), weight: pooler.weight, bias: pooler.bias, activation: .tanh, context: context)
    }
}

/// What `BertEncoder` returns.
public struct EncoderOutput: Sendable {
    /// Token states of the last layer, `[batch, seq, hidden]` (padding positions included).
    public var lastHiddenState: Tensor
    /// The input's attention mask `[batch, seq]` (1 = token, 0 = padding), for pooling.
    public var attentionMask: [Int]
    /// The BERT pooler output `[batch, hidden]`, nil if the checkpoint has no pooler.
    public var pooled: Tensor?
    /// With `keepHiddenStates`: `numHiddenLayers + 1` tensors `[batch, seq, hidden]` (embedding output
    /// first), as transformers' `output_hidden_states`; otherwise empty.
    public var hiddenStates: [Tensor]

    /// Sentence embeddings `[batch, hidden]` by the given pooling.
    public func sentenceEmbeddings(_ pooling: Pooling.Mode, normalize: Bool = false) -> Tensor {
        let pooled = pooling == .cls ? Pooling.first(lastHiddenState)
                                     : Pooling.mean(lastHiddenState, attentionMask: attentionMask)
        return normalize ? Pooling.l2Normalized(pooled) : pooled
    }
}

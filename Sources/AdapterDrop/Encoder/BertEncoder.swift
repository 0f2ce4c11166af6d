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
    /// The pre-trained weights, complete. With `prepackWeights` the layer matrices are held only in packed
    /// form, and every read of this property unpacks all of them (allocating as much memory as they take):
    /// read one layer with `layerWeights(_:)` instead.
    public var weights: BertWeights {
        guard packedLayers != nil else { return storedWeights }
        var w = storedWeights
        for l in w.layers.indices { w.layers[l] = layerWeights(l) }
        return w
    }

    /// The weights as held: with `prepackWeights`, each layer's six matrices are empty `[0, in]` placeholders
    /// (the packed copies in `packedLayers` are the only ones); everything else is complete.
    let storedWeights: BertWeights

    /// Layer `l`'s weights, complete (with `prepackWeights`, its six matrices are unpacked from the packed
    /// copies: exact, but a fresh allocation on every call).
    public func layerWeights(_ l: Int) -> BertWeights.Layer {
        guard let p = packedLayers?[l] else { return storedWeights.layers[l] }
        var w = storedWeights.layers[l]
        let h = config.hiddenSize, qkv = p.qkv.weight
        w.queryWeight = qkv.slice(rows: 0..<h)
        w.keyWeight = qkv.slice(rows: h..<2 * h)
        w.valueWeight = qkv.slice(rows: 2 * h..<3 * h)
        w.attentionOutputWeight = p.attentionOutput.weight
        w.intermediateWeight = p.intermediate.weight
        w.outputWeight = p.output.weight
        return w
    }

    /// - Parameters:
    ///   - config: hyper-parameters (validated by the loader).
    ///   - weights: tensors whose shapes match `config` (checked by the loader).
    ///   - prepackWeights: hold every layer's four weight matrices (Q/K/V fused) only in the GEMM's packed
    ///     format (`PackedWeight` without its plain copy), so no forward pass packs them again: faster, most at
    ///     small batches, in the same memory as the plain matrices. Results are bitwise the same either way.
    ///     The plain matrices are rebuilt on demand (`weights`, `layerWeights(_:)`), and GEMM backends other
    ///     than `.kernels` unpack them in every product (slow; use the default for those).
    public init(config: BertConfig, weights: BertWeights, prepackWeights: Bool = false) {
        self.config = config
        // Fuse Q, K and V into one [3·hidden, hidden] weight per layer (one GEMM instead of three). The
        // per-projection tensors in `weights` become row views of it, so this costs no memory once the
        // caller's copies are gone.
        var weights = weights
        var fused: [FusedProjection] = []
        fused.reserveCapacity(weights.layers.count)
        let h = config.hiddenSize
        for l in weights.layers.indices {
            var w = weights.layers[l]
            let qkv = Tensor(concatenating: [w.queryWeight, w.keyWeight, w.valueWeight])
            let bias = Tensor(concatenating: [w.queryBias, w.keyBias, w.valueBias])
            w.queryWeight = qkv.slice(rows: 0..<h)
            w.keyWeight = qkv.slice(rows: h..<2 * h)
            w.valueWeight = qkv.slice(rows: 2 * h..<3 * h)
            weights.layers[l] = w
            fused.append(FusedProjection(weight: qkv, bias: bias))
        }
        guard prepackWeights else {
            self.storedWeights = weights
            self.fusedQKV = fused
            self.packedLayers = nil
            return
        }
        // Pack layer by layer and keep only the packed copies (placeholders where the matrices were).
        var packed: [PackedLayer] = []
        for l in weights.layers.indices {
            var w = weights.layers[l]
            func pack(_ t: Tensor) -> PackedWeight { PackedWeight(t, keepPlainWeight: false) }
            packed.append(PackedLayer(qkv: pack(fused[l].weight), attentionOutput: pack(w.attentionOutputWeight),
                                      intermediate: pack(w.intermediateWeight), output: pack(w.outputWeight)))
            func placeholder(_ t: Tensor) -> Tensor { Tensor(zeros: [0, t.shape[1]]) }
            w.queryWeight = placeholder(w.queryWeight)
            w.keyWeight = placeholder(w.keyWeight)
            w.valueWeight = placeholder(w.valueWeight)
            w.attentionOutputWeight = placeholder(w.attentionOutputWeight)
            w.intermediateWeight = placeholder(w.intermediateWeight)
            w.outputWeight = placeholder(w.outputWeight)
            weights.layers[l] = w
            fused[l] = FusedProjection(weight: placeholder(fused[l].weight), bias: fused[l].bias)
        }
        self.storedWeights = weights
        self.fusedQKV = fused
        self.packedLayers = packed
    }

    /// A layer's weight matrices in the GEMM's packed layout (see `prepackWeights`).
    struct PackedLayer: Sendable {
        let qkv: PackedWeight
        let attentionOutput: PackedWeight
        let intermediate: PackedWeight
        let output: PackedWeight
    }

    /// Per layer, the packed weights (the only copy of the matrices), or nil when the encoder was made
    /// without `prepackWeights`.
    let packedLayers: [PackedLayer]?

    /// Whether the weight matrices are held pre-packed (see `init(config:weights:prepackWeights:)`).
    public var hasPrepackedWeights: Bool { packedLayers != nil }

    /// `act(x·Wᵀ + b)` with the packed copy of `W` when there is one (bitwise the same result).
    private func dense(_ x: Tensor, _ weight: Tensor, _ packed: PackedWeight?, bias: Tensor,
                       activation: Activation = .none, context: ComputeContext) -> Tensor {
        if let packed { return tiledLinear(x, weight: packed, bias: bias, activation: activation, context: context) }
        return tiledLinear(x, weight: weight, bias: bias, activation: activation, context: context)
    }

    /// `act(x·Wᵀ + b) + residual` into `y` (reused buffer), with the packed copy of `W` when there is one.
    private func dense(_ x: Tensor, _ weight: Tensor, _ packed: PackedWeight?, bias: Tensor,
                       activation: Activation = .none, residual: Tensor? = nil, into y: inout Tensor,
                       context: ComputeContext) {
        if let packed {
            tiledLinear(x, weight: packed, bias: bias, activation: activation, residual: residual, into: &y, context: context)
        } else {
            tiledLinear(x, weight: weight, bias: bias, activation: activation, residual: residual, into: &y, context: context)
        }
    }

    /// All layers with activation buffers allocated once per call and reused by every layer, and each residual
    /// added in the GEMM epilogue instead of inside the LayerNorm where no adapter runs: `s = h + a` is the same
    /// single fp32 addition either way, so the result is bitwise that of `layer(_:…)`.
    ///
    /// With a `plan`, the adapter sites where it is active compute the sub-layer's dense output `h` without the
    /// residual and let `plan.apply` write the location's output; at the plan's first active site a Parallel
    /// plan replicates the batch `plan.replicas` times (h, the residual and the mask), so every layer below it
    /// runs once for all tasks and the buffers grow to the replicated batch once.
    /// - Parameters:
    ///   - x: the embedding output `[batch·seq, hidden]`.
    ///   - mask: the additive key mask `[batch, seq]`.
    ///   - states: receives each layer's output `[batch', seq, hidden]` when `keepHiddenStates`.
    /// - Returns: the last layer's output `[batch'·seq, hidden]` and `batch'` (the batch times any replication).
    func encodeBuffered(_ x: consuming Tensor, mask: Tensor, batch: Int, seq: Int, plan: RowGroupAdapterPlan?,
                        keepHiddenStates: Bool, states: inout [Tensor],
                        context: ComputeContext) -> (output: Tensor, batch: Int) {
        var batch = batch
        var tokens = batch * seq
        let hidden = config.hiddenSize, eps = Float(config.layerNormEps)
        let scale = 1 / Float(config.headSize).squareRoot()
        var x = x, mask = mask
        var qkv = Tensor(zeros: [tokens, 3 * hidden])
        var attended = Tensor(zeros: [tokens, hidden])
        var sum = Tensor(zeros: [tokens, hidden])
        var x1 = Tensor(zeros: [tokens, hidden])
        var inner = Tensor(zeros: [tokens, config.intermediateSize])
        var workspace = RowGroupAdapterPlan.Workspace()
        let replicateAt = plan.flatMap { $0.replicas > 1 ? $0.firstActiveSite(layers: config.numHiddenLayers) : nil }
        /// Replicates the batch `copies` times: the dense output `sum` and the residual `a` are copied, the
        /// other buffers are reallocated at the new size (their contents are rewritten before being read).
        func replicate(_ a: inout Tensor, copies: Int) {
            func repeated(_ t: Tensor) -> Tensor {
                var r = Tensor(zeros: [copies * t.shape[0], t.shape[1]])
                copyRows(t, rows: 0..<t.shape[0], into: &r, at: 0, copies: copies)
                return r
            }
            sum = repeated(sum)
            a = repeated(a)
            mask = Tensor(concatenating: Array(repeating: mask, count: copies))
            batch *= copies
            tokens *= copies
            qkv = Tensor(zeros: [tokens, 3 * hidden])
            attended = Tensor(zeros: [tokens, hidden])
            inner = Tensor(zeros: [tokens, config.intermediateSize])
        }
        for l in 0..<config.numHiddenLayers {
            let w = storedWeights.layers[l], fused = fusedQKV[l], packed = packedLayers?[l]
            dense(x, fused.weight, packed?.qkv, bias: fused.bias, into: &qkv, context: context)
            fusedSelfAttention(qkv: qkv, mask: mask, batch: batch, sequenceLength: seq,
                               heads: config.numAttentionHeads, scale: scale, into: &attended, context: context)
            let attentionSite = AdapterSite(layer: l, location: .attentionOutput)
            if let plan, plan.isActive(attentionSite) {
                dense(attended, w.attentionOutputWeight, packed?.attentionOutput, bias: w.attentionOutputBias,
                      into: &sum, context: context)                                            // h₁
                if replicateAt == attentionSite {
                    replicate(&x, copies: plan.replicas)
                    x1 = Tensor(zeros: [tokens, hidden])
                }
                plan.apply(site: attentionSite, hidden: sum, residual: x, layerNorm: sublayerLayerNorm(layer: l, .attentionOutput),
                           sequenceLength: seq, workspace: &workspace, into: &x1, context: context)
            } else {
                dense(attended, w.attentionOutputWeight, packed?.attentionOutput, bias: w.attentionOutputBias,
                      residual: x, into: &sum, context: context)                               // h₁ + x
                layerNorm(sum, weight: w.attentionLayerNormWeight, bias: w.attentionLayerNormBias, eps: eps,
                          into: &x1, context: context)
            }
            dense(x1, w.intermediateWeight, packed?.intermediate, bias: w.intermediateBias,
                  activation: config.hiddenActivation, into: &inner, context: context)
            let outputSite = AdapterSite(layer: l, location: .output)
            if let plan, plan.isActive(outputSite) {
                dense(inner, w.outputWeight, packed?.output, bias: w.outputBias, into: &sum, context: context)  // h₂
                if replicateAt == outputSite {
                    replicate(&x1, copies: plan.replicas)
                    x = Tensor(zeros: [tokens, hidden])
                }
                plan.apply(site: outputSite, hidden: sum, residual: x1, layerNorm: sublayerLayerNorm(layer: l, .output),
                           sequenceLength: seq, workspace: &workspace, into: &x, context: context)
            } else {
                dense(inner, w.outputWeight, packed?.output, bias: w.outputBias, residual: x1, into: &sum,
                      context: context)                                                        // h₂ + x₁
                layerNorm(sum, weight: w.outputLayerNormWeight, bias: w.outputLayerNormBias, eps: eps,
                          into: &x, context: context)
            }
            if keepHiddenStates { states.append(x.reshaped([batch, seq, hidden])) }
        }
        return (x, batch)
    }

    /// A layer's query, key and value projections as one linear map: weight `[3·hidden, hidden]`, bias
    /// `[3·hidden]` (rows in q, k, v order).
    struct FusedProjection: Sendable {
        let weight: Tensor
        let bias: Tensor
    }

    /// Per layer, the fused Q/K/V projection (shares storage with `weights`; with `prepackWeights` the weight
    /// is a `[0, hidden]` placeholder and `packedLayers` holds the matrix).
    let fusedQKV: [FusedProjection]

    /// Loads `config.json` and the safetensors weights of a Hugging Face model folder.
    /// - Throws: `ModelFolderError`, `ModelConfigError`, `SafetensorsError` or `WeightLoadingError`,
    ///   each naming the file and key at fault.
    /// - Parameter prepackWeights: see `init(config:weights:prepackWeights:)`.
    public init(modelFolder url: URL, prepackWeights: Bool = false) throws {
        let folder = try ModelFolder(url)
        let (config, weights) = try folder.loadBert()
        self.init(config: config, weights: weights, prepackWeights: prepackWeights)
    }

    /// The longest sequence the position table allows (RoBERTa reserves `pad_token_id + 1` rows).
    public var maximumSequenceLength: Int {
        config.modelType == .roberta ? config.maxPositionEmbeddings - (config.padTokenId ?? 1) - 1
                                     : config.maxPositionEmbeddings
    }

    /// Checks ids, type ids and length against the model's tables.
    /// - Throws: `EncoderError` naming the offending batch row and position.
    public func validate(_ input: EncoderInput) throws {
        guard input.batchSize == 0 || input.sequenceLength >= 1 else {
            throw EncoderError.inputShape("every sequence needs at least one token (got sequences of length 0)")
        }
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
        let e = storedWeights.embeddings
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
        let w = storedWeights.layers[l], qkv = fusedQKV[l], packed = packedLayers?[l]
        let projected = dense(x, qkv.weight, packed?.qkv, bias: qkv.bias, context: context)   // [tokens, 3·hidden]
        let attended = fusedSelfAttention(qkv: projected, mask: mask, batch: batch, sequenceLength: seq,
                                          heads: config.numAttentionHeads,
                                          scale: 1 / Float(config.headSize).squareRoot(), context: context)
        return dense(attended, w.attentionOutputWeight, packed?.attentionOutput, bias: w.attentionOutputBias,
                     context: context)
    }

    /// The feed-forward block up to the output projection: `h₂ = act(x₁·Wiᵀ + bi)·Wo₂ᵀ + bo₂`.
    func feedForward(layer l: Int, _ x: Tensor, context: ComputeContext) -> Tensor {
        let w = storedWeights.layers[l]
        let packed = packedLayers?[l]
        let inner = dense(x, w.intermediateWeight, packed?.intermediate, bias: w.intermediateBias,
                          activation: config.hiddenActivation, context: context)
        return dense(inner, w.outputWeight, packed?.output, bias: w.outputBias, context: context)
    }

    /// The layer's LayerNorm at an adapter location.
    public func sublayerLayerNorm(layer l: Int, _ location: AdapterLocation) -> SublayerLayerNorm {
        let w = storedWeights.layers[l], eps = Float(config.layerNormEps)
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
        if hook == nil { return try encode(input, plan: nil, keepHiddenStates: keepHiddenStates, context: context) }
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
                require(newBatch % input.batchSize == 0,
                             "encoder: layer \(l) returned \(newBatch) sequences, not a multiple of the batch \(input.batchSize)")
                batch = newBatch
                mask = Tensor(concatenating: Array(repeating: baseMask, count: batch / input.batchSize))
            }
            if keepHiddenStates { states.append(x.reshaped([batch, seq, hidden])) }
        }
        return output(x, batch: batch, input: input, states: states, context: context)
    }

    /// Runs the whole encoder on the buffered path, with adapters on row groups (see `RowGroupAdapterPlan`) or,
    /// with `plan` nil, as the base model. Same results as `callAsFunction(_:hook:…)` with the equivalent
    /// `CompositionHook` (the same kernels on the same rows), with one set of activation buffers per call.
    /// - Throws: `EncoderError` for bad ids or a sequence that is too long.
    func encode(_ input: EncoderInput, plan: RowGroupAdapterPlan?, keepHiddenStates: Bool,
                context: ComputeContext) throws -> EncoderOutput {
        let seq = input.sequenceLength
        let x = try embed(input, context: context)
        var states: [Tensor] = keepHiddenStates ? [x.reshaped([input.batchSize, seq, config.hiddenSize])] : []
        let (last, batch) = encodeBuffered(x, mask: additiveMask(for: input), batch: input.batchSize, seq: seq, plan: plan,
                                           keepHiddenStates: keepHiddenStates, states: &states, context: context)
        return output(last, batch: batch, input: input, states: states, context: context)
    }

    /// The `EncoderOutput` for the last layer's `[batch'·seq, hidden]` (`batch'` a multiple of the input's batch).
    private func output(_ x: Tensor, batch: Int, input: EncoderInput, states: [Tensor], context: ComputeContext) -> EncoderOutput {
        let last = x.reshaped([batch, input.sequenceLength, config.hiddenSize])
        let replication = max(batch / max(input.batchSize, 1), 1)
        let fullMask = Array([[Int]](repeating: input.attentionMask, count: replication).joined())
        return EncoderOutput(lastHiddenState: last, attentionMask: fullMask,
                             pooled: pool(last, context: context), hiddenStates: states)
    }

    /// The BERT pooler `tanh(W·h[CLS] + b)`, `[batch, hidden]`, or nil without pooler weights.
    func pool(_ last: Tensor, context: ComputeContext) -> Tensor? {
        guard let pooler = storedWeights.pooler else { return nil }
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

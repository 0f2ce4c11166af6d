import AdapterCore

/// What the residual + LayerNorm step (or the trainable module in its place) at one adapter location saved.
public enum SublayerTrainingState {
    /// The encoder applied `LN(h + a)` itself: the LayerNorm's input `s = h + a` `[rows, hidden]` and its
    /// per-row `mean` / `rstd` `[rows]`.
    case layerNorm(normalizedInput: Tensor, mean: Tensor, rstd: Tensor)
    /// A `TrainableSublayer` produced the output; its opaque saved state.
    case module(Any?)
}

/// Activations one BERT layer keeps for its backward pass through **frozen** weights.
///
/// Only what the input gradient needs is kept (the layer input and the FFN activation output are needed
/// only for weight gradients, which frozen layers do not compute):
/// - `query`, `key`, `value` `[batch, heads, seq, headSize]` (views of `[batch·seq, hidden]` projections),
/// - `probabilities` p `[batch, heads, seq, seq]` (softmax output before dropout),
/// - the dropout masks (nil when the rate is 0): attention `[batch, heads, seq, seq]`, hidden `[rows, hidden]`,
/// - the two residual + LayerNorm (or module) states,
/// - `preactivation` `[rows, intermediate]`: `x₁·Wiᵀ + bi` before GELU.
///
/// Per layer this is `4·rows·hidden + rows·intermediate + 2·batch·heads·seq²` floats plus masks and LN
/// statistics (a first step: one struct of tensors per layer rather than one slab for all layers).
public struct LayerTrainingState {
    /// The layer index.
    public var layer: Int
    /// Sequences in the batch and their length (`rows = batch·sequenceLength`).
    public var batch: Int, sequenceLength: Int
    var query: Tensor, key: Tensor, value: Tensor
    var probabilities: Tensor
    var attentionDropoutMask: Tensor?
    var attentionOutputDropoutMask: Tensor?
    var attentionSublayer: SublayerTrainingState
    var preactivation: Tensor
    var outputDropoutMask: Tensor?
    var outputSublayer: SublayerTrainingState

    /// The attention-probability dropout mask (`0` or `1/(1−rate)`), `[batch, heads, seq, seq]`, nil at rate 0.
    public var attentionProbabilityMask: Tensor? { attentionDropoutMask }
    /// The hidden dropout masks on h₁ and h₂ `[rows, hidden]`, nil at rate 0.
    public var hiddenMasks: (attentionOutput: Tensor?, output: Tensor?) { (attentionOutputDropoutMask, outputDropoutMask) }

    /// Bytes held by the saved tensors (masks and LayerNorm statistics included; module state excluded).
    public var byteCount: Int {
        var n = query.count + key.count + value.count + probabilities.count + preactivation.count
        n += (attentionDropoutMask?.count ?? 0) + (attentionOutputDropoutMask?.count ?? 0) + (outputDropoutMask?.count ?? 0)
        for s in [attentionSublayer, outputSublayer] {
            if case .layerNorm(let x, let m, let r) = s { n += x.count + m.count + r.count }
        }
        return n * MemoryLayout<Float>.size
    }
}

/// Gradients of one layer's two LayerNorms (`attention.output.LayerNorm`, `output.LayerNorm`), each `[hidden]`.
/// Accumulated (`+=`) only at locations where the encoder applies the LayerNorm itself (where a
/// `TrainableSublayer` returned nil).
public struct LayerNormGradients: Sendable {
    public var attentionWeight: Tensor, attentionBias: Tensor
    public var outputWeight: Tensor, outputBias: Tensor

    /// Zero gradients for a model with `hiddenSize` features.
    public init(hiddenSize: Int) {
        attentionWeight = Tensor(zeros: [hiddenSize])
        attentionBias = Tensor(zeros: [hiddenSize])
        outputWeight = Tensor(zeros: [hiddenSize])
        outputBias = Tensor(zeros: [hiddenSize])
    }
}

extension BertEncoder {
    /// One transformer layer in training mode (transformers `BertLayer.forward` with `model.train()`):
    /// ```
    /// q, k, v = x·Wqᵀ + bq, …                 [batch, heads, seq, headSize]
    /// p       = softmax(q·kᵀ/√headSize + mask);  p̃ = p ⊙ M_attn         (attention-probability dropout)
    /// h₁      = ((p̃·v) merged)·Woᵀ + bo;        h̃₁ = h₁ ⊙ M₁            (hidden dropout)
    /// x₁      = module(h̃₁, x) ?? LN₁(h̃₁ + x)
    /// h₂      = act(x₁·Wiᵀ + bi)·Wo₂ᵀ + bo₂;    h̃₂ = h₂ ⊙ M₂
    /// x₂      = module(h̃₂, x₁) ?? LN₂(h̃₂ + x₁)
    /// ```
    /// Masks come from `AdapterCore.dropout` (one 64-bit key drawn from `rng` per mask) in the order M_attn,
    /// M₁, M₂, each only when its rate is non-zero (a trainable module may draw in between). With
    /// `dropout == .off` and no module the result equals the inference `layer(_:_:mask:…)` up to rounding.
    /// - Parameters:
    ///   - x: the layer input `[batch·seq, hidden]`.
    ///   - mask: additive key mask `[batch, seq]` (`additiveMask(for:)`).
    ///   - trainable: modules at the adapter locations, or nil.
    ///   - saveForBackward: keep activations (false: forward only, nothing kept).
    ///   - packedWeights: pre-packed frozen weights (`PackedTrainingWeights`), or nil; bitwise equal either way.
    /// - Returns: the layer output `[batch·seq, hidden]` and, when saving, the state for
    ///   `trainingLayerBackward`.
    public func trainingLayerForward(_ l: Int, _ x: Tensor, mask: Tensor, batch: Int, seq: Int,
                                     trainable: (any TrainableSublayer)?, dropout: EncoderDropout,
                                     rng: inout SeededRNG, saveForBackward: Bool,
                                     packedWeights: PackedTrainingWeights? = nil,
                                     context: ComputeContext) -> (output: Tensor, state: LayerTrainingState?) {
        let w = layerWeights(l), pw = packedWeights?.layers[l]
        let heads = config.numAttentionHeads, headSize = config.headSize, hidden = config.hiddenSize
        let rows = batch * seq
        require(x.shape == [rows, hidden], "trainingLayerForward: x \(x.shape) is not [\(rows), \(hidden)]")
        func split(_ t: Tensor) -> Tensor { t.reshaped([batch, seq, heads, headSize]).permuted([0, 2, 1, 3]) }
        let q = split(forwardLinear(x, w.queryWeight, pw?.query, w.queryBias, context: context).output)
        let k = split(forwardLinear(x, w.keyWeight, pw?.key, w.keyBias, context: context).output)
        let v = split(forwardLinear(x, w.valueWeight, pw?.value, w.valueBias, context: context).output)
        let scores = matmul(q, k, transposeB: true, context: context)
        let p = softmax(scores, scale: 1 / Float(headSize).squareRoot(), mask: mask, context: context)
        var attentionMask: Tensor? = nil
        var dropped = p
        if dropout.attentionProbabilities > 0 {
            let r = AdapterCore.dropout(p, rate: dropout.attentionProbabilities, using: &rng, context: context)
            dropped = r.output
            attentionMask = r.mask
        }
        var attended = trainingScratch([batch, seq, heads, headSize]).permuted([0, 2, 1, 3])  // beta 0: never read
        matmul(dropped, v, into: &attended, context: context)
        let merged = attended.permuted([0, 2, 1, 3]).reshaped([rows, hidden])
        var h1 = forwardLinear(merged, w.attentionOutputWeight, pw?.attentionOutput, w.attentionOutputBias,
                               context: context).output
        var mask1: Tensor? = nil
        if dropout.hidden > 0 {
            let r = AdapterCore.dropout(h1, rate: dropout.hidden, using: &rng, context: context)
            h1 = r.output
            mask1 = r.mask
        }
        let (x1, sub1) = trainingResidualNorm(l, .attentionOutput, h1, x, batch: batch, seq: seq, trainable: trainable,
                                              dropout: dropout, rng: &rng, save: saveForBackward, context: context)
        let inner = forwardLinear(x1, w.intermediateWeight, pw?.intermediate, w.intermediateBias,
                                  activation: config.hiddenActivation, save: saveForBackward, context: context)
        var h2 = forwardLinear(inner.output, w.outputWeight, pw?.output, w.outputBias, context: context).output
        var mask2: Tensor? = nil
        if dropout.hidden > 0 {
            let r = AdapterCore.dropout(h2, rate: dropout.hidden, using: &rng, context: context)
            h2 = r.output
            mask2 = r.mask
        }
        // x1 has k·rows rows when a module replicated the batch at the attention location (Parallel).
        let (x2, sub2) = trainingResidualNorm(l, .output, h2, x1, batch: x1.shape[0] / seq, seq: seq, trainable: trainable,
                                              dropout: dropout, rng: &rng, save: saveForBackward, context: context)
        guard saveForBackward, let sub1, let sub2, let pre = inner.preactivation else { return (x2, nil) }
        let state = LayerTrainingState(layer: l, batch: batch, sequenceLength: seq, query: q, key: k, value: v,
                                       probabilities: p, attentionDropoutMask: attentionMask,
                                       attentionOutputDropoutMask: mask1, attentionSublayer: sub1,
                                       preactivation: pre, outputDropoutMask: mask2, outputSublayer: sub2)
        return (x2, state)
    }

    /// `linear` with the packed weight when there is one (bitwise equal either way).
    private func forwardLinear(_ x: Tensor, _ w: Tensor, _ packed: PackedWeight?, _ b: Tensor,
                               activation: Activation = .identity, save: Bool = false,
                               context: ComputeContext) -> LinearOutput {
        if let packed {
            return linear(x, weight: packed, bias: b, activation: activation, savePreactivation: save, context: context)
        }
        return linear(x, weight: w, bias: b, activation: activation, savePreactivation: save, context: context)
    }

    /// `dx = beta·dx + g·W` with the packed weight when there is one (bitwise equal either way).
    private func inputGradient(_ g: Tensor, _ w: Tensor, _ packed: PackedWeight?, into dx: inout Tensor,
                               beta: Float, context: ComputeContext) {
        if let packed {
            linearInputGradient(g, weight: packed, into: &dx, beta: beta, context: context)
        } else {
            linearInputGradient(g, weight: w, into: &dx, beta: beta, context: context)
        }
    }

    /// `module(h, a) ?? LN(h + a)` at one location, with what backward needs.
    private func trainingResidualNorm(_ l: Int, _ location: AdapterLocation, _ h: Tensor, _ a: Tensor,
                                      batch: Int, seq: Int, trainable: (any TrainableSublayer)?,
                                      dropout: EncoderDropout, rng: inout SeededRNG, save: Bool,
                                      context: ComputeContext) -> (Tensor, SublayerTrainingState?) {
        let norm = sublayerLayerNorm(layer: l, location)
        if let trainable, let out = trainable.trainingForward(
            layer: l, location: location, hidden: h, residual: a, layerNorm: norm, batch: batch,
            sequenceLength: seq, saveForBackward: save, dropout: dropout, rng: &rng, context: context) {
            let replicas = out.output.shape[0] / max(h.shape[0], 1)
            require(replicas >= 1 && out.output.shape == [replicas * h.shape[0], h.shape[1]],
                         "trainingLayerForward: module at layer \(l) \(location.rawValue) returned \(out.output.shape), expected \(h.shape) or a multiple of its rows (Parallel replication)")
            return (out.output, save ? .module(out.saved) : nil)
        }
        let y = layerNorm(h, residual: a, weight: norm.weight, bias: norm.bias, eps: norm.eps, context: context)
        return (y.output, save ? .layerNorm(normalizedInput: y.normalizedInput, mean: y.mean, rstd: y.rstd) : nil)
    }

    /// Backward of one location: returns (dh, da).
    private func residualNormBackward(_ l: Int, _ location: AdapterLocation, _ dy: Tensor,
                                      _ saved: SublayerTrainingState, trainable: (any TrainableSublayer)?,
                                      layerNormGradients: inout LayerNormGradients?,
                                      context: ComputeContext) -> (hidden: Tensor, residual: Tensor) {
        let norm = sublayerLayerNorm(layer: l, location)
        switch saved {
        case .module(let state):
            guard let trainable else {
                preconditionFailure("trainingLayerBackward: layer \(l) \(location.rawValue) was run by a module, but none was passed to backward")
            }
            return trainable.trainingBackward(layer: l, location: location, outputGradient: dy, saved: state,
                                              layerNorm: norm, context: context)
        case .layerNorm(let s, let mean, let rstd):
            guard var g = layerNormGradients else {
                let ds = layerNormBackward(dy, input: s, weight: norm.weight, mean: mean, rstd: rstd, context: context)
                return (ds, ds)
            }
            var ds = Tensor(zeros: s.shape)
            switch location {
            case .attentionOutput:
                layerNormBackward(dy, input: s, weight: norm.weight, mean: mean, rstd: rstd, inputGradient: &ds,
                                  weightGradient: &g.attentionWeight, biasGradient: &g.attentionBias, context: context)
            case .output:
                layerNormBackward(dy, input: s, weight: norm.weight, mean: mean, rstd: rstd, inputGradient: &ds,
                                  weightGradient: &g.outputWeight, biasGradient: &g.outputBias, context: context)
            }
            layerNormGradients = g
            return (ds, ds)
        }
    }

    /// Backward of `trainingLayerForward` through the layer's frozen weights: returns dL/dx `[batch·seq, hidden]`
    /// for the layer input, given dL/dx₂ for its output.
    /// ```
    /// (dh̃₂, dx₁) = module/LN₂ backward(dx₂);   dh₂ = dh̃₂ ⊙ M₂
    /// dx₁       += (act'(pre) ⊙ (dh₂·Wo₂))·Wi
    /// (dh̃₁, dx) = module/LN₁ backward(dx₁);    dh₁ = dh̃₁ ⊙ M₁
    /// dc = dh₁·Wo (as [batch, heads, seq, headSize]);  dp̃ = dc·vᵀ,  dv = p̃ᵀ·dc
    /// dp = dp̃ ⊙ M_attn;  ds = softmaxBackward(dp) (scale 1/√headSize);  dq = ds·k,  dk = dsᵀ·q
    /// dx += dq·Wq + dk·Wk + dv·Wv
    /// ```
    /// Module parameter gradients accumulate inside `trainable`; LayerNorm parameter gradients accumulate into
    /// `layerNormGradients` when it is non-nil.
    /// - Parameters:
    ///   - state: from `trainingLayerForward(…, saveForBackward: true)` of this layer.
    ///   - outputGradient: dL/dx₂ `[batch·seq, hidden]`.
    ///   - trainable: the same modules as in the forward pass.
    ///   - packedWeights: pre-packed frozen weights (`PackedTrainingWeights`), or nil; bitwise equal either way.
    public func trainingLayerBackward(_ state: LayerTrainingState, outputGradient: Tensor,
                                      trainable: (any TrainableSublayer)?,
                                      layerNormGradients: inout LayerNormGradients?,
                                      packedWeights: PackedTrainingWeights? = nil,
                                      context: ComputeContext) -> Tensor {
        trainingLayerBackward(state, outputGradient: outputGradient, trainable: trainable,
                              layerNormGradients: &layerNormGradients, packedWeights: packedWeights,
                              needsInputGradient: true, context: context)!
    }

    /// `trainingLayerBackward`, optionally without dL/dx: with `needsInputGradient == false` (the lowest layer
    /// of a backward pass whose caller wants parameter gradients only) it stops as soon as every parameter
    /// gradient of the layer is accumulated and returns nil —
    /// - right after the output location when the attention location ran the plain `LN(h + a)` and no LayerNorm
    ///   gradients are asked for (seq_bn: the adapter sits after the FFN, so neither the FFN nor the attention
    ///   is back-propagated; autograd in the reference skips them the same way, nothing below requires grad);
    /// - otherwise after the attention location (its module or LayerNorm), skipping the attention core.
    func trainingLayerBackward(_ state: LayerTrainingState, outputGradient: Tensor,
                               trainable: (any TrainableSublayer)?,
                               layerNormGradients: inout LayerNormGradients?,
                               packedWeights: PackedTrainingWeights?, needsInputGradient: Bool,
                               context: ComputeContext) -> Tensor? {
        let l = state.layer, w = layerWeights(l), pw = packedWeights?.layers[l]
        let batch = state.batch, seq = state.sequenceLength, rows = batch * seq
        let heads = config.numAttentionHeads, headSize = config.headSize, hidden = config.hiddenSize
        // dy has k·rows rows when a module in this layer replicated the batch (Parallel); its backward sums
        // the replicas' gradients back to `rows`.
        require(outputGradient.shape[0] % rows == 0 && outputGradient.shape == [outputGradient.shape[0], hidden],
                     "trainingLayerBackward: dy \(outputGradient.shape) is not [k·\(rows), \(hidden)]")
        // Output location and FFN.
        var (dh2, dx1) = residualNormBackward(l, .output, outputGradient, state.outputSublayer, trainable: trainable,
                                              layerNormGradients: &layerNormGradients, context: context)
        if !needsInputGradient, layerNormGradients == nil, case .layerNorm = state.attentionSublayer { return nil }
        if let m = state.outputDropoutMask { applyDropoutMask(m, to: &dh2, context: context) }
        var dInner = trainingScratch(state.preactivation.shape)  // beta 0 below: never read
        inputGradient(dh2, w.outputWeight, pw?.output, into: &dInner, beta: 0, context: context)
        let dPre = activationBackward(dInner, preactivation: state.preactivation, activation: config.hiddenActivation,
                                      context: context)
        dx1 = dx1.contiguous()
        inputGradient(dPre, w.intermediateWeight, pw?.intermediate, into: &dx1, beta: 1, context: context)
        // Attention location.
        var (dh1, dx) = residualNormBackward(l, .attentionOutput, dx1, state.attentionSublayer, trainable: trainable,
                                             layerNormGradients: &layerNormGradients, context: context)
        if !needsInputGradient { return nil }
        if let m = state.attentionOutputDropoutMask { applyDropoutMask(m, to: &dh1, context: context) }
        var dMerged = trainingScratch([rows, hidden])  // beta 0 below: never read
        inputGradient(dh1, w.attentionOutputWeight, pw?.attentionOutput, into: &dMerged, beta: 0, context: context)
        let dContext = dMerged.reshaped([batch, seq, heads, headSize]).permuted([0, 2, 1, 3])
        let dropped = state.attentionDropoutMask.map { multiply(state.probabilities, $0, context: context) }
            ?? state.probabilities
        // Gradient buffers written with beta 0 (never read): no zero fill.
        func tokenMajor() -> Tensor { trainingScratch([batch, seq, heads, headSize]).permuted([0, 2, 1, 3]) }
        var dDropped = trainingScratch(dropped.shape)
        var dv = tokenMajor()
        matmulBackward(dContext, a: dropped, b: state.value, aGradient: &dDropped, bGradient: &dv, context: context)
        if let m = state.attentionDropoutMask { applyDropoutMask(m, to: &dDropped, context: context) }
        let dScores = softmaxBackward(dDropped, output: state.probabilities, scale: 1 / Float(headSize).squareRoot(),
                                      context: context)
        var dq = tokenMajor(), dk = tokenMajor()
        matmulBackward(dScores, a: state.query, b: state.key, transposeB: true, aGradient: &dq, bGradient: &dk,
                       context: context)
        func flat(_ t: Tensor) -> Tensor { t.permuted([0, 2, 1, 3]).reshaped([rows, hidden]) }
        dx = dx.contiguous()
        inputGradient(flat(dq), w.queryWeight, pw?.query, into: &dx, beta: 1, context: context)
        inputGradient(flat(dk), w.keyWeight, pw?.key, into: &dx, beta: 1, context: context)
        inputGradient(flat(dv), w.valueWeight, pw?.value, into: &dx, beta: 1, context: context)
        return dx
    }
}

/// A tensor whose contents are undefined, for outputs written with `beta == 0` (never read): skips the zero
/// fill of `Tensor(zeros:)` (≈ 12 MB per layer for the FFN gradient at batch 8 × seq 128).
@inline(__always)
func trainingScratch(_ shape: [Int]) -> Tensor { Tensor(shape: shape) { _ in } }

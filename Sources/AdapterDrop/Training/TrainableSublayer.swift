import AdapterCore

/// Dropout rates of the encoder in training mode (transformers `BertConfig.hidden_dropout_prob` and
/// `attention_probs_dropout_prob`). Dropout is inverted (kept values scaled by `1/(1 − rate)`, as
/// `torch.nn.Dropout` in training mode); masks come from a `SeededRNG`, so a run is reproducible from its seed
/// (but not bit-compatible with torch's generator). Evaluation uses `.off`.
public struct EncoderDropout: Sendable, Equatable {
    /// Rate of the hidden dropout: after the embedding LayerNorm, on the attention output projection `h₁` and
    /// on the FFN output projection `h₂` (before the residual + LayerNorm / adapter), in `[0, 1)`.
    public var hidden: Float
    /// Rate of the dropout on the attention probabilities `p` (after softmax, before `p·v`), in `[0, 1)`.
    public var attentionProbabilities: Float

    /// - Precondition: both rates are in `[0, 1)`.
    public init(hidden: Float, attentionProbabilities: Float) {
        require(hidden >= 0 && hidden < 1 && attentionProbabilities >= 0 && attentionProbabilities < 1,
                     "EncoderDropout: rates hidden \(hidden), attention \(attentionProbabilities) must be in [0, 1)")
        self.hidden = hidden
        self.attentionProbabilities = attentionProbabilities
    }

    /// The rates of a model config (transformers' defaults 0.1 / 0.1 when the config has none).
    public init(config: BertConfig) {
        self.init(hidden: Float(config.hiddenDropoutProb ?? 0.1),
                  attentionProbabilities: Float(config.attentionProbsDropoutProb ?? 0.1))
    }

    /// No dropout (evaluation, `model.eval()`).
    public static let off = EncoderDropout(hidden: 0, attentionProbabilities: 0)

    /// True when any rate is non-zero.
    public var isActive: Bool { hidden > 0 || attentionProbabilities > 0 }
}

/// What a trainable sub-layer module's training forward returns.
public struct TrainableSublayerForward {
    /// The location's output `[k·rows, hidden]` (`rows = batch·seq`); k = 1 except where a module replicates
    /// the batch (`ParallelTrainingModule`: k branches, the layers above then run on k·batch sequences).
    public var output: Tensor
    /// Whatever the module needs for its backward pass (its own struct or class); nil when the forward was
    /// called with `saveForBackward == false`. The encoder keeps it opaque and hands it back to
    /// `trainingBackward` unchanged.
    public var saved: Any?

    public init(output: Tensor, saved: Any?) {
        self.output = output
        self.saved = saved
    }
}

/// Trainable modules (adapters, fusion, their composition) at the two adapter locations of every layer, for
/// training — the training counterpart of `SublayerHook`.
///
/// ## Contract
/// At each adapter location the encoder has computed
/// - `hidden` h `[rows, hidden]`: the sub-layer's dense output, **after** hidden dropout (as in adapters'
///   `BertSelfOutputWithAdapters.forward`: dense → dropout → `bottleneck_layer_forward(h, input, LayerNorm)`),
/// - `residual` a `[rows, hidden]`: the sub-layer's input,
/// - `layerNorm`: the layer's own (frozen) LayerNorm at that location,
///
/// with `rows = batch·sequenceLength`. The encoder calls, in order:
/// 1. `hasTrainableParameters(layer:)` once per layer when planning a step: the lowest layer for which it is
///    true (or the lowest layer the caller asks gradients for) is where backpropagation stops. Layers below
///    it run forward only and keep nothing — the AdapterDrop training speed-up.
/// 2. `trainingForward(…)` at both locations of every layer (also below the lowest trained layer, with
///    `saveForBackward == false`, so that frozen modules there still act). Return nil for "no module here"
///    (e.g. a layer skipped by AdapterDrop): the encoder then computes `LN(h + a)` itself and backpropagates
///    through it. Otherwise return the output `[rows, hidden]` — or `[k·rows, hidden]` to replicate the batch
///    k times (Parallel training; the encoder repeats the attention mask and runs the layers above on k·batch
///    sequences) — and, when `saveForBackward` is true, the state the backward pass needs.
///    Module dropout draws from `rng` only when `dropout.isActive`, so evaluation draws nothing.
/// 3. `trainingBackward(…)` in reverse order (output location, then attention location; top layer first),
///    exactly once per forward that returned a value with `saveForBackward == true`. Given
///    `outputGradient` dL/d(output) (the output's shape) it returns dL/dh and dL/da (both `[rows, hidden]`, the input's rows; freshly
///    allocated or otherwise owned by the caller from then on) and **accumulates** (`+=`) the gradients of its
///    own parameters in its own gradient buffers (the AdapterCore gradient rule). Backward through the frozen
///    `layerNorm` is the module's job when it applies it (e.g. seq_bn's `LN(adapter(h) + a)`).
///
/// A module tells the optimizer which of its parameters received a gradient this step (parameters of a layer
/// skipped by AdapterDrop must get none: torch's AdamW then leaves them — and their step count — untouched).
///
/// Modules are classes (they own gradient buffers); they are used from one thread at a time.
public protocol TrainableSublayer: AnyObject {
    /// Whether layer `layer` has a parameter that needs a gradient in the current setup (active and not
    /// skipped by AdapterDrop).
    func hasTrainableParameters(layer: Int) -> Bool

    /// Training-mode forward at one adapter location; see the protocol's contract (step 2).
    /// - Parameters:
    ///   - hidden: h `[rows, hidden]` after hidden dropout.
    ///   - residual: a `[rows, hidden]`.
    ///   - layerNorm: the layer's frozen LayerNorm at `location`.
    ///   - batch, sequenceLength: `rows = batch·sequenceLength`.
    ///   - saveForBackward: keep what `trainingBackward` needs (false below the lowest trained layer).
    ///   - dropout: the encoder's rates (`.off` in evaluation); `rng`: the step's generator.
    /// - Returns: nil for "no module at this location", else the output and saved state.
    func trainingForward(layer: Int, location: AdapterLocation, hidden: Tensor, residual: Tensor,
                         layerNorm: SublayerLayerNorm, batch: Int, sequenceLength: Int, saveForBackward: Bool,
                         dropout: EncoderDropout, rng: inout SeededRNG,
                         context: ComputeContext) -> TrainableSublayerForward?

    /// Backward at one adapter location; see the protocol's contract (step 3).
    /// - Parameters:
    ///   - outputGradient: dL/d(output) `[rows, hidden]`.
    ///   - saved: `TrainableSublayerForward.saved` from the matching forward.
    ///   - layerNorm: the same LayerNorm as in the forward.
    /// - Returns: `(hidden: dL/dh, residual: dL/da)`, each `[rows, hidden]`.
    func trainingBackward(layer: Int, location: AdapterLocation, outputGradient: Tensor, saved: Any?,
                          layerNorm: SublayerLayerNorm,
                          context: ComputeContext) -> (hidden: Tensor, residual: Tensor)
}

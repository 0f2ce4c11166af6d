import AdapterCore

/// Where in a transformer layer adapters sit (AdapterHub location keys, `models/bert/mixin_bert.py`).
public enum AdapterLocation: String, Sendable, CaseIterable, Codable {
    /// After the attention output projection (`BertSelfOutput`), `mh_adapter` in adapter configs.
    case attentionOutput = "mh_adapter"
    /// After the feed-forward output projection (`BertOutput`), `output_adapter` in adapter configs.
    case output = "output_adapter"
}

/// A layer's original post-sub-layer LayerNorm (`LayerNorm` in `BertSelfOutput` / `BertOutput`), which
/// adapters such as seq_bn reuse.
public struct SublayerLayerNorm: Sendable {
    /// γ `[hidden]`.
    public var weight: Tensor
    /// β `[hidden]`.
    public var bias: Tensor
    /// Added to the variance (from `layer_norm_eps`).
    public var eps: Float

    /// `LN(h + residual)` over rows: `[rows, hidden]` → `[rows, hidden]`.
    public func callAsFunction(_ h: Tensor, residual: Tensor?, context: ComputeContext) -> Tensor {
        layerNorm(h, residual: residual, weight: weight, bias: bias, eps: eps, context: context).output
    }
}

/// What runs at each adapter location in place of the plain `LN(h + a)`: adapters, fusion and composition
/// blocks (AdapterHub's `BottleneckLayer.bottleneck_layer_forward`, `methods/bottleneck.py`).
///
/// The encoder calls it twice per layer with
/// - `hidden` h `[rows, hidden]`: the sub-layer's dense output (bias included),
/// - `residual` a `[rows, hidden]`: the sub-layer's input (layer input, or attention block output),
/// - `layerNorm`: the layer's own LayerNorm for that location,
/// where `rows = batch·seq` and `batch` is the current (possibly already replicated) batch.
/// It returns the location's output `[rows', hidden]`. `rows' = rows` except where a `Parallel` block
/// replicates the batch N times (`rows' = N·rows`); the encoder then runs all later layers on the
/// replicated batch, so the layers below the first active adapter are computed once for all tasks.
/// Returning nil means "no adapter here": the encoder computes `LN(h + a)` itself, bit-identical to the
/// base model (this is what AdapterDrop's skipped layers do).
public protocol SublayerHook: Sendable {
    func sublayerOutput(layer: Int, location: AdapterLocation, hidden: Tensor, residual: Tensor,
                        layerNorm: SublayerLayerNorm, batch: Int, sequenceLength: Int,
                        context: ComputeContext) -> Tensor?
}

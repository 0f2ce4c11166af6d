import AdapterCore

/// The six frozen matrices of each encoder layer packed once for training: for the forward product `x·Wᵀ`
/// and for the input gradient `g·W` (`PackedWeight(_:packForBackward: true)`). Passing it to the training
/// functions skips re-packing every weight twice per step; results are bitwise identical to the plain path.
/// Costs two extra copies of the layer weights in memory (BERT-base: ≈ 680 MB).
public struct PackedTrainingWeights: Sendable {
    /// One layer's packed matrices.
    public struct Layer: Sendable {
        public let query: PackedWeight, key: PackedWeight, value: PackedWeight
        public let attentionOutput: PackedWeight, intermediate: PackedWeight, output: PackedWeight
    }

    /// Per layer; nil for layers not packed.
    public let layers: [Layer?]

    /// Packs the layers in `layers` (default: all) of `encoder`. Layers below the lowest trained layer only run
    /// forward; packing them still speeds up their forward.
    public init(_ encoder: BertEncoder, layers: Range<Int>? = nil) {
        let range = layers ?? 0..<encoder.config.numHiddenLayers
        self.layers = (0..<encoder.config.numHiddenLayers).map { l in
            guard range.contains(l) else { return nil }
            let w = encoder.layerWeights(l)
            func pack(_ t: Tensor) -> PackedWeight { PackedWeight(t, packForBackward: true) }
            return Layer(query: pack(w.queryWeight), key: pack(w.keyWeight), value: pack(w.valueWeight),
                         attentionOutput: pack(w.attentionOutputWeight), intermediate: pack(w.intermediateWeight),
                         output: pack(w.outputWeight))
        }
    }
}

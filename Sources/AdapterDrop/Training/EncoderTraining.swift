import AdapterCore

/// What a training forward over the whole encoder keeps for the backward pass.
///
/// Only layers `lowestTrainedLayer…L−1` have saved activations; the layers below ran forward only.
public struct EncoderTrainingTape {
    /// The lowest layer the backward pass reaches (its input gradient is what `trainingBackward` returns).
    /// Equal to `numHiddenLayers` when nothing is trained (then nothing is kept).
    public var lowestTrainedLayer: Int
    /// Sequences and their length (`rows = batch·sequenceLength`).
    public var batch: Int, sequenceLength: Int
    /// The last layer's output `[k·batch·seq, hidden]`: k = 1 unless a module replicated the batch (Parallel
    /// training: k branches, branch i in rows `i·batch·seq ..< (i+1)·batch·seq`).
    public var output: Tensor
    /// The input of layer `lowestTrainedLayer` `[batch·seq, hidden]` (the embedding output when it is 0).
    public var lowestLayerInput: Tensor
    /// Saved states of layers `lowestTrainedLayer…L−1`, in layer order.
    public var layers: [LayerTrainingState]

    /// Bytes of saved activations (module state excluded).
    public var savedByteCount: Int { layers.reduce(0) { $0 + $1.byteCount } }
}

extension BertEncoder {
    /// The lowest layer that has a trainable parameter: the smallest `l` with
    /// `trainable.hasTrainableParameters(layer: l)`, lowered to `alsoFrom` when given (e.g. to get input
    /// gradients or LayerNorm gradients from that layer up). `numHiddenLayers` when there is none.
    public func lowestTrainedLayer(trainable: (any TrainableSublayer)?, alsoFrom: Int? = nil) -> Int {
        let n = config.numHiddenLayers
        var lowest = (0..<n).first { trainable?.hasTrainableParameters(layer: $0) ?? false } ?? n
        if let alsoFrom { lowest = min(lowest, max(alsoFrom, 0)) }
        return lowest
    }

    /// Training forward over the encoder from token ids: the embedding output (with hidden dropout, as
    /// `BertEmbeddings` in training mode; the embeddings are frozen and get no gradient), then
    /// `trainingForward(embeddings:…)`.
    /// - Parameters:
    ///   - lowestTrainedLayer: where backpropagation will stop; nil means `lowestTrainedLayer(trainable:)`.
    ///   - dropout: `EncoderDropout(config:)` for training, `.off` for evaluation.
    ///   - rng: the step's generator; masks are drawn embedding first, then layer by layer.
    /// - Throws: `EncoderError` for ids outside the tables or a sequence that is too long.
    public func trainingForward(_ input: EncoderInput, trainable: (any TrainableSublayer)?,
                                lowestTrainedLayer: Int? = nil, dropout: EncoderDropout, rng: inout SeededRNG,
                                packedWeights: PackedTrainingWeights? = nil,
                                context: ComputeContext) throws -> EncoderTrainingTape {
        var x = try embed(input, context: context)
        if dropout.hidden > 0 {
            x = AdapterCore.dropout(x, rate: dropout.hidden, using: &rng, context: context).output
        }
        return trainingForward(embeddings: x, mask: additiveMask(for: input), batch: input.batchSize,
                               seq: input.sequenceLength, trainable: trainable,
                               lowestTrainedLayer: lowestTrainedLayer, dropout: dropout, rng: &rng,
                               packedWeights: packedWeights, context: context)
    }

    /// Training forward over all layers from the embedding output. Layers below `lowestTrainedLayer` run
    /// forward only (modules there are called with `saveForBackward == false`) and keep nothing; layers from
    /// it up keep their activations.
    /// - Parameters:
    ///   - x: embedding output `[batch·seq, hidden]`.
    ///   - mask: additive key mask `[batch, seq]`.
    ///   - lowestTrainedLayer: nil means `lowestTrainedLayer(trainable:)`; must be in `0…numHiddenLayers`.
    ///   - packedWeights: pre-packed frozen weights (`PackedTrainingWeights`), or nil; bitwise equal either way.
    /// - Returns: the tape for `trainingBackward`, with the last layer's output.
    public func trainingForward(embeddings x: Tensor, mask: Tensor, batch: Int, seq: Int,
                                trainable: (any TrainableSublayer)?, lowestTrainedLayer: Int? = nil,
                                dropout: EncoderDropout, rng: inout SeededRNG,
                                packedWeights: PackedTrainingWeights? = nil,
                                context: ComputeContext) -> EncoderTrainingTape {
        let n = config.numHiddenLayers
        let lowest = lowestTrainedLayer ?? self.lowestTrainedLayer(trainable: trainable)
        require(lowest >= 0 && lowest <= n, "trainingForward: lowest trained layer \(lowest) not in 0…\(n)")
        var h = x, lowestInput = x
        var states: [LayerTrainingState] = []
        states.reserveCapacity(n - lowest)
        var rowsBatch = batch, rowsMask = mask
        for l in 0..<n {
            if l == lowest { lowestInput = h }
            let save = l >= lowest
            let (y, state) = trainingLayerForward(l, h, mask: rowsMask, batch: rowsBatch, seq: seq, trainable: trainable,
                                                  dropout: dropout, rng: &rng, saveForBackward: save,
                                                  packedWeights: packedWeights, context: context)
            if let state { states.append(state) }
            h = y
            // A module replicated the batch k times (Parallel): the layers above see k·batch sequences.
            let k = y.shape[0] / (rowsBatch * seq)
            if k > 1 {
                rowsMask = Tensor(concatenating: Array(repeating: rowsMask, count: k))
                rowsBatch *= k
            }
        }
        if lowest == n { lowestInput = h }
        return EncoderTrainingTape(lowestTrainedLayer: lowest, batch: batch, sequenceLength: seq, output: h,
                                   lowestLayerInput: lowestInput, layers: states)
    }

    /// Backward from dL/d(encoder output) down to the input of `tape.lowestTrainedLayer`, and no further.
    /// - Parameters:
    ///   - outputGradient: dL/d(last layer output) `[batch·seq, hidden]`.
    ///   - trainable: the same modules as in the forward pass (their parameter gradients accumulate).
    ///   - layerNormGradients: nil, or one entry per layer (`numHiddenLayers`); entries of layers
    ///     `lowestTrainedLayer…L−1` accumulate their LayerNorm parameter gradients.
    /// - Returns: dL/d(input of layer `lowestTrainedLayer`) `[batch·seq, hidden]` (the output gradient itself
    ///   when no layer was trained). A caller that only wants the parameter gradients should call
    ///   `accumulateTrainingGradients` instead, which skips the part of the lowest layer below its trainable
    ///   parameters.
    public func trainingBackward(_ tape: EncoderTrainingTape, outputGradient: Tensor,
                                 trainable: (any TrainableSublayer)?,
                                 layerNormGradients: inout [LayerNormGradients]?,
                                 packedWeights: PackedTrainingWeights? = nil,
                                 context: ComputeContext) -> Tensor {
        backward(tape, outputGradient: outputGradient, trainable: trainable, layerNormGradients: &layerNormGradients,
                 packedWeights: packedWeights, needsInputGradient: true, context: context)!
    }

    /// The backward pass for parameter gradients only: what `trainingBackward` accumulates (module parameter
    /// gradients inside `trainable`, LayerNorm gradients into `layerNormGradients`), without dL/d(input of the
    /// lowest trained layer). In that layer it stops as soon as nothing below can receive a gradient: for a
    /// module only at the output location (seq_bn) right after it — the layer's FFN and attention are not
    /// back-propagated, as autograd skips them in the reference (nothing below requires grad); with a module or
    /// LayerNorm gradients at the attention location, after that location (the attention core is skipped).
    /// Gradients are bitwise those of `trainingBackward`.
    /// - Parameters: as `trainingBackward`.
    public func accumulateTrainingGradients(_ tape: EncoderTrainingTape, outputGradient: Tensor,
                                            trainable: (any TrainableSublayer)?,
                                            layerNormGradients: inout [LayerNormGradients]?,
                                            packedWeights: PackedTrainingWeights? = nil,
                                            context: ComputeContext) {
        _ = backward(tape, outputGradient: outputGradient, trainable: trainable,
                     layerNormGradients: &layerNormGradients, packedWeights: packedWeights,
                     needsInputGradient: false, context: context)
    }

    private func backward(_ tape: EncoderTrainingTape, outputGradient: Tensor, trainable: (any TrainableSublayer)?,
                          layerNormGradients: inout [LayerNormGradients]?, packedWeights: PackedTrainingWeights?,
                          needsInputGradient: Bool, context: ComputeContext) -> Tensor? {
        var all = layerNormGradients
        if let entries = all {
            require(entries.count == config.numHiddenLayers,
                    "trainingBackward: \(entries.count) LayerNorm gradient entries for \(config.numHiddenLayers) layers")
            layerNormGradients = nil  // keep the entries uniquely owned while accumulating
        }
        var g: Tensor? = outputGradient
        for (i, state) in tape.layers.enumerated().reversed() {
            // Only the lowest saved layer may stop early; every layer above must pass dL/dx down.
            let needsInput = needsInputGradient || i > 0
            var entry: LayerNormGradients? = all?[state.layer]
            g = trainingLayerBackward(state, outputGradient: g!, trainable: trainable, layerNormGradients: &entry,
                                      packedWeights: packedWeights, needsInputGradient: needsInput, context: context)
            if let entry { all![state.layer] = entry }
        }
        layerNormGradients = all
        return g
    }
}

// Training of one bottleneck adapter (seq_bn / double_seq_bn family) and a prediction head through the
// frozen encoder: the `TrainableSublayer` conformance and the head's forward/backward with its loss.
// Matches adapters 1.3.0 `Adapter.forward` + `BottleneckLayer.bottleneck_layer_forward` (pre_forward /
// forward / post_forward) and `ClassificationHead` (see docs/training.md, "Training an adapter").
import AdapterCore

/// One bottleneck adapter as a trainable module at the adapter locations of the encoder.
///
/// Parameters live in `parameters`, keyed by their full state-dict names
/// (`{keyPrefix}encoder.layer.{l}.output.adapters.{name}.adapter_down.0.weight`, `….adapter_up.bias`, …), so
/// that `AdamW.step(parameters:gradients:learningRate:)` and `clipGradientNorm` work on them directly, and the
/// names match the reference's `named_parameters()`.
///
/// Per site, with h the sub-layer output, a its input and LN the layer's frozen LayerNorm:
/// ```
/// pre_forward:  x = LN(h + a) if original_ln_before else h;  r = h | h + a (post_add) | x (residual_before_ln false)
/// forward:      z = W_down·x + b_down,  u = (W_up·act(z) + b_up)·s,  o = u + r
/// post_forward: y = LN(o + a) if original_ln_after else o
/// ```
/// seq_bn therefore uses the frozen LN twice: `y = LN(up(relu(down(LN(h + a)))) + h + a)`.
/// Backward accumulates (`+=`) dW/db of the site into `gradients` and returns dL/dh, dL/da through both LNs.
///
/// Layers in `skipLayers` (AdapterDrop) have no module: the forward returns nil and no gradient is created
/// for their parameters, so AdamW skips them as torch does (`grad is None`).
///
/// Supported: constant scaling, no `ln_before` / `ln_after` / gating, not `is_parallel` (precondition).
public final class BottleneckAdapterTrainingModule: TrainableSublayer {
    /// The adapter's name.
    public let name: String
    /// Its configuration (unchanged by training).
    public let config: BottleneckConfig
    /// Model hidden size.
    public let hiddenSize: Int
    /// The model prefix of the keys (`"bert."` for a flex-head BERT model, `""` for none).
    public let keyPrefix: String
    /// The sites that have a module (from the adapter's weights).
    public let sites: [AdapterSite]
    /// Layers skipped by AdapterDrop for the current step (no module, no gradient).
    public var skipLayers: Set<Int> = []
    /// Trainable tensors by full name; updated in place by the optimizer.
    public var parameters: [String: Tensor]
    /// Accumulated gradients of this step by full name; only parameters of sites that ran a backward.
    public private(set) var gradients: [String: Tensor] = [:]

    struct CoreSaved {
        var ln1: LayerNormOutput?  // original_ln_before
        var x: Tensor              // adapter input
        var preactivation: Tensor  // W_down·x + b_down
        var down: Tensor           // act(pre)
    }

    private struct Saved {
        var core: CoreSaved
        var ln2: LayerNormOutput?  // original_ln_after
    }

    /// - Parameters:
    ///   - adapter: the adapter to train (its weights are the initial values).
    ///   - keyPrefix: prefix of the parameter names (`"bert."` as in the reference's flex-head model).
    /// - Precondition: the config is in the supported subset (see the type's doc).
    public init(_ adapter: BottleneckAdapter, keyPrefix: String = "bert.") {
        let c = adapter.config
        var constantScale = false
        if case .constant = c.scaling { constantScale = true }
        require(!c.isParallel && !c.layerNormBefore && !c.layerNormAfter && !c.useGating && constantScale,
                     "BottleneckAdapterTrainingModule: adapter \(adapter.name) uses a config variant not supported for training (parallel, ln_before/after, gating or learned scaling)")
        name = adapter.name
        config = c
        hiddenSize = adapter.hiddenSize
        self.keyPrefix = keyPrefix
        sites = adapter.weights.keys.sorted()
        var p: [String: Tensor] = [:]
        for (site, w) in adapter.weights {
            for (k, t) in w.namedTensors { p[Self.key(prefix: keyPrefix, site: site, adapter: adapter.name, k)] = t }
        }
        parameters = p
    }

    /// The full parameter name of tensor `tensorKey` (e.g. `adapter_up.weight`) at `site`.
    public static func key(prefix: String, site: AdapterSite, adapter: String, _ tensorKey: String) -> String {
        "\(prefix)\(site.modulePath).adapters.\(adapter).\(tensorKey)"
    }

    private func names(_ site: AdapterSite) -> (dw: String, db: String, uw: String, ub: String) {
        let k = { Self.key(prefix: self.keyPrefix, site: site, adapter: self.name, $0) }
        return (k("adapter_down.0.weight"), k("adapter_down.0.bias"), k("adapter_up.weight"), k("adapter_up.bias"))
    }

    /// The adapter with the current parameter values (for saving with `AdapterModel.saveAdapter` or inference).
    public var adapter: BottleneckAdapter {
        var weights: [AdapterSite: BottleneckAdapterWeights] = [:]
        for site in sites {
            let n = names(site)
            weights[site] = BottleneckAdapterWeights(downWeight: parameters[n.dw]!, downBias: parameters[n.db]!,
                                                     upWeight: parameters[n.uw]!, upBias: parameters[n.ub]!)
        }
        return BottleneckAdapter(name: name, config: config, hiddenSize: hiddenSize, weights: weights)
    }

    /// Returns this step's gradients and clears them (parameters without a backward are absent).
    public func takeGradients() -> [String: Tensor] {
        defer { gradients = [:] }
        return gradients
    }

    private var scale: Float {
        if case let .constant(s) = config.scaling { return s }
        return 1
    }

    public func hasTrainableParameters(layer: Int) -> Bool {
        !skipLayers.contains(layer) && sites.contains { $0.layer == layer }
    }

    public func trainingForward(layer: Int, location: AdapterLocation, hidden h: Tensor, residual a: Tensor,
                                layerNorm: SublayerLayerNorm, batch: Int, sequenceLength: Int, saveForBackward: Bool,
                                dropout: EncoderDropout, rng: inout SeededRNG,
                                context: ComputeContext) -> TrainableSublayerForward? {
        let site = AdapterSite(layer: layer, location: location)
        guard !skipLayers.contains(layer), sites.contains(site) else { return nil }
        let (o, core) = coreForward(site: site, hidden: h, residual: a, layerNorm: layerNorm, context: context)
        let (y, ln2) = postForward(o, residual: a, layerNorm: layerNorm, context: context)
        return TrainableSublayerForward(output: y, saved: saveForBackward ? Saved(core: core, ln2: ln2) : nil)
    }

    /// pre_forward + forward at `site` (which must exist): the adapter output o `[rows, hidden]` before
    /// post_forward, and what its backward needs.
    func coreForward(site: AdapterSite, hidden h: Tensor, residual a: Tensor, layerNorm: SublayerLayerNorm,
                     context: ComputeContext) -> (Tensor, CoreSaved) {
        let n = names(site)
        var x = h, ln1: LayerNormOutput? = nil
        if config.originalLayerNormBefore {
            let out = AdapterCore.layerNorm(h, residual: a, weight: layerNorm.weight, bias: layerNorm.bias,
                                            eps: layerNorm.eps, context: context)
            ln1 = out
            x = out.output
        }
        let r: Tensor
        switch config.residualBeforeLayerNorm {
        case .beforeLayerNorm: r = h
        case .postAdd: r = ln1?.normalizedInput ?? h
        case .afterLayerNorm: r = x
        }
        let pre = linear(x, weight: parameters[n.dw]!, bias: parameters[n.db]!, context: context)
        let down = activation(pre, config.activation, context: context)
        var up = linear(down, weight: parameters[n.uw]!, bias: parameters[n.ub]!, context: context)
        if scale != 1 { up = scaled(up, by: scale, context: context) }
        return (add(up, r, context: context), CoreSaved(ln1: ln1, x: x, preactivation: pre, down: down))
    }

    /// post_forward: `LN(o + a)` with `original_ln_after`, else o.
    func postForward(_ o: Tensor, residual a: Tensor, layerNorm: SublayerLayerNorm,
                     context: ComputeContext) -> (Tensor, LayerNormOutput?) {
        guard config.originalLayerNormAfter else { return (o, nil) }
        let out = AdapterCore.layerNorm(o, residual: a, weight: layerNorm.weight, bias: layerNorm.bias,
                                        eps: layerNorm.eps, context: context)
        return (out.output, out)
    }

    private func gradientBuffer(_ key: String) -> Tensor {
        gradients[key] ?? Tensor(zeros: parameters[key]!.shape)
    }

    public func trainingBackward(layer: Int, location: AdapterLocation, outputGradient dy: Tensor, saved: Any?,
                                 layerNorm: SublayerLayerNorm,
                                 context: ComputeContext) -> (hidden: Tensor, residual: Tensor) {
        guard let s = saved as? Saved else { preconditionFailure("adapter \(name): backward without saved state at layer \(layer) \(location)") }
        var da = Tensor(zeros: dy.shape)
        let dOut = postBackward(dy, ln2: s.ln2, layerNorm: layerNorm, residualGradient: &da, context: context)
        let dh = coreBackward(site: AdapterSite(layer: layer, location: location), outputGradient: dOut, saved: s.core,
                              layerNorm: layerNorm, residualGradient: &da, context: context)
        return (dh, da)
    }

    /// Backward of `postForward`: returns dL/do and adds dL/da into `residualGradient`.
    func postBackward(_ dy: Tensor, ln2: LayerNormOutput?, layerNorm: SublayerLayerNorm,
                      residualGradient da: inout Tensor, context: ComputeContext) -> Tensor {
        guard let ln2 else { return dy }
        let dOut = layerNormBackward(dy, input: ln2.normalizedInput, weight: layerNorm.weight, mean: ln2.mean,
                                     rstd: ln2.rstd, context: context)
        accumulate(dOut, into: &da, context: context)
        return dOut
    }

    /// Backward of `coreForward`: accumulates the site's parameter gradients, adds dL/da into
    /// `residualGradient` and returns dL/dh.
    func coreBackward(site: AdapterSite, outputGradient dOut: Tensor, saved s: CoreSaved, layerNorm: SublayerLayerNorm,
                      residualGradient da: inout Tensor, context: ComputeContext) -> Tensor {
        let n = names(site)
        // o = u + r: dr = dOut, du = dOut; u = (W_up·d + b_up)·s.
        let dUp = scale != 1 ? scaled(dOut, by: scale, context: context) : dOut
        var dDown = Tensor(zeros: s.down.shape)
        var gUW = gradientBuffer(n.uw), gUB = gradientBuffer(n.ub)
        linearBackward(dUp, input: s.down, weight: parameters[n.uw]!, inputGradient: &dDown, beta: 0,
                       weightGradient: &gUW, biasGradient: &gUB, context: context)
        gradients[n.uw] = gUW
        gradients[n.ub] = gUB
        var gDW = gradientBuffer(n.dw), gDB = gradientBuffer(n.db)
        var dx = Tensor(zeros: s.x.shape)
        linearBackward(dDown, input: s.x, weight: parameters[n.dw]!, activation: config.activation,
                       preactivation: s.preactivation, inputGradient: &dx, beta: 0,
                       weightGradient: &gDW, biasGradient: &gDB, context: context)
        gradients[n.dw] = gDW
        gradients[n.db] = gDB
        // Residual r.
        var dh: Tensor
        if let ln1 = s.ln1 {
            if config.residualBeforeLayerNorm == .afterLayerNorm { accumulate(dOut, into: &dx, context: context) }
            let ds = layerNormBackward(dx, input: ln1.normalizedInput, weight: layerNorm.weight, mean: ln1.mean,
                                       rstd: ln1.rstd, context: context)
            dh = ds
            accumulate(ds, into: &da, context: context)
            switch config.residualBeforeLayerNorm {
            case .beforeLayerNorm: accumulate(dOut, into: &dh, context: context)
            case .postAdd:
                accumulate(dOut, into: &dh, context: context)
                accumulate(dOut, into: &da, context: context)
            case .afterLayerNorm: break
            }
        } else {
            dh = dx  // x = h and r = h
            accumulate(dOut, into: &dh, context: context)
        }
        return dh
    }
}

/// `Stack(a, b, …)` of bottleneck adapters as one trainable module: at each site every stacked adapter that
/// has a module there runs its pre_forward + forward on the previous one's output (pre_forward, and so
/// `LN(o + a)` with `original_ln_before`, is re-run before each; adapters-reference.md "Stack"), then the last
/// one's post_forward:
/// ```
/// o₀ = h;  oᵢ = forwardᵢ(preᵢ(oᵢ₋₁, a));  y = post_last(o_last, a)
/// ```
/// Each adapter keeps its own `parameters` / `gradients` (names are disjoint: they contain the adapter name).
/// `skipLayers` applies to the whole stack.
public final class AdapterStackTrainingModule: TrainableSublayer {
    /// The stacked adapters, first to last.
    public let adapters: [BottleneckAdapterTrainingModule]
    /// Layers skipped by AdapterDrop.
    public var skipLayers: Set<Int> = []

    private struct Saved {
        var cores: [(index: Int, saved: BottleneckAdapterTrainingModule.CoreSaved)]
        var ln2: LayerNormOutput?
    }

    /// - Parameter adapters: at least one; each in the supported subset of `BottleneckAdapterTrainingModule`.
    public init(_ adapters: [BottleneckAdapterTrainingModule]) {
        require(!adapters.isEmpty, "AdapterStackTrainingModule: empty stack")
        self.adapters = adapters
    }

    /// All parameters by full name.
    public var parameters: [String: Tensor] {
        adapters.reduce(into: [:]) { all, a in for (k, v) in a.parameters { all[k] = v } }
    }

    /// Writes updated parameters back to the adapter that owns each name.
    public func setParameters(_ values: [String: Tensor]) {
        for a in adapters { for k in a.parameters.keys { if let v = values[k] { a.parameters[k] = v } } }
    }

    /// This step's gradients of all adapters; clears them.
    public func takeGradients() -> [String: Tensor] {
        adapters.reduce(into: [:]) { all, a in for (k, v) in a.takeGradients() { all[k] = v } }
    }

    public func hasTrainableParameters(layer: Int) -> Bool {
        !skipLayers.contains(layer) && adapters.contains { $0.sites.contains { $0.layer == layer } }
    }

    public func trainingForward(layer: Int, location: AdapterLocation, hidden h: Tensor, residual a: Tensor,
                                layerNorm: SublayerLayerNorm, batch: Int, sequenceLength: Int, saveForBackward: Bool,
                                dropout: EncoderDropout, rng: inout SeededRNG,
                                context: ComputeContext) -> TrainableSublayerForward? {
        let site = AdapterSite(layer: layer, location: location)
        guard !skipLayers.contains(layer) else { return nil }
        let present = adapters.indices.filter { adapters[$0].sites.contains(site) }
        guard let last = present.last else { return nil }
        var o = h
        var cores: [(Int, BottleneckAdapterTrainingModule.CoreSaved)] = []
        for i in present {
            let (next, saved) = adapters[i].coreForward(site: site, hidden: o, residual: a, layerNorm: layerNorm, context: context)
            if saveForBackward { cores.append((i, saved)) }
            o = next
        }
        let (y, ln2) = adapters[last].postForward(o, residual: a, layerNorm: layerNorm, context: context)
        return TrainableSublayerForward(output: y, saved: saveForBackward ? Saved(cores: cores, ln2: ln2) : nil)
    }

    public func trainingBackward(layer: Int, location: AdapterLocation, outputGradient dy: Tensor, saved: Any?,
                                 layerNorm: SublayerLayerNorm,
                                 context: ComputeContext) -> (hidden: Tensor, residual: Tensor) {
        guard let s = saved as? Saved, let last = s.cores.last else {
            preconditionFailure("adapter stack: backward without saved state at layer \(layer) \(location)")
        }
        let site = AdapterSite(layer: layer, location: location)
        var da = Tensor(zeros: dy.shape)
        var g = adapters[last.index].postBackward(dy, ln2: s.ln2, layerNorm: layerNorm, residualGradient: &da, context: context)
        for (i, core) in s.cores.reversed() {
            g = adapters[i].coreBackward(site: site, outputGradient: g, saved: core, layerNorm: layerNorm,
                                         residualGradient: &da, context: context)
        }
        return (g, da)
    }
}

/// A prediction head (sequence classification on the [CLS] state, or regression with one label) as a
/// trainable module: forward that keeps its activations, loss (cross-entropy, MSE for one label) and backward
/// to its parameter gradients and dL/d(encoder output). Matches adapters 1.3.0 `ClassificationHead` in eval
/// mode (head dropout is not applied).
///
/// Parameters are keyed `heads.{name}.{index}.weight|bias` (the reference's names).
public final class PredictionHeadTrainingModule {
    /// The head's name.
    public let name: String
    /// Its configuration.
    public let config: PredictionHeadConfig
    /// Trainable tensors by full name.
    public var parameters: [String: Tensor]
    /// Accumulated gradients by full name.
    public private(set) var gradients: [String: Tensor] = [:]
    private let keys: [(weight: String, bias: String?)]

    /// - Precondition: a classification head on the [CLS] state (`use_pooler` false).
    public init(_ head: PredictionHead) {
        require(head.config.headType == .classification && !head.config.usePooler,
                     "PredictionHeadTrainingModule: head \(head.name) must be sequence classification on [CLS] (no pooler)")
        name = head.name
        config = head.config
        var p: [String: Tensor] = [:], k: [(String, String?)] = []
        for (index, l) in zip(head.config.linearModuleIndices, head.linears) {
            let w = "heads.\(head.name).\(index).weight", b = l.bias == nil ? nil : "heads.\(head.name).\(index).bias"
            p[w] = l.weight
            if let b, let bias = l.bias { p[b] = bias }
            k.append((w, b))
        }
        parameters = p
        keys = k
    }

    /// The head with the current parameter values.
    public var head: PredictionHead {
        PredictionHead(name: name, config: config, linears: keys.map { (parameters[$0.weight]!, $0.bias.map { parameters[$0]! }) })
    }

    private var act: Activation { config.activationFunction.flatMap(BottleneckConfig.activation(named:)) ?? .identity }

    /// What the forward keeps: each Linear's input and pre-activation.
    public struct Tape {
        var inputs: [Tensor], preactivations: [Tensor]
        var batch: Int, sequenceLength: Int
        /// Logits `[batch, numLabels]`.
        public var logits: Tensor
    }

    /// Forward on the encoder output `[batch·seq, hidden]` (reads row `b·seq`, the [CLS] state).
    public func forward(_ states: Tensor, batch: Int, sequenceLength: Int, context: ComputeContext) -> Tape {
        let hidden = states.shape.last!
        var x = Pooling.first(states.reshaped([batch, sequenceLength, hidden]))
        var inputs: [Tensor] = [], pres: [Tensor] = []
        for (l, k) in keys.enumerated() {
            inputs.append(x)
            let pre = linear(x, weight: parameters[k.weight]!, bias: k.bias.map { parameters[$0]! }, context: context)
            pres.append(pre)
            x = l < keys.count - 1 ? activation(pre, act, context: context) : pre
        }
        return Tape(inputs: inputs, preactivations: pres, batch: batch, sequenceLength: sequenceLength, logits: x)
    }

    /// Loss of the logits: mean cross-entropy against class indices, or MSE against float targets with one label.
    /// - Throws: `AdapterError.invalidLabels` for a label count that does not match.
    public func loss(_ tape: Tape, labels: [Float]) throws -> LossOutput {
        try head.loss(logits: tape.logits, labels: labels)
    }

    /// Backward from dL/dlogits `[batch, numLabels]`: accumulates the head's gradients and returns
    /// dL/d(encoder output) `[batch·seq, hidden]` (non-zero only on the [CLS] rows).
    public func backward(_ tape: Tape, logitsGradient: Tensor, context: ComputeContext) -> Tensor {
        var g = logitsGradient.reshaped(tape.logits.shape)
        for l in stride(from: keys.count - 1, through: 0, by: -1) {
            let k = keys[l]
            let a: Activation = l < keys.count - 1 ? act : .identity
            var dx = Tensor(zeros: tape.inputs[l].shape)
            var gw = gradients[k.weight] ?? Tensor(zeros: parameters[k.weight]!.shape)
            if let bk = k.bias {
                var gb = gradients[bk] ?? Tensor(zeros: parameters[bk]!.shape)
                linearBackward(g, input: tape.inputs[l], weight: parameters[k.weight]!, activation: a,
                               preactivation: tape.preactivations[l], inputGradient: &dx, beta: 0,
                               weightGradient: &gw, biasGradient: &gb, context: context)
                gradients[bk] = gb
            } else {
                linearBackward(g, input: tape.inputs[l], weight: parameters[k.weight]!, activation: a,
                               preactivation: tape.preactivations[l], inputGradient: &dx, beta: 0,
                               weightGradient: &gw, context: context)
            }
            gradients[k.weight] = gw
            g = dx
        }
        let hidden = g.shape.last!, seq = tape.sequenceLength
        let cls = g.scalars
        return Tensor(shape: [tape.batch * seq, hidden]) { out in
            for i in 0..<out.count { out[i] = 0 }
            for b in 0..<tape.batch {
                for j in 0..<hidden { out[b * seq * hidden + j] = cls[b * hidden + j] }
            }
        }
    }

    /// Returns this step's gradients and clears them.
    public func takeGradients() -> [String: Tensor] {
        defer { gradients = [:] }
        return gradients
    }
}

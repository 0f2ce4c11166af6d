// Training an AdapterFusion layer over frozen bottleneck adapters (adapters 1.3.0 `train_adapter_fusion`):
// the `TrainableSublayer` conformance, its backward through the frozen adapters, and the value-matrix
// regularisation `get_fusion_regularization_loss` (model_mixin.py L1455–1470). See docs/training.md,
// "Training an AdapterFusion".
import AdapterCore

/// `Fuse(a₁, …, a_N)` as a trainable module: the fusion's query / key / value (whatever its config has) train,
/// the N adapters are frozen but backpropagated through (the input gradient flows through them).
///
/// Per site, with h the sub-layer output `[rows, H]`, a its input and LN the layer's frozen LayerNorm — the
/// reference's `compose_fuse` (methods/bottleneck.py) with the last adapter's pre/post_forward:
/// ```
/// pre_forward (last adapter): x = LN(h + a) | h;  query = h (query_before_ln) | x;  r = h | h + a | x
/// U_i = s_i·(W_up,i·act(W_down,i·x + b_down,i) + b_up,i)            frozen adapters, bare up-projections
/// V_i = U_i (+ r with residual_before);  q = Wq·query + bq;  K_i = Wk·V_i + bk;  Ṽ_i = Wv·V_i (value_before_softmax)
/// p = softmax_i(dropout(q·K_i) / T);  c = Σ_i p_i Ṽ_i;  [c = Wv·c];  [c += r]   (BertFusion.forward)
/// post_forward (last adapter): y = LN(c + a) | c
/// ```
/// The fusion step runs the inference code itself (`AdapterFusion.siteForward`, which `AdapterFusion.forward`
/// calls) and keeps its intermediates for backward: with dropout off the output is bitwise equal to
/// `CompositionHook`'s.
///
/// Parameters are keyed by their full state-dict names
/// `{keyPrefix}encoder.layer.{l}.{output|attention.output}.adapter_fusion_layer.{fusion}.{query|key}.{weight|bias}`
/// and `….value.weight` — the reference's `named_parameters()`.
///
/// Score dropout (`BertFusion.dropout`, on the scores before the softmax) uses `scoreDropout` — the reference's
/// `fusion_config.dropout_prob or config.attention_probs_dropout_prob` — and is applied only when the
/// encoder's `dropout.isActive` (training), drawing a `[rows, N]` mask from the step's generator.
///
/// AdapterDrop: layers in `skipLayers` have neither fusion nor adapters (the forward returns nil), and no task
/// gradient is created for their tensors. `regularization()` still covers them (as the reference's does).
///
/// Supported: fusion children that are plain adapters (no nesting), without `ln_before` and not `is_parallel`;
/// the last adapter without `is_parallel`; `temperature: false` (the reference's annealing is not reproduced).
public final class AdapterFusionTrainingModule: TrainableSublayer {
    /// The fusion's name (e.g. `"f1,f2"`).
    public let name: String
    /// Its configuration (unchanged by training).
    public let config: AdapterFusionConfig
    /// The frozen adapters, in fusion order (the last one's pre/post_forward are used).
    public let adapters: [BottleneckAdapter]
    /// Model hidden size H.
    public let hiddenSize: Int
    /// The model prefix of the keys (`"bert."` for a flex-head BERT model).
    public let keyPrefix: String
    /// Rate of the dropout on the fusion scores while training, in `[0, 1)`.
    public let scoreDropout: Float
    /// The sites that have a fusion layer.
    public let sites: [AdapterSite]
    /// Layers skipped by AdapterDrop for the current step (no fusion, no adapters, no task gradient).
    public var skipLayers: Set<Int> = []
    /// Trainable tensors by full name; updated in place by the optimizer.
    public var parameters: [String: Tensor]
    /// Accumulated gradients of this step by full name; only tensors of sites that ran a backward (plus those
    /// added by `addRegularizationGradients`).
    public private(set) var gradients: [String: Tensor] = [:]
    private let fusionTemplate: AdapterFusion

    /// The reference's regularisation weight (`0.01 * (target - W_v).pow(2).sum()`).
    public static let regularizationWeight: Float = 0.01

    /// - Parameters:
    ///   - fusion: the fusion to train (its weights are the initial values).
    ///   - adapters: the adapters it fuses, by name (all of `fusion.adapterNames` must be present).
    ///   - scoreDropout: the score dropout rate while training (`dropoutProbability` of the config, else the
    ///     model's `attention_probs_dropout_prob`; pass 0 for none).
    ///   - keyPrefix: prefix of the parameter names.
    /// - Throws: `AdapterError.unknownAdapter` for a missing adapter; `AdapterError.unsupported` (file = the
    ///   fusion name) for an adapter or fusion variant training does not support (see the type's doc).
    public init(_ fusion: AdapterFusion, adapters: [String: BottleneckAdapter], scoreDropout: Float = 0,
                keyPrefix: String = "bert.") throws {
        var list: [BottleneckAdapter] = []
        for n in fusion.adapterNames {
            guard let a = adapters[n] else { throw AdapterError.unknownAdapter(n) }
            if a.config.isParallel || a.config.layerNormBefore {
                throw AdapterError.unsupported(file: fusion.name, key: n,
                                               reason: "fusion training supports adapters without is_parallel and ln_before")
            }
            list.append(a)
        }
        guard !list.isEmpty else {
            throw AdapterError.fusionAdapterMismatch(fusion: fusion.name, reason: "no adapters to fuse")
        }
        if fusion.config.temperature {
            throw AdapterError.unsupported(file: fusion.name, key: "temperature",
                                           reason: "temperature annealing is not reproduced; train with temperature false")
        }
        guard scoreDropout >= 0 && scoreDropout < 1 else {
            throw AdapterError.invalidValue(file: fusion.name, key: "dropout_prob", reason: "\(scoreDropout) is not in [0, 1)")
        }
        name = fusion.name
        config = fusion.config
        self.adapters = list
        hiddenSize = list[0].hiddenSize
        self.keyPrefix = keyPrefix
        self.scoreDropout = scoreDropout
        sites = fusion.weights.keys.sorted()
        fusionTemplate = fusion
        var p: [String: Tensor] = [:]
        for (site, w) in fusion.weights {
            for (k, t) in w.namedTensors { p[Self.key(prefix: keyPrefix, site: site, fusion: fusion.name, k)] = t }
        }
        parameters = p
    }

    /// The full parameter name of tensor `tensorKey` (e.g. `value.weight`) at `site`.
    public static func key(prefix: String, site: AdapterSite, fusion: String, _ tensorKey: String) -> String {
        "\(prefix)\(site.modulePath).adapter_fusion_layer.\(fusion).\(tensorKey)"
    }

    private func key(_ site: AdapterSite, _ tensorKey: String) -> String {
        Self.key(prefix: keyPrefix, site: site, fusion: name, tensorKey)
    }

    /// The fusion with the current parameter values (for saving or inference).
    public var fusion: AdapterFusion {
        var f = fusionTemplate
        for site in sites { f.weights[site] = siteWeights(site) }
        return f
    }

    /// The current query / key / value tensors of `site` (those the config has).
    private func siteWeights(_ site: AdapterSite) -> AdapterFusionWeights {
        var w = AdapterFusionWeights()
        if config.query { w.query = (parameters[key(site, "query.weight")]!, parameters[key(site, "query.bias")]!) }
        if config.key { w.key = (parameters[key(site, "key.weight")]!, parameters[key(site, "key.bias")]!) }
        if config.value { w.value = parameters[key(site, "value.weight")]! }
        return w
    }

    /// Returns this step's gradients and clears them (tensors without a backward are absent).
    public func takeGradients() -> [String: Tensor] {
        defer { gradients = [:] }
        return gradients
    }

    /// The value-matrix regularisation of adapters 1.3.0 (`get_fusion_regularization_loss`):
    /// ```
    /// R = 0.01 · Σ_sites ‖I − W_v‖²_F,     dR/dW_v = −0.02 · (I − W_v)
    /// ```
    /// over every site of this fusion that has a value matrix — both locations, and layers in `skipLayers`
    /// too (the reference sums every `adapter_fusion_layer` whose `value.weight.requires_grad`, regardless of
    /// the active skip layers). Without a value matrix (the "static" preset) it is `(0, [:])`.
    ///
    /// The reference's `AdapterTrainer` does not add R to the task loss: its callback runs `R.backward()` after
    /// each optimizer step, so the gradient joins the next step's (see docs/training.md). This method only
    /// computes; it does not touch `gradients`.
    /// - Returns: R (accumulated in Double, rounded to Float) and dR/dW_v by full name (`[H, H]` each).
    public func regularization() -> (loss: Float, gradients: [String: Tensor]) {
        guard config.value else { return (0, [:]) }
        var total = 0.0
        var grads: [String: Tensor] = [:]
        let h = hiddenSize, weight = Self.regularizationWeight
        for site in sites {
            let k = key(site, "value.weight")
            guard let w = parameters[k] else { continue }
            let ws = w.scalars
            var g = [Float](repeating: 0, count: h * h)
            var sum = 0.0
            for i in 0..<h {
                for j in 0..<h {
                    let d = (i == j ? 1 : 0) - ws[i * h + j]
                    sum += Double(d) * Double(d)
                    g[i * h + j] = -2 * weight * d
                }
            }
            total += Double(weight) * sum
            grads[k] = Tensor(shape: [h, h], scalars: g)
        }
        return (Float(total), grads)
    }

    /// Adds (`+=`) the regularisation's gradient into this module's `gradients` and returns its value (what
    /// the reference's `on_step_end` backward does); the caller decides when (see `regularization()`).
    @discardableResult
    public func addRegularizationGradients(context: ComputeContext) -> Float {
        let r = regularization()
        for (k, g) in r.gradients {
            var buffer = gradientBuffer(k)
            accumulate(g, into: &buffer, context: context)
            gradients[k] = buffer
        }
        return r.loss
    }

    /// `addRegularizationGradients(context:)` under the trainer's name for it.
    @discardableResult
    public func addRegularizationLoss(context: ComputeContext) -> Float { addRegularizationGradients(context: context) }

    /// `parameters` (the trainer's name for it).
    public var trainableParameters: [String: Tensor] { parameters }

    /// Copies the entries of `values` whose names are this fusion's parameters (others are ignored).
    public func setTrainableParameters(_ values: [String: Tensor]) {
        for key in Array(parameters.keys) { if let value = values[key] { parameters[key] = value } }
    }

    /// The adapters present at `site`, in fusion order; nil when the fusion does not act there (no fusion
    /// layer, or the last adapter has no module — the inference hook then leaves the site alone too).
    private func presentAdapters(_ site: AdapterSite) -> [Int]? {
        guard fusionTemplate.weights[site] != nil, adapters.last!.weights[site] != nil else { return nil }
        return adapters.indices.filter { adapters[$0].weights[site] != nil }
    }

    /// True when the fusion acts in `layer` (a site with a fusion layer and the last adapter present) and the
    /// layer is not skipped: its query/key/value then get gradients there.
    public func hasTrainableParameters(layer: Int) -> Bool {
        !skipLayers.contains(layer) && sites.contains { $0.layer == layer && presentAdapters($0) != nil }
    }

    struct AdapterSaved {
        var index: Int
        var preactivation: Tensor
        var down: Tensor
    }

    struct Saved {
        var ln1: LayerNormOutput?
        var x: Tensor
        var query: Tensor
        var children: [AdapterSaved]
        var stacked: Tensor        // V_i stacked [N·rows, H]
        var q: Tensor              // [rows, H]
        var keys: Tensor           // [N·rows, H]
        var values: Tensor         // Ṽ_i [N·rows, H]
        var probabilities: Tensor  // [rows, N]
        var scoreMask: Tensor?     // [rows, N]
        var context: Tensor?       // c before the value matrix (value after softmax)
        var ln2: LayerNormOutput?
    }

    private func scale(_ t: Tensor, adapter: BottleneckAdapter, site: AdapterSite, context: ComputeContext) -> Tensor {
        switch adapter.config.scaling {
        case let .constant(s): return s == 1 ? t : scaled(t, by: s, context: context)
        case .learned: return scaled(t, by: adapter.weights[site]!.scaling!.scalars[0], context: context)
        case .channel: return multiply(t, adapter.weights[site]!.scaling!, context: context)
        }
    }

    /// The fused site (type doc): h, a `[rows, H]` → output `[rows, H]`, saving what backward needs when
    /// `saveForBackward`; nil where the fusion does not act or the layer is skipped. Draws a `[rows, N]` score
    /// dropout mask from `rng` when `dropout.isActive` and `scoreDropout > 0`.
    public func trainingForward(layer: Int, location: AdapterLocation, hidden h: Tensor, residual a: Tensor,
                                layerNorm: SublayerLayerNorm, batch: Int, sequenceLength: Int, saveForBackward: Bool,
                                dropout: EncoderDropout, rng: inout SeededRNG,
                                context: ComputeContext) -> TrainableSublayerForward? {
        let site = AdapterSite(layer: layer, location: location)
        guard !skipLayers.contains(layer), let present = presentAdapters(site) else { return nil }
        let last = adapters.last!.config
        // pre_forward of the last adapter.
        var x = h, ln1: LayerNormOutput? = nil
        var r = h
        if last.originalLayerNormBefore {
            let out = AdapterCore.layerNorm(h, residual: a, weight: layerNorm.weight, bias: layerNorm.bias,
                                            eps: layerNorm.eps, context: context)
            ln1 = out
            x = out.output
            if last.residualBeforeLayerNorm == .postAdd { r = out.normalizedInput }
        }
        if last.residualBeforeLayerNorm == .afterLayerNorm { r = x }
        let query = config.queryBeforeLayerNorm ? h : x
        // Frozen adapters: bare up-projections.
        var ups: [Tensor] = [], children: [AdapterSaved] = []
        for i in present {
            let adapter = adapters[i], w = adapter.weights[site]!
            let lo = linear(x, weight: w.downWeight, bias: w.downBias, activation: adapter.config.activation,
                            savePreactivation: saveForBackward, context: context)
            let down = lo.output
            let up = scale(linear(down, weight: w.upWeight, bias: w.upBias, context: context), adapter: adapter, site: site,
                           context: context)
            ups.append(up)
            if saveForBackward { children.append(AdapterSaved(index: i, preactivation: lo.preactivation ?? lo.output, down: down)) }
        }
        // BertFusion.forward: the inference site computation with the current parameters (and the score mask).
        let scoreMask = dropout.isActive && scoreDropout > 0
            ? Tensor.dropoutMask(shape: [h.shape[0], ups.count], rate: scoreDropout, using: &rng) : nil
        let fused = AdapterFusion.siteForward(config: config, weights: siteWeights(site), query: query, ups: ups, residual: r,
                                              temperature: 1, scoreMask: scoreMask, context: context)  // `temperature: true` is rejected in init
        let output = fused.output
        // post_forward of the last adapter.
        var y = output, ln2: LayerNormOutput? = nil
        if last.originalLayerNormAfter {
            let out = AdapterCore.layerNorm(output, residual: a, weight: layerNorm.weight, bias: layerNorm.bias,
                                            eps: layerNorm.eps, context: context)
            ln2 = out
            y = out.output
        }
        guard saveForBackward else { return TrainableSublayerForward(output: y, saved: nil) }
        let saved = Saved(ln1: ln1, x: x, query: query, children: children, stacked: fused.stacked, q: fused.q,
                          keys: fused.keys, values: fused.values, probabilities: fused.probabilities, scoreMask: scoreMask,
                          context: fused.contextBeforeValue, ln2: ln2)
        return TrainableSublayerForward(output: y, saved: saved)
    }

    private func gradientBuffer(_ key: String) -> Tensor {
        gradients[key] ?? Tensor(zeros: parameters[key]!.shape)
    }

    /// Backward of `trainingForward` at one site: accumulates (`+=`) the query/key/value gradients into `gradients`
    /// and returns dL/dh and dL/da `[rows, H]` through the frozen adapters and LayerNorm.
    public func trainingBackward(layer: Int, location: AdapterLocation, outputGradient dy: Tensor, saved: Any?,
                                 layerNorm: SublayerLayerNorm,
                                 context: ComputeContext) -> (hidden: Tensor, residual: Tensor) {
        guard let s = saved as? Saved else {
            preconditionFailure("fusion \(name): backward without saved state at layer \(layer) \(location)")
        }
        let site = AdapterSite(layer: layer, location: location)
        let last = adapters.last!.config
        let rows = dy.shape[0], hs = dy.shape[1], n = s.children.count
        var da = Tensor(zeros: dy.shape)
        // post_forward.
        var dOut = dy
        if let ln2 = s.ln2 {
            dOut = layerNormBackward(dy, input: ln2.normalizedInput, weight: layerNorm.weight, mean: ln2.mean,
                                     rstd: ln2.rstd, context: context)
            accumulate(dOut, into: &da, context: context)
        }
        var dr = Tensor(zeros: dy.shape)
        if !config.residualBefore { accumulate(dOut, into: &dr, context: context) }
        var dContext = dOut
        if let c = s.context {
            let wk = key(site, "value.weight")
            var g = gradientBuffer(wk)
            var dc = Tensor(zeros: c.shape)
            linearBackward(dOut, input: c, weight: parameters[wk]!, inputGradient: &dc, beta: 0, weightGradient: &g,
                           context: context)
            gradients[wk] = g
            dContext = dc
        }
        // c = Σ_i p_i Ṽ_i:  dṼ_i = p_i·dc,  dp_i = dc·Ṽ_i.
        let p = s.probabilities.scalars
        let dcs = dContext.contiguous(), vs = s.values.contiguous()
        var dValues = [Float](repeating: 0, count: n * rows * hs)
        var dp = [Float](repeating: 0, count: rows * n)
        dcs.withUnsafeBufferPointer { dcp in
            vs.withUnsafeBufferPointer { vp in
                for row in 0..<rows {
                    for i in 0..<n {
                        let pi = p[row * n + i], v0 = (i * rows + row) * hs, c0 = row * hs
                        var sum: Float = 0
                        for j in 0..<hs {
                            dValues[v0 + j] = pi * dcp[c0 + j]
                            sum += dcp[c0 + j] * vp[v0 + j]
                        }
                        dp[row * n + i] = sum
                    }
                }
            }
        }
        var dScores = softmaxBackward(Tensor(shape: [rows, n], scalars: dp), output: s.probabilities, scale: 1,
                                      context: context)
        if let m = s.scoreMask { dScores = multiply(dScores, m, context: context) }
        // scores[r, i] = q[r]·K_i[r]:  dq[r] = Σ_i ds[r, i] K_i[r],  dK_i[r] = ds[r, i] q[r].
        let ds = dScores.scalars
        let qs = s.q.contiguous(), ks = s.keys.contiguous()
        var dq = [Float](repeating: 0, count: rows * hs)
        var dKeys = [Float](repeating: 0, count: n * rows * hs)
        qs.withUnsafeBufferPointer { qp in
            ks.withUnsafeBufferPointer { kp in
                for row in 0..<rows {
                    for i in 0..<n {
                        let d = ds[row * n + i], k0 = (i * rows + row) * hs, q0 = row * hs
                        for j in 0..<hs {
                            dq[q0 + j] += d * kp[k0 + j]
                            dKeys[k0 + j] = d * qp[q0 + j]
                        }
                    }
                }
            }
        }
        let dqTensor = Tensor(shape: [rows, hs], scalars: dq)
        let dKeysTensor = Tensor(shape: [n * rows, hs], scalars: dKeys)
        let dValuesTensor = Tensor(shape: [n * rows, hs], scalars: dValues)
        // Query and key projections (Linear with bias, when the config has them; else the identity): their
        // weight/bias gradients accumulate, the input gradient is returned.
        func projectionBackward(_ projection: String, present: Bool, _ gradient: Tensor, input: Tensor) -> Tensor {
            guard present else { return gradient }
            let wk = key(site, "\(projection).weight"), bk = key(site, "\(projection).bias")
            var gw = gradientBuffer(wk), gb = gradientBuffer(bk)
            var dInput = Tensor(zeros: input.shape)
            linearBackward(gradient, input: input, weight: parameters[wk]!, inputGradient: &dInput, beta: 0,
                           weightGradient: &gw, biasGradient: &gb, context: context)
            gradients[wk] = gw
            gradients[bk] = gb
            return dInput
        }
        let dQuery = projectionBackward("query", present: config.query, dqTensor, input: s.query)
        // Key and value projections of the stacked V_i.
        var dStacked = projectionBackward("key", present: config.key, dKeysTensor, input: s.stacked)
        if config.value && config.valueBeforeSoftmax {
            let wk = key(site, "value.weight")
            var gw = gradientBuffer(wk)
            dStacked = dStacked.contiguous()
            linearBackward(dValuesTensor, input: s.stacked, weight: parameters[wk]!, inputGradient: &dStacked, beta: 1,
                           weightGradient: &gw, context: context)
            gradients[wk] = gw
        } else {
            accumulate(dValuesTensor, into: &dStacked, context: context)
        }
        // Through the frozen adapters (and the residual_before add) to x.
        var dx = Tensor(zeros: dy.shape)
        for (slot, child) in s.children.enumerated() {
            let dUpSlice = dStacked.slice(rows: slot * rows ..< (slot + 1) * rows).contiguous()
            if config.residualBefore { accumulate(dUpSlice, into: &dr, context: context) }
            let adapter = adapters[child.index], w = adapter.weights[site]!
            let dUp = scale(dUpSlice, adapter: adapter, site: site, context: context)
            let dDown = linearBackward(dUp, input: child.down, weight: w.upWeight, context: context)
            let dPre = activationBackward(dDown, preactivation: child.preactivation, activation: adapter.config.activation,
                                          context: context)
            linearInputGradient(dPre, weight: w.downWeight, into: &dx, beta: 1, context: context)
        }
        // pre_forward backward: query, residual r and x back to h and a.
        var dh = Tensor(zeros: dy.shape)
        if config.queryBeforeLayerNorm { accumulate(dQuery, into: &dh, context: context) }
        else { accumulate(dQuery, into: &dx, context: context) }
        if let ln1 = s.ln1 {
            switch last.residualBeforeLayerNorm {
            case .beforeLayerNorm: accumulate(dr, into: &dh, context: context)
            case .afterLayerNorm: accumulate(dr, into: &dx, context: context)
            case .postAdd: break
            }
            let dsum = layerNormBackward(dx, input: ln1.normalizedInput, weight: layerNorm.weight, mean: ln1.mean,
                                         rstd: ln1.rstd, context: context)
            accumulate(dsum, into: &dh, context: context)
            accumulate(dsum, into: &da, context: context)
            if last.residualBeforeLayerNorm == .postAdd {
                accumulate(dr, into: &dh, context: context)
                accumulate(dr, into: &da, context: context)
            }
        } else {
            // x = h and r = h.
            accumulate(dx, into: &dh, context: context)
            accumulate(dr, into: &dh, context: context)
        }
        return (dh, da)
    }
}

// Bottleneck adapters (`Adapter` / `ParallelAdapter`, adapters 1.3.0 `methods/modeling.py` L35–353): weights
// per layer and location, initialisation, and the pre_forward / forward / post_forward steps.
import AdapterCore
import Foundation

/// One adapter location in the encoder: a layer index and a sub-layer.
public struct AdapterSite: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// 0-based transformer layer.
    public var layer: Int
    /// Attention output (`mh_adapter`) or feed-forward output (`output_adapter`).
    public var location: AdapterLocation

    /// - Parameters: layer index and location.
    public init(layer: Int, location: AdapterLocation) {
        self.layer = layer
        self.location = location
    }

    /// Layers ascending, attention output before feed-forward output.
    public static func < (a: AdapterSite, b: AdapterSite) -> Bool {
        a.layer != b.layer ? a.layer < b.layer : (a.location == .attentionOutput && b.location == .output)
    }

    /// e.g. `layer 3 output_adapter`.
    public var description: String { "layer \(layer) \(location.rawValue)" }

    /// The module path of the sub-layer in a BERT/RoBERTa state dict, without the model prefix:
    /// `encoder.layer.{i}.output` or `encoder.layer.{i}.attention.output`.
    public var modulePath: String {
        "encoder.layer.\(layer)." + (location == .attentionOutput ? "attention.output" : "output")
    }
}

/// The tensors of one bottleneck adapter at one site (`Adapter` module in the reference).
public struct BottleneckAdapterWeights: Sendable, Equatable {
    /// `adapter_down` Linear weight `[bottleneck, hidden]`.
    public var downWeight: Tensor
    /// `adapter_down` Linear bias `[bottleneck]`.
    public var downBias: Tensor
    /// `adapter_up.weight` `[hidden, bottleneck]`.
    public var upWeight: Tensor
    /// `adapter_up.bias` `[hidden]`.
    public var upBias: Tensor
    /// `adapter_norm_before` γ, β `[hidden]` (`ln_before`), eps 1e-5.
    public var normBefore: (weight: Tensor, bias: Tensor)?
    /// `adapter_norm_after` γ, β `[hidden]` (`ln_after`), eps 1e-5.
    public var normAfter: (weight: Tensor, bias: Tensor)?
    /// `gate` Linear weight `[1, hidden]` and bias `[1]` (`use_gating`).
    public var gate: (weight: Tensor, bias: Tensor)?
    /// The trained `scaling` `[1]` ("learned") or `[hidden]` ("channel"); nil for a constant.
    public var scaling: Tensor?

    /// The bottleneck width.
    public var bottleneckSize: Int { downWeight.shape[0] }

    /// Equal when the four weight tensors are equal element for element (name and config are not compared).
    public static func == (a: Self, b: Self) -> Bool {
        a.downWeight == b.downWeight && a.downBias == b.downBias && a.upWeight == b.upWeight && a.upBias == b.upBias
            && a.normBefore?.weight == b.normBefore?.weight && a.normBefore?.bias == b.normBefore?.bias
            && a.normAfter?.weight == b.normAfter?.weight && a.normAfter?.bias == b.normAfter?.bias
            && a.gate?.weight == b.gate?.weight && a.gate?.bias == b.gate?.bias && a.scaling == b.scaling
    }

    /// Named tensors with the reference's module-relative key names (`adapter_down.0.weight`, …). With
    /// `ln_before` the LayerNorm is stored twice, as `adapter_norm_before.*` and `adapter_down.0.*`, and the
    /// down projection moves to `adapter_down.1.*`, as the reference's state dict does.
    public var namedTensors: [(String, Tensor)] {
        var out: [(String, Tensor)] = []
        let downIndex = normBefore == nil ? 0 : 1
        if let n = normBefore {
            out += [("adapter_norm_before.weight", n.weight), ("adapter_norm_before.bias", n.bias),
                    ("adapter_down.0.weight", n.weight), ("adapter_down.0.bias", n.bias)]
        }
        out += [("adapter_down.\(downIndex).weight", downWeight), ("adapter_down.\(downIndex).bias", downBias),
                ("adapter_up.weight", upWeight), ("adapter_up.bias", upBias)]
        if let n = normAfter { out += [("adapter_norm_after.weight", n.weight), ("adapter_norm_after.bias", n.bias)] }
        if let g = gate { out += [("gate.weight", g.weight), ("gate.bias", g.bias)] }
        if let s = scaling { out.append(("scaling", s)) }
        return out
    }
}

/// A named bottleneck adapter: its config and its weights at every site where it exists.
///
/// Immutable value; `Sendable`. The forward steps follow the reference exactly (see `docs/adapters.md`):
/// ```
/// pre_forward:  residual = h (residual_before_ln true); if original_ln_before: h = LN(h + a)
///               ("post_add": residual = h + a); residual = h (false)
/// forward:      up = (W_up · act(W_down · [LN_before](h) + b_down) + b_up) · scaling
///               out = up [· mean_seq σ(gate(h))]; [+ residual]; [LN_after]; [+ residual]
/// post_forward: LN(out + a) if original_ln_after else out (no residual a)
/// ```
/// The parallel architecture (`is_parallel`) takes a as its input and residual, adds no residual itself,
/// and post_forward computes `LN(out + h + a)`.
public struct BottleneckAdapter: Sendable {
    /// The adapter's name (keys `adapters.{name}`).
    public let name: String
    /// Its configuration.
    public let config: BottleneckConfig
    /// The model's hidden size.
    public let hiddenSize: Int
    /// Weights per site; sites in `leave_out` layers or at locations the config disables are absent.
    public var weights: [AdapterSite: BottleneckAdapterWeights]
    /// Whether training leaves this adapter unchanged (the trainer reads it; inference ignores it).
    public var isFrozen: Bool = false

    /// An adapter with given weights.
    public init(name: String, config: BottleneckConfig, hiddenSize: Int,
                weights: [AdapterSite: BottleneckAdapterWeights], isFrozen: Bool = false) {
        self.name = name
        self.config = config
        self.hiddenSize = hiddenSize
        self.weights = weights
        self.isFrozen = isFrozen
    }

    /// A new adapter initialised as the reference's `init_weights` says ("bert": N(0, 0.02) weights and
    /// zero biases; "mam_adapter": Kaiming-uniform(a = √5) down, zero up; "houlsby": truncated N(0, 0.01) in
    /// [−0.02, 0.02]); LayerNorms γ = 1, β = 0; gate N(0, 0.02); learned/channel scaling 1.
    /// Values come from `SeededRNG(seed: init_weights_seed ?? seed)`, not torch's generator.
    /// - Throws: `AdapterError.invalidValue` for a reduction-factor mapping without an entry for some layer.
    public init(name: String, config: BottleneckConfig, hiddenSize: Int, numLayers: Int, seed: UInt64 = 0) throws {
        var rng = SeededRNG(seed: config.initWeightsSeed.map { UInt64(bitPattern: Int64($0)) } ?? seed)
        var weights: [AdapterSite: BottleneckAdapterWeights] = [:]
        func normal(_ shape: [Int], std: Float) -> Tensor {
            Tensor(shape: shape, scalars: (0..<shape.reduce(1, *)).map { _ in rng.normal(mean: 0, std: std) })
        }
        func truncated(_ shape: [Int]) -> Tensor {
            Tensor(shape: shape, scalars: (0..<shape.reduce(1, *)).map { _ in
                while true { let v = rng.normal(mean: 0, std: 0.01); if abs(v) <= 0.02 { return v } }
            })
        }
        for layer in 0..<numLayers {
            for location in AdapterLocation.allCases where config.isPresent(layer: layer, location: location) {
                let d = try config.bottleneckSize(hiddenSize: hiddenSize, layer: layer), h = hiddenSize
                var w: BottleneckAdapterWeights
                switch config.initialization {
                case .bert:
                    w = .init(downWeight: normal([d, h], std: 0.02), downBias: Tensor(zeros: [d]),
                              upWeight: normal([h, d], std: 0.02), upBias: Tensor(zeros: [h]))
                case .mamAdapter:
                    let bound = 1 / Float(h).squareRoot()
                    w = .init(downWeight: Tensor(shape: [d, h], scalars: (0..<d * h).map { _ in rng.uniform(-bound, bound) }),
                              downBias: Tensor(zeros: [d]), upWeight: Tensor(zeros: [h, d]), upBias: Tensor(zeros: [h]))
                case .houlsby:
                    w = .init(downWeight: truncated([d, h]), downBias: Tensor(zeros: [d]),
                              upWeight: truncated([h, d]), upBias: Tensor(zeros: [h]))
                }
                if config.layerNormBefore { w.normBefore = (Tensor(shape: [h], repeating: 1), Tensor(zeros: [h])) }
                if config.layerNormAfter { w.normAfter = (Tensor(shape: [h], repeating: 1), Tensor(zeros: [h])) }
                if config.useGating { w.gate = (normal([1, h], std: 0.02), Tensor(zeros: [1])) }
                switch config.scaling {
                case .learned: w.scaling = Tensor(shape: [1], repeating: 1)
                case .channel: w.scaling = Tensor(shape: [h], repeating: 1)
                case .constant: break
                }
                weights[AdapterSite(layer: layer, location: location)] = w
            }
        }
        self.init(name: name, config: config, hiddenSize: hiddenSize, weights: weights)
    }

    /// The number of trainable scalars.
    public var parameterCount: Int {
        weights.values.reduce(0) { $0 + $1.namedTensors.filter { !$0.0.hasPrefix("adapter_norm_before") }.reduce(0) { $0 + $1.1.count } }
    }

    // MARK: - Forward steps

    /// `pre_forward`: the adapter input, the fusion query and the adapter residual.
    /// - Parameters:
    ///   - h: `hidden`, `[rows, hidden]`, the sub-layer output (or the previous stacked adapter's output).
    ///   - a: `input`, `[rows, hidden]`, the sub-layer residual input.
    ///   - layerNorm: the layer's own LayerNorm.
    ///   - queryBeforeLayerNorm: the fusion config's `query_before_ln`.
    ///   - context: threads, GEMM backend and workspaces the op runs with.
    /// - Returns: `(hidden, query, residual)`, each `[rows, hidden]`.
    public func preForward(hidden h: Tensor, input a: Tensor, layerNorm: SublayerLayerNorm,
                           queryBeforeLayerNorm: Bool = false,
                           context: ComputeContext) -> (hidden: Tensor, query: Tensor, residual: Tensor) {
        if config.isParallel { return (a, a, a) }
        let original = h
        var hidden = h
        var residual = h
        if config.originalLayerNormBefore {
            let out = AdapterCore.layerNorm(hidden, residual: a, weight: layerNorm.weight, bias: layerNorm.bias,
                                eps: layerNorm.eps, context: context)
            if config.residualBeforeLayerNorm == .postAdd { residual = out.normalizedInput }
            hidden = out.output
        }
        if config.residualBeforeLayerNorm == .afterLayerNorm { residual = hidden }
        return (hidden, queryBeforeLayerNorm ? original : hidden, residual)
    }

    /// `forward`: the adapter output and its bare up-projection.
    /// - Parameters:
    ///   - site: where (selects the weights; must exist).
    ///   - x: adapter input `[batch·seq, hidden]`.
    ///   - residual: adapter residual `[batch·seq, hidden]`.
    ///   - sequenceLength: for the gate's mean over the sequence.
    ///   - context: threads, GEMM backend and workspaces the op runs with.
    ///   - needsUp: also return `up` separately (AdapterFusion consumes it); otherwise the residual add is
    ///     fused into the up-projection GEMM where the config allows.
    /// - Returns: `output` `[rows, hidden]` and `up` (scaled, before dropout, gate and residual) when asked.
    public func forward(site: AdapterSite, _ x: Tensor, residual: Tensor, sequenceLength: Int, needsUp: Bool = false,
                        context: ComputeContext) -> (output: Tensor, up: Tensor?) {
        guard let w = weights[site] else { preconditionFailure("adapter \(name) has no module at \(site)") }
        var input = x
        if let n = w.normBefore {
            input = layerNorm(x, weight: n.weight, bias: n.bias, eps: 1e-5, context: context).output
        }
        let down = linear(input, weight: w.downWeight, bias: w.downBias, activation: config.activation, context: context)
        let plainScale: Bool = { if case .constant(1) = config.scaling { return true } else { return false } }()
        let simple = plainScale && w.gate == nil && w.normAfter == nil && !config.isParallel
        if simple && !needsUp {
            // out = up + residual in the GEMM epilogue (same order of additions as the reference).
            return (linear(down, weight: w.upWeight, bias: w.upBias, residual: residual, context: context), nil)
        }
        var up = linear(down, weight: w.upWeight, bias: w.upBias, context: context)
        switch config.scaling {
        case let .constant(s): if s != 1 { up = scaled(up, by: s, context: context) }
        case .learned: up = scaled(up, by: w.scaling!.scalars[0], context: context)
        case .channel: up = multiply(up, w.scaling!, context: context)
        }
        var output = up
        if let g = w.gate {
            let gateScores = linear(x, weight: g.weight, bias: g.bias, activation: .sigmoid, context: context)  // [rows, 1]
            let seq = max(sequenceLength, 1), batch = gateScores.count / seq
            let values = gateScores.scalars
            var factors = [Float](repeating: 0, count: output.count)
            for b in 0..<batch {
                var sum: Float = 0
                for s in 0..<seq { sum += values[b * seq + s] }
                let mean = sum / Float(seq)
                for i in (b * seq * hiddenSize)..<((b + 1) * seq * hiddenSize) { factors[i] = mean }
            }
            output = multiply(output, Tensor(shape: output.shape, scalars: factors), context: context)
        }
        if config.isParallel {
            if let n = w.normAfter { output = layerNorm(output, weight: n.weight, bias: n.bias, eps: 1e-5, context: context).output }
            return (output, up)
        }
        if config.adapterResidualBeforeLayerNorm { output = add(output, residual, context: context) }
        if let n = w.normAfter { output = layerNorm(output, weight: n.weight, bias: n.bias, eps: 1e-5, context: context).output }
        if !config.adapterResidualBeforeLayerNorm { output = add(output, residual, context: context) }
        return (output, up)
    }

    /// `post_forward`: `LN(out + a)`, or `out` unchanged without `original_ln_after`; the parallel architecture
    /// first adds `h`, the sub-layer output the composition started from.
    /// - Parameters:
    ///   - output: `[rows, hidden]` composition result.
    ///   - inputHidden: h `[rows, hidden]` before the composition.
    ///   - a: `input`, `[rows, hidden]`, the sub-layer residual input.
    ///   - layerNorm: the layer's own LayerNorm (applied with `original_ln_after`).
    ///   - context: threads, GEMM backend and workspaces the op runs with.
    public func postForward(_ output: Tensor, inputHidden: Tensor, input a: Tensor, layerNorm: SublayerLayerNorm,
                            context: ComputeContext) -> Tensor {
        var out = output
        if config.isParallel { out = add(out, inputHidden, context: context) }
        // Without original_ln_after the reference returns the adapter output as is (no sub-layer residual).
        guard config.originalLayerNormAfter else { return out }
        return layerNorm(out, residual: a, context: context)
    }
}

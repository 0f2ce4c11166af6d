// A Double-precision reference of the BERT layer in training mode (with given dropout masks), a toy trainable
// module that implements TrainableSublayer, and a tiny random model — shared by the training tests.
import AdapterCore
@testable import AdapterDrop
import Foundation
import TestSupport
import Testing

/// A tiny random BERT (hidden 8, 2 heads, intermediate 16, 3 layers) with weights drawn like the parity
/// fixtures (linear N(0, 1/fan_in), biases N(0, 0.1²), LayerNorm 1 + N(0, 0.2²) / N(0, 0.1²), embeddings
/// N(0, 0.5²)), so every weight matters.
func tinyTrainingEncoder(layers: Int = 3, hidden: Int = 8, heads: Int = 2, intermediate: Int = 16,
                         seed: UInt64 = 7) throws -> BertEncoder {
    let config = BertConfig(hiddenSize: hidden, numHiddenLayers: layers, numAttentionHeads: heads,
                            intermediateSize: intermediate, vocabSize: 20)
    var rng = SeededRNG(seed: seed)
    var named: [String: Tensor] = [:]
    for p in BertWeights.expectedParameters(for: config) {
        let t: Tensor
        if p.name.contains("LayerNorm") {
            t = p.name.hasSuffix("weight") ? Tensor.randomNormal(shape: p.shape, mean: 1, std: 0.2, using: &rng)
                                           : Tensor.randomNormal(shape: p.shape, std: 0.1, using: &rng)
        } else if p.name.contains("embeddings") {
            t = Tensor.randomNormal(shape: p.shape, std: 0.5, using: &rng)
        } else if p.shape.count == 2 {
            t = Tensor.randomNormal(shape: p.shape, std: 1 / Float(p.shape[1]).squareRoot(), using: &rng)
        } else {
            t = Tensor.randomNormal(shape: p.shape, std: 0.1, using: &rng)
        }
        named[p.name] = t
    }
    return BertEncoder(config: config, weights: try BertWeights(config: config, namedTensors: named))
}

/// A toy trainable module: at each active (layer, location) `y = LN((1 + s) ⊙ h + a)` with a trainable
/// `s` `[hidden]` (initialised small and random), through the layer's own frozen LayerNorm. Enough to exercise
/// the whole TrainableSublayer contract (saved state, dh ≠ da, parameter gradients accumulated).
final class ScaleSublayer: TrainableSublayer {
    var scales: [String: Tensor] = [:]
    var gradients: [String: Tensor] = [:]
    let active: Set<String>
    private(set) var forwardCalls = 0, backwardCalls = 0

    static func key(_ layer: Int, _ location: AdapterLocation) -> String { "\(layer).\(location.rawValue)" }

    init(active: [(Int, AdapterLocation)], hidden: Int, seed: UInt64 = 99) {
        self.active = Set(active.map { Self.key($0.0, $0.1) })
        var rng = SeededRNG(seed: seed)
        for k in self.active.sorted() {
            scales[k] = Tensor.randomNormal(shape: [hidden], std: 0.3, using: &rng)
            gradients[k] = Tensor(zeros: [hidden])
        }
    }

    func hasTrainableParameters(layer: Int) -> Bool {
        AdapterLocation.allCases.contains { active.contains(Self.key(layer, $0)) }
    }

    struct Saved { var h: Tensor; var s: Tensor; var mean: Tensor; var rstd: Tensor }

    func trainingForward(layer: Int, location: AdapterLocation, hidden: Tensor, residual: Tensor,
                         layerNorm norm: SublayerLayerNorm, batch: Int, sequenceLength: Int, saveForBackward: Bool,
                         dropout: EncoderDropout, rng: inout SeededRNG,
                         context: ComputeContext) -> TrainableSublayerForward? {
        guard let s = scales[Self.key(layer, location)] else { return nil }
        forwardCalls += 1
        let onePlus = add(s, Tensor(shape: s.shape, repeating: 1), context: context)
        let scaled = multiply(hidden, onePlus, context: context)
        let y = layerNorm(scaled, residual: residual, weight: norm.weight, bias: norm.bias, eps: norm.eps,
                          context: context)
        return TrainableSublayerForward(
            output: y.output,
            saved: saveForBackward ? Saved(h: hidden, s: y.normalizedInput, mean: y.mean, rstd: y.rstd) : nil)
    }

    func trainingBackward(layer: Int, location: AdapterLocation, outputGradient: Tensor, saved: Any?,
                          layerNorm norm: SublayerLayerNorm,
                          context: ComputeContext) -> (hidden: Tensor, residual: Tensor) {
        backwardCalls += 1
        let k = Self.key(layer, location)
        let st = saved as! Saved
        let ds = layerNormBackward(outputGradient, input: st.s, weight: norm.weight, mean: st.mean, rstd: st.rstd,
                                   context: context)
        let onePlus = add(scales[k]!, Tensor(shape: [ds.shape[1]], repeating: 1), context: context)
        var g = gradients[k]!
        gradients[k] = nil
        columnSums(multiply(ds, st.h, context: context), accumulatingInto: &g, context: context)
        gradients[k] = g
        return (multiply(ds, onePlus, context: context), ds)
    }
}

/// The BERT layer stack in Double, with the dropout masks a Float training forward drew.
struct DoubleReference {
    let config: BertConfig
    /// Per layer: name → values (Double), from the encoder's weights (LayerNorm entries may be perturbed).
    var layers: [[String: [Double]]]
    /// Toy module scales by `ScaleSublayer.key`.
    var scales: [String: [Double]]
    let batch: Int, seq: Int
    /// keyValid[b][j]: key j of sequence b is a real token.
    let keyValid: [[Bool]]

    init(encoder: BertEncoder, module: ScaleSublayer?, batch: Int, seq: Int, attentionMask: [Int]) {
        config = encoder.config
        self.batch = batch
        self.seq = seq
        keyValid = (0..<batch).map { b in (0..<seq).map { attentionMask[b * seq + $0] == 1 } }
        layers = encoder.weights.layers.map { w in
            func d(_ t: Tensor) -> [Double] { t.scalars.map(Double.init) }
            return ["q": d(w.queryWeight), "bq": d(w.queryBias), "k": d(w.keyWeight), "bk": d(w.keyBias),
                    "v": d(w.valueWeight), "bv": d(w.valueBias), "o": d(w.attentionOutputWeight),
                    "bo": d(w.attentionOutputBias), "ln1w": d(w.attentionLayerNormWeight),
                    "ln1b": d(w.attentionLayerNormBias), "i": d(w.intermediateWeight), "bi": d(w.intermediateBias),
                    "o2": d(w.outputWeight), "bo2": d(w.outputBias), "ln2w": d(w.outputLayerNormWeight),
                    "ln2b": d(w.outputLayerNormBias)]
        }
        scales = (module?.scales ?? [:]).mapValues { $0.scalars.map(Double.init) }
    }

    /// y = x·Wᵀ + b for x [rows, in], W [out, in].
    static func linear(_ x: [Double], _ w: [Double], _ b: [Double], rows: Int, inF: Int, outF: Int) -> [Double] {
        var y = [Double](repeating: 0, count: rows * outF)
        for r in 0..<rows {
            for o in 0..<outF {
                var s = b[o]
                for i in 0..<inF { s += x[r * inF + i] * w[o * inF + i] }
                y[r * outF + o] = s
            }
        }
        return y
    }

    static func layerNorm(_ x: [Double], _ w: [Double], _ b: [Double], cols: Int, eps: Double) -> [Double] {
        var y = x
        for r in 0..<(x.count / cols) {
            let row = x[(r * cols)..<((r + 1) * cols)]
            let mean = row.reduce(0, +) / Double(cols)
            let variance = row.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(cols)
            let rstd = 1 / (variance + eps).squareRoot()
            for c in 0..<cols { y[r * cols + c] = (x[r * cols + c] - mean) * rstd * w[c] + b[c] }
        }
        return y
    }

    /// One layer; `masks` are the Float masks from the saved state (nil: no dropout).
    func layer(_ l: Int, _ x: [Double], masks: (attention: [Float]?, h1: [Float]?, h2: [Float]?)) -> [Double] {
        let w = layers[l], hidden = config.hiddenSize, heads = config.numAttentionHeads, hd = config.headSize
        let inter = config.intermediateSize, rows = batch * seq, eps = config.layerNormEps
        let q = Self.linear(x, w["q"]!, w["bq"]!, rows: rows, inF: hidden, outF: hidden)
        let k = Self.linear(x, w["k"]!, w["bk"]!, rows: rows, inF: hidden, outF: hidden)
        let v = Self.linear(x, w["v"]!, w["bv"]!, rows: rows, inF: hidden, outF: hidden)
        var ctx = [Double](repeating: 0, count: rows * hidden)
        for b in 0..<batch {
            for h in 0..<heads {
                for i in 0..<seq {
                    var scores = [Double](repeating: -.infinity, count: seq)
                    for j in 0..<seq where keyValid[b][j] {
                        var s = 0.0
                        for d in 0..<hd { s += q[(b * seq + i) * hidden + h * hd + d] * k[(b * seq + j) * hidden + h * hd + d] }
                        scores[j] = s / Double(hd).squareRoot()
                    }
                    let m = scores.max()!
                    let e = scores.map { $0 == -.infinity ? 0 : exp($0 - m) }
                    let z = e.reduce(0, +)
                    for j in 0..<seq {
                        var p = e[j] / z
                        if let am = masks.attention { p *= Double(am[((b * heads + h) * seq + i) * seq + j]) }
                        for d in 0..<hd { ctx[(b * seq + i) * hidden + h * hd + d] += p * v[(b * seq + j) * hidden + h * hd + d] }
                    }
                }
            }
        }
        var h1 = Self.linear(ctx, w["o"]!, w["bo"]!, rows: rows, inF: hidden, outF: hidden)
        if let m = masks.h1 { for i in h1.indices { h1[i] *= Double(m[i]) } }
        let x1 = residualNorm(l, .attentionOutput, h1, x, w["ln1w"]!, w["ln1b"]!, eps: eps)
        var inner = Self.linear(x1, w["i"]!, w["bi"]!, rows: rows, inF: hidden, outF: inter)
        for i in inner.indices { inner[i] = 0.5 * inner[i] * (1 + erf(inner[i] / 2.0.squareRoot())) }
        var h2 = Self.linear(inner, w["o2"]!, w["bo2"]!, rows: rows, inF: inter, outF: hidden)
        if let m = masks.h2 { for i in h2.indices { h2[i] *= Double(m[i]) } }
        return residualNorm(l, .output, h2, x1, w["ln2w"]!, w["ln2b"]!, eps: eps)
    }

    private func residualNorm(_ l: Int, _ loc: AdapterLocation, _ h: [Double], _ a: [Double], _ lw: [Double],
                              _ lb: [Double], eps: Double) -> [Double] {
        var s = h
        if let sc = scales[ScaleSublayer.key(l, loc)] {
            for i in s.indices { s[i] *= 1 + sc[i % config.hiddenSize] }
        }
        for i in s.indices { s[i] += a[i] }
        return Self.layerNorm(s, lw, lb, cols: config.hiddenSize, eps: eps)
    }

    /// Layers `from…L−1` on `x`; `masks[l - from]` per layer.
    func run(from: Int, _ x: [Double], masks: [(attention: [Float]?, h1: [Float]?, h2: [Float]?)]) -> [Double] {
        var h = x
        for l in from..<config.numHiddenLayers { h = layer(l, h, masks: masks[l - from]) }
        return h
    }
}

/// Central finite difference of `f` at `x[i]` in Double.
func centralDifference(_ x: [Double], _ i: Int, step: Double = 1e-5, _ f: ([Double]) -> Double) -> Double {
    var plus = x, minus = x
    plus[i] += step
    minus[i] -= step
    return (f(plus) - f(minus)) / (2 * step)
}

@Suite struct TrainingReferenceTests {
    /// The Double reference agrees with the Float inference encoder (so the finite-difference tests check the
    /// right function). fp32 forward over 3 layers of width 8: 1e-5 abs + 1e-4 rel.
    @Test func referenceMatchesInferenceEncoder() throws {
        let encoder = try tinyTrainingEncoder()
        let input = try EncoderInput(batchSize: 2, sequenceLength: 4, inputIds: [2, 5, 7, 3, 2, 9, 3, 0],
                                     attentionMask: [1, 1, 1, 1, 1, 1, 1, 0], tokenTypeIds: [0, 0, 1, 1, 0, 0, 0, 0])
        let context = ComputeContext(threads: 1)
        let x0 = try encoder.embed(input, context: context)
        let out = try encoder(input, context: context).lastHiddenState
        let ref = DoubleReference(encoder: encoder, module: nil, batch: 2, seq: 4, attentionMask: input.attentionMask)
        let y = ref.run(from: 0, x0.scalars.map(Double.init), masks: Array(repeating: (nil, nil, nil), count: 3))
        expectClose(out.scalars, y, atol: 1e-5, rtol: 1e-4, "Double reference vs encoder")
    }
}

// Losses with their gradients: softmax cross-entropy and mean squared error.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A scalar loss and its gradient with respect to the prediction.
public struct LossOutput: Sendable {
    /// The loss (mean over the counted items).
    public var loss: Float
    /// d loss / d prediction, same shape as the prediction.
    public var gradient: Tensor
}

/// Softmax cross-entropy from logits, averaged over the items whose label is not `ignoreIndex`
/// (`torch.nn.functional.cross_entropy(logits, labels, ignore_index: -100, reduction: "mean")`).
///
///     loss = (1/N) Σ_i [ logsumexp(logits[i]) − logits[i, label_i] ]     over counted items i
///     dlogits[i] = (softmax(logits[i]) − onehot(label_i)) / N            (0 for ignored items)
///
/// Per-row log-sum-exp and the mean are accumulated in Double; the gradient is rounded to fp32.
/// If every item is ignored the loss is 0 with a zero gradient (PyTorch returns NaN there).
/// - Parameters:
///   - logits: `[…, classes]` (e.g. `[batch, numLabels]` or `[batch, seq, numLabels]`).
///   - labels: one class index per row (`logits.count / classes` entries), each in `0..<classes`
///     or equal to `ignoreIndex`.
///   - ignoreIndex: label value to skip (default −100 as in PyTorch), or nil.
public func crossEntropyLoss(logits: Tensor, labels: [Int], ignoreIndex: Int? = -100) -> LossOutput {
    require(logits.rank >= 1 && (logits.shape.last ?? 0) > 0,
                 "crossEntropyLoss: logits \(logits.shape) must be [..., classes] with classes > 0")
    let classes = logits.shape[logits.rank - 1], rows = logits.count / classes
    require(labels.count == rows,
                 "crossEntropyLoss: logits \(logits.shape) (\(rows) rows) does not match \(labels.count) labels")
    let x = logits.contiguous().scalars
    var counted = 0
    for (i, label) in labels.enumerated() where label != ignoreIndex {
        require(label >= 0 && label < classes,
                     "crossEntropyLoss: label \(label) at row \(i) is outside 0..<\(classes) (logits \(logits.shape))")
        counted += 1
    }
    var total = 0.0
    let gradient = Tensor(shape: logits.shape) { g in
        for r in 0..<rows {
            let row = r * classes
            guard labels[r] != ignoreIndex, counted > 0 else {
                for j in 0..<classes { g[row + j] = 0 }
                continue
            }
            var maxLogit = -Double.infinity
            for j in 0..<classes { maxLogit = max(maxLogit, Double(x[row + j])) }
            var sumExp = 0.0
            for j in 0..<classes { sumExp += exp(Double(x[row + j]) - maxLogit) }
            let logSumExp = maxLogit + log(sumExp)
            total += logSumExp - Double(x[row + labels[r]])
            for j in 0..<classes {
                let p = exp(Double(x[row + j]) - logSumExp)
                g[row + j] = Float((p - (j == labels[r] ? 1 : 0)) / Double(counted))
            }
        }
    }
    return LossOutput(loss: counted == 0 ? 0 : Float(total / Double(counted)), gradient: gradient)
}

/// Mean squared error over all elements (`torch.nn.functional.mse_loss`, reduction "mean"):
///
///     loss = (1/N) Σ (prediction − target)²,   dprediction = 2 (prediction − target) / N
///
/// Accumulated in Double. Used for regression heads (e.g. STS-B).
/// - Parameters:
///   - prediction: any shape.
///   - target: the same shape as `prediction`.
public func mseLoss(prediction: Tensor, target: Tensor) -> LossOutput {
    require(prediction.shape == target.shape,
                 "mseLoss: prediction \(prediction.shape) does not match target \(target.shape)")
    let p = prediction.scalars, t = target.scalars
    let n = Double(max(p.count, 1))
    var total = 0.0
    for i in 0..<p.count {
        let d = Double(p[i]) - Double(t[i])
        total += d * d
    }
    let gradient = Tensor(shape: prediction.shape) { g in
        for i in 0..<p.count { g[i] = Float(2 * (Double(p[i]) - Double(t[i])) / n) }
    }
    return LossOutput(loss: Float(total / n), gradient: gradient)
}

// Training targets per head type, the multi-label loss (binary cross-entropy with logits) and evaluation
// metrics: accuracy, macro-F1, Matthews correlation (classification); Pearson, Spearman, MSE (regression);
// exact-match accuracy and macro-F1 over labels (multi-label). Formulas follow scikit-learn / SciPy.
import AdapterCore
import Foundation

/// What a head is trained to predict, and so which loss and which metrics apply.
public enum TrainingTaskKind: String, Sendable, Equatable {
    /// Single-label classification (`numLabels ≥ 2`): softmax cross-entropy; accuracy, macro-F1, MCC.
    case classification
    /// Regression (a classification head with `numLabels == 1`): MSE; Pearson, Spearman, MSE.
    case regression
    /// Multi-label classification (`multilabel_classification`): BCE with logits; exact match, macro-F1.
    case multiLabel = "multi_label"

    /// The kind a head config trains.
    /// - Throws: `TrainingError.unsupportedHead` for tagging heads, pooler heads and other variants.
    public init(head name: String, config: PredictionHeadConfig) throws {
        if config.usePooler { throw TrainingError.unsupportedHead(head: name, key: "use_pooler", reason: "a head on the pooler output") }
        switch config.headType {
        case .classification: self = config.numLabels == 1 ? .regression : .classification
        case .multiLabelClassification: self = .multiLabel
        case .tagging: throw TrainingError.unsupportedHead(head: name, key: "head_type", reason: "tagging heads")
        }
    }
}

/// Gold targets of a dataset, one entry per example in dataset order.
public enum TrainingTargets: Sendable, Equatable {
    /// Class indices in `0..<numLabels` (single-label classification).
    case classes([Int])
    /// Real-valued targets (regression).
    case values([Float])
    /// One 0/1 vector of length `numLabels` per example (multi-label).
    case multiLabel([[Bool]])

    /// Number of examples.
    public var count: Int {
        switch self {
        case .classes(let c): return c.count
        case .values(let v): return v.count
        case .multiLabel(let m): return m.count
        }
    }

    /// Checks kind, count and range against a head.
    /// - Throws: `TrainingError.invalidTargets` naming the first bad example.
    public func validate(head: String, kind: TrainingTaskKind, numLabels: Int, count expected: Int) throws {
        func fail(_ i: Int, _ reason: String) -> TrainingError { .invalidTargets(head: head, index: i, reason: reason) }
        guard count == expected else { throw fail(-1, "\(count) targets for \(expected) examples") }
        switch (self, kind) {
        case let (.classes(c), .classification):
            if let i = c.firstIndex(where: { $0 < 0 || $0 >= numLabels }) { throw fail(i, "class \(c[i]) not in 0..<\(numLabels)") }
        case let (.values(v), .regression):
            if let i = v.firstIndex(where: { !$0.isFinite }) { throw fail(i, "target \(v[i]) is not finite") }
        case let (.multiLabel(m), .multiLabel):
            if let i = m.firstIndex(where: { $0.count != numLabels }) { throw fail(i, "\(m[i].count) labels, the head has \(numLabels)") }
        default:
            throw fail(-1, "\(self.kindName) targets for a \(kind.rawValue) head")
        }
    }

    var kindName: String {
        switch self {
        case .classes: return "class-index"
        case .values: return "real-valued"
        case .multiLabel: return "multi-label"
        }
    }

    /// The targets of examples `indices` as the loss wants them: class indices or values as floats, or the
    /// 0/1 vectors concatenated (`[batch·numLabels]`).
    func floats(at indices: [Int]) -> [Float] {
        switch self {
        case .classes(let c): return indices.map { Float(c[$0]) }
        case .values(let v): return indices.map { v[$0] }
        case .multiLabel(let m): return indices.flatMap { m[$0].map { $0 ? 1 : 0 } }
        }
    }
}

/// Binary cross-entropy with logits, mean over all `batch·labels` entries
/// (`torch.nn.BCEWithLogitsLoss(reduction="mean")`), in the stable form
/// ```
/// ℓ = max(x, 0) − x·y + log(1 + exp(−|x|)),   dℓ/dx = (σ(x) − y) / N
/// ```
/// accumulated in Double; the gradient is rounded to fp32.
/// - Parameters:
///   - logits: `[batch, labels]`.
///   - targets: `batch·labels` values in [0, 1], row-major.
/// - Returns: the mean loss and dloss/dlogits `[batch, labels]`.
public func binaryCrossEntropyWithLogits(logits: Tensor, targets: [Float]) -> (loss: Float, gradient: Tensor) {
    precondition(logits.count == targets.count, "binaryCrossEntropyWithLogits: logits \(logits.shape), \(targets.count) targets")
    let x = logits.scalars
    let n = Double(max(x.count, 1))
    var sum = 0.0
    var grad = [Float](repeating: 0, count: x.count)
    for i in 0..<x.count {
        let xi = Double(x[i]), yi = Double(targets[i])
        sum += max(xi, 0) - xi * yi + log1p(exp(-abs(xi)))
        let sigmoid = xi >= 0 ? 1 / (1 + exp(-xi)) : exp(xi) / (1 + exp(xi))
        grad[i] = Float((sigmoid - yi) / n)
    }
    return (Float(sum / n), Tensor(shape: logits.shape, scalars: grad))
}

/// Metrics of one head on one dataset. Fields that do not apply to the head's kind are nil.
public struct EvaluationMetrics: Sendable, Equatable {
    /// The head's task kind.
    public var kind: TrainingTaskKind
    /// Examples evaluated.
    public var count: Int
    /// Mean loss of the head's training loss over the dataset (each batch's mean weighted by its size).
    public var loss: Double
    /// Classification: fraction with arg-max = gold. Multi-label: exact-match (subset) accuracy.
    public var accuracy: Double?
    /// Classification: mean per-class F1 (a class with no gold and no predicted example has F1 = 0, as
    /// scikit-learn's `zero_division=0`). Multi-label: mean over labels of the positive-class F1.
    public var macroF1: Double?
    /// Classification: Matthews correlation, multi-class form (scikit-learn `matthews_corrcoef`), in [−1, 1];
    /// 0 when undefined (one class only).
    public var matthewsCorrelation: Double?
    /// Regression: Pearson's r (NaN when predictions or targets are constant).
    public var pearson: Double?
    /// Regression: Spearman's ρ (Pearson of average ranks; NaN when constant).
    public var spearman: Double?
    /// Regression: mean squared error.
    public var meanSquaredError: Double?
    /// Classification: arg-max class per example, in dataset order.
    public var predictions: [Int]
    /// Regression: the predicted value per example, in dataset order.
    public var predictedValues: [Float]

    /// The applicable metrics as (name, value), in a fixed order (for text and JSON output).
    public var namedValues: [(String, Double)] {
        var out: [(String, Double)] = []
        if let accuracy { out.append(("accuracy", accuracy)) }
        if let macroF1 { out.append(("macro_f1", macroF1)) }
        if let matthewsCorrelation { out.append(("matthews_correlation", matthewsCorrelation)) }
        if let pearson { out.append(("pearson", pearson)) }
        if let spearman { out.append(("spearman", spearman)) }
        if let meanSquaredError { out.append(("mse", meanSquaredError)) }
        out.append(("loss", loss))
        return out
    }

    /// `accuracy 0.9100, macro_f1 0.9088, …` with 4 decimals.
    public var summary: String {
        namedValues.map { "\($0.0) \($0.1.isFinite ? String(format: "%.4f", $0.1) : "nan")" }.joined(separator: ", ")
    }

    /// Classification metrics of predictions against gold labels (both in `0..<classes`).
    public static func classification(predictions: [Int], labels: [Int], classes: Int, loss: Double = 0) -> EvaluationMetrics {
        precondition(predictions.count == labels.count, "metrics: \(predictions.count) predictions for \(labels.count) labels")
        var tp = [Int](repeating: 0, count: classes), fp = tp, fn = tp
        var truePerClass = tp, predictedPerClass = tp
        var correct = 0
        for (p, g) in zip(predictions, labels) {
            truePerClass[g] += 1
            predictedPerClass[p] += 1
            if p == g { correct += 1; tp[g] += 1 } else { fp[p] += 1; fn[g] += 1 }
        }
        var f1 = 0.0
        for c in 0..<classes {
            let d = 2 * tp[c] + fp[c] + fn[c]
            f1 += d == 0 ? 0 : Double(2 * tp[c]) / Double(d)
        }
        // MCC = (c·s − Σ pₖtₖ) / √((s² − Σ pₖ²)(s² − Σ tₖ²))
        let s = Double(labels.count), c = Double(correct)
        var pt = 0.0, pp = 0.0, tt = 0.0
        for k in 0..<classes {
            pt += Double(predictedPerClass[k]) * Double(truePerClass[k])
            pp += Double(predictedPerClass[k]) * Double(predictedPerClass[k])
            tt += Double(truePerClass[k]) * Double(truePerClass[k])
        }
        let denominator = ((s * s - pp) * (s * s - tt)).squareRoot()
        return EvaluationMetrics(kind: .classification, count: labels.count, loss: loss,
                                 accuracy: labels.isEmpty ? 0 : c / s, macroF1: classes == 0 ? 0 : f1 / Double(classes),
                                 matthewsCorrelation: denominator == 0 ? 0 : (c * s - pt) / denominator,
                                 pearson: nil, spearman: nil, meanSquaredError: nil,
                                 predictions: predictions, predictedValues: [])
    }

    /// Regression metrics of predicted values against targets.
    public static func regression(predictions: [Float], targets: [Float], loss: Double = 0) -> EvaluationMetrics {
        precondition(predictions.count == targets.count, "metrics: \(predictions.count) predictions for \(targets.count) targets")
        let x = predictions.map(Double.init), y = targets.map(Double.init)
        let mse = x.isEmpty ? 0 : zip(x, y).reduce(0.0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) } / Double(x.count)
        return EvaluationMetrics(kind: .regression, count: x.count, loss: loss, accuracy: nil, macroF1: nil,
                                 matthewsCorrelation: nil, pearson: pearsonCorrelation(x, y),
                                 spearman: pearsonCorrelation(averageRanks(x), averageRanks(y)), meanSquaredError: mse,
                                 predictions: [], predictedValues: predictions)
    }

    /// Multi-label metrics of predicted label sets (logit > 0) against gold label sets.
    public static func multiLabel(predictions: [[Bool]], targets: [[Bool]], loss: Double = 0) -> EvaluationMetrics {
        precondition(predictions.count == targets.count, "metrics: \(predictions.count) predictions for \(targets.count) targets")
        let labels = targets.first?.count ?? 0
        var exact = 0
        var tp = [Int](repeating: 0, count: labels), fp = tp, fn = tp
        for (p, g) in zip(predictions, targets) {
            if p == g { exact += 1 }
            for j in 0..<labels {
                if p[j] && g[j] { tp[j] += 1 } else if p[j] { fp[j] += 1 } else if g[j] { fn[j] += 1 }
            }
        }
        var f1 = 0.0
        for j in 0..<labels {
            let d = 2 * tp[j] + fp[j] + fn[j]
            f1 += d == 0 ? 0 : Double(2 * tp[j]) / Double(d)
        }
        return EvaluationMetrics(kind: .multiLabel, count: targets.count, loss: loss,
                                 accuracy: targets.isEmpty ? 0 : Double(exact) / Double(targets.count),
                                 macroF1: labels == 0 ? 0 : f1 / Double(labels), matthewsCorrelation: nil,
                                 pearson: nil, spearman: nil, meanSquaredError: nil, predictions: [], predictedValues: [])
    }

    /// Pearson's r = Σ(x−x̄)(y−ȳ) / √(Σ(x−x̄)² Σ(y−ȳ)²); NaN when either side is constant or empty.
    public static func pearsonCorrelation(_ x: [Double], _ y: [Double]) -> Double {
        guard !x.isEmpty, x.count == y.count else { return .nan }
        let mx = x.reduce(0, +) / Double(x.count), my = y.reduce(0, +) / Double(y.count)
        var sxy = 0.0, sxx = 0.0, syy = 0.0
        for (a, b) in zip(x, y) {
            sxy += (a - mx) * (b - my); sxx += (a - mx) * (a - mx); syy += (b - my) * (b - my)
        }
        let d = (sxx * syy).squareRoot()
        return d == 0 ? .nan : sxy / d
    }

    /// 1-based ranks with ties given their average rank (SciPy `rankdata(method="average")`).
    public static func averageRanks(_ x: [Double]) -> [Double] {
        let order = x.indices.sorted { x[$0] < x[$1] || (x[$0] == x[$1] && $0 < $1) }
        var ranks = [Double](repeating: 0, count: x.count)
        var i = 0
        while i < order.count {
            var j = i
            while j + 1 < order.count && x[order[j + 1]] == x[order[i]] { j += 1 }
            let average = Double(i + j) / 2 + 1
            for k in i...j { ranks[order[k]] = average }
            i = j + 1
        }
        return ranks
    }
}

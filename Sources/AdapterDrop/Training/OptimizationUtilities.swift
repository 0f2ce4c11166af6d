import AdapterCore

/// Linear warm-up then linear decay to 0 (transformers `get_linear_schedule_with_warmup`, a `LambdaLR`):
/// ```
/// factor(s) = s / max(1, warmup)                                  for s < warmup
///           = max(0, (total − s) / max(1, total − warmup))         otherwise
/// lr(s)     = baseLearningRate · factor(s)
/// ```
/// `s` counts optimizer steps from 0: the first update uses `lr(0)`, which is 0 when `warmup > 0` (as in HF
/// Trainer, where `scheduler.step()` follows `optimizer.step()`).
public struct LinearWarmupSchedule: Sendable, Equatable {
    /// The peak learning rate.
    public var baseLearningRate: Double
    /// Warm-up steps.
    public var warmupSteps: Int
    /// Total optimizer steps (the rate reaches 0 there).
    public var totalSteps: Int

    /// - Precondition: `warmupSteps ≥ 0`, `totalSteps ≥ 0`.
    public init(baseLearningRate: Double, warmupSteps: Int, totalSteps: Int) {
        require(warmupSteps >= 0 && totalSteps >= 0,
                     "LinearWarmupSchedule: warmup \(warmupSteps) and total \(totalSteps) must be ≥ 0")
        self.baseLearningRate = baseLearningRate
        self.warmupSteps = warmupSteps
        self.totalSteps = totalSteps
    }

    /// The learning rate of optimizer step `step` (0-based).
    public func learningRate(atStep step: Int) -> Double {
        let factor: Double
        if step < warmupSteps {
            factor = Double(step) / Double(max(1, warmupSteps))
        } else {
            factor = max(0, Double(totalSteps - step) / Double(max(1, totalSteps - warmupSteps)))
        }
        return baseLearningRate * factor
    }
}

/// Scales gradients so that their global L2 norm is at most `maxNorm` (`torch.nn.utils.clip_grad_norm_` with
/// `norm_type=2`, `foreach` off):
/// ```
/// total = ‖(‖g₁‖, ‖g₂‖, …)‖₂                (over the gradients present; missing ones are not counted)
/// coef  = min(maxNorm / (total + 1e-6), 1)
/// gᵢ   ← gᵢ · coef                           (always applied, also when coef = 1)
/// ```
/// Norms are accumulated in Double and rounded to fp32 per tensor and in total, like torch's fp32 results.
/// - Parameters:
///   - gradients: name → gradient, scaled in place.
///   - maxNorm: the largest allowed norm (> 0).
/// - Returns: the total norm before clipping (torch's return value); may be `inf`/NaN for non-finite
///   gradients, which are then scaled by NaN or 0 as in torch (`error_if_nonfinite=False`).
@discardableResult
public func clipGradientNorm(_ gradients: inout [String: Tensor], maxNorm: Double, context: ComputeContext) -> Float {
    require(maxNorm > 0, "clipGradientNorm: maxNorm \(maxNorm) must be > 0")
    var total = 0.0
    for name in gradients.keys.sorted() {
        let norm = gradients[name]!.withUnsafeBufferPointer { g in
            Float(g.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot())
        }
        total += Double(norm) * Double(norm)
    }
    let totalNorm = Float(total.squareRoot())
    let coefficient = min(Float(maxNorm) / (totalNorm + 1e-6), 1)
    for name in gradients.keys.sorted() {
        var g = gradients[name]!
        gradients[name] = nil
        g = scaled(g, by: coefficient, context: context)
        gradients[name] = g
    }
    return totalNorm
}

/// Sums gradients over micro-batches (gradient accumulation, as repeated `loss.backward()` without
/// `zero_grad`). A parameter that received no gradient in any micro-batch stays absent, so AdamW skips it
/// (torch's `grad is None`). HF Trainer divides each micro-batch loss by the number of accumulation steps;
/// pass `scale: 1/steps` to do the same here, or scale the loss gradient yourself.
public struct GradientAccumulator: Sendable {
    /// name → summed gradient.
    public private(set) var gradients: [String: Tensor] = [:]
    /// Micro-batches added since the last `reset()`.
    public private(set) var microBatches = 0

    public init() {}

    /// Adds one micro-batch's gradients (`gradients[name] += scale · g`).
    /// - Precondition: shapes match earlier gradients of the same name.
    public mutating func add(_ micro: [String: Tensor], scale: Float = 1, context: ComputeContext) {
        for name in micro.keys.sorted() {
            let g = micro[name]!
            if var sum = gradients[name] {
                gradients[name] = nil
                require(sum.shape == g.shape, "GradientAccumulator: \(name) \(g.shape) vs earlier \(sum.shape)")
                accumulate(g, into: &sum, alpha: scale, context: context)
                gradients[name] = sum
            } else {
                gradients[name] = scale == 1 ? g.contiguous() : scaled(g, by: scale, context: context)
            }
        }
        microBatches += 1
    }

    /// Returns the sums and starts over (`zero_grad(set_to_none=True)`).
    public mutating func take() -> [String: Tensor] {
        defer { reset() }
        return gradients
    }

    /// Forgets every gradient.
    public mutating func reset() {
        gradients = [:]
        microBatches = 0
    }
}

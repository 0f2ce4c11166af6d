// The optimizer half of one training step as HF Trainer 4.57 (used by adapters 1.3.0's AdapterTrainer) does
// it: learning rate from the linear warm-up schedule, global-norm clipping over the gradients present, AdamW
// with no weight decay on biases. Used by the trajectory parity tests and by any stepping loop that wants to
// match the reference step for step.
import AdapterCore

/// One optimizer step at a time, HF Trainer's order: `clip_grad_norm_` → `optimizer.step()` at the schedule's
/// rate → `scheduler.step()`.
///
/// Parameters whose name ends in `.bias` get λ = 0 (HF's `get_decay_parameter_names`; LayerNorm weights are
/// not trainable here). Gradients that are absent skip their parameter (torch's `grad is None`).
///
/// For AdapterFusion the reference adds the value regulariser's gradient *after* each step
/// (`AdapterTrainerCallback.on_step_end`), i.e. into the next step's gradients: call
/// `AdapterFusionTrainingModule.addRegularizationGradients` before the forward of every step after the first.
public struct ReferenceOptimizerStepper: Sendable {
    /// The schedule (step s uses `learningRate(atStep: s)`).
    public let schedule: LinearWarmupSchedule
    /// `clipGradientNorm` bound, or nil for none.
    public let maxGradientNorm: Double?
    /// The optimizer and its per-parameter state.
    public private(set) var optimizer: AdamW
    /// Optimizer steps taken so far.
    public private(set) var stepCount = 0

    /// - Parameters:
    ///   - schedule: learning rate per step.
    ///   - weightDecay: λ for everything but biases.
    ///   - betas, epsilon: AdamW's (torch defaults).
    ///   - maxGradientNorm: clipping bound (> 0) or nil.
    public init(schedule: LinearWarmupSchedule, weightDecay: Double = 0.01, betas: (Double, Double) = (0.9, 0.999),
                epsilon: Double = 1e-8, maxGradientNorm: Double? = 1.0) {
        self.schedule = schedule
        self.maxGradientNorm = maxGradientNorm
        optimizer = AdamW(betas: betas, epsilon: epsilon, weightDecay: weightDecay)
    }

    /// Clips `gradients` in place (when a bound is set), then updates `parameters` with AdamW at this step's rate.
    /// - Parameters:
    ///   - parameters: name → tensor, updated in place.
    ///   - gradients: name → gradient; every name must be a parameter.
    /// - Returns: the rate used and the gradient norm before clipping (0 without clipping).
    @discardableResult
    public mutating func step(parameters: inout [String: Tensor], gradients: inout [String: Tensor],
                              context: ComputeContext) -> (learningRate: Double, gradientNorm: Float) {
        var norm: Float = 0
        if let maxGradientNorm { norm = clipGradientNorm(&gradients, maxNorm: maxGradientNorm, context: context) }
        for name in gradients.keys where name.hasSuffix(".bias") { optimizer.weightDecayOverrides[name] = 0 }
        let rate = schedule.learningRate(atStep: stepCount)
        optimizer.step(parameters: &parameters, gradients: gradients, learningRate: rate)
        stepCount += 1
        return (rate, norm)
    }
}

import AdapterCore
import Foundation

/// AdamW with PyTorch semantics (`torch.optim.AdamW`, torch 2.15 `_single_tensor_adam` with
/// `decoupled_weight_decay=True`, the path torch takes for CPU tensors), for named parameters.
///
/// Per parameter with a gradient g, its own step count t (incremented first), learning rate lr:
/// ```
/// p ← p · (1 − lr·λ)                                  (decoupled weight decay, before the moments)
/// m ← m + (1 − β₁)·(g − m)                            (torch: exp_avg.lerp_(g, 1 − β₁))
/// v ← v·β₂ + (1 − β₂)·g·g
/// p ← p − (lr / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + ε)  (ε added after the bias correction of √v)
/// ```
/// Scalars are computed in Double (as Python does) and applied in fp32 (as torch's fp32 CPU kernels do).
///
/// **Parameters without a gradient are skipped**, exactly as torch skips `p.grad is None`: no update, no
/// weight decay, no moment decay, and their step count does not advance. This is what AdapterDrop's skipped
/// layers need (their adapters get no gradient), and it differs from feeding a zero gradient.
public struct AdamW: Sendable {
    /// Moments and step count of one parameter (torch `optimizer.state[p]`).
    public struct ParameterState: Sendable {
        /// Number of updates this parameter has received (torch `state["step"]`).
        public var step: Int
        /// m (`exp_avg`), the parameter's shape.
        public var firstMoment: Tensor
        /// v (`exp_avg_sq`), the parameter's shape.
        public var secondMoment: Tensor

        /// A state as saved in a checkpoint. - Precondition: both moments have the same shape.
        public init(step: Int, firstMoment: Tensor, secondMoment: Tensor) {
            precondition(firstMoment.shape == secondMoment.shape, "AdamW.ParameterState: moment shapes \(firstMoment.shape) vs \(secondMoment.shape)")
            self.step = step
            self.firstMoment = firstMoment
            self.secondMoment = secondMoment
        }
    }

    /// Replaces the state of parameter `name` (resuming from a checkpoint; torch `load_state_dict`).
    public mutating func restoreState(_ state: ParameterState, for name: String) {
        states[name] = state
    }

    /// β₁, β₂ (torch default 0.9, 0.999).
    public var betas: (Double, Double)
    /// ε, added to `√v̂` (torch default 1e-8).
    public var epsilon: Double
    /// λ for every parameter not in `weightDecayOverrides` (torch AdamW default 0.01).
    public var weightDecay: Double
    /// Per-parameter λ (e.g. 0 for biases and LayerNorm weights, as HF Trainer's parameter groups do).
    public var weightDecayOverrides: [String: Double]
    /// State by parameter name; created on a parameter's first update.
    public private(set) var states: [String: ParameterState] = [:]

    /// - Precondition: `0 ≤ β < 1`, `ε ≥ 0`, `λ ≥ 0`.
    public init(betas: (Double, Double) = (0.9, 0.999), epsilon: Double = 1e-8, weightDecay: Double = 0.01,
                weightDecayOverrides: [String: Double] = [:]) {
        require(betas.0 >= 0 && betas.0 < 1 && betas.1 >= 0 && betas.1 < 1, "AdamW: betas \(betas) not in [0, 1)")
        require(epsilon >= 0 && weightDecay >= 0, "AdamW: epsilon \(epsilon) and weight decay \(weightDecay) must be ≥ 0")
        self.betas = betas
        self.epsilon = epsilon
        self.weightDecay = weightDecay
        self.weightDecayOverrides = weightDecayOverrides
    }

    /// One optimizer step over named parameters.
    /// - Parameters:
    ///   - parameters: name → tensor; updated in place.
    ///   - gradients: name → gradient of the same shape. A parameter without an entry is skipped (torch's
    ///     `grad is None`); a gradient without a parameter is a programmer error.
    ///   - learningRate: lr for this step (from a schedule).
    public mutating func step(parameters: inout [String: Tensor], gradients: [String: Tensor], learningRate: Double) {
        for name in gradients.keys.sorted() {
            guard var p = parameters[name] else {
                preconditionFailure("AdamW.step: gradient for unknown parameter \(name)")
            }
            parameters[name] = nil  // keep p uniquely owned
            update(&p, name: name, gradient: gradients[name]!, learningRate: learningRate)
            parameters[name] = p
        }
    }

    /// Updates one parameter with its gradient (see the type's formula).
    /// - Parameters:
    ///   - parameter: any shape; made contiguous.
    ///   - name: the key of its state and weight decay.
    ///   - gradient: same shape as `parameter`.
    public mutating func update(_ parameter: inout Tensor, name: String, gradient: Tensor, learningRate: Double) {
        require(parameter.shape == gradient.shape,
                     "AdamW.update: \(name) has shape \(parameter.shape), gradient \(gradient.shape)")
        var state = states[name] ?? ParameterState(step: 0, firstMoment: Tensor(zeros: parameter.shape),
                                                   secondMoment: Tensor(zeros: parameter.shape))
        states[name] = nil
        state.step += 1
        let t = Double(state.step), lambda = weightDecayOverrides[name] ?? weightDecay
        let decay = Float(1 - learningRate * lambda)
        let oneMinusBeta1 = Float(1 - betas.0), beta2 = Float(betas.1), oneMinusBeta2 = Float(1 - betas.1)
        let biasCorrection1 = 1 - pow(betas.0, t), biasCorrection2 = 1 - pow(betas.1, t)
        let negativeStepSize = Float(-(learningRate / biasCorrection1))
        let bias2Sqrt = Float(biasCorrection2.squareRoot()), eps = Float(epsilon)
        let g = gradient.contiguous()
        g.withUnsafeBufferPointer { gp in
            state.firstMoment.withUnsafeMutableBufferPointer { m in
                state.secondMoment.withUnsafeMutableBufferPointer { v in
                    parameter.withUnsafeMutableBufferPointer { p in
                        for i in 0..<p.count {
                            if lambda != 0 { p[i] *= decay }
                            m[i] = m[i] + oneMinusBeta1 * (gp[i] - m[i])
                            v[i] = v[i] * beta2 + oneMinusBeta2 * gp[i] * gp[i]
                            let denominator = v[i].squareRoot() / bias2Sqrt + eps
                            p[i] = p[i] + negativeStepSize * m[i] / denominator
                        }
                    }
                }
            }
        }
        states[name] = state
    }
}

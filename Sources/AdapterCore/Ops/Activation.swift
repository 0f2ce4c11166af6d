// Activation functions: the enum, elementwise forward and backward.

/// An elementwise activation function, as used by feed-forward layers, adapters and the fused GEMM
/// epilogue.
public enum Activation: Sendable, Hashable {
    /// y = x.
    case identity
    /// y = ½x(1 + erf(x/√2)) — exact GELU, BERT's `"gelu"`.
    case gelu
    /// y = ½x(1 + tanh(√(2/π)(x + 0.044715x³))) — `"gelu_new"` / `"gelu_pytorch_tanh"`.
    case geluTanh
    /// y = max(x, 0); the derivative at 0 is taken as 0 (PyTorch).
    case relu
    /// y = x·σ(x) — `"silu"` / `"swish"`.
    case silu
    /// y = tanh(x).
    case tanh
    /// y = σ(x) = 1/(1 + e^−x).
    case sigmoid
    /// y = x for x ≥ 0, slope·x otherwise (PyTorch's default slope is 0.01).
    case leakyReLU(slope: Float)

    /// No activation (same as `.identity`).
    public static var none: Activation { .identity }

    /// The activation named by a Hugging Face `hidden_act` or an `adapters` `non_linearity` string
    /// (`"gelu"`, `"gelu_new"`, `"gelu_pytorch_tanh"`, `"relu"`, `"swish"`, `"silu"`, `"tanh"`,
    /// `"sigmoid"`, `"leakyrelu"`, `"linear"`, `"identity"`; case-insensitive), or `nil` if unknown.
    public init?(huggingFaceName name: String) {
        switch name.lowercased() {
        case "gelu", "gelu_python": self = .gelu
        case "gelu_new", "gelu_pytorch_tanh", "gelu_fast": self = .geluTanh
        case "relu": self = .relu
        case "swish", "silu": self = .silu
        case "tanh": self = .tanh
        case "sigmoid": self = .sigmoid
        case "leakyrelu", "leaky_relu": self = .leakyReLU(slope: 0.01)
        case "linear", "identity", "none": self = .identity
        default: return nil
        }
    }
}

/// Chunk length for elementwise ops: a fixed partition (independent of the thread count), a multiple
/// of every SIMD width so chunk boundaries never create extra vector tails.
let elementwiseChunk = 1 << 15

/// y = act(x) elementwise.
/// - Parameters:
///   - x: any shape (copied to contiguous if needed).
///   - activation: the function.
///   - context: threads.
/// - Returns: a contiguous tensor of `x`'s shape.
public func activation(_ x: Tensor, _ activation: Activation, context: ComputeContext) -> Tensor {
    let x = x.contiguous()
    let y = Tensor(uninitializedShape: x.shape)
    let n = x.count
    let tasks = (n + elementwiseChunk - 1) / elementwiseChunk
    let xp = x.basePointer, yp = y.mutableBasePointer
    withExtendedLifetime(x) {
        context.parallelForUnchecked(taskCount: tasks) { t, _ in
            let lo = t * elementwiseChunk, len = min(elementwiseChunk, n - lo)
            KernelBridge.activationForward(count: len, x: xp + lo, y: yp + lo, activation: activation,
                                           op: "activation(\(activation))")
        }
    }
    return y
}

/// Backward of `y = act(x)`: `dx = beta·dx + dy ⊙ act'(x)`.
/// - Parameters:
///   - outputGradient: dy, same shape as `preactivation`.
///   - preactivation: x, the activation's input saved by the forward pass.
///   - activation: the function.
///   - inputGradient: dx, same shape; with `beta == 0` it is overwritten (never read) and may be
///     any tensor of the right shape; with `beta == 1` the gradient is added to it.
///   - beta: 0 or 1.
///   - context: threads.
public func activationBackward(_ outputGradient: Tensor, preactivation: Tensor, activation: Activation,
                               into inputGradient: inout Tensor, beta: Float = 0, context: ComputeContext) {
    require(outputGradient.shape == preactivation.shape,
                 "activationBackward: dy \(outputGradient.shape) does not match x \(preactivation.shape)")
    require(inputGradient.shape == preactivation.shape,
                 "activationBackward: dx \(inputGradient.shape) does not match x \(preactivation.shape)")
    require(beta == 0 || beta == 1, "activationBackward: beta must be 0 or 1, got \(beta)")
    let dy = outputGradient.contiguous(), x = preactivation.contiguous()
    inputGradient.prepareOutput(preserveContents: beta != 0)
    let n = x.count
    let tasks = (n + elementwiseChunk - 1) / elementwiseChunk
    let xp = x.basePointer, dyp = dy.basePointer, dxp = inputGradient.mutableBasePointer
    withExtendedLifetime((x, dy)) {
        context.parallelForUnchecked(taskCount: tasks) { t, _ in
            let lo = t * elementwiseChunk, len = min(elementwiseChunk, n - lo)
            KernelBridge.activationBackward(count: len, x: xp + lo, dy: dyp + lo, dx: dxp + lo, beta: beta,
                                            activation: activation, op: "activationBackward(\(activation))")
        }
    }
}

/// Backward of `y = act(x)` returning a fresh `dx = dy ⊙ act'(x)`.
public func activationBackward(_ outputGradient: Tensor, preactivation: Tensor, activation: Activation,
                               context: ComputeContext) -> Tensor {
    var dx = Tensor(uninitializedShape: preactivation.shape)
    activationBackward(outputGradient, preactivation: preactivation, activation: activation, into: &dx,
                       beta: 0, context: context)
    return dx
}

// Linear layer y = act(x · Wᵀ + b) + residual with the fused GEMM epilogue, and its backward pass.

/// Result of `linear(…, savePreactivation:…)`.
public struct LinearOutput: Sendable {
    /// `act(x · Wᵀ + b) + residual`, `[…, out]`.
    public var output: Tensor
    /// `x · Wᵀ + b` before the activation, `[…, out]`; nil unless requested. The backward pass
    /// needs it for any activation other than `.identity`.
    public var preactivation: Tensor?
}

/// `t` as a `[rows, cols]` matrix: a 2-D tensor as it is (any strides, e.g. the `[CLS]` rows of
/// `[batch, seq, hidden]` as `[batch, hidden]` with row stride `seq·hidden`, no copy), otherwise
/// flattened (a view when contiguous).
private func asMatrix(_ t: Tensor, _ rows: Int, _ cols: Int) -> Tensor {
    t.rank == 2 ? t : t.reshaped([rows, cols])
}

/// Checks the linear shapes and returns (rows, in, out).
private func linearShapes(_ x: Tensor, _ weight: Tensor, _ bias: Tensor?, op: String) -> (Int, Int, Int) {
    linearShapes(x, weightShape: weight.shape, bias, op: op)
}

/// `linearShapes` for a weight given by its shape `[out, in]`.
private func linearShapes(_ x: Tensor, weightShape: [Int], _ bias: Tensor?, op: String) -> (Int, Int, Int) {
    require(weightShape.count == 2, "\(op): weight \(weightShape) must be [out, in]")
    require(x.rank >= 1, "\(op): x \(x.shape) must have at least one dimension")
    let inFeatures = weightShape[1], outFeatures = weightShape[0]
    require(x.shape.last == inFeatures, "\(op): x \(x.shape) does not match weight \(weightShape)")
    if let bias {
        require(bias.shape == [outFeatures], "\(op): bias \(bias.shape) does not match weight \(weightShape)")
    }
    return (x.shape.dropLast().reduce(1, *), inFeatures, outFeatures)
}

/// A fully connected layer: `y = act(x · Wᵀ + b) + residual`, computed by one GEMM per output tile
/// with bias, activation and residual applied in registers before the single store.
///
/// Matches `torch.nn.Linear` (Hugging Face weight layout) followed by the activation and a residual add.
/// - Parameters:
///   - x: input `[…, in]` (any leading dimensions, e.g. `[batch, seq, in]`).
///   - weight: `[out, in]` (Hugging Face / PyTorch layout; a transposed view of `[in, out]` also works).
///   - bias: `[out]`, or nil.
///   - activation: applied after the bias (default none).
///   - residual: `[…, out]` (same leading dimensions as `x`), added after the activation, or nil.
///   - context: threads and GEMM backend.
/// - Returns: `[…, out]`, contiguous.
public func linear(_ x: Tensor, weight: Tensor, bias: Tensor? = nil, activation: Activation = .none,
                   residual: Tensor? = nil, context: ComputeContext) -> Tensor {
    linear(x, weight: weight, bias: bias, activation: activation, residual: residual,
           savePreactivation: false, context: context).output
}

/// `linear` that can also return the pre-activation `x · Wᵀ + b` (written by the same epilogue, no
/// extra pass) for the backward pass. See `linear(_:weight:bias:activation:residual:context:)`.
public func linear(_ x: Tensor, weight: Tensor, bias: Tensor? = nil, activation: Activation = .none,
                   residual: Tensor? = nil, savePreactivation: Bool,
                   context: ComputeContext) -> LinearOutput {
    linearForward(x, weightShape: weight.shape, plain: weight, packed: nil, bias: bias, activation: activation,
                  residual: residual, savePreactivation: savePreactivation, context: context)
}

/// A linear layer's weight `[out, in]` pre-packed once into the GEMM micro-kernels' panel layout, so
/// forward passes skip re-packing it on every call (frozen base model weights at inference or adapter
/// training). Results are bitwise identical to passing the plain tensor.
///
/// By default the plain tensor is kept as well (one extra copy of the weight in memory). With
/// `keepPlainWeight: false` only the packed copy is held — the same memory as the plain weight — and
/// `weight` is rebuilt from it (exactly) when asked for.
///
/// The packing targets the kernel ISA active when it is created (`KernelISA.active`) and is used
/// only by the `.kernels` GEMM backend; other backends (and backward passes without
/// `packForBackward`) use `weight`.
public struct PackedWeight: Sendable {
    /// `[out, in]`.
    public let shape: [Int]
    /// The plain weight, unless made with `keepPlainWeight: false`.
    private let plain: Tensor?
    /// Wᵀ packed for the forward product x·Wᵀ.
    let packed: PackedBuffer
    /// W packed for the input-gradient product g·W (only with `packForBackward`).
    let backwardPacked: PackedBuffer?

    /// The weight `[out, in]`, contiguous: the tensor kept at creation, or — when only the packed copy is
    /// held — a new tensor unpacked from it (bitwise the original values; allocates and copies `out·in`
    /// floats on every access, so read it once, not per call).
    public var weight: Tensor { plain ?? unpacked() }

    /// Whether the plain tensor is held next to the packed copy (`keepPlainWeight`).
    public var holdsPlainWeight: Bool { plain != nil }

    /// Packs `weight` `[out, in]` (any layout; a strided view is copied first).
    /// - Parameters:
    ///   - weight: `[out, in]`.
    ///   - packForBackward: also pack W for `dx = g·W`, which frozen layers compute on every
    ///     training step (`linearBackward(_:input:weight:…)` with a `PackedWeight`); costs a second
    ///     copy of the weight.
    ///   - keepPlainWeight: keep the plain tensor too (default). With false, only the packed copies are
    ///     held and `weight` unpacks on demand.
    public init(_ weight: Tensor, packForBackward: Bool = false, keepPlainWeight: Bool = true) {
        require(weight.rank == 2, "PackedWeight: weight \(weight.shape) must be [out, in]")
        let w = weight.contiguous()
        self.shape = w.shape
        self.plain = keepPlainWeight ? w : nil
        let out = w.shape[0], inFeatures = w.shape[1]
        packed = withExtendedLifetime(w) {
            PackedBuffer(transposeB: true, n: out, k: inFeatures, b: w.basePointer, ldb: max(inFeatures, 1),
                         op: "PackedWeight \(weight.shape)")
        }
        backwardPacked = !packForBackward ? nil : withExtendedLifetime(w) {
            PackedBuffer(transposeB: false, n: inFeatures, k: out, b: w.basePointer, ldb: max(inFeatures, 1),
                         op: "PackedWeight \(weight.shape) (backward)")
        }
    }

    /// A new `[out, in]` tensor holding the weight, rebuilt from the forward packing.
    private func unpacked() -> Tensor {
        let w = Tensor(uninitializedShape: shape)
        withExtendedLifetime(packed) {
            KernelBridge.unpackB(UnsafeRawPointer(packed.pointer), transposeB: true, b: w.mutableBasePointer,
                                 ldb: max(shape[1], 1), op: "PackedWeight \(shape) unpack")
        }
        return w
    }

    /// The plain weight for a product that cannot use the packing (another GEMM backend), else nil.
    func plainIfNeeded(_ context: ComputeContext) -> Tensor? {
        context.gemmBackend == .kernels ? nil : weight
    }
}

/// `linear` with a pre-packed weight (see `PackedWeight`); otherwise identical to
/// `linear(_:weight:bias:activation:residual:context:)`.
public func linear(_ x: Tensor, weight: PackedWeight, bias: Tensor? = nil, activation: Activation = .none,
                   residual: Tensor? = nil, context: ComputeContext) -> Tensor {
    linear(x, weight: weight, bias: bias, activation: activation, residual: residual, savePreactivation: false,
           context: context).output
}

/// `linear(_:weight:bias:activation:residual:savePreactivation:context:)` with a pre-packed weight.
public func linear(_ x: Tensor, weight: PackedWeight, bias: Tensor? = nil, activation: Activation = .none,
                   residual: Tensor? = nil, savePreactivation: Bool, context: ComputeContext) -> LinearOutput {
    let plain = weight.plainIfNeeded(context)
    return linearForward(x, weightShape: weight.shape, plain: plain, packed: plain == nil ? weight.packed : nil,
                         bias: bias, activation: activation, residual: residual, savePreactivation: savePreactivation,
                         context: context)
}

/// The forward product with the plain weight and/or its packing (at least one of them; the packing is used
/// only by the `.kernels` backend, so other backends need `plain`).
private func linearForward(_ x: Tensor, weightShape: [Int], plain weight: Tensor?, packed: PackedBuffer?,
                           bias: Tensor?, activation: Activation, residual: Tensor?, savePreactivation: Bool,
                           context: ComputeContext) -> LinearOutput {
    let (rows, inFeatures, outFeatures) = linearShapes(x, weightShape: weightShape, bias, op: "linear")
    let outShape = Array(x.shape.dropLast()) + [outFeatures]
    var residual2D: Tensor? = nil
    if let residual {
        require(residual.shape == outShape,
                     "linear: residual \(residual.shape) does not match output \(outShape) (x \(x.shape), weight \(weightShape))")
        residual2D = residual.reshaped([rows, outFeatures])
    }
    let y = Tensor(uninitializedShape: outShape)
    let pre: Tensor? = savePreactivation ? Tensor(uninitializedShape: outShape) : nil
    let x2 = BatchedMatrix(asMatrix(x, rows, inFeatures), op: "linear", name: "x")
    let w2 = weight.map { BatchedMatrix($0, op: "linear", name: "weight") }
    let b = bias?.contiguous()
    var e = GemmEpilogueOperands()
    e.activation = activation
    e.bias = b?.basePointer
    e.residual = residual2D?.basePointer
    e.residualLD = outFeatures
    e.preactivation = pre?.mutableBasePointer
    e.preactivationLD = outFeatures
    withExtendedLifetime((b, residual2D)) {
        runBatchedGemm(context: context, op: "linear x \(x.shape) weight \(weightShape)",
                       a: x2, transposeA: false, b: w2, transposeB: true,
                       m: rows, n: outFeatures, k: inFeatures, c: y.mutableBasePointer, cOffsets: [0],
                       ldc: outFeatures, alpha: 1, beta: 0, epilogue: e, prepackedB: packed)
    }
    return LinearOutput(output: y, preactivation: pre)
}

/// The gradient at the pre-activation: `dy ⊙ act'(preactivation)` (or `dy` itself for identity).
private func preactivationGradient(_ dy: Tensor, activation: Activation, preactivation: Tensor?,
                                   op: String, context: ComputeContext) -> Tensor {
    if activation == .identity { return dy }
    guard let preactivation else {
        preconditionFailure("\(op): activation \(activation) needs the saved preactivation (linear(…, savePreactivation: true))")
    }
    require(preactivation.shape == dy.shape,
                 "\(op): preactivation \(preactivation.shape) does not match dy \(dy.shape)")
    return activationBackward(dy, preactivation: preactivation, activation: activation, context: context)
}

/// Full backward of `y = act(x · Wᵀ + b) + residual` (the residual's gradient is `dy` itself and is
/// left to the caller):
///
///     g   = dy ⊙ act'(preactivation)             (g = dy for .identity)
///     dx  = beta · dx + g · W                      GEMM NN, [rows, out] × [out, in]
///     dW += gᵀ · x                                 GEMM TN, [out, rows] × [rows, in]
///     db += Σ_rows g                               fixed row chunks, partials summed in order
///
/// - Parameters:
///   - outputGradient: dy, `[…, out]`.
///   - input: x from the forward pass, `[…, in]`.
///   - weight: `[out, in]`.
///   - activation: as in the forward pass.
///   - preactivation: saved by the forward pass (`savePreactivation: true`); required unless the
///     activation is identity.
///   - inputGradient: dx, `[…, in]`; overwritten when `beta == 0` (never read), accumulated when 1.
///   - beta: 0 or 1.
///   - weightGradient: dW `[out, in]`, accumulated (`+=`).
///   - biasGradient: db `[out]`, accumulated (`+=`).
///   - context: threads and GEMM backend.
public func linearBackward(_ outputGradient: Tensor, input: Tensor, weight: Tensor,
                           activation: Activation = .none, preactivation: Tensor? = nil,
                           inputGradient: inout Tensor, beta: Float = 0,
                           weightGradient: inout Tensor, biasGradient: inout Tensor,
                           context: ComputeContext) {
    let g = linearBackwardCommon(outputGradient, input: input, weight: weight, activation: activation,
                                 preactivation: preactivation, context: context)
    linearInputGradient(g, weight: weight, into: &inputGradient, beta: beta, context: context)
    linearWeightGradient(g, input: input, accumulatingInto: &weightGradient, context: context)
    linearBiasGradient(g, accumulatingInto: &biasGradient, context: context)
}

/// `linearBackward` for a layer without bias (dx and dW only).
public func linearBackward(_ outputGradient: Tensor, input: Tensor, weight: Tensor,
                           activation: Activation = .none, preactivation: Tensor? = nil,
                           inputGradient: inout Tensor, beta: Float = 0,
                           weightGradient: inout Tensor, context: ComputeContext) {
    let g = linearBackwardCommon(outputGradient, input: input, weight: weight, activation: activation,
                                 preactivation: preactivation, context: context)
    linearInputGradient(g, weight: weight, into: &inputGradient, beta: beta, context: context)
    linearWeightGradient(g, input: input, accumulatingInto: &weightGradient, context: context)
}

/// Backward through a frozen layer: returns only `dx = (dy ⊙ act'(preactivation)) · W`, `[…, in]`.
public func linearBackward(_ outputGradient: Tensor, input: Tensor, weight: Tensor,
                           activation: Activation = .none, preactivation: Tensor? = nil,
                           context: ComputeContext) -> Tensor {
    let g = linearBackwardCommon(outputGradient, input: input, weight: weight, activation: activation,
                                 preactivation: preactivation, context: context)
    var dx = Tensor(uninitializedShape: input.shape)
    linearInputGradient(g, weight: weight, into: &dx, beta: 0, context: context)
    return dx
}

private func linearBackwardCommon(_ dy: Tensor, input: Tensor, weight: Tensor, activation: Activation,
                                  preactivation: Tensor?, context: ComputeContext) -> Tensor {
    linearBackwardCommon(dy, input: input, weightShape: weight.shape, activation: activation,
                         preactivation: preactivation, context: context)
}

private func linearBackwardCommon(_ dy: Tensor, input: Tensor, weightShape: [Int], activation: Activation,
                                  preactivation: Tensor?, context: ComputeContext) -> Tensor {
    let (_, _, outFeatures) = linearShapes(input, weightShape: weightShape, nil, op: "linearBackward")
    let outShape = Array(input.shape.dropLast()) + [outFeatures]
    require(dy.shape == outShape,
                 "linearBackward: dy \(dy.shape) does not match output \(outShape) (x \(input.shape), weight \(weightShape))")
    return preactivationGradient(dy, activation: activation, preactivation: preactivation,
                                 op: "linearBackward", context: context)
}

/// `dx = beta · dx + g · W` (GEMM NN): g `[…, out]`, W `[out, in]`, dx `[…, in]`; beta 0 or 1.
public func linearInputGradient(_ preactivationGradient: Tensor, weight: Tensor, into inputGradient: inout Tensor,
                                beta: Float = 0, context: ComputeContext) {
    linearInputGradient(preactivationGradient, weightShape: weight.shape, plain: weight, packed: nil,
                        into: &inputGradient, beta: beta, context: context)
}

/// `linearInputGradient` with a `PackedWeight` (uses its backward packing when it has one;
/// bitwise equal either way).
public func linearInputGradient(_ preactivationGradient: Tensor, weight: PackedWeight, into inputGradient: inout Tensor,
                                beta: Float = 0, context: ComputeContext) {
    let usePacked = context.gemmBackend == .kernels && weight.backwardPacked != nil
    linearInputGradient(preactivationGradient, weightShape: weight.shape, plain: usePacked ? nil : weight.weight,
                        packed: usePacked ? weight.backwardPacked : nil, into: &inputGradient, beta: beta,
                        context: context)
}

/// Backward through a frozen layer with a `PackedWeight`: returns `dx = (dy ⊙ act'(preactivation)) · W`
/// (see `PackedWeight.init(_:packForBackward:)`).
public func linearBackward(_ outputGradient: Tensor, input: Tensor, weight: PackedWeight,
                           activation: Activation = .none, preactivation: Tensor? = nil,
                           context: ComputeContext) -> Tensor {
    let g = linearBackwardCommon(outputGradient, input: input, weightShape: weight.shape, activation: activation,
                                 preactivation: preactivation, context: context)
    var dx = Tensor(uninitializedShape: input.shape)
    linearInputGradient(g, weight: weight, into: &dx, beta: 0, context: context)
    return dx
}

/// `dx = beta · dx + g · W` with the plain weight and/or its backward packing (at least one; see
/// `linearForward`).
private func linearInputGradient(_ preactivationGradient: Tensor, weightShape: [Int], plain weight: Tensor?,
                                 packed: PackedBuffer?, into inputGradient: inout Tensor, beta: Float,
                                 context: ComputeContext) {
    let g = preactivationGradient
    require(weightShape.count == 2 && g.shape.last == weightShape[0],
                 "linearInputGradient: gradient \(g.shape) does not match weight \(weightShape)")
    let rows = g.shape.dropLast().reduce(1, *), inFeatures = weightShape[1]
    require(inputGradient.shape == Array(g.shape.dropLast()) + [inFeatures],
                 "linearInputGradient: dx \(inputGradient.shape) does not match gradient \(g.shape) and weight \(weightShape)")
    require(beta == 0 || beta == 1, "linearInputGradient: beta must be 0 or 1, got \(beta)")
    inputGradient.prepareOutput(preserveContents: beta != 0)
    let g2 = BatchedMatrix(asMatrix(g, rows, weightShape[0]), op: "linearInputGradient", name: "gradient")
    let w2 = weight.map { BatchedMatrix($0, op: "linearInputGradient", name: "weight") }
    runBatchedGemm(context: context, op: "linearBackward dx: gradient \(g.shape) weight \(weightShape)",
                   a: g2, transposeA: false, b: w2, transposeB: false, m: rows, n: inFeatures,
                   k: weightShape[0], c: inputGradient.mutableBasePointer, cOffsets: [0], ldc: inFeatures,
                   alpha: 1, beta: beta, prepackedB: packed)
}

/// `dW += gᵀ · x` (GEMM TN): g `[…, out]`, x `[…, in]`, dW `[out, in]`. Each dW element is reduced
/// over all rows by one task in row order.
public func linearWeightGradient(_ preactivationGradient: Tensor, input: Tensor,
                                 accumulatingInto weightGradient: inout Tensor, context: ComputeContext) {
    let g = preactivationGradient
    require(weightGradient.rank == 2, "linearWeightGradient: dW \(weightGradient.shape) must be [out, in]")
    let outFeatures = weightGradient.shape[0], inFeatures = weightGradient.shape[1]
    require(g.shape.last == outFeatures && input.shape.last == inFeatures
                 && Array(g.shape.dropLast()) == Array(input.shape.dropLast()),
                 "linearWeightGradient: gradient \(g.shape) and x \(input.shape) do not match dW \(weightGradient.shape)")
    let rows = g.shape.dropLast().reduce(1, *)
    weightGradient.prepareOutput(preserveContents: true)
    let g2 = BatchedMatrix(asMatrix(g, rows, outFeatures), op: "linearWeightGradient", name: "gradient")
    let x2 = BatchedMatrix(asMatrix(input, rows, inFeatures), op: "linearWeightGradient", name: "x")
    runBatchedGemm(context: context, op: "linearBackward dW: gradient \(g.shape) x \(input.shape)",
                   a: g2, transposeA: true, b: x2, transposeB: false, m: outFeatures, n: inFeatures, k: rows,
                   c: weightGradient.mutableBasePointer, cOffsets: [0], ldc: inFeatures, alpha: 1, beta: 1)
}

/// `db += Σ_rows g`: g `[…, out]`, db `[out]` (see `columnSums`).
public func linearBiasGradient(_ preactivationGradient: Tensor, accumulatingInto biasGradient: inout Tensor,
                               context: ComputeContext) {
    let g = preactivationGradient
    require(biasGradient.shape == [g.shape.last ?? 0],
                 "linearBiasGradient: db \(biasGradient.shape) does not match gradient \(g.shape)")
    columnSums(g.reshaped([g.shape.dropLast().reduce(1, *), biasGradient.shape[0]]), accumulatingInto: &biasGradient,
               context: context)
}

// `tiledLinear` with a weight pre-packed once (`PackedWeight`), for inference where the same weight multiplies
// many inputs.

/// `y = act(x · Wᵀ + b) + residual` with a pre-packed weight; the same tiling as `tiledLinear` (at most one
/// tile per worker). With a GEMM backend other than `.kernels` it runs `tiledLinear` on the original weight.
/// The buffer's column granule (48 on AVX-512) is the N split granule.
/// - Parameters:
///   - x: `[…, in]`.
///   - weight: the packed `W [out, in]`.
///   - bias: `[out]` or nil.
///   - activation: applied after the bias.
///   - residual: `[…, out]`, added after the activation, or nil.
///   - context: threads, GEMM backend and workspaces the op runs with.
/// - Returns: `[…, out]`, contiguous; bitwise equal to `linear(x, weight: weight.weight, …)`.
public func tiledLinear(_ x: Tensor, weight: PackedWeight, bias: Tensor? = nil, activation: Activation = .none,
                        residual: Tensor? = nil, context: ComputeContext) -> Tensor {
    require(x.rank >= 1 && x.shape.last == weight.shape[1],
                 "tiledLinear: x \(x.shape) does not match packed weight \(weight.shape)")
    var y = Tensor(uninitializedShape: Array(x.shape.dropLast()) + [weight.shape[0]])
    tiledLinear(x, weight: weight, bias: bias, activation: activation, residual: residual, into: &y, context: context)
    return y
}

/// The packed-weight `tiledLinear` writing into `y` `[…, out]` (see `tiledLinear(_:weight:bias:activation:residual:into:context:)`).
public func tiledLinear(_ x: Tensor, weight: PackedWeight, bias: Tensor? = nil, activation: Activation = .none,
                        residual: Tensor? = nil, into y: inout Tensor, context: ComputeContext) {
    guard context.gemmBackend == .kernels else {
        tiledLinear(x, weight: weight.weight, bias: bias, activation: activation, residual: residual, into: &y,
                    context: context)
        return
    }
    require(x.rank >= 1 && x.shape.last == weight.shape[1],
                 "tiledLinear: x \(x.shape) does not match packed weight \(weight.shape)")
    let buffer = weight.packed, packed = UnsafeRawPointer(buffer.pointer)
    withExtendedLifetime(buffer) {
        runTiledLinear(x, outFeatures: weight.shape[0], bias: bias, activation: activation, residual: residual,
                       into: &y, columnGranule: buffer.granule, context: context,
                       op: "tiledLinear x \(x.shape) packed weight") { ws, ta, m, n, k, a, lda, j0, c, ldc, e in
            KernelBridge.gemmPrepacked(workspace: ws, transposeA: ta, m: m, n: n, k: k, a: a, lda: lda,
                                       packedB: packed, column: j0, c: c, ldc: ldc, alpha: 1, beta: 0, epilogue: e,
                                       op: "tiledLinear x \(x.shape) packed weight \(weight.shape)")
        }
    }
}

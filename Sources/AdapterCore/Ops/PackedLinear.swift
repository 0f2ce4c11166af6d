// A linear layer's weight packed once into the GEMM micro-panel layout (ck_gemm_pack_b), for inference
// where the same weight multiplies many inputs.

/// A weight `W [out, in]` laid out once as the GEMM's packed B operand of `x · Wᵀ`, so `linear` calls skip
/// packing it (ck_gemm_pack_b / ck_gemm_f32_prepacked). Immutable and shareable across threads.
///
/// Memory: the packed copy is about the size of `W` (rounded up to whole 48-column panels) and is held in
/// addition to the original tensor, which is kept for other GEMM backends and for callers.
/// The packing follows the C kernels' ISA active at creation time; results are bitwise identical to
/// `linear(x, weight: W, …)` with the `.kernels` backend on that ISA.
public final class PackedLinearWeight: @unchecked Sendable {
    /// The original weight `[out, in]`.
    public let weight: Tensor
    /// `out`, `in`.
    public let outFeatures: Int, inFeatures: Int
    /// Bytes of the packed copy.
    public let packedBytes: Int
    let packed: UnsafeMutableRawPointer
    /// Column split granule (a multiple of the micro-tile width).
    let granule: Int

    /// Packs `weight` `[out, in]` (any layout with a unit stride in one dimension).
    public init(_ weight: Tensor) {
        precondition(weight.rank == 2, "PackedLinearWeight: weight \(weight.shape) must be [out, in]")
        self.weight = weight
        outFeatures = weight.shape[0]
        inFeatures = weight.shape[1]
        let w = BatchedMatrix(weight, op: "PackedLinearWeight", name: "weight")
        let n = weight.shape[0], k = weight.shape[1]
        let bytes = max(KernelBridge.packedBSize(n: n, k: k), tensorAlignment)
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: tensorAlignment)
        granule = withExtendedLifetime(w.tensor) {
            KernelBridge.packB(transposeB: !w.storedTransposed, n: n, k: k, b: w.tensor.basePointer,
                               ldb: w.ld, packed: buffer, bytes: bytes, op: "PackedLinearWeight \(weight.shape)")
        }
        packedBytes = bytes
        packed = buffer
    }

    deinit { packed.deallocate() }
}

/// `y = act(x · Wᵀ + b) + residual` with a pre-packed weight; the same tiling as `tiledLinear` (at most one
/// tile per worker). With a GEMM backend other than `.kernels` it runs `tiledLinear` on the original weight.
/// - Parameters:
///   - x: `[…, in]`.
///   - weight: the packed `W [out, in]`.
///   - bias: `[out]` or nil.
///   - activation: applied after the bias.
///   - residual: `[…, out]`, added after the activation, or nil.
/// - Returns: `[…, out]`, contiguous; bitwise equal to `linear(x, weight: weight.weight, …)`.
public func tiledLinear(_ x: Tensor, weight: PackedLinearWeight, bias: Tensor? = nil, activation: Activation = .none,
                        residual: Tensor? = nil, context: ComputeContext) -> Tensor {
    precondition(x.rank >= 1 && x.shape.last == weight.inFeatures,
                 "tiledLinear: x \(x.shape) does not match packed weight [\(weight.outFeatures), \(weight.inFeatures)]")
    var y = Tensor(uninitializedShape: Array(x.shape.dropLast()) + [weight.outFeatures])
    tiledLinear(x, weight: weight, bias: bias, activation: activation, residual: residual, into: &y, context: context)
    return y
}

/// The packed-weight `tiledLinear` writing into `y` `[…, out]` (see `tiledLinear(_:weight:bias:activation:residual:into:context:)`).
public func tiledLinear(_ x: Tensor, weight: PackedLinearWeight, bias: Tensor? = nil, activation: Activation = .none,
                        residual: Tensor? = nil, into y: inout Tensor, context: ComputeContext) {
    guard context.gemmBackend == .kernels, weight.granule > 0 else {
        tiledLinear(x, weight: weight.weight, bias: bias, activation: activation, residual: residual, into: &y,
                    context: context)
        return
    }
    precondition(x.rank >= 1 && x.shape.last == weight.inFeatures,
                 "tiledLinear: x \(x.shape) does not match packed weight [\(weight.outFeatures), \(weight.inFeatures)]")
    let packed = UnsafeRawPointer(weight.packed)
    withExtendedLifetime(weight) {
        runTiledLinear(x, outFeatures: weight.outFeatures, bias: bias, activation: activation, residual: residual,
                       into: &y, columnGranule: weight.granule, context: context,
                       op: "tiledLinear x \(x.shape) packed weight") { ws, ta, m, n, k, a, lda, j0, c, ldc, e in
            KernelBridge.gemmPrepacked(workspace: ws, transposeA: ta, m: m, n: n, k: k, a: a, lda: lda,
                                       packedB: packed, j0: j0, c: c, ldc: ldc, alpha: 1, beta: 0, epilogue: e,
                                       op: "tiledLinear x \(x.shape) packed weight [\(weight.outFeatures), \(weight.inFeatures)]")
        }
    }
}

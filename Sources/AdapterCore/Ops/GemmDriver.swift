// The parallel GEMM driver shared by `linear`, `matmul` and their backward passes: turns strided
// tensors into (pointer, leading dimension, transpose) operands, cuts the output into a grid of tiles
// (one per worker for a single product, see `GemmGrid`), and runs one C GEMM call per tile with the
// calling worker's workspace.

/// A matrix as the C GEMM reads it: stored row-major at `pointer` with leading dimension `ld`,
/// either as the logical matrix (`storedTransposed == false`) or as its transpose.
struct GemmOperand {
    var pointer: UnsafePointer<Float>
    var ld: Int
    var storedTransposed: Bool

    /// The logical `[rows, cols]` matrix whose element `[i, j]` is at
    /// `pointer + i*rowStride + j*colStride`, or nil if that layout is not expressible with one
    /// leading dimension (then the caller copies to contiguous).
    static func resolve(_ pointer: UnsafePointer<Float>, rows: Int, cols: Int, rowStride: Int,
                        colStride: Int) -> GemmOperand? {
        if rows == 0 || cols == 0 || (rows == 1 && cols == 1) {
            return GemmOperand(pointer: pointer, ld: max(cols, 1), storedTransposed: false)
        }
        if colStride == 1 || cols == 1 {
            let ld = rows == 1 ? cols : rowStride
            if ld >= cols { return GemmOperand(pointer: pointer, ld: ld, storedTransposed: false) }
        }
        if rowStride == 1 || rows == 1 {
            let ld = cols == 1 ? rows : colStride
            if ld >= rows { return GemmOperand(pointer: pointer, ld: ld, storedTransposed: true) }
        }
        return nil
    }
}

/// A batch of matrices taken from the last two dimensions of a tensor; the leading dimensions are
/// the batch (flattened in row-major order).
struct BatchedMatrix {
    /// The tensor, kept alive (possibly a contiguous copy of the caller's).
    let tensor: Tensor
    let rows: Int, cols: Int
    let batchShape: [Int]
    let batchOffsets: [Int]   // element offset of each batch item from tensor.basePointer
    let ld: Int
    let storedTransposed: Bool

    init(_ t: Tensor, op: String, name: String) {
        require(t.rank >= 2, "\(op): \(name) \(t.shape) must have at least 2 dimensions")
        let r = t.rank
        var source = t
        let probe = GemmOperand.resolve(t.basePointer, rows: t.shape[r - 2], cols: t.shape[r - 1],
                                        rowStride: t.strides[r - 2], colStride: t.strides[r - 1])
        let operand: GemmOperand
        if let probe {
            operand = probe
        } else {
            source = t.contiguous()
            operand = GemmOperand.resolve(source.basePointer, rows: t.shape[r - 2], cols: t.shape[r - 1],
                                          rowStride: source.strides[r - 2], colStride: source.strides[r - 1])!
        }
        tensor = source
        rows = t.shape[r - 2]
        cols = t.shape[r - 1]
        batchShape = Array(t.shape[0..<(r - 2)])
        ld = operand.ld
        storedTransposed = operand.storedTransposed
        batchOffsets = BatchedMatrix.offsets(shape: batchShape, strides: Array(source.strides[0..<(r - 2)]))
    }

    var batchCount: Int { batchOffsets.count }

    static func offsets(shape: [Int], strides: [Int]) -> [Int] {
        let count = shape.reduce(1, *)
        var result = [Int](repeating: 0, count: count)
        if count == 0 { return result }
        var index = [Int](repeating: 0, count: shape.count)
        var o = 0
        for b in 0..<count {
            result[b] = o
            var d = shape.count - 1
            while d >= 0 {
                index[d] += 1
                o += strides[d]
                if index[d] < shape[d] { break }
                o -= strides[d] * index[d]
                index[d] = 0
                d -= 1
            }
        }
        return result
    }
}

/// Output tile grid for one GEMM: every batch item is cut into `mTile × nTile` blocks, one task each.
///
/// The grid follows the worker count: with one thread every batch item is one task (one C call, so each
/// operand is packed once per cache block); with T threads a batch item is cut into as many tiles as make
/// the task count a multiple of T (T tiles for a single product), splitting the larger of M and N — N at
/// multiples of 48 columns (the AVX-512 panel width, also a multiple of the AVX2 one and the pre-packed
/// granule), M at multiples of 16 rows — so only the smaller operand is packed again per tile. Results do
/// not depend on the grid: the C kernels give every output element the same FMA chain wherever its tile
/// starts (docs/kernels.md, "The arithmetic contract"), so products stay bitwise identical for every thread
/// count (tested in `LinearTests` and `MatmulTests`).
struct GemmGrid {
    private(set) var mTile: Int, nTile: Int
    /// Below this many flops per batch item no item is split (a split would cost more than it saves).
    static let minimumSplitFlops = 4.0e6

    init(batch: Int, m: Int, n: Int, k: Int, threads: Int) {
        let flops = 2.0 * Double(m) * Double(n) * Double(max(k, 1))
        // Tiles per item so that batch·tiles is a multiple of the worker count (balanced), unless the batch
        // alone already balances well.
        let tilesPerItem = batch >= 4 * threads ? 1 : threads / gcd(batch, threads)
        mTile = max(m, 1)
        nTile = max(n, 1)
        if tilesPerItem <= 1 || flops < GemmGrid.minimumSplitFlops || m == 0 || n == 0 { return }
        if n >= m {
            let tiles = min(tilesPerItem, max(1, n / 48))
            nTile = min(n, roundUp((n + tiles - 1) / tiles, 48))
        } else {
            let tiles = min(tilesPerItem, max(1, m / 16))
            mTile = min(m, roundUp((m + tiles - 1) / tiles, 16))
        }
    }
}

@inline(__always) private func gcd(_ a: Int, _ b: Int) -> Int {
    var (x, y) = (max(a, 1), max(b, 1))
    while y != 0 { (x, y) = (y, x % y) }
    return x
}

@inline(__always) func roundUp(_ x: Int, _ multiple: Int) -> Int { (x + multiple - 1) / multiple * multiple }

/// Optional fused epilogue operands for a single (non-batched) GEMM, addressed as full matrices.
struct GemmEpilogueOperands {
    var bias: UnsafePointer<Float>? = nil
    var activation: Activation = .identity
    var residual: UnsafePointer<Float>? = nil
    var residualLD = 0
    var preactivation: UnsafeMutablePointer<Float>? = nil
    var preactivationLD = 0
}

/// C[b] = epilogue(alpha · op(A[b]) · op(B[b]) + beta · C[b]) for every batch item b, tiled and run
/// on the context's workers. `a`/`b` batch offsets may be a single entry (broadcast).
/// `c` is addressed as `cBase + cOffsets[b] + i*ldc + j`. `b` may be nil only when `prepackedB` is given
/// and the context uses the `.kernels` backend (the only one that reads the packing).
func runBatchedGemm(
    context: ComputeContext, op: String,
    a: BatchedMatrix, transposeA: Bool, b: BatchedMatrix?, transposeB: Bool,
    m: Int, n: Int, k: Int,
    c cBase: UnsafeMutablePointer<Float>, cOffsets: [Int], ldc: Int,
    alpha: Float, beta: Float, epilogue: GemmEpilogueOperands = GemmEpilogueOperands(),
    prepackedB: PackedBuffer? = nil
) {
    let batch = cOffsets.count
    if batch == 0 || m == 0 || n == 0 { return }
    let grid = GemmGrid(batch: batch, m: m, n: n, k: k, threads: context.threads)
    let mTiles = (m + grid.mTile - 1) / grid.mTile, nTiles = (n + grid.nTile - 1) / grid.nTile
    let tilesPerItem = mTiles * nTiles
    let backend = context.gemmBackend
    // A pre-packed B (same values as `b`, packed once) is used only by the hand-tuned kernels.
    let packed = backend == .kernels ? prepackedB : nil
    require(b != nil || packed != nil, "\(op): no plain B operand for the \(backend) backend")
    if let packed {
        require(batch == 1 && (nTiles == 1 || grid.nTile % packed.granule == 0) && packed.n == n && packed.k == k,
                     "\(op): pre-packed weight [k \(packed.k), n \(packed.n)] does not match the product (n \(n), k \(k))")
    }
    let workspace = backend == .kernels
        ? KernelBridge.gemmWorkspaceSize(m: min(grid.mTile, m), n: min(grid.nTile, n), k: k) : 0
    // C trans flags: logical transpose XOR stored transpose.
    let ta = transposeA != a.storedTransposed, tb = transposeB != (b?.storedTransposed ?? false)
    let aBase = a.tensor.basePointer, bBase = b?.tensor.basePointer
    let aOffsets = a.batchOffsets, bOffsets = b?.batchOffsets ?? [0]
    let lda = a.ld, ldb = b?.ld ?? 0
    withExtendedLifetime((a.tensor, b?.tensor, packed)) {
        context.parallelFor(taskCount: batch * tilesPerItem, workspaceBytes: workspace) { task, _, ws in
            let item = task / tilesPerItem, tile = task % tilesPerItem
            let i0 = (tile / nTiles) * grid.mTile, j0 = (tile % nTiles) * grid.nTile
            let mt = min(grid.mTile, m - i0), nt = min(grid.nTile, n - j0)
            let ap = aBase + aOffsets[aOffsets.count == 1 ? 0 : item] + (ta ? i0 : i0 * lda)
            let cp = cBase + cOffsets[item] + i0 * ldc + j0
            var e = GemmEpilogue()
            e.activation = epilogue.activation
            e.bias = epilogue.bias.map { $0 + j0 }
            if let r = epilogue.residual {
                e.residual = r + i0 * epilogue.residualLD + j0
                e.residualLD = epilogue.residualLD
            }
            if let p = epilogue.preactivation {
                e.preactivation = p + i0 * epilogue.preactivationLD + j0
                e.preactivationLD = epilogue.preactivationLD
            }
            if let packed {
                KernelBridge.gemmPrepacked(workspace: ws, transposeA: ta, m: mt, n: nt, k: k, a: ap, lda: lda,
                                           packedB: packed.pointer, column: j0, c: cp, ldc: ldc, alpha: alpha,
                                           beta: beta, epilogue: e, op: op)
                return
            }
            let bp = bBase! + bOffsets[bOffsets.count == 1 ? 0 : item] + (tb ? j0 * ldb : j0)
            KernelBridge.gemm(backend: backend, workspace: ws, transposeA: ta, transposeB: tb,
                              m: mt, n: nt, k: k, a: ap, lda: lda, b: bp, ldb: ldb, c: cp, ldc: ldc,
                              alpha: alpha, beta: beta, epilogue: e, op: op)
        }
    }
}

/// A GEMM B operand packed once into the micro-kernels' panel layout (owned, 64-byte aligned).
final class PackedBuffer: @unchecked Sendable {
    let pointer: UnsafeMutableRawPointer
    let bytes: Int
    /// op(B) is `[k, n]`.
    let n: Int, k: Int
    /// Tiles must start at multiples of this column count.
    let granule: Int

    /// Packs op(B) `[k, n]` (`transposeB`: B stored `[n, k]`) from `b` with leading dimension `ldb`.
    /// Written once here and only read afterwards, which makes sharing it across threads safe.
    init(transposeB: Bool, n: Int, k: Int, b: UnsafePointer<Float>, ldb: Int, op: String) {
        bytes = max(KernelBridge.packedBSize(n: n, k: k), tensorAlignment)
        pointer = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: tensorAlignment)
        self.n = n
        self.k = k
        KernelBridge.packB(transposeB: transposeB, n: n, k: k, b: b, ldb: ldb, packed: pointer, bytes: bytes, op: op)
        granule = max(KernelBridge.packedBGranule(pointer), 1)
    }

    deinit { pointer.deallocate() }
}

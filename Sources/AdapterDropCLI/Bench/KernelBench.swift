import AdapterCore
import Foundation

/// `adapterdrop bench kernels`: our kernels against in-process baselines (OpenBLAS `cblas_sgemm`, OpenBLAS
/// followed by a separate vectorized bias+GELU pass, the scalar reference GEMM, and a memcpy of the same
/// bytes), at BERT-base and MiniLM shapes. All variants run interleaved; medians are reported.
enum KernelBench {
    /// (M, K, N) of `x·Wᵀ` with x `[M, K]`, W `[N, K]`: BERT-base (hidden 768, intermediate 3072, fused QKV
    /// 2304) and MiniLM (384 / 1536) at M = batch·seq ∈ {128, 1024}.
    static let gemmShapes: [(m: Int, k: Int, n: Int)] = [
        (128, 768, 768), (128, 768, 3072), (128, 3072, 768), (1024, 768, 3072),
        (128, 768, 2304), (1024, 768, 768), (1024, 3072, 768),
        (128, 384, 1536), (128, 1536, 384), (1024, 384, 1536),
    ]
    static let fusedShapes: [(m: Int, k: Int, n: Int)] = [(128, 768, 3072), (1024, 768, 3072), (128, 384, 1536)]
    /// Rows × columns for LayerNorm ([tokens, hidden]) and softmax ([batch·heads·seq, seq]); the foundation
    /// issue's bar (≤ 2× memcpy) names [1024, 768] and [12·128, 128] for both kernels, so both shapes are in both lists.
    static let layerNormShapes: [(rows: Int, cols: Int)] = [(1024, 768), (128, 768), (1024, 384), (12 * 128, 128)]
    static let softmaxShapes: [(rows: Int, cols: Int)] = [(12 * 128, 128), (8 * 12 * 128, 128), (1024, 768)]

    static func run(threads: Int, seconds: Double, includeReference: Bool) -> [BenchRow] {
        if threads > 1, ProcessInfo.processInfo.environment["OPENBLAS_THREAD_TIMEOUT"] == nil {
            // OpenBLAS's workers busy-wait after each call (OpenBLAS reads this variable when it loads, so it
            // cannot be set from here); interleaved with them, our second worker often shares a core.
            FileHandle.standardError.write(Data("""
                note: OpenBLAS's idle worker threads spin after each of its calls and take a core from our run that \
                follows; for a fair \(threads)-thread comparison run with OPENBLAS_THREAD_TIMEOUT=4 (docs/benchmarks.md)

                """.utf8))
        }
        var rng = SeededRNG(seed: 7)
        var rows: [BenchRow] = []
        let ours = ComputeContext(threads: threads, gemmBackend: .kernels)
        let blas = ComputeContext(threads: 1, gemmBackend: .cblas)
        GemmBackend.setCBLASThreads(threads)  // OpenBLAS's own threading is the baseline
        let reference = ComputeContext(threads: threads, gemmBackend: .reference)

        for s in gemmShapes {
            let x = Tensor.randomUniform(shape: [s.m, s.k], lo: -1, hi: 1, using: &rng)
            let w = Tensor.randomUniform(shape: [s.n, s.k], lo: -0.05, hi: 0.05, using: &rng)
            let flops = 2.0 * Double(s.m * s.n * s.k)
            var variants = [
                InterleavedTimer.Variant(name: "ours") { _ = linear(x, weight: w, context: ours) },
                InterleavedTimer.Variant(name: "openblas") { _ = linear(x, weight: w, context: blas) },
            ]
            let withReference = includeReference && s.m * s.n * s.k <= 128 * 768 * 768
            if withReference {
                variants.append(.init(name: "ref") { _ = linear(x, weight: w, context: reference) })
            }
            let reps = InterleavedTimer.repetitions(estimatedSeconds: flops / 50e9 * Double(variants.count),
                                                    budget: seconds, minimum: withReference ? 3 : 7)
            let t = InterleavedTimer.medians(variants, repetitions: reps, warmup: withReference ? 1 : 3)
            let shape = "\(s.m)x\(s.k)x\(s.n)"
            rows.append(row("gemm_nt", shape, threads, flops / t[0], flops / t[1], "openblas sgemm"))
            if withReference { rows.append(row("gemm_nt", shape, threads, flops / t[0], flops / t[2], "naive ref")) }
        }

        for s in fusedShapes {
            let x = Tensor.randomUniform(shape: [s.m, s.k], lo: -1, hi: 1, using: &rng)
            let w = Tensor.randomUniform(shape: [s.n, s.k], lo: -0.05, hi: 0.05, using: &rng)
            let b = Tensor.randomUniform(shape: [s.n], lo: -0.1, hi: 0.1, using: &rng)
            let flops = 2.0 * Double(s.m * s.n * s.k)
            let t = InterleavedTimer.medians([
                .init(name: "ours") { _ = linear(x, weight: w, bias: b, activation: .gelu, context: ours) },
                .init(name: "openblas+pass") { _ = linear(x, weight: w, bias: b, activation: .gelu, context: blas) },
            ], repetitions: InterleavedTimer.repetitions(estimatedSeconds: 2 * flops / 50e9, budget: seconds, minimum: 7),
               warmup: 3)
            rows.append(row("linear_bias_gelu", "\(s.m)x\(s.k)x\(s.n)", threads, flops / t[0], flops / t[1],
                            "openblas sgemm + bias/gelu pass"))
        }

        for s in layerNormShapes {
            let x = Tensor.randomUniform(shape: [s.rows, s.cols], lo: -2, hi: 2, using: &rng)
            let g = Tensor(shape: [s.cols], repeating: 1), b = Tensor(zeros: [s.cols])
            let bytes = 2.0 * Double(s.rows * s.cols * 4)  // read x, write y
            let t = timeAgainstMemcpy(x, seconds: seconds, bytes: bytes) {
                _ = layerNorm(x, weight: g, bias: b, eps: 1e-12, context: ours)
            }
            rows.append(row("layernorm_fwd", "\(s.rows)x\(s.cols)", threads, bytes / t.ours,
                            bytes / t.memcpy, "memcpy", unit: "GB/s", scale: 1e-9))
        }

        for s in softmaxShapes {
            let x = Tensor.randomUniform(shape: [s.rows, s.cols], lo: -4, hi: 4, using: &rng)
            let bytes = 2.0 * Double(s.rows * s.cols * 4)
            let t = timeAgainstMemcpy(x, seconds: seconds, bytes: bytes) {
                _ = softmax(x, scale: 0.125, context: ours)
            }
            rows.append(row("softmax_fwd", "\(s.rows)x\(s.cols)", threads, bytes / t.ours, bytes / t.memcpy, "memcpy",
                            unit: "GB/s", scale: 1e-9))
        }
        return rows
    }

    /// Times `body` against copying `x`'s bytes into a preallocated buffer (same bytes read and written).
    private static func timeAgainstMemcpy(_ x: Tensor, seconds: Double, bytes: Double,
                                          _ body: @escaping () -> Void) -> (ours: Double, memcpy: Double) {
        let destination = UnsafeMutableRawPointer.allocate(byteCount: x.count * 4, alignment: 64)
        defer { destination.deallocate() }
        let t = InterleavedTimer.medians([
            .init(name: "ours", run: body),
            .init(name: "memcpy") { x.withUnsafeBufferPointer { _ = memcpy(destination, $0.baseAddress!, x.count * 4) } },
        ], repetitions: InterleavedTimer.repetitions(estimatedSeconds: 2 * bytes / 10e9, budget: seconds, minimum: 21),
           warmup: 5)
        return (t[0], t[1])
    }

    private static func row(_ kernel: String, _ shape: String, _ threads: Int, _ ours: Double, _ baseline: Double,
                            _ name: String, unit: String = "GFLOP/s", scale: Double = 1e-9) -> BenchRow {
        BenchRow(kernel: kernel, shape: shape, threads: threads, ours: ours * scale, baseline: baseline * scale,
                 ratio: ours / baseline, baselineName: name, unit: unit)
    }
}

// package-benchmark suites for every kernel at BERT-base (hidden 768, intermediate 3072, QKV 2304) and MiniLM
// (384 / 1536) shapes, M = batch·seq ∈ {128, 1024}. Each shape runs our kernels and the OpenBLAS baseline
// (`GemmBackend.cblas`) as separate benchmarks; compare them in the output table. Run from `Benchmarks/`:
//     swift package --disable-sandbox benchmark
// `adapterdrop bench kernels` gives the interleaved, same-process ratio table used for acceptance.
import AdapterCore
import Benchmark

/// Shapes (M, K, N) of x·Wᵀ.
private let gemmShapes: [(Int, Int, Int)] = [
    (128, 768, 768), (128, 768, 3072), (128, 3072, 768), (1024, 768, 3072), (128, 768, 2304),
    (128, 384, 1536), (128, 1536, 384), (1024, 384, 1536),
]
private let rowShapes: [(Int, Int)] = [(1024, 768), (128, 768), (1024, 384), (12 * 128, 128)]

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(metrics: [.wallClock, .throughput], warmupIterations: 3,
                                           maxDuration: .seconds(2), maxIterations: 200)
    var rng = SeededRNG(seed: 1)
    let threads = ComputeContext.activeProcessorCount
    let contexts: [(String, ComputeContext)] = [
        ("kernels", ComputeContext(threads: 1, gemmBackend: .kernels)),
        ("openblas", ComputeContext(threads: 1, gemmBackend: .cblas)),
        ("kernels-\(threads)t", ComputeContext(threads: threads, gemmBackend: .kernels)),
    ]

    for (m, k, n) in gemmShapes {
        let x = Tensor.randomUniform(shape: [m, k], lo: -1, hi: 1, using: &rng)
        let w = Tensor.randomUniform(shape: [n, k], lo: -0.05, hi: 0.05, using: &rng)
        let b = Tensor.randomUniform(shape: [n], lo: -0.1, hi: 0.1, using: &rng)
        for (name, context) in contexts {
            Benchmark("gemm_nt \(m)x\(k)x\(n) \(name)") { benchmark in
                for _ in benchmark.scaledIterations { blackHole(linear(x, weight: w, context: context)) }
            }
            Benchmark("linear_bias_gelu \(m)x\(k)x\(n) \(name)") { benchmark in
                for _ in benchmark.scaledIterations {
                    blackHole(linear(x, weight: w, bias: b, activation: .gelu, context: context))
                }
            }
        }
    }

    let context = contexts[0].1
    for (rows, cols) in rowShapes {
        let x = Tensor.randomUniform(shape: [rows, cols], lo: -2, hi: 2, using: &rng)
        let residual = Tensor.randomUniform(shape: [rows, cols], lo: -2, hi: 2, using: &rng)
        let gamma = Tensor(shape: [cols], repeating: 1), beta = Tensor(zeros: [cols])
        Benchmark("layernorm_fwd \(rows)x\(cols)") { benchmark in
            for _ in benchmark.scaledIterations {
                blackHole(layerNorm(x, weight: gamma, bias: beta, eps: 1e-12, context: context))
            }
        }
        Benchmark("residual_layernorm_fwd \(rows)x\(cols)") { benchmark in
            for _ in benchmark.scaledIterations {
                blackHole(layerNorm(x, residual: residual, weight: gamma, bias: beta, eps: 1e-12, context: context))
            }
        }
        let y = layerNorm(x, weight: gamma, bias: beta, eps: 1e-12, context: context)
        Benchmark("layernorm_bwd \(rows)x\(cols)") { benchmark in
            for _ in benchmark.scaledIterations {
                var dx = Tensor(zeros: [rows, cols]), dgamma = Tensor(zeros: [cols]), dbeta = Tensor(zeros: [cols])
                layerNormBackward(residual, input: y.normalizedInput, weight: gamma, mean: y.mean, rstd: y.rstd,
                                  inputGradient: &dx, weightGradient: &dgamma, biasGradient: &dbeta, context: context)
                blackHole(dx)
            }
        }
        Benchmark("softmax_fwd \(rows)x\(cols)") { benchmark in
            for _ in benchmark.scaledIterations { blackHole(softmax(x, scale: 0.125, context: context)) }
        }
        let p = softmax(x, scale: 0.125, context: context)
        Benchmark("softmax_bwd \(rows)x\(cols)") { benchmark in
            for _ in benchmark.scaledIterations {
                var dx = Tensor(zeros: [rows, cols])
                softmaxBackward(residual, output: p, scale: 0.125, into: &dx, context: context)
                blackHole(dx)
            }
        }
        for (name, act) in [("gelu", Activation.gelu), ("gelu_tanh", .geluTanh), ("relu", .relu), ("silu", .silu)] {
            Benchmark("act_fwd \(name) \(rows)x\(cols)") { benchmark in
                for _ in benchmark.scaledIterations { blackHole(activation(x, act, context: context)) }
            }
            Benchmark("act_bwd \(name) \(rows)x\(cols)") { benchmark in
                for _ in benchmark.scaledIterations {
                    blackHole(activationBackward(residual, preactivation: x, activation: act, context: context))
                }
            }
        }
    }
}

import AdapterCore
import Benchmark

let benchmarks: @Sendable () -> Void = {
    Benchmark("isa") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(KernelISA.active) }
    }
}

import AdapterCore
import AdapterDrop
import ArgumentParser

@main
struct AdapterDropCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "adapterdrop",
        abstract: "Adapters, AdapterFusion and AdapterDrop for BERT-family encoders on the CPU.",
        version: adapterDropVersion,
        subcommands: [Embed.self, Tokenize.self, Encode.self, Predict.self, Prune.self, Bench.self]
    )
}

/// `adapterdrop bench …`: speed measurements against in-process baselines (release builds only).
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure speed against baselines run in the same process.",
        subcommands: [Kernels.self, EncoderBenchCommand.self, DropBenchCommand.self]
    )

    struct Kernels: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "GEMM, fused linear+GELU, LayerNorm and softmax vs OpenBLAS, a naive GEMM and memcpy.")

        @Option(help: "Worker threads for our kernels and for OpenBLAS (default: all active processors).")
        var threads: Int = ComputeContext.activeProcessorCount

        @Option(help: "Approximate seconds of timing per shape.")
        var seconds: Double = 1.0

        @Flag(help: "Skip the (slow) naive reference GEMM baseline.")
        var noReference = false

        @Option(help: "Also write the rows as JSON to this file.")
        var json: String?

        func validate() throws {
            guard threads >= 1 else { throw ValidationError("--threads must be at least 1, got \(threads)") }
            guard seconds > 0 else { throw ValidationError("--seconds must be positive, got \(seconds)") }
        }

        func run() throws {
            #if DEBUG
            print("warning: this is a debug build; measure with `swift run -c release adapterdrop bench kernels`")
            #endif
            print("ISA: \(KernelISA.active.rawValue), threads: \(threads)")
            let rows = KernelBench.run(threads: threads, seconds: seconds, includeReference: !noReference)
            printTable(rows)
            if let json { try writeJSON(rows, to: json) }
        }
    }
}

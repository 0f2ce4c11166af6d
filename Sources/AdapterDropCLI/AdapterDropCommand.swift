import AdapterCore
import AdapterDrop
import ArgumentParser

@main
struct AdapterDropCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "adapterdrop",
        abstract: "Adapters, AdapterFusion and AdapterDrop for BERT-family encoders on the CPU.",
        version: adapterDropVersion,
        subcommands: [Embed.self, Tokenize.self, Encode.self, Predict.self, Prune.self, Train.self, Eval.self, Fuse.self, Bench.self,
                      DemoCommand.self]
    )
}

/// `adapterdrop bench …`: speed measurements against in-process baselines (release builds only).
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure speed against baselines run in the same process.",
        subcommands: [Kernels.self, EncoderBenchCommand.self, DropBenchCommand.self, TrainBenchCommand.self, FusionBenchCommand.self]
    )

    struct Kernels: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "GEMM, fused linear+GELU, LayerNorm and softmax vs OpenBLAS, a naive GEMM and memcpy.")

        @OptionGroup var runtime: RuntimeOptions

        @Option(help: "Approximate seconds of timing per shape.")
        var seconds: Double = 1.0

        @Flag(help: "Skip the (slow) naive reference GEMM baseline.")
        var noReference = false

        @OptionGroup var jsonFile: JSONFileOption

        func validate() throws {
            guard seconds > 0 else { throw ValidationError("--seconds must be positive, got \(seconds)") }
        }

        func run() throws {
            #if DEBUG
            print("warning: this is a debug build; measure with `swift run -c release adapterdrop bench kernels`")
            #endif
            print("ISA: \(KernelISA.active.rawValue), threads: \(runtime.threads)")
            let rows = KernelBench.run(threads: runtime.threads, seconds: seconds, includeReference: !noReference)
            printTable(rows)
            if let json = jsonFile.path { try writeJSON(rows, to: json) }
        }
    }
}

import AdapterCore
import AdapterDrop
import ArgumentParser
import Foundation

@main
struct AdapterDropCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "adapterdrop",
        abstract: "Adapters, AdapterFusion and AdapterDrop for BERT-family encoders on the CPU.",
        version: adapterDropVersion,
        subcommands: [Embed.self, Tokenize.self, Encode.self, Predict.self, Prune.self, Train.self, Eval.self, Fuse.self, Bench.self,
                      DemoCommand.self]
    )

    /// ArgumentParser's `main()`, except that a Foundation error escaping a command prints as one plain line
    /// (`path: reason`, see `plainError`) instead of an `NSError` dump.
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            exit(withError: plainError(error))
        }
    }
}

/// `error` itself, or for a Foundation (Cocoa/POSIX) error a `CLIError` with its file path and one-line reason
/// (`ioErrorReason`), e.g. "/proc/x: Permission denied".
func plainError(_ error: Error) -> Error {
    guard isFoundationError(error) else { return error }
    let ns = error as NSError
    let path = (ns.userInfo[NSFilePathErrorKey] as? String) ?? (ns.userInfo[NSURLErrorKey] as? URL)?.path
    return CLIError((path.map { "\($0): " } ?? "") + ioErrorReason(error))
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
            guard seconds <= 3600 else { throw ValidationError("--seconds \(seconds): at most 3600 (seconds of timing per shape)") }
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

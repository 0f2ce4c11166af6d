import AdapterCore
import AdapterDrop
import ArgumentParser
import Foundation

/// Options every command that runs the model shares: worker threads and the memory limit.
///
/// Use it in a command as `@OptionGroup var runtime: RuntimeOptions`, then `runtime.context()` for the
/// `ComputeContext` and `runtime.memoryLimitBytes` for `MemoryEstimate.check(…)`. `validate()` runs
/// automatically (ArgumentParser validates option groups) and rejects `--threads 0` and a bad `--memory-limit`.
struct RuntimeOptions: ParsableArguments {
    @Option(name: .customLong("threads"), help: ArgumentHelp("Worker threads (default: all active processors).", valueName: "threads"))
    var threadCount: Int?

    /// `--threads`, else the number of active processors. (An optional option, so that the help shows the
    /// default once, in words, instead of also printing this machine's number.)
    var threads: Int { threadCount ?? ComputeContext.activeProcessorCount }

    @Option(help: "Refuse runs whose estimated memory exceeds this: bytes, or with a K/M/G suffix, e.g. 8G (default: $ADAPTERDROP_MEMORY_LIMIT, else 80 % of physical memory).")
    var memoryLimit: String?

    /// The most `--threads` accepted.
    static let maximumThreads = 1024

    func validate() throws {
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1, got \(threads)") }
        // Each worker is a real thread with its own workspaces (and enters the memory estimate: threads × seq²).
        guard threads <= Self.maximumThreads else {
            throw ValidationError("--threads \(threads): at most \(Self.maximumThreads) (this machine has \(ComputeContext.activeProcessorCount) active processors)")
        }
        if let memoryLimit, MemoryEstimate.parseByteCount(memoryLimit) == nil {
            throw ValidationError("--memory-limit: expected bytes or a number with K, M or G (e.g. 8G), got \(memoryLimit)")
        }
    }

    /// A compute context with `threads` workers.
    func context() -> ComputeContext { ComputeContext(threads: threads) }

    /// The limit in bytes: `--memory-limit`, else `$ADAPTERDROP_MEMORY_LIMIT`, else `MemoryEstimate.defaultLimitBytes`.
    /// - Throws: `CLIError` when the environment variable is set but unreadable.
    func memoryLimitBytes() throws -> Int {
        if let memoryLimit, let v = MemoryEstimate.parseByteCount(memoryLimit) { return v }
        if let env = ProcessInfo.processInfo.environment["ADAPTERDROP_MEMORY_LIMIT"] {
            guard let v = MemoryEstimate.parseByteCount(env) else {
                throw CLIError("ADAPTERDROP_MEMORY_LIMIT: expected bytes or a number with K, M or G, got \(env)")
            }
            return v
        }
        return MemoryEstimate.defaultLimitBytes
    }

    /// Rejects, before running, an inference whose `MemoryEstimate` exceeds `memoryLimitBytes()`.
    /// - Throws: `MemoryLimitError` with the estimate and the limit.
    func checkInferenceMemory(config: BertConfig, batch: Int, sequenceLength: Int, replicas: Int = 1) throws {
        try MemoryEstimate(config: config, batch: batch, sequenceLength: sequenceLength, mode: .inference,
                           replicas: replicas, threads: threads).check(limitBytes: try memoryLimitBytes())
    }
}

/// `--model DIR`, the Hugging Face model folder every model command reads: `config.json`, `model.safetensors`
/// and, where the command reads text, the tokenizer files. Use it as `@OptionGroup var model: ModelFolderOption`,
/// then `model.path`, `model.folder()` or `model.pretrained()`.
struct ModelFolderOption: ParsableArguments {
    @Option(name: .customLong("model"),
            help: "Hugging Face model folder (config.json, model.safetensors; the tokenizer files where text is read).")
    var path: String

    /// The folder's URL.
    /// - Throws: `CLIError` naming the path when it is missing or a file.
    func folder() throws -> URL { try existingFolder(path) }

    /// The tokenizer and encoder of the folder.
    /// - Throws: `CLIError` for a missing folder, the loaders' errors.
    func pretrained() throws -> PretrainedModel { try loadPretrained(path) }
}

/// `--adapter DIR` (repeatable): AdapterHub adapter folders (`adapter_config.json`, `adapter.safetensors`, and the
/// head's files when it was saved with the adapter). Use it as `@OptionGroup var adapters: AdapterFolderOptions`
/// beside `ModelFolderOption`; a command that needs a certain number checks `folders.count` in its `validate()`.
struct AdapterFolderOptions: ParsableArguments {
    @Option(name: .customLong("adapter"), help: "An AdapterHub adapter folder, with its head if saved there (repeatable).")
    var folders: [String] = []
}

/// `--json`: print machine-readable JSON on standard output instead of text. Shared by the commands that print
/// results (`@OptionGroup var output: OutputOptions`, then `output.json`).
struct OutputOptions: ParsableArguments {
    @Flag(help: "Print JSON on standard output instead of text.")
    var json = false
}

/// `--json FILE` of the `bench` commands: write the result rows to a file. `validate()` checks before the run that
/// the file can be created (its folder exists and is writable, the path is not a folder), so a typo fails in a
/// second with a one-line error instead of after minutes of timing.
struct JSONFileOption: ParsableArguments {
    @Option(name: .customLong("json"), help: "Also write the rows as JSON to this file.")
    var path: String?

    func validate() throws {
        if let path { try checkWritableFile(path, option: "--json") }
    }
}

/// Throws a one-line `ValidationError` unless a file can be written at `path`: the parent folder exists, is a
/// folder and is writable, and `path` itself is not a folder.
func checkWritableFile(_ path: String, option: String) throws {
    let url = URL(fileURLWithPath: path)
    let fm = FileManager.default
    var isDirectory: ObjCBool = false
    if fm.fileExists(atPath: url.path, isDirectory: &isDirectory), isDirectory.boolValue {
        throw ValidationError("\(option) \(path): is a folder, expected a file path")
    }
    let parent = url.deletingLastPathComponent().path
    guard fm.fileExists(atPath: parent, isDirectory: &isDirectory) else {
        throw ValidationError("\(option) \(path): folder \(parent) does not exist")
    }
    guard isDirectory.boolValue else { throw ValidationError("\(option) \(path): \(parent) is not a folder") }
    // A probe file rather than `access(2)` alone: root passes `access` on read-only places such as /proc.
    let probe = url.deletingLastPathComponent().appendingPathComponent(".adapterdrop-probe-\(getpid())-\(UUID().uuidString)")
    guard fm.isWritableFile(atPath: parent), fm.createFile(atPath: probe.path, contents: nil) else {
        throw ValidationError("\(option) \(path): folder \(parent) is not writable")
    }
    try? fm.removeItem(at: probe)
}

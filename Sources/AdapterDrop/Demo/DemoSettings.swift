// Settings of the end-to-end AdapterDrop demo (`adapterdrop demo`): where the model, data and results are,
// how much of each task is used, the training hyper-parameters, and the two presets (`full`, `quick`).
import AdapterCore
import Foundation

/// Everything `AdapterDropDemo` needs to know to run; `DemoSettings.full(...)` and `.quick(...)` are the
/// presets of `adapterdrop demo` and `adapterdrop demo --quick`.
///
/// The full preset was sized from the trainer's measured throughput on all-MiniLM-L6-v2 (docs/demo.md): at
/// most 64 tokens per text, 640 training examples per task and regime, 1 epoch, 300 test examples per task,
/// specialized AdapterDrop only for n = 2 and 4.
public struct DemoSettings: Sendable, Equatable, Codable {
    /// A Hugging Face model folder (config.json, model.safetensors, a tokenizer).
    public var modelFolder: String
    /// A folder of task folders as written by `scripts/fetch-data.sh` (`<task>/{labels.json,train,dev,test}.jsonl`).
    public var dataFolder: String
    /// Where the run folder `<runName>/` is written.
    public var resultsFolder: String
    /// The run folder's name (letters, digits, `.`, `_`, `-`).
    public var runName: String
    /// The tasks (folder names inside `dataFolder`), in order; at least 1. The first is the fusion target.
    public var tasks: [String]
    /// Training examples per task (a seeded sample of the train split; all if it has fewer).
    public var trainExamplesPerTask: Int
    /// Test examples per task (a seeded sample of the test split) used for accuracy and for the speed runs.
    public var testExamplesPerTask: Int
    /// Longest input in tokens, special tokens included; longer texts are truncated (counted in the report).
    /// Must not exceed the model's maximum.
    public var maxSequenceLength: Int
    /// Passes over the training sample.
    public var epochs: Int
    /// Examples per training step.
    public var batchSize: Int
    /// Peak learning rate (linear warm-up over `warmupFraction` of the steps, then linear decay).
    public var learningRate: Double
    /// Fraction of the steps used for warm-up.
    public var warmupFraction: Double
    /// The adapter's reduction factor (seq_bn: bottleneck = hidden / factor).
    public var reductionFactor: Int
    /// n of the specialized AdapterDrop adapters (one adapter per task and n); empty for none.
    public var specializedDrops: [Int]
    /// Task counts of the multi-task (Parallel) speed table; each ≤ `tasks.count`.
    public var speedTaskCounts: [Int]
    /// Texts per Parallel batch in the speed table.
    public var speedBatchSize: Int
    /// Timed repetitions per (task count, n) in the speed table (medians are reported).
    public var speedRepetitions: Int
    /// Examples per evaluation batch.
    public var evaluationBatchSize: Int
    /// The seed of every random choice (samples, initialisation, batch order, AdapterDrop draws, dropout).
    public var seed: UInt64
    /// Worker threads.
    public var threads: Int
    /// Whether this is the `--quick` preset (shown in the report).
    public var isQuick: Bool

    /// The five tasks of `scripts/fetch-data.sh`, in the demo's order (the first is the fusion target).
    public static let defaultTasks = ["movie-sentiment", "tweet-sentiment", "product-sentiment", "news-topic", "subjectivity"]

    /// The full demo (≤ 15 minutes on 2 cores; see docs/demo.md for how the sizes were chosen).
    public static func full(modelFolder: String = "models/all-MiniLM-L6-v2", dataFolder: String = "data",
                            resultsFolder: String = "results", runName: String) -> DemoSettings {
        DemoSettings(modelFolder: modelFolder, dataFolder: dataFolder, resultsFolder: resultsFolder, runName: runName,
                     tasks: defaultTasks, trainExamplesPerTask: 640, testExamplesPerTask: 300, maxSequenceLength: 64,
                     epochs: 1, batchSize: 16, learningRate: 1e-3, warmupFraction: 0.1, reductionFactor: 16,
                     specializedDrops: [2, 4], speedTaskCounts: [1, 2, 3, 4, 5], speedBatchSize: 32,
                     speedRepetitions: 3, evaluationBatchSize: 64, seed: 42,
                     threads: ComputeContext.activeProcessorCount, isQuick: false)
    }

    /// The `--quick` smoke run used in CI (≤ 3 minutes): tiny samples, still every step and a report.
    public static func quick(modelFolder: String = "models/all-MiniLM-L6-v2", dataFolder: String = "data",
                             resultsFolder: String = "results", runName: String) -> DemoSettings {
        DemoSettings(modelFolder: modelFolder, dataFolder: dataFolder, resultsFolder: resultsFolder, runName: runName,
                     tasks: defaultTasks, trainExamplesPerTask: 48, testExamplesPerTask: 32, maxSequenceLength: 32,
                     epochs: 1, batchSize: 16, learningRate: 1e-3, warmupFraction: 0.1, reductionFactor: 16,
                     specializedDrops: [2], speedTaskCounts: [1, 2, 4], speedBatchSize: 8,
                     speedRepetitions: 1, evaluationBatchSize: 64, seed: 42,
                     threads: ComputeContext.activeProcessorCount, isQuick: true)
    }

    /// Checks the numbers (not the files).
    /// - Throws: `DemoError.invalidSetting` naming the setting and the value.
    public func validate() throws {
        func check(_ ok: Bool, _ name: String, _ value: Any, _ rule: String) throws {
            if !ok { throw DemoError.invalidSetting(name: name, value: "\(value)", rule: rule) }
        }
        try check(!tasks.isEmpty, "tasks", tasks, "at least one task")
        try check(Set(tasks).count == tasks.count, "tasks", tasks.joined(separator: ","), "no task twice")
        try check(trainExamplesPerTask >= 1, "train examples per task", trainExamplesPerTask, ">= 1")
        try check(testExamplesPerTask >= 1, "test examples per task", testExamplesPerTask, ">= 1")
        try check(maxSequenceLength >= 3, "max sequence length", maxSequenceLength, ">= 3")
        try check(epochs >= 1, "epochs", epochs, ">= 1")
        try check(batchSize >= 1, "batch size", batchSize, ">= 1")
        try check(learningRate > 0 && learningRate.isFinite, "learning rate", learningRate, "> 0")
        try check(warmupFraction >= 0 && warmupFraction < 1, "warm-up fraction", warmupFraction, "in [0, 1)")
        try check(reductionFactor >= 1, "reduction factor", reductionFactor, ">= 1")
        try check(!speedTaskCounts.isEmpty && speedTaskCounts.allSatisfy { $0 >= 1 && $0 <= tasks.count },
                  "speed task counts", speedTaskCounts, "each in 1...\(tasks.count) (the number of tasks)")
        try check(speedBatchSize >= 1, "speed batch size", speedBatchSize, ">= 1")
        try check(speedRepetitions >= 1, "speed repetitions", speedRepetitions, ">= 1")
        try check(evaluationBatchSize >= 1, "evaluation batch size", evaluationBatchSize, ">= 1")
        try check(threads >= 1, "threads", threads, ">= 1")
        try check(specializedDrops.allSatisfy { $0 >= 1 }, "specialized drops", specializedDrops, "each >= 1")
    }
}

// What the demo measured, step by step (Codable: results.json keeps the report's tables; these types are what
// tests and the CLI summary read).
import Foundation

/// A training regime of the demo (Rücklé et al. 2021, §3 and Table 8).
public enum DemoRegime: Sendable, Hashable, Codable, CustomStringConvertible {
    /// No AdapterDrop while training (adapters in every layer).
    case standard
    /// Robust AdapterDrop: n drawn per batch from 0…L−1.
    case robust
    /// Specialized AdapterDrop: the same n for every batch.
    case specialized(Int)

    /// A short identifier usable in adapter names: `standard`, `robust`, `specialized2`.
    public var identifier: String {
        switch self {
        case .standard: return "standard"
        case .robust: return "robust"
        case let .specialized(n): return "specialized\(n)"
        }
    }

    /// For people: `standard`, `robust AdapterDrop`, `specialized n=2`.
    public var description: String {
        switch self {
        case .standard: return "standard"
        case .robust: return "robust AdapterDrop"
        case let .specialized(n): return "specialized n=\(n)"
        }
    }

    /// The training policy for a model with `layers` layers.
    public func policy(layers: Int) -> AdapterDropPolicy {
        switch self {
        case .standard: return .none
        case .robust: return .robust(numberOfLayers: layers)
        case let .specialized(n): return .specialized(droppedLayers: n)
        }
    }
}

/// Sizes of one task as loaded and as used.
public struct DemoTaskSummary: Sendable, Equatable, Codable {
    /// The task's folder name.
    public var name: String
    /// Class names.
    public var labels: [String]
    /// Examples in the full train / dev / test splits.
    public var fullTrain: Int, fullDev: Int, fullTest: Int
    /// Examples used for training and for testing (seeded samples).
    public var usedTrain: Int, usedTest: Int
    /// Label counts of the used training and test samples, in `labels` order.
    public var trainLabelCounts: [Int], testLabelCounts: [Int]
    /// Used texts cut to the maximum sequence length (train + test).
    public var truncated: Int
    /// Mean tokens per used text after truncation (special tokens included).
    public var meanTokens: Double
}

/// One trained adapter.
public struct DemoTrainingRun: Sendable, Equatable, Codable {
    /// Task name.
    public var task: String
    /// Regime.
    public var regime: DemoRegime
    /// Optimizer steps.
    public var steps: Int
    /// Examples seen (steps × batch, the last batch of an epoch may be smaller).
    public var examples: Int
    /// Wall-clock seconds.
    public var seconds: Double
    /// Mean loss of the first and of the last 10% of the steps (at least one step each).
    public var firstLoss: Double, lastLoss: Double
    /// Mean number of dropped layers over the steps.
    public var meanDroppedLayers: Double

    /// Training examples per second (wall clock).
    public var examplesPerSecond: Double { seconds > 0 ? Double(examples) / seconds : 0 }
}

/// Accuracy and macro-F1 of one adapter at one n.
public struct DemoEvaluation: Sendable, Equatable, Codable {
    public var task: String
    public var regime: DemoRegime
    /// Dropped layers n (adapters removed from layers 0…n−1).
    public var droppedLayers: Int
    /// In [0, 1].
    public var accuracy: Double
    /// In [0, 1].
    public var macroF1: Double
    /// Test examples.
    public var count: Int
}

/// One row of the multi-task (Parallel) speed table.
public struct DemoSpeedRow: Sendable, Equatable, Codable {
    /// Tasks (adapters + heads) run in parallel on the same texts.
    public var tasks: Int
    /// Dropped layers n: layers 0…n−1 run once for all tasks.
    public var droppedLayers: Int
    /// Texts in the batch.
    public var texts: Int
    /// Median wall-clock seconds for the batch (all tasks).
    public var seconds: Double
    /// Median wall-clock seconds of the no-drop run timed interleaved with this one.
    public var baselineSeconds: Double
    /// Median process CPU seconds (all threads) of this run and of its interleaved no-drop run.
    public var cpuSeconds: Double, baselineCPUSeconds: Double
    /// Layers in the model.
    public var layers: Int

    /// Wall-clock milliseconds per text (all tasks answered).
    public var millisecondsPerText: Double { seconds * 1000 / Double(texts) }
    /// Texts per second (each answered by every task).
    public var textsPerSecond: Double { Double(texts) / seconds }
    /// baseline / this, wall clock.
    public var speedup: Double { baselineSeconds / seconds }
    /// baseline / this, process CPU time (less sensitive to other processes on a shared machine).
    public var cpuSpeedup: Double { baselineCPUSeconds / cpuSeconds }
    /// The layer-count ratio N·L / (n + N·(L − n)): the speed-up if every layer cost the same and nothing else
    /// (embeddings, heads, replication) took time.
    public var idealSpeedup: Double { Self.idealSpeedup(tasks: tasks, dropped: droppedLayers, layers: layers) }

    /// N·L / (n + N·(L − n)).
    public static func idealSpeedup(tasks: Int, dropped: Int, layers: Int) -> Double {
        Double(tasks * layers) / Double(dropped + tasks * (layers - dropped))
    }
}

/// One row of the mixed-task batch table: every text answered only by its own task's adapter and head, in one
/// encoder pass (`AdapterModel.mixedTaskLogits`).
public struct DemoMixedRow: Sendable, Equatable, Codable {
    /// Dropped layers n.
    public var droppedLayers: Int
    /// Texts in the batch, and distinct tasks among them.
    public var texts: Int, tasks: Int
    /// Median wall-clock seconds for the batch.
    public var seconds: Double
    /// Fraction of texts whose own task's prediction is right, in [0, 1].
    public var accuracy: Double

    /// Wall-clock milliseconds per text.
    public var millisecondsPerText: Double { seconds * 1000 / Double(texts) }
}

/// Step 4 (AdapterFusion over the task adapters, pruned to the top 2).
public struct DemoFusionResult: Sendable, Equatable, Codable {
    /// Why the step did not run, or nil when it did.
    public var pending: String?
    /// The target task.
    public var target: String
    /// Adapters fused, in order.
    public var adapters: [String]
    /// Mean fusion attention per adapter (rows, `adapters` order) and layer (columns).
    public var activations: [[Double]]
    /// The adapters kept by pruning.
    public var kept: [String]
    /// Test accuracy of the full and of the pruned fusion, in [0, 1].
    public var fullAccuracy: Double?, prunedAccuracy: Double?
    /// Median wall-clock seconds for the target's whole test sample, full and pruned fusion.
    public var fullSeconds: Double?, prunedSeconds: Double?
    /// The fusion's training run (the regime field is `standard`: no AdapterDrop).
    public var training: DemoTrainingRun?
}

/// Everything one demo run measured.
public struct DemoResults: Sendable, Equatable, Codable {
    /// The settings of the run.
    public var settings: DemoSettings
    /// Model facts: name, layers, hidden size, maximum length.
    public var modelName: String, layers: Int, hiddenSize: Int, modelMaxLength: Int
    /// Per task.
    public var tasks: [DemoTaskSummary]
    /// Step 1.
    public var training: [DemoTrainingRun]
    /// Step 2: every (task, regime, n).
    public var evaluations: [DemoEvaluation]
    /// Step 3.
    public var speed: [DemoSpeedRow]
    /// Step 3, the mixed-task batch at n = 0…L−1.
    public var mixed: [DemoMixedRow]
    /// Step 4.
    public var fusion: DemoFusionResult
    /// Wall-clock seconds per step name (`load`, `train`, `evaluate`, `speed`, `fusion`), and process CPU seconds
    /// (all threads) under `<step> cpu`.
    public var stepSeconds: [String: Double]

    /// The regimes trained, in table order.
    public var regimes: [DemoRegime] {
        var out: [DemoRegime] = []
        for r in training.map(\.regime) where !out.contains(r) { out.append(r) }
        return out
    }

    /// Mean test accuracy over the tasks of one regime at n, or nil if missing.
    public func meanAccuracy(_ regime: DemoRegime, dropped n: Int) -> Double? {
        let rows = evaluations.filter { $0.regime == regime && $0.droppedLayers == n }
        return rows.isEmpty ? nil : rows.map(\.accuracy).reduce(0, +) / Double(rows.count)
    }

    /// Mean macro-F1 over the tasks of one regime at n, or nil if missing.
    public func meanMacroF1(_ regime: DemoRegime, dropped n: Int) -> Double? {
        let rows = evaluations.filter { $0.regime == regime && $0.droppedLayers == n }
        return rows.isEmpty ? nil : rows.map(\.macroF1).reduce(0, +) / Double(rows.count)
    }

    /// The paper's Table 8 view: mean accuracy at n as a percentage of the same regime's mean at n = 0.
    /// Specialized AdapterDrop is one model per n, so its value at n is the specialized-n adapter at n relative to
    /// the standard adapter at 0 (the specialized n = 0 model is the standard one).
    public func keptPercent(_ regime: DemoRegime, dropped n: Int) -> Double? {
        switch regime {
        case .specialized:
            guard let base = meanAccuracy(.standard, dropped: 0), let v = meanAccuracy(regime, dropped: n), base > 0 else { return nil }
            return 100 * v / base
        default:
            guard let base = meanAccuracy(regime, dropped: 0), let v = meanAccuracy(regime, dropped: n), base > 0 else { return nil }
            return 100 * v / base
        }
    }

    /// The speed row for (tasks, n), if measured.
    public func speedRow(tasks: Int, dropped: Int) -> DemoSpeedRow? {
        speed.first { $0.tasks == tasks && $0.droppedLayers == dropped }
    }
}

// Multi-task inference with AdapterDrop (Rücklé et al., AdapterDrop, EMNLP 2021, §4): every example through
// every task (Parallel), and — beyond the reference — mixed-task batches where each example names its own task.
// Both compute the layers below the first active adapter once and run on the encoder's buffered path.
import AdapterCore
import Foundation

/// User-input errors of the multi-task APIs.
public enum MultiTaskError: Error, Equatable, Sendable, CustomStringConvertible {
    /// `tasks` names fewer or more tasks than there are examples (mixed-task batch).
    case taskCount(tasks: Int, examples: Int)
    /// No task given.
    case noTasks
    /// `droppedLayers` outside `0 … layers`.
    case droppedLayersOutOfRange(droppedLayers: Int, layers: Int)
    /// A task without a prediction head of its name.
    case missingHead(task: String)

    public var description: String {
        switch self {
        case let .taskCount(tasks, examples): return "\(tasks) task names for \(examples) examples: give one task per example"
        case .noTasks: return "no task given"
        case let .droppedLayersOutOfRange(n, layers): return "dropped layers \(n) is outside 0...\(layers)"
        case let .missingHead(task): return "task \"\(task)\" has an adapter but no prediction head of the same name"
        }
    }
}

/// One example's result in a mixed-task batch.
public struct ExamplePrediction: Sendable, Equatable, Codable {
    /// The example's task (its adapter and head).
    public var task: String
    /// The head's logits `[labels]` (tagging: `[seq·labels]`, token-major).
    public var logits: [Float]
    /// The label, as `HeadPrediction.labels` gives it.
    public var label: String
}

extension AdapterModel {
    /// Checks task names (adapter and head of that name loaded) and `droppedLayers`.
    private func checkTasks(_ tasks: some Sequence<String>, droppedLayers: Int) throws {
        let layers = encoder.config.numHiddenLayers
        guard droppedLayers >= 0 && droppedLayers <= layers else {
            throw MultiTaskError.droppedLayersOutOfRange(droppedLayers: droppedLayers, layers: layers)
        }
        for t in tasks {
            guard adapters[t] != nil else { throw AdapterError.unknownAdapter(t) }
            guard heads[t] != nil else { throw MultiTaskError.missingHead(task: t) }
        }
    }

    /// Tokenizes texts into one padded batch (`[CLS] text [SEP]`, truncated to `maxLength` tokens if given).
    private static func batch(_ texts: [String], tokenizer: SubwordTokenizer, maxLength: Int?) throws -> EncoderInput {
        let encoded = try tokenizer.encode(batch: texts.map { .single($0) }, options: EncodingOptions(
            truncation: maxLength == nil ? nil : .longestFirst, maxLength: maxLength, padding: .longest))
        return try EncoderInput(encoded, padTokenId: tokenizer.padTokenID)
    }

    /// Every example through every task: `Parallel(tasks…)` with adapters dropped from layers `0 ..< droppedLayers`,
    /// so those layers run once for the whole batch and the batch is replicated once per task from there on.
    /// - Parameters:
    ///   - input: `[batch, seq]`.
    ///   - tasks: adapter names, each with a head of the same name (one task is a plain single-adapter run).
    ///   - droppedLayers: n in `0 … layers` (AdapterDrop; n = layers runs no adapter at all).
    ///   - context: threads and GEMM backend.
    /// - Returns: one `HeadPrediction` per task, in order, each with one row per example.
    /// - Throws: `MultiTaskError` (`.noTasks`, `.droppedLayersOutOfRange`, `.missingHead`),
    ///   `AdapterError.unknownAdapter`, `EncoderError` for bad ids.
    public func predictTasks(_ input: EncoderInput, tasks: [String], droppedLayers: Int,
                             context: ComputeContext) throws -> PredictionResult {
        guard !tasks.isEmpty else { throw MultiTaskError.noTasks }
        try checkTasks(tasks, droppedLayers: droppedLayers)
        let setup: AdapterComposition = tasks.count == 1 ? .adapter(tasks[0]) : .parallel(tasks.map { .adapter($0) })
        return try predict(input, setup: setup, heads: tasks, skipLayers: Set(0..<droppedLayers), context: context)
    }

    /// `predictTasks(_:tasks:droppedLayers:context:)` on texts tokenized into one padded batch.
    /// - Parameters:
    ///   - texts: `[batch]` single texts (`[CLS] text [SEP]`).
    ///   - tokenizer: the model's tokenizer (its pad id pads the batch).
    ///   - maxLength: truncate longer texts to this many tokens (special tokens included); nil for none.
    ///   - tasks: as in the `EncoderInput` variant.
    ///   - droppedLayers: as in the `EncoderInput` variant.
    ///   - context: threads and GEMM backend.
    /// - Throws: as the `EncoderInput` variant, and `TokenizerError`.
    public func predictTasks(texts: [String], tokenizer: SubwordTokenizer, maxLength: Int? = nil, tasks: [String],
                             droppedLayers: Int, context: ComputeContext) throws -> PredictionResult {
        try predictTasks(try Self.batch(texts, tokenizer: tokenizer, maxLength: maxLength), tasks: tasks,
                         droppedLayers: droppedLayers, context: context)
    }

    /// A mixed-task batch: example i runs through the adapter and head named `tasks[i]` only, with adapters
    /// dropped from layers `0 ..< droppedLayers`.
    ///
    /// The examples are grouped by task (stable, tasks in order of first appearance); the encoder runs on the whole
    /// batch once — no replication — and at every adapter location each group's rows go through its own task's
    /// adapter (one grouped GEMM call for all groups), so layers below `droppedLayers` are shared by every task
    /// and above them each example costs what it would alone. Results equal running each example alone with
    /// `setup: .adapter(tasks[i])` and `skipLayers: 0..<droppedLayers` (bitwise at the same padded length; see
    /// docs/numerics.md, "Multi-task inference").
    /// - Parameters:
    ///   - input: `[batch, seq]`.
    ///   - tasks: `[batch]` adapter names, each with a head of the same name.
    ///   - droppedLayers: n in `0 … layers`.
    ///   - context: threads and GEMM backend.
    /// - Returns: per example, in input order, the logits of its task's head (`[labels]`, tagging `[seq, labels]`).
    /// - Throws: `MultiTaskError.taskCount`, `.droppedLayersOutOfRange`, `.missingHead`, `AdapterError.unknownAdapter`,
    ///   `EncoderError` for bad ids.
    public func mixedTaskLogits(_ input: EncoderInput, tasks: [String], droppedLayers: Int,
                                context: ComputeContext) throws -> [Tensor] {
        guard tasks.count == input.batchSize else { throw MultiTaskError.taskCount(tasks: tasks.count, examples: input.batchSize) }
        try checkTasks(Set(tasks), droppedLayers: droppedLayers)
        if tasks.isEmpty { return [] }
        // Group the examples by task, tasks in order of first appearance, examples in input order within a task.
        var order: [String] = [], members: [String: [Int]] = [:]
        for (i, t) in tasks.enumerated() {
            if members[t] == nil { order.append(t) }
            members[t, default: []].append(i)
        }
        let permutation = order.flatMap { members[$0]! }
        let seq = input.sequenceLength
        func gathered(_ values: [Int]) -> [Int] { permutation.flatMap { values[$0 * seq ..< ($0 + 1) * seq] } }
        let grouped = try EncoderInput(batchSize: input.batchSize, sequenceLength: seq, inputIds: gathered(input.inputIds),
                                       attentionMask: gathered(input.attentionMask), tokenTypeIds: gathered(input.tokenTypeIds))
        var start = 0
        let groups = order.map { t in
            defer { start += members[t]!.count }
            return RowGroupAdapterPlan.Group(adapter: adapters[t]!, sequences: start ..< start + members[t]!.count)
        }
        let plan = RowGroupAdapterPlan(groups: groups, replicas: 1, skipLayers: Set(0..<droppedLayers))
        let encoded = try encoder.encode(grouped, plan: plan, keepHiddenStates: false, context: context)
        let hidden = encoder.config.hiddenSize
        var out = [Tensor?](repeating: nil, count: tasks.count)
        for (g, t) in zip(groups, order) {
            let rows = g.sequences
            let last = encoded.lastHiddenState.reshaped([input.batchSize, -1]).slice(rows: rows).reshaped([rows.count, seq, hidden])
            let logits = heads[t]!(lastHiddenState: last, pooled: encoded.pooled?.slice(rows: rows), context: context)
            for (k, example) in members[t]!.enumerated() {
                out[example] = logits.slice(rows: k ..< k + 1).contiguous().reshaped(Array(logits.shape.dropFirst()))
            }
        }
        return out.map { $0! }
    }

    /// `mixedTaskLogits` with labels (as `predict` labels them).
    /// - Parameters:
    ///   - input: `[batch, seq]`.
    ///   - tasks: `[batch]` adapter names, each with a head of the same name.
    ///   - droppedLayers: n in `0 … layers`.
    ///   - context: threads and GEMM backend.
    /// - Returns: per example, in input order: its task, logits and label.
    /// - Throws: as `mixedTaskLogits`.
    public func predictMixed(_ input: EncoderInput, tasks: [String], droppedLayers: Int,
                             context: ComputeContext) throws -> [ExamplePrediction] {
        let logits = try mixedTaskLogits(input, tasks: tasks, droppedLayers: droppedLayers, context: context)
        return zip(tasks, logits).map { task, l in
            let labelled = HeadPrediction(name: task, logits: l.reshaped([1] + l.shape), config: heads[task]!.config)
            return ExamplePrediction(task: task, logits: labelled.logits[0], label: labelled.labels[0])
        }
    }

    /// `predictMixed(_:tasks:droppedLayers:context:)` on texts tokenized into one padded batch.
    /// - Parameters:
    ///   - texts: `[batch]` single texts (`[CLS] text [SEP]`).
    ///   - tokenizer: the model's tokenizer (its pad id pads the batch).
    ///   - maxLength: truncate longer texts to this many tokens (special tokens included); nil for none.
    ///   - tasks: `[batch]` adapter names, one per text.
    ///   - droppedLayers: n in `0 … layers`.
    ///   - context: threads and GEMM backend.
    /// - Throws: as the `EncoderInput` variant, and `TokenizerError`.
    public func predictMixed(texts: [String], tokenizer: SubwordTokenizer, maxLength: Int? = nil, tasks: [String],
                             droppedLayers: Int, context: ComputeContext) throws -> [ExamplePrediction] {
        guard tasks.count == texts.count else { throw MultiTaskError.taskCount(tasks: tasks.count, examples: texts.count) }
        return try predictMixed(try Self.batch(texts, tokenizer: tokenizer, maxLength: maxLength), tasks: tasks,
                                droppedLayers: droppedLayers, context: context)
    }
}

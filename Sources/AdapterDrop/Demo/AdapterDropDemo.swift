// The end-to-end AdapterDrop demo as a library type (the `adapterdrop demo` command is a thin wrapper):
// (1) train one seq_bn adapter + head per task and regime, (2) evaluate each at n = 0…L−1 dropped layers,
// (3) time all task adapters in Parallel at n = 0…L−1 and 1…N tasks, (4) AdapterFusion over the task adapters for
// one target task, pruned to the top 2 (DemoFusion.swift), (5) write results/<run>/ with ReportWriter, (6) return
// what the CLI summarises.
// Rücklé et al., "AdapterDrop: On the Efficiency of Adapters in Transformers", EMNLP 2021 (Table 2, Table 8, §5.2).
import AdapterCore
import Foundation

/// What the demo reports while it runs (the CLI draws progress bars from these).
public enum DemoEvent: Sendable {
    /// A step begins: `index` 1…6, a title.
    case step(index: Int, title: String)
    /// A line of information.
    case message(String)
    /// Training progress of one adapter; sent before each step and once at the end (`step == steps`).
    case training(DemoTrainingProgress)
    /// Progress of a long loop that is not training (evaluation, timing): `done` of `total` units.
    case work(label: String, done: Int, total: Int, elapsed: Double)
}

/// One training progress report.
public struct DemoTrainingProgress: Sendable {
    /// `task / regime`, e.g. `movie-sentiment / robust AdapterDrop`.
    public var label: String
    /// Steps done and in total.
    public var step: Int, steps: Int
    /// The last step's loss (nil before the first step).
    public var loss: Double?
    /// Training examples per second so far (wall clock).
    public var examplesPerSecond: Double
    /// Wall-clock seconds since this training began.
    public var elapsed: Double
    /// Estimated seconds left (nil before the first step).
    public var secondsLeft: Double?
}

/// Forwards `AdapterTrainer` progress events as `DemoEvent.training`.
final class DemoTrainingReporter: TrainingProgressReporter {
    let label: String
    let emit: (DemoEvent) -> Void
    private var last: TrainingProgressEvent?

    init(label: String, emit: @escaping (DemoEvent) -> Void) {
        self.label = label
        self.emit = emit
    }

    func report(_ event: TrainingProgressEvent) {
        last = event
        if event.step < event.totalSteps {
            emit(.training(DemoTrainingProgress(label: label, step: event.step, steps: event.totalSteps, loss: Double(event.loss),
                                                examplesPerSecond: event.examplesPerSecond, elapsed: event.elapsedSeconds,
                                                secondsLeft: event.etaSeconds)))
        }
    }

    func finish() {}

    /// The final event (`step == steps`), with the mean loss of the last steps.
    func done(lastLoss: Double) {
        guard let e = last else { return }
        emit(.training(DemoTrainingProgress(label: label, step: e.totalSteps, steps: e.totalSteps, loss: lastLoss,
                                            examplesPerSecond: e.examplesPerSecond, elapsed: e.elapsedSeconds, secondsLeft: 0)))
    }
}

/// The end-to-end demo (see the file header and docs/demo.md).
///
/// ```swift
/// let demo = try AdapterDropDemo(settings: .quick(runName: "quick-1"))
/// let (results, outcome) = try demo.run { event in print(event) }
/// print(outcome.folder.path, results.keptPercent(.robust, dropped: 2) ?? .nan)
/// ```
public final class AdapterDropDemo {
    /// The run's settings.
    public let settings: DemoSettings
    /// Where plots come from (tests disable gnuplot or point at a fake one).
    public var gnuplot: GnuplotSetting = .automatic
    /// The machine facts written into the report (tests pass fixed ones).
    public var machine: MachineInfo?

    /// - Throws: `DemoError.invalidSetting` for out-of-range numbers, `ReportError.invalidRunName`.
    public init(settings: DemoSettings) throws {
        try settings.validate()
        try ReportWriter.validateRunName(settings.runName)
        self.settings = settings
    }

    // MARK: - Loaded state

    struct LoadedTask {
        var summary: DemoTaskSummary
        var labels: [String]
        var train: TextClassificationDataset
        var test: TextClassificationDataset
    }

    struct Tokenized: Hashable {
        var ids: [Int]
        var typeIds: [Int]
    }

    var pretrained: PretrainedModel!
    var loaded: [LoadedTask] = []
    var tokens: [TextExample: Tokenized] = [:]

    var layers: Int { pretrained.encoder.config.numHiddenLayers }

    /// The adapter (and head) name of a task and regime: `<task>_<regime>`.
    public static func adapterName(task: String, regime: DemoRegime) -> String { "\(task)_\(regime.identifier)" }

    /// The regimes trained: standard, robust, then each specialized n that is below the layer count.
    func regimes(layers: Int) -> [DemoRegime] {
        [.standard, .robust] + settings.specializedDrops.filter { $0 < layers }.map { .specialized($0) }
    }

    /// Checks, before any work, that the report can be written under `path`: it is a writable folder, or it does
    /// not exist and its nearest existing ancestor is a writable folder (the writer creates it at the end).
    /// - Throws: `DemoError.resultsFolderUnusable` with the reason.
    static func checkResultsFolder(_ path: String) throws {
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        let url = URL(fileURLWithPath: path).standardizedFileURL
        if fm.fileExists(atPath: url.path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw DemoError.resultsFolderUnusable(path: path, reason: "is a file, not a folder") }
            guard fm.isWritableFile(atPath: url.path) else { throw DemoError.resultsFolderUnusable(path: path, reason: "is not writable") }
            return
        }
        var ancestor = url.deletingLastPathComponent()
        while !fm.fileExists(atPath: ancestor.path, isDirectory: &isDirectory) && ancestor.path != "/" {
            ancestor = ancestor.deletingLastPathComponent()
        }
        guard isDirectory.boolValue else {
            throw DemoError.resultsFolderUnusable(path: path, reason: "cannot be created: \(ancestor.path) is a file")
        }
        guard fm.isWritableFile(atPath: ancestor.path) else {
            throw DemoError.resultsFolderUnusable(path: path, reason: "cannot be created: \(ancestor.path) is not writable")
        }
    }

    // MARK: - Run

    /// Runs all steps and writes the report.
    ///
    /// Nothing is written before every input has been loaded and checked, and the run folder appears in one
    /// rename at the end (`ReportWriter`), so a failure leaves nothing in `resultsFolder`.
    /// - Parameter progress: called synchronously with `DemoEvent`s.
    /// - Returns: the measurements and where the report went.
    /// - Throws: `DemoError`, `DatasetError` (unknown label, empty file, …), model-folder, tokenizer and
    ///   checkpoint errors, `ReportError`, `AdapterError`, `EncoderError`.
    public func run(progress: @escaping (DemoEvent) -> Void = { _ in }) throws -> (DemoResults, ReportOutcome) {
        let resultsURL = URL(fileURLWithPath: settings.resultsFolder)
        let target = resultsURL.appendingPathComponent(settings.runName)
        try Self.checkResultsFolder(settings.resultsFolder)
        if FileManager.default.fileExists(atPath: target.path) { throw DemoError.runExists(path: target.path) }
        let context = ComputeContext(threads: settings.threads)
        var stepSeconds: [String: Double] = [:]
        func timed<T>(_ name: String, _ body: () throws -> T) rethrows -> T {
            let start = Self.wallSeconds(), cpu = Self.processCPUSeconds()
            defer {
                stepSeconds[name] = Self.wallSeconds() - start
                stepSeconds[name + " cpu"] = Self.processCPUSeconds() - cpu
            }
            return try body()
        }

        progress(.step(index: 0, title: "Loading the model and \(settings.tasks.count) task\(settings.tasks.count == 1 ? "" : "s")"))
        try timed("load") { try load(progress: progress) }

        progress(.step(index: 1, title: "Training task adapters (\(regimes(layers: layers).map(\.description).joined(separator: ", ")))"))
        let (model, training) = try timed("train") { try train(context: context, progress: progress) }

        progress(.step(index: 2, title: "Evaluating every adapter at n = 0…\(layers - 1) dropped layers"))
        let evaluations = try timed("evaluate") { try evaluate(model: model, context: context, progress: progress) }

        progress(.step(index: 3, title: "Multi-task inference: Parallel adapters, n = 0…\(layers - 1), 1…\(settings.speedTaskCounts.max()!) tasks"))
        let (speed, mixed) = try timed("speed") {
            (try measureSpeed(model: model, context: context, progress: progress), try measureMixedBatch(model: model, context: context))
        }

        progress(.step(index: 4, title: "AdapterFusion over the task adapters and pruning"))
        let fusion = try timed("fusion") { try fusionStep(model: model, context: context, progress: progress) }

        let results = DemoResults(settings: settings, modelName: pretrained.url.lastPathComponent, layers: layers,
                                  hiddenSize: pretrained.encoder.config.hiddenSize, modelMaxLength: pretrained.maxLength,
                                  tasks: loaded.map(\.summary), training: training, evaluations: evaluations, speed: speed,
                                  mixed: mixed,
                                  fusion: fusion, stepSeconds: stepSeconds)

        progress(.step(index: 5, title: "Writing the report"))
        // The adapters go into a hidden folder first and are renamed into the run folder once the report is in place.
        let fm = FileManager.default
        let staging = resultsURL.appendingPathComponent(".tmp-adapters-\(settings.runName)-\(UUID().uuidString)")
        defer { try? fm.removeItem(at: staging) }
        try saveAdapters(model, into: staging, training: training)
        let writer = ReportWriter(resultsDirectory: resultsURL, gnuplot: gnuplot)
        let outcome = try writer.write(DemoReport.content(results), runName: settings.runName,
                                       machine: machine ?? MachineInfo.current())
        do {
            try fm.moveItem(at: staging, to: outcome.folder.appendingPathComponent("adapters"))
        } catch {
            throw ReportError.ioFailure(path: outcome.folder.appendingPathComponent("adapters").path,
                                        reason: "cannot move the trained adapters into place: \(error.localizedDescription)")
        }
        return (results, outcome)
    }

    // MARK: - Step 0: load

    func load(progress: (DemoEvent) -> Void) throws {
        let fm = FileManager.default
        func requireFolder(_ path: String, _ what: String) throws {
            var isDirectory: ObjCBool = false
            guard fm.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw DemoError.missingFolder(path: path, what: what)
            }
        }
        try requireFolder(settings.modelFolder, "model folder (run scripts/fetch-model.sh)")
        try requireFolder(settings.dataFolder, "data folder (run scripts/fetch-data.sh)")
        pretrained = try PretrainedModel(folder: URL(fileURLWithPath: settings.modelFolder))
        if settings.specializedDrops.contains(where: { $0 >= layers }) {
            throw DemoError.invalidSetting(name: "specialized drops", value: "\(settings.specializedDrops)",
                                           rule: "each in 1...\(layers - 1) (the model has \(layers) layers)")
        }
        guard settings.maxSequenceLength <= pretrained.maxLength else {
            throw DemoError.sequenceLengthTooLong(requested: settings.maxSequenceLength, maximum: pretrained.maxLength,
                                                  model: settings.modelFolder)
        }
        let tokenizer = pretrained.tokenizer
        for (index, name) in settings.tasks.enumerated() {
            let folder = URL(fileURLWithPath: settings.dataFolder).appendingPathComponent(name).path
            try requireFolder(folder, "task folder")
            let task = try TextClassificationTask(folder: folder)
            let train = task.train.shuffled(seed: settings.seed, stream: UInt64(2 * index)).prefix(settings.trainExamplesPerTask)
            let test = task.test.shuffled(seed: settings.seed, stream: UInt64(2 * index + 1)).prefix(settings.testExamplesPerTask)
            guard train.count >= 2 else { throw DemoError.taskTooSmall(task: name, reason: "fewer than 2 training examples") }
            var truncated = 0, tokenCount = 0
            let used = train.examples + test.examples
            let inputs = used.map { e in e.textPair.map { TokenizerInput.pair(e.text, $0) } ?? .single(e.text) }
            let encoded = try tokenizer.encode(batch: inputs, options: EncodingOptions(
                truncation: .longestFirst, maxLength: settings.maxSequenceLength, padding: .doNotPad))
            for (example, encoding) in zip(used, encoded.encodings) {
                if encoding.ids.count >= settings.maxSequenceLength {
                    let full = tokenizer.encode(example.text, pair: example.textPair)
                    if full.ids.count > settings.maxSequenceLength { truncated += 1 }
                }
                tokenCount += encoding.ids.count
                tokens[example] = Tokenized(ids: encoding.ids, typeIds: encoding.typeIDs)
            }
            let summary = DemoTaskSummary(name: name, labels: task.labels, fullTrain: task.train.count,
                                          fullDev: task.dev.count, fullTest: task.test.count, usedTrain: train.count,
                                          usedTest: test.count, trainLabelCounts: train.labelCounts,
                                          testLabelCounts: test.labelCounts, truncated: truncated,
                                          meanTokens: Double(tokenCount) / Double(max(used.count, 1)))
            loaded.append(LoadedTask(summary: summary, labels: task.labels, train: train, test: test))
            progress(.message(String(format: "%@: %d train / %d test examples used (of %d / %d), %d labels, %.1f tokens per text, %d truncated to %d",
                                     name, train.count, test.count, task.train.count, task.test.count, task.labels.count,
                                     summary.meanTokens, truncated, settings.maxSequenceLength)))
        }
    }

    /// Token ids of a batch of loaded examples, padded to the longest.
    func encode(_ batch: [TextExample]) throws -> EncoderInput {
        let rows = batch.map { tokens[$0]! }
        return try EncoderInput(ids: rows.map(\.ids), tokenTypeIds: rows.map(\.typeIds), padTokenId: pretrained.tokenizer.padTokenID)
    }

    // MARK: - Step 1: train

    func train(context: ComputeContext, progress: @escaping (DemoEvent) -> Void) throws -> (AdapterModel, [DemoTrainingRun]) {
        let encoder = pretrained.encoder
        var model = AdapterModel(encoder: encoder, modelName: pretrained.url.lastPathComponent)
        let config = try BottleneckConfig.preset("seq_bn", overrides: ["reduction_factor": .int(settings.reductionFactor)])
        var runs: [DemoTrainingRun] = []
        for (taskIndex, task) in loaded.enumerated() {
            for (regimeIndex, regime) in regimes(layers: layers).enumerated() {
                let name = Self.adapterName(task: task.summary.name, regime: regime)
                let seed = settings.seed &+ UInt64(1000 * taskIndex + 10 * regimeIndex)
                let stepsPerEpoch = (task.train.count + settings.batchSize - 1) / settings.batchSize
                let steps = stepsPerEpoch * settings.epochs
                var options = AdapterTrainingOptions()
                options.batchSize = settings.batchSize
                options.epochs = settings.epochs
                options.learningRate = settings.learningRate
                options.warmupSteps = Int((Double(steps) * settings.warmupFraction).rounded())
                options.policy = regime.policy(layers: layers)
                options.seed = seed
                let label = "\(task.summary.name) / \(regime)"
                let start = Self.wallSeconds()
                let reporter = DemoTrainingReporter(label: label, emit: progress)
                var examples = 0
                let result = try model.trainAdapter(name, on: task.train, config: config, options: options, seed: seed,
                                                    context: context, progress: reporter) { [self] batch in
                    examples += batch.count
                    return try encode(batch)
                }
                let seconds = Self.wallSeconds() - start
                let tenth = max(1, result.losses.count / 10)
                let first = result.losses.prefix(tenth).map(Double.init).reduce(0, +) / Double(tenth)
                let last = result.losses.suffix(tenth).map(Double.init).reduce(0, +) / Double(tenth)
                reporter.done(lastLoss: last)
                runs.append(DemoTrainingRun(task: task.summary.name, regime: regime, steps: result.losses.count,
                                            examples: examples, seconds: seconds, firstLoss: first, lastLoss: last,
                                            meanDroppedLayers: Double(result.droppedLayers.reduce(0, +)) / Double(max(result.droppedLayers.count, 1))))
            }
        }
        return (model, runs)
    }

    // MARK: - Step 2: evaluate

    func evaluate(model: AdapterModel, context: ComputeContext, progress: (DemoEvent) -> Void) throws -> [DemoEvaluation] {
        let regimes = regimes(layers: layers)
        var out: [DemoEvaluation] = []
        let start = Self.wallSeconds()
        let total = loaded.count * layers
        var done = 0
        for task in loaded {
            // All regimes of a task in one Parallel block: layers below n run once for all of them.
            let names = regimes.map { Self.adapterName(task: task.summary.name, regime: $0) }
            let setup: AdapterComposition = names.count == 1 ? .adapter(names[0]) : .parallel(names.map { .adapter($0) })
            let batches = task.test.batches(size: settings.evaluationBatchSize)
            let labels = task.test.examples.map(\.label)
            for n in 0..<layers {
                var predictions = [[Int]](repeating: [], count: names.count)
                for batch in batches {
                    let output = try model(try encode(batch), setup: setup, heads: names,
                                           skipLayers: Set(AdapterDropPolicy.skippedLayers(dropping: n)), context: context)
                    for (i, name) in names.enumerated() {
                        predictions[i] += Self.argmaxRows(output[head: name]!)
                    }
                }
                for (i, regime) in regimes.enumerated() {
                    let m = EvaluationMetrics.classification(predictions: predictions[i], labels: labels, classes: task.labels.count)
                    out.append(DemoEvaluation(task: task.summary.name, regime: regime, droppedLayers: n,
                                              accuracy: m.accuracy ?? 0, macroF1: m.macroF1 ?? 0, count: m.count))
                }
                done += 1
                progress(.work(label: "evaluate \(task.summary.name)", done: done, total: total, elapsed: Self.wallSeconds() - start))
            }
        }
        return out
    }

    static func argmaxRows(_ logits: Tensor) -> [Int] {
        let rows = logits.shape[0], width = logits.count / max(rows, 1), v = logits.scalars
        return (0..<rows).map { r in
            var best = 0
            for j in 1..<max(width, 1) where v[r * width + j] > v[r * width + best] { best = j }
            return best
        }
    }

    // MARK: - Step 3: speed

    /// The texts of the speed table, taken in turn from each task's test sample, with the index of their task.
    func speedTexts() -> [(example: TextExample, task: Int)] {
        var out: [(example: TextExample, task: Int)] = []
        var i = 0
        while out.count < settings.speedBatchSize {
            var added = false
            for (t, task) in loaded.enumerated() where i < task.test.count && out.count < settings.speedBatchSize {
                out.append((task.test.examples[i], t))
                added = true
            }
            if !added { break }
            i += 1
        }
        return out
    }

    /// A mixed-task batch (`AdapterModel.mixedTaskLogits`): each speed text through its own task's robust adapter
    /// and head only, one encoder pass, at n = 0…L−1; accuracy against each text's own label.
    func measureMixedBatch(model: AdapterModel, context: ComputeContext) throws -> [DemoMixedRow] {
        let texts = speedTexts()
        let input = try encode(texts.map(\.example))
        let tasks = texts.map { Self.adapterName(task: loaded[$0.task].summary.name, regime: .robust) }
        var rows: [DemoMixedRow] = []
        var wall = [[Double]](repeating: [], count: layers)
        var correct = [Int](repeating: 0, count: layers)
        _ = try model.mixedTaskLogits(input, tasks: tasks, droppedLayers: 0, context: context)  // warm-up
        for repetition in 0..<settings.speedRepetitions {
            for n in 0..<layers {
                let t0 = Self.wallSeconds()
                let logits = try model.mixedTaskLogits(input, tasks: tasks, droppedLayers: n, context: context)
                wall[n].append(Self.wallSeconds() - t0)
                if repetition == 0 {
                    for (l, text) in zip(logits, texts) where Self.argmaxRows(l.reshaped([1, l.count]))[0] == text.example.label {
                        correct[n] += 1
                    }
                }
            }
        }
        for n in 0..<layers {
            rows.append(DemoMixedRow(droppedLayers: n, texts: texts.count, tasks: Set(tasks).count, seconds: Self.median(wall[n]),
                                     accuracy: Double(correct[n]) / Double(max(texts.count, 1))))
        }
        return rows
    }

    func measureSpeed(model: AdapterModel, context: ComputeContext, progress: (DemoEvent) -> Void) throws -> [DemoSpeedRow] {
        let texts = speedTexts()
        let input = try encode(texts.map(\.example))
        let names = loaded.map { Self.adapterName(task: $0.summary.name, regime: .robust) }
        var rows: [DemoSpeedRow] = []
        let start = Self.wallSeconds()
        let counts = settings.speedTaskCounts.sorted()
        let total = counts.count * settings.speedRepetitions
        var done = 0
        for count in counts {
            let active = Array(names.prefix(count))
            let setup: AdapterComposition = count == 1 ? .adapter(active[0]) : .parallel(active.map { .adapter($0) })
            func run(_ n: Int) throws {
                _ = try model(input, setup: setup, heads: active, skipLayers: Set(0..<n), context: context)
            }
            try run(0)  // warm-up (workspaces, page faults); also surfaces errors before timing
            var wall = [[Double]](repeating: [], count: layers), cpu = wall
            // Round-robin over n within each repetition, so slow phases of a shared machine hit every n alike.
            for _ in 0..<settings.speedRepetitions {
                for n in 0..<layers {
                    let w0 = Self.wallSeconds(), c0 = Self.processCPUSeconds()
                    try run(n)
                    cpu[n].append(Self.processCPUSeconds() - c0)
                    wall[n].append(Self.wallSeconds() - w0)
                }
                done += 1
                progress(.work(label: "time \(count) task\(count == 1 ? "" : "s")", done: done, total: total,
                               elapsed: Self.wallSeconds() - start))
            }
            for n in 0..<layers {
                rows.append(DemoSpeedRow(tasks: count, droppedLayers: n, texts: texts.count, seconds: Self.median(wall[n]),
                                         baselineSeconds: Self.median(wall[0]), cpuSeconds: Self.median(cpu[n]),
                                         baselineCPUSeconds: Self.median(cpu[0]), layers: layers))
            }
        }
        return rows
    }

    // MARK: - Saving the adapters

    /// Saves every trained adapter with its head into `folder/<name>/` (AdapterHub layout, loadable by
    /// `adapterdrop predict --adapter`).
    func saveAdapters(_ model: AdapterModel, into folder: URL, training: [DemoTrainingRun]) throws {
        for run in training {
            let name = Self.adapterName(task: run.task, regime: run.regime)
            try model.saveAdapter(name, to: folder.appendingPathComponent(name))
        }
    }

    // MARK: - Clocks

    static func wallSeconds() -> Double { Double(DispatchTime.now().uptimeNanoseconds) * 1e-9 }

    static func processCPUSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    static func median(_ values: [Double]) -> Double {
        let s = values.sorted()
        guard !s.isEmpty else { return .nan }
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }
}

import AdapterCore
import AdapterDrop
import ArgumentParser
import Foundation

/// Options shared by `train` and `fuse`: the run's hyper-parameters, AdapterDrop, checkpoints, output.
struct TrainingRunOptions: ParsableArguments {
    @Option(help: "AdapterDrop, specialized: drop the adapters of the lowest n layers in training (and evaluate with n).")
    var drop: Int?
    @Option(name: .customLong("robust-drop"), help: "AdapterDrop, robust: draw n per batch from LO...HI (inclusive), e.g. 0...11.")
    var robustDrop: String?
    @Option(help: "Passes over the training set.")
    var epochs: Int = 3
    @Option(name: .customLong("batch-size"), help: "Examples per forward/backward pass (per optimizer step without --grad-accumulation).")
    var batchSize: Int = 16
    @Option(name: .customLong("grad-accumulation"),
            help: ArgumentHelp("Gradient accumulation: sum the gradients of K batches, then clip and take one optimizer step (K × --batch-size examples a step; schedule, checkpoints and --checkpoint-every count optimizer steps).", valueName: "K"))
    var gradAccumulation: Int = 1
    @Option(name: .customLong("problem-type"),
            help: "What the head learns from the label field: classification (a class name; cross-entropy), regression (a number; MSE; Pearson/Spearman), multi-label (label names: a JSON array in JSONL, a|b in CSV; binary cross-entropy).")
    var problemType: ProblemType = .classification
    @Option(help: "Peak learning rate (AdamW, linear warm-up and decay).")
    var lr: Double = 1e-4
    @Option(name: .customLong("warmup-steps"), help: "Linear warm-up steps.")
    var warmupSteps: Int = 0
    @Option(name: .customLong("weight-decay"), help: "AdamW weight decay on weights (biases: 0).")
    var weightDecay: Double = 0.01
    @Option(name: .customLong("max-grad-norm"), help: "Clip the global gradient norm to this (0: no clipping).")
    var maxGradNorm: Double = 1.0
    @Option(help: "Seed of initialisation, batch order, AdapterDrop draws and dropout.")
    var seed: UInt64 = 0
    @Option(name: .customLong("max-length"), help: "Truncate inputs to this many tokens (longest first).")
    var maxLength: Int = 128
    @Flag(name: .customLong("no-dropout"), help: "Train without the encoder's dropout.")
    var noDropout = false
    @Flag(name: .customLong("skip-nonfinite"), help: "Skip steps whose loss or gradient is NaN/Inf (counted) instead of stopping.")
    var skipNonFinite = false
    @Option(help: "Checkpoint folder, replaced atomically every --checkpoint-every steps and at the end.")
    var checkpoint: String?
    @Option(name: .customLong("checkpoint-every"), help: "Steps between checkpoints.")
    var checkpointEvery: Int?
    @Option(help: "Resume from this checkpoint folder (same options and data).")
    var resume: String?
    @Option(help: "Output folder (must not exist or be empty unless --overwrite); written atomically at the end.")
    var out: String
    @Flag(help: "Replace a non-empty --out folder.")
    var overwrite = false

    func validate() throws {
        if drop != nil && robustDrop != nil { throw ValidationError("give at most one of --drop and --robust-drop") }
        if let drop, drop < 0 { throw ValidationError("--drop must be ≥ 0, got \(drop)") }
        if let robustDrop { _ = try Self.parseRange(robustDrop) }
        guard epochs >= 1 else { throw ValidationError("--epochs must be at least 1, got \(epochs)") }
        let maxSteps = AdapterTrainingOptions.maximumTotalSteps
        guard epochs <= maxSteps else {
            throw ValidationError("--epochs \(epochs): at most \(maxSteps) (a run has at most \(maxSteps) optimizer steps)")
        }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1, got \(batchSize)") }
        guard gradAccumulation >= 1 else { throw ValidationError("--grad-accumulation must be at least 1, got \(gradAccumulation)") }
        guard lr.isFinite && lr >= 0 else { throw ValidationError("--lr must be finite and ≥ 0, got \(lr)") }
        guard warmupSteps >= 0 else { throw ValidationError("--warmup-steps must be ≥ 0, got \(warmupSteps)") }
        guard maxGradNorm.isFinite && maxGradNorm >= 0 else { throw ValidationError("--max-grad-norm must be ≥ 0, got \(maxGradNorm)") }
        guard maxLength >= 2 else { throw ValidationError("--max-length must be at least 2, got \(maxLength)") }
        if let checkpointEvery, checkpointEvery < 1 { throw ValidationError("--checkpoint-every must be at least 1") }
        if checkpointEvery != nil && checkpoint == nil { throw ValidationError("--checkpoint-every needs --checkpoint DIR") }
        if let checkpoint {
            // Both folders are replaced as a whole (atomic rename), so neither may be, hold or lie in the other.
            let c = Self.canonicalPath(checkpoint), o = Self.canonicalPath(out)
            if c == o {
                throw ValidationError("--checkpoint \(checkpoint) and --out \(out) are the same folder; give two different folders")
            }
            if c.hasPrefix(o.hasSuffix("/") ? o : o + "/") || o.hasPrefix(c.hasSuffix("/") ? c : c + "/") {
                throw ValidationError("--checkpoint \(checkpoint) and --out \(out): one folder lies inside the other; give two separate folders")
            }
        }
    }

    /// `path` absolute, without `.`/`..` components, symbolic links resolved (as far as the path exists).
    static func canonicalPath(_ path: String) -> String {
        URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath().path
    }

    /// `LO...HI` (or `LO..HI`, `LO-HI`) → `LO...HI`.
    static func parseRange(_ text: String) throws -> ClosedRange<Int> {
        for separator in ["...", "..", "-"] {
            let parts = text.components(separatedBy: separator)
            if parts.count == 2, let lo = Int(parts[0].trimmingCharacters(in: .whitespaces)),
               let hi = Int(parts[1].trimmingCharacters(in: .whitespaces)) {
                guard lo >= 0 && lo <= hi else { throw ValidationError("--robust-drop \(text): need 0 ≤ LO ≤ HI") }
                return lo...hi
            }
        }
        throw ValidationError("--robust-drop \(text): expected LO...HI, e.g. 0...11")
    }

    var policy: AdapterDropPolicy {
        if let drop { return .specialized(droppedLayers: drop) }
        if let robustDrop, let range = try? Self.parseRange(robustDrop) { return .robust(droppedLayers: range) }
        return .none
    }

    /// Refuses a `--drop` / `--robust-drop` that drops more layers than the model has (before training).
    /// - Throws: `CLIError` naming the option, its value and the layer count.
    func checkDropFits(layers: Int) throws {
        if let drop, drop > layers {
            throw CLIError("--drop \(drop): the model has \(layers) layers (n in 0...\(layers))")
        }
        if let robustDrop, let range = try? Self.parseRange(robustDrop), range.upperBound > layers {
            throw CLIError("--robust-drop \(robustDrop): the model has \(layers) layers (LO...HI within 0...\(layers))")
        }
    }

    /// The n to evaluate with: the specialized n, else 0.
    var evaluationDrop: Int { drop ?? 0 }

    var trainingOptions: AdapterTrainingOptions {
        var o = AdapterTrainingOptions()
        o.batchSize = batchSize
        o.gradientAccumulationSteps = gradAccumulation
        o.epochs = epochs
        o.learningRate = lr
        o.warmupSteps = warmupSteps
        o.weightDecay = weightDecay
        o.maxGradientNorm = maxGradNorm > 0 ? maxGradNorm : nil
        o.policy = policy
        o.seed = seed
        o.useDropout = !noDropout
        o.nonFinite = skipNonFinite ? .skipStep : .stop
        o.checkpointFolder = checkpoint.map { URL(fileURLWithPath: $0) }
        o.checkpointEvery = checkpointEvery
        return o
    }

    /// Refuses an existing non-empty `--out` (before any work is done) unless `--overwrite`.
    func checkOutputFolder() throws { try AdapterDropCLI.checkOutputFolder(out, overwrite: overwrite) }

    /// The end of `train` and `fuse`: trains (progress on stderr, resuming from `--resume`), evaluates on the dev
    /// data with `evaluationDrop`, writes `--out` atomically — `save(result, folder)` writes the trained weights,
    /// then `training_result.json` — and prints the dev metrics (text, or one JSON line with `json`).
    /// A run that skipped steps (`--skip-nonfinite`) prints a warning with the count; one whose dev loss is not finite
    /// fails before writing anything.
    /// - Throws: the trainer's and `save`'s errors, `TrainingError.checkpointWriteFailed` for `--out`, `CLIError` for a
    ///   non-finite dev loss or an `--out` filled by another process meanwhile.
    func trainEvaluateAndSave(_ trainer: AdapterTrainer, data: TrainingData, task: String, maxLength: Int, json: Bool,
                              context: ComputeContext, save: (AdapterTrainingResult, URL) throws -> Void) throws {
        trainer.progress = ConsoleTrainingProgress()
        let result = try trainer.train(on: data.train.dataset, targets: data.train.targets,
                                       resumingFrom: resume.map { URL(fileURLWithPath: $0) }, context: context)
        let metrics = try trainer.evaluate(on: data.dev.dataset, targets: data.dev.targets, droppedLayers: evaluationDrop,
                                           batchSize: batchSize, context: context)
        let skipped = result.skippedSteps.count
        if skipped > 0 {
            FileHandle.standardError.write(Data("warning: --skip-nonfinite skipped \(skipped) of \(result.steps) optimizer steps (NaN/Inf loss or gradient)\n".utf8))
        }
        // A model whose dev loss is NaN/Inf is useless: refuse to save it (the run without --skip-nonfinite stops
        // at the first non-finite step instead).
        guard metrics.loss.isFinite else {
            throw CLIError("the trained model's dev loss is \(metrics.loss.isNaN ? "nan" : "\(metrics.loss)") (\(skipped) of \(result.steps) steps skipped for NaN/Inf); "
                           + "nothing was written to --out \(out) (lower --lr, or clip with --max-grad-norm)")
        }
        var report = TrainingReport(task: task, result: result, n: evaluationDrop, metrics: metrics)
        report.problemType = problemType.rawValue
        report.maxLength = maxLength
        let (examplesPerStep, overflow) = batchSize.multipliedReportingOverflow(by: gradAccumulation)
        report.examplesPerStep = overflow ? Int.max : examplesPerStep
        let reportData = try report.encoded(pretty: true)
        try publishOutputFolder(out, overwrite: overwrite) { folder in
            try save(result, folder)
            try reportData.write(to: folder.appendingPathComponent("training_result.json"), options: .atomic)
        }
        try printDevMetrics(report, metrics, json: json, label: "dev \(data.dev.dataset.source)")
    }
}

/// Refuses an existing non-empty output folder `out` (before any work is done) unless `overwrite`; a path that
/// exists and is not a folder is always refused, and so is a folder whose parent cannot be written (the folder
/// is built in a sibling and renamed into place: `TrainerCheckpoint.writeFolderAtomically`). Shared by every
/// command that writes an `--out` folder.
/// - Throws: `CLIError` naming `--out`.
func checkOutputFolder(_ out: String, overwrite: Bool) throws {
    try checkParentWritable(out, option: "--out")
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: out, isDirectory: &isDirectory) else { return }
    guard isDirectory.boolValue else { throw CLIError("--out \(out): exists and is not a folder") }
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: out)) ?? []
    if !entries.isEmpty && !overwrite { throw CLIError("--out \(out): folder is not empty (pass --overwrite to replace it)") }
}

/// Writes the `--out` folder `out` atomically at the end of a command (`TrainerCheckpoint.writeFolderAtomically`).
/// Without `overwrite` it never replaces a non-empty folder, so when another process published `out` after
/// `checkOutputFolder` passed, this run fails instead of silently replacing that result (or being replaced).
/// - Throws: `CLIError` naming `--out` for such a folder; the other errors of `writeFolderAtomically`.
func publishOutputFolder(_ out: String, overwrite: Bool, write: (URL) throws -> Void) throws {
    do {
        try TrainerCheckpoint.writeFolderAtomically(URL(fileURLWithPath: out), replacing: overwrite, write: write)
    } catch TrainingError.folderExists {
        throw CLIError("--out \(out): the folder was filled by another process meanwhile; nothing was written (pass --overwrite to replace it)")
    }
}

/// Rejects, before training, a batch × sequence whose training `MemoryEstimate` exceeds the limit.
/// - Throws: `MemoryLimitError` with the estimate and the limit.
func checkTrainingMemory(_ config: BertConfig, batch: Int, sequenceLength: Int, runtime: RuntimeOptions) throws {
    try MemoryEstimate(config: config, batch: batch, sequenceLength: sequenceLength, mode: .training,
                       threads: runtime.threads).check(limitBytes: try runtime.memoryLimitBytes())
}

/// `--problem-type`: the kind of head `train` and `fuse` train (`TrainingTaskKind`).
enum ProblemType: String, ExpressibleByArgument, CaseIterable {
    case classification, regression
    case multiLabel = "multi-label"

    /// The trainer's task kind.
    var kind: TrainingTaskKind {
        switch self {
        case .classification: return .classification
        case .regression: return .regression
        case .multiLabel: return .multiLabel
        }
    }
}

/// Labels from `--labels a,b,c` (at least `minimum`).
func parseLabelList(_ text: String?, minimum: Int = 2) throws -> [String]? {
    guard let text else { return nil }
    let labels = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
    if let empty = labels.firstIndex(of: "") { throw CLIError("--labels: label \(empty + 1) is empty") }
    var seen = Set<String>()
    if let twice = labels.first(where: { !seen.insert($0).inserted }) { throw CLIError("--labels: label \"\(twice)\" is given twice") }
    guard labels.count >= minimum else { throw CLIError("--labels: need at least \(minimum) labels, got \(labels.count)") }
    return labels
}

/// The texts and targets of a training and a dev file for a head of kind `kind`, and the head's label names
/// (classes or multi-label names: `--labels`, else the training file's, sorted; the dev file must use them;
/// none for regression).
/// - Throws: `CLIError` for `--labels` that do not fit the kind or fewer than 2 classes; `DatasetError` naming the
///   file, line and value for bad labels (`TrainingTargets.load`).
func loadTrainingData(train: String, dev: String, labels: String?, kind: TrainingTaskKind) throws -> TrainingData {
    if kind == .regression && labels != nil { throw CLIError("--labels: a regression head has no labels (the label field is a number)") }
    let given = try parseLabelList(labels, minimum: kind == .multiLabel ? 1 : 2)
    let trainData = try TrainingTargets.load(contentsOf: train, kind: kind, labels: given)
    let names = kind == .regression ? [] : trainData.dataset.labels
    if kind == .classification && names.count < 2 {
        throw CLIError("\(train): found \(names.count) label(s) \(names); classification needs at least 2 (or pass --labels)")
    }
    let devData = try TrainingTargets.load(contentsOf: dev, kind: kind, labels: kind == .regression ? nil : names)
    return TrainingData(train: trainData, dev: devData, labels: names)
}

/// The texts and targets `train` and `fuse` train and evaluate on (`loadTrainingData`).
struct TrainingData {
    var train: (dataset: TextClassificationDataset, targets: TrainingTargets)
    var dev: (dataset: TextClassificationDataset, targets: TrainingTargets)
    /// The head's class or label names (empty for regression).
    var labels: [String]
}

/// A new head for `kind` on the [CLS] state: classification over `labels` (its `label2id` holds the names, so
/// `predict` prints them and `eval` maps the data through them), regression (one output, no labels), or
/// multi-label over `labels` (`multilabel_classification`).
func trainingHead(name: String, kind: TrainingTaskKind, labels: [String], hiddenSize: Int, seed: UInt64) -> PredictionHead {
    switch kind {
    case .classification:
        return classificationHead(name: name, labels: labels, hiddenSize: hiddenSize, seed: seed)
    case .regression:
        return PredictionHead(name: name, config: .classification(numLabels: 1), hiddenSize: hiddenSize, seed: seed)
    case .multiLabel:
        var config = PredictionHeadConfig.classification(numLabels: labels.count)
        config.headType = .multiLabelClassification
        config.label2id = Dictionary(uniqueKeysWithValues: labels.enumerated().map { ($1, $0) })
        return PredictionHead(name: name, config: config, hiddenSize: hiddenSize, seed: seed)
    }
}

/// Checks an adapter/head/fusion name given on the command line (it becomes part of tensor keys and file names).
func checkName(_ name: String, option: String) throws {
    let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "_-."))
    guard !name.isEmpty, name.unicodeScalars.allSatisfy(allowed.contains) else {
        throw CLIError("\(option) \"\(name)\": use letters, digits, _ - . only")
    }
}

/// The `"name"` of an adapter folder's `adapter_config.json`.
func adapterName(inFolder folder: String) throws -> String {
    let path = URL(fileURLWithPath: folder).appendingPathComponent("adapter_config.json").path
    guard let data = FileManager.default.contents(atPath: path) else { throw CLIError("\(path): cannot read file") }
    guard let name = try AdapterJSON.parse(data, file: path).objectValue?["name"]?.stringValue else {
        throw CLIError("\(path): missing key \"name\"")
    }
    return name
}

/// A batch encoder: tokenize (text or text pair), truncate longest-first to `maxLength`, pad to the longest.
func trainingBatchEncoder(_ tokenizer: SubwordTokenizer, maxLength: Int) -> AdapterTrainer.BatchEncoder {
    { batch in
        let inputs: [TokenizerInput] = batch.map { e in e.textPair.map { .pair(e.text, $0) } ?? .single(e.text) }
        let encoding = try tokenizer.encode(batch: inputs, options: EncodingOptions(truncation: .longestFirst, maxLength: maxLength,
                                                                                   padding: .longest))
        return try EncoderInput(encoding, padTokenId: tokenizer.padTokenID)
    }
}

/// A classification head whose `label2id` holds the dataset's label names.
func classificationHead(name: String, labels: [String], hiddenSize: Int, seed: UInt64) -> PredictionHead {
    var config = PredictionHeadConfig.classification(numLabels: labels.count)
    config.label2id = Dictionary(uniqueKeysWithValues: labels.enumerated().map { ($1, $0) })
    return PredictionHead(name: name, config: config, hiddenSize: hiddenSize, seed: seed)
}

/// What `train`/`fuse` write as `training_result.json` beside the weights, and print with `--json`.
struct TrainingReport: Encodable {
    var task: String
    var steps: Int
    var skippedSteps: [Int]
    /// Per-step histories (nil: left out, as in the compact `--json` line).
    var losses: [Float]?
    var droppedLayers: [Int]?
    var evaluationDroppedLayers: Int
    var dev: [String: Double?]
    /// `--problem-type` (classification, regression, multi-label).
    var problemType = ProblemType.classification.rawValue
    /// Examples per optimizer step: `--batch-size` × `--grad-accumulation`.
    var examplesPerStep = 0
    /// The tokens inputs were truncated to (`--max-length`, capped by the model): `eval` uses it by default.
    var maxLength: Int?

    enum CodingKeys: String, CodingKey {
        case task, steps, losses, dev
        case skippedSteps = "skipped_steps", droppedLayers = "dropped_layers", evaluationDroppedLayers = "evaluation_dropped_layers"
        case problemType = "problem_type", examplesPerStep = "examples_per_step", maxLength = "max_length"
    }

    init(task: String, result: AdapterTrainingResult, n: Int, metrics: EvaluationMetrics) {
        self.task = task
        steps = result.steps
        skippedSteps = result.skippedSteps
        losses = result.losses.map { $0.isFinite ? $0 : .nan }
        droppedLayers = result.droppedLayers
        evaluationDroppedLayers = n
        dev = Dictionary(uniqueKeysWithValues: metrics.namedValues.map { ($0.0, $0.1.isFinite ? $0.1 : nil) })
    }

    func encoded(pretty: Bool) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.prettyPrinted, .sortedKeys] : [.sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return try encoder.encode(self)
    }
}

/// Prints dev metrics as text or JSON.
func printDevMetrics(_ report: TrainingReport, _ metrics: EvaluationMetrics, json: Bool, label: String) throws {
    if json {  // compact: the histories stay in training_result.json (left out here, not printed empty)
        var short = report
        short.losses = nil
        short.droppedLayers = nil
        print(String(decoding: try short.encoded(pretty: false), as: UTF8.self))
    } else {
        print("\(label) (\(metrics.count) examples, n = \(report.evaluationDroppedLayers)): \(metrics.summary)")
    }
}

/// `adapterdrop train`: train one bottleneck adapter + prediction head with AdapterDrop.
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a bottleneck adapter and a prediction head (AdapterHub layout) with AdapterDrop.",
        discussion: """
        Data: JSONL ({"text", ["text_pair",] "label"}) or CSV with the same columns; the label is a class name, \
        a number (--problem-type regression) or a list of label names (--problem-type multi-label: \
        ["a", "b"] in JSONL, a|b in CSV). Progress goes to stderr \
        (a progress line on a terminal, log lines otherwise); the dev metrics to stdout. --out receives \
        adapter_config.json, adapter.safetensors, head_config.json, model_head.safetensors (loadable \
        by `adapterdrop predict --adapter DIR`) and training_result.json, all at once at the end.
        """)

    @OptionGroup var model: ModelFolderOption
    @Option(help: "Training data (.jsonl or .csv).")
    var train: String
    @Option(help: "Development data for the final metrics (.jsonl or .csv).")
    var dev: String
    @Option(help: "Task name: the adapter's and the head's name.")
    var task: String
    @Option(help: "Class (or multi-label) names in index order, comma-separated (default: the training file's labels, sorted).")
    var labels: String?
    @Option(help: "Adapter config preset: seq_bn, double_seq_bn, pfeiffer, houlsby.")
    var config: String = "seq_bn"
    @Option(name: .customLong("reduction-factor"), help: "Hidden size / bottleneck size.")
    var reductionFactor: Int = 16
    @OptionGroup var options: TrainingRunOptions
    @OptionGroup var runtime: RuntimeOptions
    @OptionGroup var output: OutputOptions

    func validate() throws {
        guard ["seq_bn", "double_seq_bn", "pfeiffer", "houlsby"].contains(config) else {
            throw ValidationError("--config \(config): expected seq_bn, double_seq_bn, pfeiffer or houlsby")
        }
        guard reductionFactor >= 1 else { throw ValidationError("--reduction-factor must be at least 1, got \(reductionFactor)") }
        try checkName(task, option: "--task")
    }

    func run() throws {
        try options.checkOutputFolder()
        let context = runtime.context()
        let pretrained = try model.pretrained()
        let kind = options.problemType.kind
        let data = try loadTrainingData(train: train, dev: dev, labels: labels, kind: kind)
        try options.checkDropFits(layers: pretrained.encoder.config.numHiddenLayers)
        try checkTrainingMemory(pretrained.encoder.config, batch: min(options.batchSize, data.train.dataset.count),
                                sequenceLength: min(options.maxLength, pretrained.maxLength), runtime: runtime)
        let hidden = pretrained.encoder.config.hiddenSize, layers = pretrained.encoder.config.numHiddenLayers
        let adapterConfig = try BottleneckConfig.preset(config, overrides: ["reduction_factor": .int(reductionFactor)])
        guard hidden / reductionFactor >= 1 else {
            throw CLIError("--reduction-factor \(reductionFactor): larger than the hidden size \(hidden)")
        }
        let adapter = try BottleneckAdapter(name: task, config: adapterConfig, hiddenSize: hidden, numLayers: layers, seed: options.seed)
        let head = trainingHead(name: task, kind: kind, labels: data.labels, hiddenSize: hidden, seed: options.seed &+ 1)
        let trainer = try AdapterTrainer(encoder: pretrained.encoder, adapter: adapter, head: head, options: options.trainingOptions,
                                         encode: trainingBatchEncoder(pretrained.tokenizer, maxLength: min(options.maxLength, pretrained.maxLength)))
        var adapterModel = AdapterModel(encoder: pretrained.encoder, modelName: URL(fileURLWithPath: model.path).lastPathComponent)
        try options.trainEvaluateAndSave(trainer, data: data, task: task, maxLength: min(options.maxLength, pretrained.maxLength),
                                         json: output.json, context: context) { result, folder in
            try adapterModel.addAdapter(result.adapter)
            adapterModel.addHead(result.head)
            try adapterModel.saveAdapter(task, to: folder)
        }
    }
}

/// `adapterdrop fuse`: train an AdapterFusion (dynamic preset) over frozen adapters, plus a prediction head.
struct Fuse: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train an AdapterFusion over frozen adapters and a prediction head (classification, regression or multi-label).",
        discussion: """
        --out receives adapter_fusion_config.json, model_adapter_fusion.safetensors and the head's files \
        (head name = --task); use with `adapterdrop predict --adapter A --adapter B --fusion OUT --head-folder OUT \
        --setup "Fuse(A,B)"`.
        """)

    @OptionGroup var model: ModelFolderOption
    @OptionGroup var adapters: AdapterFolderOptions
    @Option(help: "Training data (.jsonl or .csv).")
    var train: String
    @Option(help: "Development data (.jsonl or .csv).")
    var dev: String
    @Option(help: "Name of the head trained with the fusion.")
    var task: String = "fusion"
    @Option(help: "Class (or multi-label) names in index order, comma-separated (default: the training file's labels, sorted).")
    var labels: String?
    @OptionGroup var options: TrainingRunOptions
    @OptionGroup var runtime: RuntimeOptions
    @OptionGroup var output: OutputOptions

    func validate() throws {
        guard adapters.folders.count >= 2 else {
            throw ValidationError("give at least two --adapter folders (trained adapters, frozen), got \(adapters.folders.count)")
        }
        try checkName(task, option: "--task")
    }

    func run() throws {
        try options.checkOutputFolder()
        let context = runtime.context()
        let tokenizer = try PretrainedModel.loadTokenizer(at: try model.folder())
        var adapterModel = try AdapterModel.loading(modelFolder: model.path, adapterFolders: adapters.folders)
        if adapterModel.heads[task] != nil {
            // The fusion's head would replace the adapter's head of the same name (in this model and in `predict`).
            let owner = adapters.folders.first { (try? adapterName(inFolder: $0)) == task }
            throw CLIError("--task \(task) collides with the head \"\(task)\" of " + (owner.map { "--adapter \($0)" } ?? "an --adapter folder")
                           + "; give the fusion's head another name")
        }
        let encoder = adapterModel.encoder
        // The adapters in the order given (folder → the adapter it holds).
        var members: [BottleneckAdapter] = []
        for folder in adapters.folders {
            let config = try adapterName(inFolder: folder)
            guard let a = adapterModel.adapters[config] else { throw CLIError("\(folder): adapter \(config) did not load") }
            members.append(a)
        }
        let kind = options.problemType.kind
        let data = try loadTrainingData(train: train, dev: dev, labels: labels, kind: kind)
        try options.checkDropFits(layers: encoder.config.numHiddenLayers)
        try checkTrainingMemory(encoder.config, batch: min(options.batchSize, data.train.dataset.count),
                                sequenceLength: min(options.maxLength, encoder.maximumSequenceLength), runtime: runtime)
        let hidden = encoder.config.hiddenSize
        let fusion = try AdapterFusion(adapters: members, config: .dynamicPreset, hiddenSize: hidden,
                                       numLayers: encoder.config.numHiddenLayers, seed: options.seed)
        let scoreDropout = Float(fusion.config.dropoutProbability ?? encoder.config.attentionProbsDropoutProb ?? 0.1)
        let module = try AdapterFusionTrainingModule(fusion, adapters: adapterModel.adapters,
                                                     scoreDropout: options.noDropout ? 0 : scoreDropout)
        let head = trainingHead(name: task, kind: kind, labels: data.labels, hiddenSize: hidden, seed: options.seed &+ 1)
        let trainer = try AdapterTrainer(encoder: encoder, module: module, heads: [head], options: options.trainingOptions,
                                         encode: trainingBatchEncoder(tokenizer, maxLength: min(options.maxLength, encoder.maximumSequenceLength)))
        try options.trainEvaluateAndSave(trainer, data: data, task: task, maxLength: min(options.maxLength, encoder.maximumSequenceLength),
                                         json: output.json, context: context) { result, folder in
            let trained = module.fusion
            try adapterModel.addFusion(trained)
            adapterModel.addHead(result.head)
            try adapterModel.saveFusion(trained.name, to: folder)
            try adapterModel.saveHead(task, to: folder)
        }
    }
}

/// `adapterdrop eval`: metrics of a trained adapter + head on a labelled file, with AdapterDrop.
struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate an adapter and its head on labelled data: accuracy, macro-F1, Matthews correlation (classification); Pearson, Spearman, MSE (regression); exact match, macro-F1 (multi-label).",
        discussion: """
        The head's kind decides how the label field is read: a class name (classification), a number (a head with \
        one output: regression) or a list of label names (multilabel_classification: ["a", "b"] in JSONL, a|b in CSV).
        """)

    @OptionGroup var model: ModelFolderOption
    @OptionGroup var adapters: AdapterFolderOptions
    @Option(help: "Labelled data (.jsonl or .csv); class and label names must be among the head's label2id.")
    var data: String
    @Option(name: .customLong("skip-layers"), help: "AdapterDrop: comma-separated layers without adapters, e.g. 0,1,2.")
    var skipLayers: String?
    @Option(help: "AdapterDrop: drop the adapters of the lowest n layers.")
    var drop: Int?
    @Option(name: .customLong("batch-size"), help: "Examples per forward pass.")
    var batchSize: Int = 32
    @Option(name: .customLong("max-length"),
            help: "Truncate inputs to this many tokens (longest first) (default: the max_length in the adapter folder's training_result.json, as `train` truncated, else 512).")
    var maxLength: Int?
    @OptionGroup var runtime: RuntimeOptions
    @OptionGroup var output: OutputOptions

    /// The `max_length` `train`/`fuse` recorded in `folder/training_result.json`, if any.
    static func recordedMaxLength(inFolder folder: String) -> Int? {
        let url = URL(fileURLWithPath: folder).appendingPathComponent("training_result.json")
        guard let data = try? Data(contentsOf: url),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let value = object["max_length"] as? Int, value >= 2 else { return nil }
        return value
    }

    func validate() throws {
        guard adapters.folders.count == 1 else {
            throw ValidationError("give exactly one --adapter folder (saved with its head, e.g. the --out of `train`), got \(adapters.folders.count)")
        }
        if skipLayers != nil && drop != nil { throw ValidationError("give at most one of --skip-layers and --drop") }
        if let drop, drop < 0 { throw ValidationError("--drop must be ≥ 0, got \(drop)") }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1") }
        if let maxLength, maxLength < 2 { throw ValidationError("--max-length must be at least 2") }
    }

    func run() throws {
        let skip = try skipLayers.map(Predict.parseSkipLayers) ?? Set(0..<(drop ?? 0))
        let adapter = adapters.folders[0]
        let maxLength = self.maxLength ?? Self.recordedMaxLength(inFolder: adapter) ?? 512
        let tokenizer = try PretrainedModel.loadTokenizer(at: try model.folder())
        let adapterModel = try AdapterModel.loading(modelFolder: model.path, adapterFolders: [adapter])
        let name = try adapterName(inFolder: adapter)
        guard let trainedAdapter = adapterModel.adapters[name] else { throw CLIError("\(adapter): adapter \(name) did not load") }
        guard let head = adapterModel.heads[name] else {
            throw CLIError("\(adapter): no head_config.json for adapter \(name) (save the adapter with its head)")
        }
        let layers = adapterModel.encoder.config.numHiddenLayers
        if let drop, drop > layers {
            throw CLIError("--drop \(drop): the model has \(layers) layers (n in 0...\(layers); n drops the adapters of layers 0..<n)")
        }
        if let bad = skip.sorted().first(where: { $0 < 0 || $0 >= layers }) {
            throw CLIError("--skip-layers: layer \(bad) is out of range: the model has \(layers) layers (0...\(layers - 1))")
        }
        let labels: [String]
        if let map = head.config.id2label, map.count == head.config.numLabels, (0..<head.config.numLabels).allSatisfy({ map[$0] != nil }) {
            labels = (0..<head.config.numLabels).map { map[$0]! }
        } else {
            labels = (0..<head.config.numLabels).map { "LABEL_\($0)" }
        }
        let kind = try TrainingTaskKind(head: name, config: head.config)
        let (dataset, targets) = try TrainingTargets.load(contentsOf: data, kind: kind, labels: kind == .regression ? nil : labels)
        let trainer = try AdapterTrainer(encoder: adapterModel.encoder, adapter: trainedAdapter, head: head, options: AdapterTrainingOptions(),
                                         encode: trainingBatchEncoder(tokenizer, maxLength: min(maxLength, adapterModel.encoder.maximumSequenceLength)))
        try runtime.checkInferenceMemory(config: adapterModel.encoder.config, batch: min(batchSize, dataset.count),
                                         sequenceLength: min(maxLength, adapterModel.encoder.maximumSequenceLength))
        let metrics = try trainer.evaluate(on: dataset, targets: targets, skipLayers: skip, batchSize: batchSize, context: runtime.context())
        guard metrics.loss.isFinite else {
            throw CLIError("--adapter \(adapter): the loss on \(data) is \(metrics.loss.isNaN ? "nan" : "\(metrics.loss)"): the adapter or head gives non-finite outputs (NaN/Inf), so no metrics are reported")
        }
        if output.json {
            var fields: [String: JSONValue] = ["adapter": .string(name), "examples": .int(metrics.count),
                                              "skip_layers": .ints(skip.sorted())]
            for (k, v) in metrics.namedValues { fields[k] = v.isFinite ? .double(v) : .null }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: try encoder.encode(fields), as: UTF8.self))
        } else {
            print("\(name) on \(data) (\(metrics.count) examples, skip layers \(skip.sorted())): \(metrics.summary)")
        }
    }
}

/// A small JSON value for `eval --json`.
enum JSONValue: Encodable {
    case string(String), int(Int), double(Double), ints([Int]), null
    func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .string(let s): try c.encode(s)
        case .int(let i): try c.encode(i)
        case .double(let d): try c.encode(d)
        case .ints(let a): try c.encode(a)
        case .null: try c.encodeNil()
        }
    }
}

/// Throws a one-line `CLIError` unless something can be created next to `path`: the nearest existing ancestor of
/// its parent folder is a folder in which a probe folder can be created (and is removed again). A probe rather than
/// `access(2)`: root passes `access` on read-only places such as /proc.
/// `shown` is the path the message names (default `path`).
func checkParentWritable(_ path: String, option: String, shown: String? = nil) throws {
    let shown = shown ?? path
    let fm = FileManager.default
    var ancestor = URL(fileURLWithPath: path).standardizedFileURL.deletingLastPathComponent()
    var isDirectory: ObjCBool = false
    while !fm.fileExists(atPath: ancestor.path, isDirectory: &isDirectory) && ancestor.path != "/" {
        ancestor = ancestor.deletingLastPathComponent()
    }
    guard isDirectory.boolValue else { throw CLIError("\(option) \(shown): \(ancestor.path) is not a folder") }
    let probe = ancestor.appendingPathComponent(".adapterdrop-probe-\(getpid())-\(UUID().uuidString)")
    do {
        try fm.createDirectory(at: probe, withIntermediateDirectories: false)
        try? fm.removeItem(at: probe)
    } catch {
        throw CLIError("\(option) \(shown): cannot write in \(ancestor.path): \(ioErrorReason(error))")
    }
}

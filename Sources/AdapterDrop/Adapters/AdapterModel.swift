// The top-level model: a BERT/RoBERTa encoder with named adapters, fusions and prediction heads
// (AdapterHub's flex-head `BertAdapterModel` / `RobertaAdapterModel`, inference).
import AdapterCore
import Foundation

/// One head's result.
public struct HeadOutput: Sendable {
    /// The head's name.
    public var name: String
    /// Logits `[rows, numLabels]` (tagging: `[rows, seq, numLabels]`); regression: `[rows, 1]`.
    public var logits: Tensor
    /// The rows of the (possibly replicated) encoder batch the head read.
    public var rows: Range<Int>
}

/// What `AdapterModel` returns.
public struct AdapterModelOutput: Sendable {
    /// The encoder output (`lastHiddenState` `[batch', seq, hidden]`, `batch' = N·batch` after a Parallel block).
    public var encoder: EncoderOutput
    /// One entry per active head, in order.
    public var heads: [HeadOutput]
    /// With `outputFusionAttentions`: per fusion name and site, `[batch', seq, N]` softmax weights.
    public var fusionAttentions: [String: [AdapterSite: Tensor]]

    /// The logits of the head with this name.
    public subscript(head name: String) -> Tensor? { heads.first { $0.name == name }?.logits }
}

/// A BERT-family encoder with bottleneck adapters, AdapterFusion layers and prediction heads.
///
/// An immutable value (`Sendable`): add/remove return through `mutating` methods on a copy; the forward pass
/// takes the active setup and the layers to skip (AdapterDrop) per call — there is no hidden active-adapter
/// or skip-layer state, unlike the reference's `set_active_adapters`.
public struct AdapterModel: Sendable {
    /// The pre-trained encoder (frozen).
    public var encoder: BertEncoder
    /// `model_name` written into saved configs.
    public var modelName: String
    /// Adapters by name.
    public private(set) var adapters: [String: BottleneckAdapter] = [:]
    /// Fusions by name.
    public private(set) var fusions: [String: AdapterFusion] = [:]
    /// Prediction heads by name.
    public private(set) var heads: [String: PredictionHead] = [:]
    /// The `head_config.json` each loaded head came from (for `AdapterError.duplicateHead`).
    private var headFiles: [String: String] = [:]

    /// A model without adapters or heads.
    public init(encoder: BertEncoder, modelName: String = "") {
        self.encoder = encoder
        self.modelName = modelName
    }

    /// The base model's description for config files.
    public var modelDescription: ModelDescription {
        ModelDescription(hiddenSize: encoder.config.hiddenSize, numLayers: encoder.config.numHiddenLayers,
                         modelType: encoder.config.modelType.rawValue, modelName: modelName)
    }

    // MARK: - Managing adapters, fusions, heads

    /// Adds an adapter.
    /// - Throws: `AdapterError.duplicateAdapter`, or `.invalidValue` if its hidden size differs from the model's.
    public mutating func addAdapter(_ adapter: BottleneckAdapter) throws {
        guard adapters[adapter.name] == nil else { throw AdapterError.duplicateAdapter(adapter.name) }
        guard adapter.hiddenSize == encoder.config.hiddenSize else {
            throw AdapterError.invalidValue(file: adapter.name, key: "hidden_size", reason: "\(adapter.hiddenSize) ≠ model \(encoder.config.hiddenSize)")
        }
        adapters[adapter.name] = adapter
    }

    /// Creates and adds a new adapter (`add_adapter`).
    /// - Throws: as `addAdapter(_:)` and `BottleneckAdapter.init`.
    public mutating func addAdapter(name: String, config: BottleneckConfig, seed: UInt64 = 0) throws {
        try addAdapter(BottleneckAdapter(name: name, config: config, hiddenSize: encoder.config.hiddenSize,
                                         numLayers: encoder.config.numHiddenLayers, seed: seed))
    }

    /// Removes an adapter (and the fusions that use it, as `delete_adapter` leaves them unusable).
    /// - Throws: `AdapterError.unknownAdapter`.
    public mutating func removeAdapter(_ name: String) throws {
        guard adapters.removeValue(forKey: name) != nil else { throw AdapterError.unknownAdapter(name) }
        fusions = fusions.filter { !$0.value.adapterNames.contains(name) }
    }

    /// Marks an adapter frozen or trainable.
    /// - Throws: `AdapterError.unknownAdapter`.
    public mutating func setFrozen(_ frozen: Bool, adapter name: String) throws {
        guard adapters[name] != nil else { throw AdapterError.unknownAdapter(name) }
        adapters[name]!.isFrozen = frozen
    }

    /// Adds a fusion; its adapters must be loaded and agree on their locations.
    /// - Throws: `AdapterError.unknownAdapter`, `.fusionConfigMismatch`.
    public mutating func addFusion(_ fusion: AdapterFusion) throws {
        let members = try fusion.adapterNames.map { n -> (String, BottleneckConfig) in
            guard let a = adapters[n] else { throw AdapterError.unknownAdapter(n) }
            return (n, a.config)
        }
        _ = try AdapterFusion.commonLocations(fusion: fusion.name, adapters: members)
        fusions[fusion.name] = fusion
    }

    /// Creates and adds a new fusion over loaded adapters (`add_adapter_fusion`).
    /// - Throws: as `addFusion(_:)`.
    public mutating func addFusion(adapterNames: [String], name: String? = nil, config: AdapterFusionConfig = .dynamicPreset,
                                   seed: UInt64 = 0) throws {
        let members = try adapterNames.map { n -> BottleneckAdapter in
            guard let a = adapters[n] else { throw AdapterError.unknownAdapter(n) }
            return a
        }
        try addFusion(AdapterFusion(name: name, adapters: members, config: config, hiddenSize: encoder.config.hiddenSize,
                                    numLayers: encoder.config.numHiddenLayers, seed: seed))
    }

    /// Removes a fusion.
    /// - Throws: `AdapterError.unknownFusion`.
    public mutating func removeFusion(_ name: String) throws {
        guard fusions.removeValue(forKey: name) != nil else { throw AdapterError.unknownFusion(name) }
    }

    /// Adds (or replaces) a head.
    public mutating func addHead(_ head: PredictionHead) {
        heads[head.name] = head
        headFiles[head.name] = nil
    }

    /// Removes a head.
    /// - Throws: `AdapterError.unknownHead`.
    public mutating func removeHead(_ name: String) throws {
        guard heads.removeValue(forKey: name) != nil else { throw AdapterError.unknownHead(name) }
        headFiles[name] = nil
    }

    // MARK: - Files

    /// Loads an adapter folder (and its head, if `head_config.json` is there and `withHead`).
    /// - Returns: the adapter's name.
    /// - Throws: see `BottleneckAdapter.init(folder:model:loadAs:leaveOut:)`, `.duplicateAdapter`, `.duplicateHead`
    ///   (nothing is added then).
    @discardableResult
    public mutating func loadAdapter(from folder: URL, loadAs: String? = nil, leaveOut: [Int]? = nil, withHead: Bool = true) throws -> String {
        let adapter = try BottleneckAdapter(folder: folder, model: modelDescription, loadAs: loadAs, leaveOut: leaveOut)
        var head: PredictionHead?
        if withHead, FileManager.default.fileExists(atPath: folder.appendingPathComponent(AdapterFiles.headConfig).path) {
            head = try PredictionHead(folder: folder, model: modelDescription, loadAs: loadAs)
        }
        let headFile = folder.appendingPathComponent(AdapterFiles.headConfig).path
        if let head, heads[head.name] != nil, adapters[adapter.name] == nil {
            throw AdapterError.duplicateHead(name: head.name, file: headFile, existing: headFiles[head.name])
        }
        try addAdapter(adapter)
        if let head {
            addHead(head)
            headFiles[head.name] = headFile
        }
        return adapter.name
    }

    /// Loads a head folder.
    /// - Returns: the head's name.
    /// - Throws: `PredictionHead.init(folder:model:loadAs:)`'s errors; `AdapterError.duplicateHead` when a head of
    ///   that name is already loaded from another file or added in code (use `loadAs`, or `removeHead` first, to
    ///   replace it on purpose). Loading the same folder again keeps the loaded head.
    @discardableResult
    public mutating func loadHead(from folder: URL, loadAs: String? = nil) throws -> String {
        let head = try PredictionHead(folder: folder, model: modelDescription, loadAs: loadAs)
        let headFile = folder.appendingPathComponent(AdapterFiles.headConfig).path
        if heads[head.name] != nil {
            // The same folder again (e.g. a fusion folder given as --fusion and --head-folder): nothing changes.
            func canonical(_ p: String) -> String { URL(fileURLWithPath: p).standardizedFileURL.resolvingSymlinksInPath().path }
            if let existing = headFiles[head.name], canonical(existing) == canonical(headFile) { return head.name }
            throw AdapterError.duplicateHead(name: head.name, file: headFile, existing: headFiles[head.name])
        }
        addHead(head)
        headFiles[head.name] = headFile
        return head.name
    }

    /// Loads a fusion folder; its adapters must be loaded first.
    /// - Returns: the fusion's name.
    @discardableResult
    public mutating func loadFusion(from folder: URL, loadAs: String? = nil) throws -> String {
        let fusion = try AdapterFusion(folder: folder, model: modelDescription, adapters: adapters, loadAs: loadAs)
        try addFusion(fusion)
        return fusion.name
    }

    /// Saves an adapter (and the head of the same name, if any and `withHead`) into a folder, replacing the
    /// folder's adapter (and head) files as one atomic step (`saveFolderAtomically`).
    /// - Throws: `.unknownAdapter`, I/O errors.
    public func saveAdapter(_ name: String, to folder: URL, withHead: Bool = true) throws {
        guard let adapter = adapters[name] else { throw AdapterError.unknownAdapter(name) }
        let head = withHead ? heads[name] : nil
        var names: Set<String> = [AdapterFiles.adapterWeights, AdapterFiles.adapterConfig]
        if head != nil { names.formUnion([AdapterFiles.headWeights, AdapterFiles.headConfig]) }
        try saveFolderAtomically(folder, writing: names) { staging in
            try adapter.writeFiles(into: staging, model: modelDescription)
            try head?.writeFiles(into: staging, model: modelDescription)
        }
    }

    /// Saves a head into a folder.
    public func saveHead(_ name: String, to folder: URL) throws {
        guard let head = heads[name] else { throw AdapterError.unknownHead(name) }
        try head.save(to: folder, model: modelDescription)
    }

    /// Saves a fusion into a folder.
    public func saveFusion(_ name: String, to folder: URL) throws {
        guard let fusion = fusions[name] else { throw AdapterError.unknownFusion(name) }
        try fusion.save(to: folder, model: modelDescription)
    }

    // MARK: - Forward

    /// Checks a setup against the loaded adapters and fusions and a batch size.
    /// - Throws: nesting/depth errors, `.unknownAdapter`, `.unknownFusion`, `.fusionAdapterMismatch` (a Fuse
    ///   child that the fusion was not trained over), `.batchSplitSizes`.
    public func validate(setup: AdapterComposition, batchSize: Int) throws {
        try setup.validate()
        for name in setup.flattened where adapters[name] == nil { throw AdapterError.unknownAdapter(name) }
        func check(_ block: AdapterComposition, batch: Int) throws -> Int {
            switch block {
            case .adapter: return batch
            case let .stack(children):
                var b = batch
                for c in children { b = try check(c, batch: b) }
                return b
            case let .fuse(children, _):
                let name = block.fusionName!
                guard let fusion = fusions[name] else { throw AdapterError.unknownFusion(name) }
                for c in children where !fusion.adapterNames.contains(c.last) {
                    throw AdapterError.fusionAdapterMismatch(fusion: name, reason: "adapter \"\(c.last)\" is not one of \(fusion.adapterNames)")
                }
                for c in children { _ = try check(c, batch: batch) }
                return batch
            case let .parallel(children):
                let per = batch == batchSize ? batch : batch / children.count
                for c in children { _ = try check(c, batch: per) }
                return per * children.count
            case let .batchSplit(children, sizes):
                guard sizes.reduce(0, +) == batch else { throw AdapterError.batchSplitSizes(sizes: sizes, batch: batch) }
                for (c, s) in zip(children, sizes) { _ = try check(c, batch: s) }
                return batch
            case let .average(children, _):
                for c in children { _ = try check(c, batch: batch) }
                return batch
            }
        }
        _ = try check(setup.normalized, batch: batchSize)
    }

    /// The heads the reference would activate for a setup: a Parallel's children's last names, a
    /// BatchSplit's children's last names, else the setup's last adapter (each only if such a head exists).
    public func defaultHeads(for setup: AdapterComposition?) -> [String] {
        guard let setup else { return [] }
        switch setup {
        case let .parallel(children), let .batchSplit(children, _):
            let names = children.map(\.last)
            return names.allSatisfy { heads[$0] != nil } ? names : []
        case .fuse:
            if let n = setup.fusionName, heads[n] != nil { return [n] }
            return heads[setup.last] != nil ? [setup.last] : []
        default:
            return heads[setup.last] != nil ? [setup.last] : []
        }
    }

    /// Runs the encoder with an adapter setup and the heads.
    ///
    /// - Parameters:
    ///   - input: ids, mask and type ids `[batch, seq]`.
    ///   - setup: the active adapters (`AdapterComposition.parse("Stack(a,b)")`), nil for the base model.
    ///   - heads: head names; nil = `defaultHeads(for:)`. With a Parallel block over N channels, N heads are
    ///     required and head i reads rows `i·batch ..< (i+1)·batch`; with a top-level BatchSplit, one head per
    ///     child reads that child's rows; otherwise every head reads all rows.
    ///   - skipLayers: AdapterDrop — layers whose adapters and fusion do not run (explicit per call).
    ///   - outputFusionAttentions: collect the fusion softmax weights.
    ///   - keepHiddenStates: also return every layer's output.
    /// - Throws: setup errors (see `validate(setup:batchSize:)`), `.unknownHead`, `.parallelHeadCount`,
    ///   `EncoderError` for bad ids.
    ///
    /// A single adapter, `Parallel(a, b, …)` and `BatchSplit(a, b, …)` over adapter names (adapters that agree on
    /// their sites and pre/post LayerNorm settings, see `RowGroupAdapterPlan`) run on the encoder's buffered path:
    /// one set of activation buffers per call, the adapters of all tasks applied per task slice of the
    /// replicated batch with grouped GEMMs. Other setups, and `outputFusionAttentions`, go through the general
    /// `CompositionHook`. Both give the same values (tested bitwise).
    public func callAsFunction(_ input: EncoderInput, setup: AdapterComposition?, heads headNames: [String]? = nil,
                               skipLayers: Set<Int> = [], outputFusionAttentions: Bool = false, keepHiddenStates: Bool = false,
                               context: ComputeContext) throws -> AdapterModelOutput {
        try run(input, setup: setup, heads: headNames, skipLayers: skipLayers, outputFusionAttentions: outputFusionAttentions,
                keepHiddenStates: keepHiddenStates, buffered: true, context: context)
    }

    /// `callAsFunction(_:setup:heads:skipLayers:outputFusionAttentions:keepHiddenStates:context:)`; with `buffered`
    /// false every setup takes the general `CompositionHook` path (same values; tests and `bench drop --hook-path`
    /// compare the two).
    /// - Parameters:
    ///   - input: ids, mask and type ids `[batch, seq]`.
    ///   - setup: the active adapters, nil for the base model.
    ///   - headNames: head names; nil = `defaultHeads(for:)`.
    ///   - skipLayers: AdapterDrop — layers whose adapters and fusion do not run.
    ///   - outputFusionAttentions: collect the fusion softmax weights (general path).
    ///   - keepHiddenStates: also return every layer's output.
    ///   - buffered: take the buffered path where the setup allows it.
    ///   - context: threads and GEMM backend.
    /// - Throws: as `callAsFunction`.
    public func run(_ input: EncoderInput, setup: AdapterComposition?, heads headNames: [String]?, skipLayers: Set<Int>,
             outputFusionAttentions: Bool, keepHiddenStates: Bool, buffered: Bool,
             context: ComputeContext) throws -> AdapterModelOutput {
        let batch = input.batchSize
        var hook: CompositionHook?
        let recorder = outputFusionAttentions ? FusionAttentionRecorder() : nil
        if let setup {
            try validate(setup: setup, batchSize: batch)
            hook = CompositionHook(adapters: adapters, fusions: fusions, setup: setup, skipLayers: skipLayers,
                                   originalBatch: batch, recorder: recorder)
        }
        let names = headNames ?? defaultHeads(for: setup)
        for n in names where heads[n] == nil { throw AdapterError.unknownHead(n) }
        let channels = setup?.parallelChannels ?? 1
        var rowRanges: [Range<Int>]
        if channels > 1 {
            guard names.count == channels else { throw AdapterError.parallelHeadCount(channels: channels, heads: names.count) }
            rowRanges = (0..<channels).map { $0 * batch ..< ($0 + 1) * batch }
        } else if case let .batchSplit(children, sizes)? = setup, names.count == children.count, names.count > 1 {
            var start = 0
            rowRanges = sizes.map { s in defer { start += s }; return start ..< start + s }
        } else {
            rowRanges = Array(repeating: 0..<batch, count: names.count)
        }
        let plan = buffered && !outputFusionAttentions
            ? setup.flatMap { RowGroupAdapterPlan.make(setup: $0, adapters: adapters, batch: batch, skipLayers: skipLayers) } : nil
        let encoded = plan != nil
            ? try encoder.encode(input, plan: plan, keepHiddenStates: keepHiddenStates, context: context)
            : try encoder(input, hook: hook, keepHiddenStates: keepHiddenStates, context: context)
        let replicated = encoded.lastHiddenState.shape[0]
        if channels > 1 && replicated == batch {
            // The Parallel block never ran (all its layers skipped): every channel sees the shared output.
            rowRanges = Array(repeating: 0..<batch, count: names.count)
        }
        var outputs: [HeadOutput] = []
        for (name, rows) in zip(names, rowRanges) {
            let head = heads[name]!
            let last = rows == 0..<replicated ? encoded.lastHiddenState
                : encoded.lastHiddenState.reshaped([replicated, -1]).slice(rows: rows)
                    .reshaped([rows.count, input.sequenceLength, encoder.config.hiddenSize])
            let pooled = encoded.pooled.map { rows == 0..<replicated ? $0 : $0.slice(rows: rows) }
            outputs.append(HeadOutput(name: name, logits: head(lastHiddenState: last, pooled: pooled, context: context), rows: rows))
        }
        return AdapterModelOutput(encoder: encoded, heads: outputs, fusionAttentions: recorder?.attentions ?? [:])
    }
}

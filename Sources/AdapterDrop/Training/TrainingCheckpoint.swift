// Trainer checkpoints: every trainable tensor (adapters, fusion, heads) by full name, AdamW's moments and
// per-parameter step counts, the loss/drop/norm histories and the run's identity, in one folder that is
// replaced atomically (written to a temporary sibling folder, fsynced, then swapped in by rename).
import AdapterCore
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Saving and loading `AdapterTrainer` checkpoints.
///
/// Folder layout:
/// - `trainer_state.json`: format version, the run's identity (options, layer count, dataset size, parameter
///   and head names), the step reached, the AdapterDrop sampler position (number of draws), the data position
///   (epoch and batch within it), histories (losses as IEEE-754 bit patterns, so they round-trip exactly) and
///   AdamW's per-parameter step counts.
/// - `state.safetensors`: `param/{name}`, `adam/{name}/exp_avg`, `adam/{name}/exp_avg_sq` (fp32).
///
/// The dropout masks need no state (stream = step + 1 of the seed) and the batch order is the seeded
/// permutation of the epoch, so step, seed and sampler position determine the rest of the run.
///
/// With gradient accumulation a checkpoint is only ever written between optimizer steps (after the update), so
/// it holds no partial gradient sum. A run stopped in the middle of a step's micro-batches (killed, or an error)
/// resumes from the last checkpoint and recomputes that step's micro-batches from the start, which gives the
/// same sums bit for bit (the micro-batches, their order and their dropout streams follow from the step).
public enum TrainerCheckpoint {
    /// The trainer state file.
    public static let stateFile = "trainer_state.json"
    /// The tensor file.
    public static let tensorFile = "state.safetensors"
    static let format = "adapterdrop-trainer-checkpoint"
    /// Bounds of `trainer_state.json`: nesting depth 8, 256 MiB (the histories grow by a few bytes a step).
    static let stateLimits = JSONParser.Limits(maxDepth: 8, maxBytes: 256 << 20)

    /// What must agree between the run that saved a checkpoint and the run resuming it.
    struct Identity: Codable, Equatable {
        var batchSize: Int, epochs: Int, learningRate: Double, warmupSteps: Int, weightDecay: Double
        var maxGradientNorm: Double?, policy: String, seed: String, useDropout: Bool
        /// Absent in checkpoints written before gradient accumulation existed: read as 1.
        var gradientAccumulationSteps: Int?
        var numberOfLayers: Int, datasetCount: Int, stepsPerEpoch: Int
        var parameterNames: [String], heads: [String]
        /// `TrainerCheckpoint.dataHash` of the training examples and targets (hex). Absent in checkpoints written
        /// before it existed: such a checkpoint resumes with any data of the same size (only `datasetCount` is
        /// compared), as before.
        var dataHash: String?

        init(options: AdapterTrainingOptions, numberOfLayers: Int, datasetCount: Int, stepsPerEpoch: Int,
             parameterNames: [String], heads: [String], dataHash: String? = nil) {
            self.dataHash = dataHash
            batchSize = options.batchSize; epochs = options.epochs; learningRate = options.learningRate
            warmupSteps = options.warmupSteps; weightDecay = options.weightDecay
            maxGradientNorm = options.maxGradientNorm; policy = "\(options.policy)"; seed = String(options.seed)
            useDropout = options.useDropout; gradientAccumulationSteps = options.gradientAccumulationSteps
            self.numberOfLayers = numberOfLayers; self.datasetCount = datasetCount; self.stepsPerEpoch = stepsPerEpoch
            self.parameterNames = parameterNames; self.heads = heads
        }

        /// (key, this run's value, saved value) of the first difference.
        func firstDifference(from other: Identity) -> (String, String, String)? {
            let pairs: [(String, String, String)] = [
                ("batch_size", "\(batchSize)", "\(other.batchSize)"),
                ("gradient_accumulation_steps", "\(gradientAccumulationSteps ?? 1)", "\(other.gradientAccumulationSteps ?? 1)"),
                ("epochs", "\(epochs)", "\(other.epochs)"),
                ("learning_rate", "\(learningRate)", "\(other.learningRate)"),
                ("warmup_steps", "\(warmupSteps)", "\(other.warmupSteps)"),
                ("weight_decay", "\(weightDecay)", "\(other.weightDecay)"),
                ("max_grad_norm", "\(maxGradientNorm.map { "\($0)" } ?? "none")", "\(other.maxGradientNorm.map { "\($0)" } ?? "none")"),
                ("policy", policy, other.policy), ("seed", seed, other.seed),
                ("use_dropout", "\(useDropout)", "\(other.useDropout)"),
                ("num_hidden_layers", "\(numberOfLayers)", "\(other.numberOfLayers)"),
                ("dataset_count", "\(datasetCount)", "\(other.datasetCount)"),
                ("steps_per_epoch", "\(stepsPerEpoch)", "\(other.stepsPerEpoch)"),
                ("heads", heads.joined(separator: ","), other.heads.joined(separator: ",")),
            ]
            if let d = pairs.first(where: { $0.1 != $0.2 }) { return d }
            if let mine = dataHash, let saved = other.dataHash, mine != saved {
                return ("training data (FNV-1a hash of the examples and labels; same size, different content)", mine, saved)
            }
            if parameterNames != other.parameterNames {
                let missing = Set(parameterNames).subtracting(other.parameterNames).sorted().first
                let extra = Set(other.parameterNames).subtracting(parameterNames).sorted().first
                return ("parameters", missing.map { "has \($0)" } ?? "\(parameterNames.count) names",
                        extra.map { "has \($0)" } ?? "missing \(missing ?? "?")")
            }
            return nil
        }
    }

    /// A 64-bit FNV-1a hash (16 hex digits) of the training data a checkpoint was made with: the dataset's label
    /// names and every example (text, text pair, label index, in order) and each head's targets (kind and values as
    /// fp32 bit patterns), each field length-prefixed. Not cryptographic: it catches resuming on other data by mistake.
    static func dataHash(_ dataset: TextClassificationDataset, targets: [TrainingTargets]) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        func byte(_ b: UInt8) { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
        func int(_ v: Int) { var x = UInt64(bitPattern: Int64(v)); for _ in 0..<8 { byte(UInt8(truncatingIfNeeded: x)); x >>= 8 } }
        func string(_ t: String) { int(t.utf8.count); for b in t.utf8 { byte(b) } }
        int(dataset.labels.count)
        for l in dataset.labels { string(l) }
        int(dataset.count)
        for e in dataset.examples {
            string(e.text)
            if let pair = e.textPair { byte(1); string(pair) } else { byte(0) }
            int(e.label)
        }
        int(targets.count)
        let all = Array(0..<dataset.count)
        for t in targets {
            switch t {
            case .classes: byte(0)
            case .values: byte(1)
            case .multiLabel: byte(2)
            }
            let floats = t.floats(at: all)
            int(floats.count)
            for f in floats { int(Int(f.bitPattern)) }
        }
        let hex = String(h, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    struct State: Codable {
        var format: String
        var version: Int
        var identity: Identity
        var step: Int
        var epoch: Int
        var batchInEpoch: Int
        var samplerDraws: Int
        var lossBits: [UInt32]
        var regularizationLossBits: [UInt32]
        var gradientNormBits: [UInt32]
        var droppedLayers: [Int]
        var skippedSteps: [Int]
        var adamSteps: [String: Int]
    }

    /// Writes a checkpoint folder atomically.
    static func save(to folder: URL, identity: Identity, run: TrainerRunState, parameters: [String: Tensor]) throws {
        let step = run.losses.count
        let state = State(format: format, version: 1, identity: identity, step: step,
                          epoch: step / max(identity.stepsPerEpoch, 1), batchInEpoch: step % max(identity.stepsPerEpoch, 1),
                          samplerDraws: run.droppedLayers.count, lossBits: run.losses.map(\.bitPattern),
                          regularizationLossBits: run.regularizationLosses.map(\.bitPattern),
                          gradientNormBits: run.gradientNorms.map(\.bitPattern), droppedLayers: run.droppedLayers,
                          skippedSteps: run.skippedSteps, adamSteps: run.adam.states.mapValues(\.step))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let json: Data
        do { json = try encoder.encode(state) } catch {
            throw TrainingError.checkpointWriteFailed(path: folder.path, reason: "\(error)")
        }
        var writer = SafetensorsWriter(metadata: ["format": format, "step": "\(step)"])
        do {
            for name in parameters.keys.sorted() {
                let t = parameters[name]!
                try writer.add("param/\(name)", shape: t.shape, floats: t.scalars)
            }
            for name in run.adam.states.keys.sorted() {
                let s = run.adam.states[name]!
                try writer.add("adam/\(name)/exp_avg", shape: s.firstMoment.shape, floats: s.firstMoment.scalars)
                try writer.add("adam/\(name)/exp_avg_sq", shape: s.secondMoment.shape, floats: s.secondMoment.scalars)
            }
        } catch {
            throw TrainingError.checkpointWriteFailed(path: folder.path, reason: "\(error)")
        }
        try writeFolderAtomically(folder) { temporary in
            try writer.write(to: temporary.appendingPathComponent(tensorFile))
            let bytes = [UInt8](json)
            try atomicWrite(path: temporary.appendingPathComponent(stateFile).path) { emit in
                try bytes.withUnsafeBytes { try emit($0) }
            }
        }
    }

    /// Reads a checkpoint folder and checks it against this run.
    /// - Returns: the saved parameters (same names and shapes as `parameters`) and run state.
    static func load(from folder: URL, identity: Identity,
                     parameters: [String: Tensor]) throws -> (parameters: [String: Tensor], run: TrainerRunState) {
        let statePath = folder.appendingPathComponent(stateFile).path
        guard let data = FileManager.default.contents(atPath: statePath) else {
            throw TrainingError.invalidCheckpoint(file: statePath, reason: "missing or unreadable")
        }
        // The library's strict parser (UTF-8, no duplicate keys, exact integers) and its Codable decoder.
        let state: State
        do {
            let root = try JSONParser.parse([UInt8](data), limits: Self.stateLimits)
            state = try JSONValueDecoder().decode(State.self, from: root)
        } catch let error as JSONParseError {
            throw TrainingError.invalidCheckpoint(file: statePath, reason: "invalid JSON: \(error.message)")
        } catch {
            throw TrainingError.invalidCheckpoint(file: statePath, reason: "not a trainer state: \(error)")
        }
        guard state.format == format, state.version == 1 else {
            throw TrainingError.invalidCheckpoint(file: statePath, reason: "format \(state.format) version \(state.version)")
        }
        if let (key, expected, found) = identity.firstDifference(from: state.identity) {
            throw TrainingError.checkpointMismatch(file: statePath, key: key, expected: expected, found: found)
        }
        let n = state.step
        guard state.lossBits.count == n, state.regularizationLossBits.count == n, state.gradientNormBits.count == n,
              state.droppedLayers.count == n, state.samplerDraws == n,
              state.epoch == n / max(identity.stepsPerEpoch, 1), state.batchInEpoch == n % max(identity.stepsPerEpoch, 1),
              n <= identity.stepsPerEpoch * identity.epochs else {
            throw TrainingError.invalidCheckpoint(file: statePath, reason: "histories, position and step \(n) disagree")
        }
        let tensorPath = folder.appendingPathComponent(tensorFile)
        let file: SafetensorsFile
        do { file = try SafetensorsFile(url: tensorPath) } catch {
            throw TrainingError.invalidCheckpoint(file: tensorPath.path, reason: "\(error)")
        }
        func tensor(_ key: String, shape: [Int]) throws -> Tensor {
            guard let info = file.tensors[key] else {
                throw TrainingError.invalidCheckpoint(file: tensorPath.path, reason: "missing tensor \(key)")
            }
            guard info.shape == shape else {
                throw TrainingError.checkpointMismatch(file: tensorPath.path, key: "shape of \(key)",
                                                       expected: "\(shape)", found: "\(info.shape)")
            }
            do { return Tensor(shape: shape, scalars: try file.floats(key)) } catch {
                throw TrainingError.invalidCheckpoint(file: tensorPath.path, reason: "\(key): \(error)")
            }
        }
        var restored: [String: Tensor] = [:]
        for (name, current) in parameters { restored[name] = try tensor("param/\(name)", shape: current.shape) }
        var adam = AdamW(weightDecay: identity.weightDecay,
                         weightDecayOverrides: identity.parameterNames.filter { $0.hasSuffix(".bias") }.reduce(into: [:]) { $0[$1] = 0 })
        for (name, step) in state.adamSteps.sorted(by: { $0.key < $1.key }) {
            guard let current = parameters[name], step >= 1 else {
                throw TrainingError.invalidCheckpoint(file: statePath, reason: "optimizer state for \(name) (step \(step)) matches no parameter")
            }
            adam.restoreState(.init(step: step, firstMoment: try tensor("adam/\(name)/exp_avg", shape: current.shape),
                                    secondMoment: try tensor("adam/\(name)/exp_avg_sq", shape: current.shape)), for: name)
        }
        var run = TrainerRunState(adam: adam)
        run.losses = state.lossBits.map(Float.init(bitPattern:))
        run.regularizationLosses = state.regularizationLossBits.map(Float.init(bitPattern:))
        run.gradientNorms = state.gradientNormBits.map(Float.init(bitPattern:))
        run.droppedLayers = state.droppedLayers
        run.skippedSteps = state.skippedSteps
        return (restored, run)
    }

    /// Builds a folder's new content in a temporary sibling (`.{name}.tmp-{pid}`), fsyncs it, and puts it in
    /// place: a plain `rename` when `folder` does not exist; otherwise an atomic exchange (Linux
    /// `renameat2(RENAME_EXCHANGE)`) followed by removing the old content, so a crash leaves either the complete
    /// old or the complete new folder under `folder`. Where the exchange is unavailable (other systems, old
    /// kernels) the old folder is first renamed to `.{name}.old-{pid}` (a crash between the two renames leaves
    /// the old checkpoint there, complete). Leftover temporary folders are removed on the next save.
    /// Used for checkpoints and for the CLI's `--out` folders (nothing half-written there).
    ///
    /// With `replacing: false` (an output folder the user did not allow to be replaced) the content is put in place
    /// only if `folder` is missing or empty at that moment: a plain `rename(2)` of the temporary folder, which the
    /// kernel refuses atomically when the target is a non-empty folder. So of two processes publishing the same
    /// new folder, the second fails with `TrainingError.folderExists` instead of silently replacing the first.
    /// - Throws: `TrainingError.checkpointWriteFailed`, `.folderExists` (only with `replacing: false`, also
    ///   before `write` runs when `folder` is already non-empty), or what `write` throws; `folder` is then unchanged.
    public static func writeFolderAtomically(_ folder: URL, replacing: Bool = true, write: (URL) throws -> Void) throws {
        let fm = FileManager.default
        let parent = folder.deletingLastPathComponent(), name = folder.lastPathComponent
        func fail(_ reason: String) -> TrainingError { .checkpointWriteFailed(path: folder.path, reason: reason) }
        do { try fm.createDirectory(at: parent, withIntermediateDirectories: true) } catch { throw fail(ioErrorReason(error)) }
        var isDirectory: ObjCBool = false
        if fm.fileExists(atPath: folder.path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw fail("exists and is not a folder") }
            if !replacing, let entries = try? fm.contentsOfDirectory(atPath: folder.path), !entries.isEmpty {
                throw TrainingError.folderExists(path: folder.path)
            }
        }
        // Remove temporary folders of earlier writers that died before their rename (not those of live writers:
        // another process may be writing the same folder right now).
        if let siblings = try? fm.contentsOfDirectory(atPath: parent.path) {
            let prefix = ".\(name).tmp-"
            for s in siblings where s.hasPrefix(prefix) {
                if let pid = Int32(s.dropFirst(prefix.count)), pid != getpid(), kill(pid, 0) == 0 || errno != ESRCH { continue }
                try? fm.removeItem(at: parent.appendingPathComponent(s))
            }
        }
        let temporary = parent.appendingPathComponent(".\(name).tmp-\(getpid())")
        do { try fm.createDirectory(at: temporary, withIntermediateDirectories: false) } catch { throw fail(ioErrorReason(error)) }
        var placed = false
        defer { if !placed { try? fm.removeItem(at: temporary) } }
        try write(temporary)
        syncDirectory(temporary.path)
        if !replacing {
            // rename(2) replaces a missing or empty folder, never a non-empty one (ENOTEMPTY/EEXIST).
            guard rename(temporary.path, folder.path) == 0 else {
                let code = errno
                if code == ENOTEMPTY || code == EEXIST { throw TrainingError.folderExists(path: folder.path) }
                throw fail("rename: \(String(cString: strerror(code)))")
            }
            placed = true
            syncDirectory(parent.path)
            return
        }
        if fm.fileExists(atPath: folder.path) {
            if exchange(temporary.path, folder.path) {
                placed = true
                syncDirectory(parent.path)
                try? fm.removeItem(at: temporary)  // now the old content
                return
            }
            let old = parent.appendingPathComponent(".\(name).old-\(getpid())")
            try? fm.removeItem(at: old)
            guard rename(folder.path, old.path) == 0 else { throw fail("rename to \(old.lastPathComponent): \(String(cString: strerror(errno)))") }
            guard rename(temporary.path, folder.path) == 0 else {
                let reason = String(cString: strerror(errno))
                _ = rename(old.path, folder.path)
                throw fail("rename: \(reason)")
            }
            placed = true
            syncDirectory(parent.path)
            try? fm.removeItem(at: old)
        } else {
            guard rename(temporary.path, folder.path) == 0 else { throw fail("rename: \(String(cString: strerror(errno)))") }
            placed = true
            syncDirectory(parent.path)
        }
    }

    private static func syncDirectory(_ path: String) {
        let fd = open(path, O_RDONLY)
        if fd >= 0 { _ = fsync(fd); close(fd) }
    }

    /// Atomically swaps two paths (Linux `renameat2(…, RENAME_EXCHANGE)`, looked up at run time because
    /// Glibc's Swift module does not export it); false when unavailable or refused.
    private static func exchange(_ a: String, _ b: String) -> Bool {
        #if os(Linux)
        typealias RenameAt2 = @convention(c) (Int32, UnsafePointer<CChar>, Int32, UnsafePointer<CChar>, UInt32) -> Int32
        guard let handle = dlopen(nil, RTLD_NOW), let symbol = dlsym(handle, "renameat2") else { return false }
        let renameat2 = unsafeBitCast(symbol, to: RenameAt2.self)
        let atCurrentDirectory: Int32 = -100  // AT_FDCWD
        let renameExchange: UInt32 = 2        // RENAME_EXCHANGE
        return renameat2(atCurrentDirectory, a, atCurrentDirectory, b, renameExchange) == 0
        #else
        return false
        #endif
    }
}

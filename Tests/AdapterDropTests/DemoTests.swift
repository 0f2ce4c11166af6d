// The end-to-end demo pipeline (AdapterDropDemo) on the tiny-bert fixture with a generated WordPiece vocabulary
// and generated, separable tasks: every step runs, the report is complete, and bad input fails with one typed
// error before anything is written to the results folder.
import AdapterCore
@testable import AdapterDrop
import Foundation
import TestSupport
import Testing

@Suite struct DemoTests {
    /// A temporary workspace: `model/` (tiny-bert + vocab.txt), `data/<task>/`, `results/`.
    final class Workspace {
        let root: URL
        var model: String { root.appendingPathComponent("model").path }
        var data: String { root.appendingPathComponent("data").path }
        var results: String { root.appendingPathComponent("results").path }

        init() throws {
            let fm = FileManager.default
            root = fm.temporaryDirectory.appendingPathComponent("adapterdrop-demo-tests-\(UUID().uuidString)")
            try fm.createDirectory(at: root.appendingPathComponent("model"), withIntermediateDirectories: true)
            for file in ["config.json", "model.safetensors"] {
                try fm.copyItem(at: fixtureURL("tiny-bert/\(file)"), to: root.appendingPathComponent("model/\(file)"))
            }
            // tiny-bert has 100 token ids: specials 0-4, then the words w5 … w99.
            let vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + (5..<100).map { "w\($0)" }
            try (vocab.joined(separator: "\n") + "\n").write(to: root.appendingPathComponent("model/vocab.txt"), atomically: true, encoding: .utf8)
            try fm.createDirectory(at: root.appendingPathComponent("data"), withIntermediateDirectories: true)
        }

        deinit { try? FileManager.default.removeItem(at: root) }

        /// A separable task: label i uses the words w(10 + 30·i) … w(19 + 30·i); 3–7 words per text.
        func writeTask(_ name: String, labels: [String], sizes: (Int, Int, Int) = (48, 8, 24), seed: UInt64,
                       longText: Bool = false) throws {
            let folder = root.appendingPathComponent("data/\(name)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let labelJSON = try JSONSerialization.data(withJSONObject: labels.sorted())
            try labelJSON.write(to: folder.appendingPathComponent("labels.json"))
            var rng = SeededRNG(seed: seed)
            for (split, count) in [("train", sizes.0), ("dev", sizes.1), ("test", sizes.2)] {
                var lines: [String] = []
                for i in 0..<count {
                    let label = i % labels.count
                    let length = longText && i == 0 ? 40 : 3 + Int(rng.next() % 5)
                    let words = (0..<length).map { _ in "w\(10 + 30 * label + Int(rng.next() % 10))" }
                    let object: [String: String] = ["text": words.joined(separator: " "), "label": labels[label]]
                    lines.append(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self))
                }
                try (lines.joined(separator: "\n") + "\n").write(to: folder.appendingPathComponent("\(split).jsonl"), atomically: true, encoding: .utf8)
            }
        }

        func settings(tasks: [String], run: String = "run1") -> DemoSettings {
            var s = DemoSettings.quick(modelFolder: model, dataFolder: data, resultsFolder: results, runName: run)
            s.tasks = tasks
            s.trainExamplesPerTask = 48
            s.testExamplesPerTask = 24
            s.maxSequenceLength = 12
            s.epochs = 12
            s.batchSize = 8
            s.learningRate = 2e-2
            s.reductionFactor = 4
            s.specializedDrops = [1]
            s.speedTaskCounts = [1, tasks.count]
            s.speedBatchSize = 6
            s.speedRepetitions = 2
            s.threads = 1
            return s
        }

        /// Entries of the results folder (hidden ones included), or [] if it does not exist.
        func resultsListing() -> [String] {
            (try? FileManager.default.contentsOfDirectory(atPath: results).sorted()) ?? []
        }
    }

    static func runDemo(_ settings: DemoSettings) throws -> (DemoResults, ReportOutcome, [DemoEvent]) {
        let demo = try AdapterDropDemo(settings: settings)
        demo.gnuplot = .disabled
        demo.machine = MachineInfo(cpuModel: "test CPU", logicalCores: 1, operatingSystem: "test OS", commit: nil)
        var events: [DemoEvent] = []
        let (results, outcome) = try demo.run { events.append($0) }
        return (results, outcome, events)
    }

    /// Every step runs on two tasks, the adapters learn the separable tasks, the report and the adapters are
    /// written, and the numbers are consistent. Learning bar: mean accuracy at n = 0 ≥ 0.65 for standard and robust
    /// (chance is (0.5 + 0.33 + 0.5) / 3 ≈ 0.44; guessing on 3 × 24 test texts has a standard deviation of ≈ 0.06,
    /// so 0.65 is > 3σ above it).
    @Test func fullPipelineOnTinyBert() throws {
        let ws = try Workspace()
        try ws.writeTask("alpha", labels: ["neg", "pos"], seed: 1, longText: true)
        try ws.writeTask("beta", labels: ["x", "y", "z"], seed: 2)
        try ws.writeTask("gamma", labels: ["u", "v"], seed: 3)
        let (r, outcome, events) = try Self.runDemo(ws.settings(tasks: ["alpha", "beta", "gamma"]))

        #expect(r.layers == 2)
        #expect(r.regimes == [.standard, .robust, .specialized(1)])
        #expect(r.training.count == 9)
        #expect(r.training.allSatisfy { $0.steps == 12 * 6 && $0.examples == 12 * 48 && $0.lastLoss < $0.firstLoss })
        #expect(r.training.first { $0.regime == .specialized(1) }!.meanDroppedLayers == 1)
        #expect(r.evaluations.count == 3 * 3 * 2)
        for regime in [DemoRegime.standard, .robust] {
            let acc = try #require(r.meanAccuracy(regime, dropped: 0))
            #expect(acc >= 0.65, "\(regime) mean accuracy at n = 0: \(acc)")
        }
        #expect(r.tasks.map(\.truncated) == [2, 0, 0])  // the 40-word texts of alpha (one in train, one in test)
        #expect(r.tasks[0].usedTrain == 48 && r.tasks[0].usedTest == 24 && r.tasks[1].trainLabelCounts == [16, 16, 16])
        #expect(r.speed.count == 2 * 2)
        #expect(r.speed.allSatisfy { $0.seconds > 0 && $0.texts == 6 })
        #expect(r.speedRow(tasks: 3, dropped: 1)!.idealSpeedup == 6.0 / 4.0)
        #expect(r.mixed.map(\.droppedLayers) == [0, 1] && r.mixed.allSatisfy { $0.texts == 6 && $0.tasks == 3 && $0.seconds > 0 })
        // Step 4 ran: fusion over the three standard adapters for alpha, activations per adapter × layer (each
        // layer's column sums to 1), the top 2 kept, accuracies measured.
        let f = r.fusion
        #expect(f.pending == nil)
        #expect(f.target == "alpha" && f.adapters == ["alpha_standard", "beta_standard", "gamma_standard"])
        #expect(f.activations.count == 3 && f.activations.allSatisfy { $0.count == 2 })
        for layer in 0..<2 { #expect(abs(f.activations.map { $0[layer] }.reduce(0, +) - 1) < 1e-6) }
        #expect(f.kept.count == 2 && Set(f.kept).isSubset(of: Set(f.adapters)))
        #expect((0...1).contains(f.fullAccuracy!) && (0...1).contains(f.prunedAccuracy!))
        #expect(f.fullSeconds! > 0 && f.prunedSeconds! > 0)
        #expect(f.training!.steps == 12 * 6)

        // The run folder.
        let fm = FileManager.default
        #expect(outcome.folder.path == ws.results + "/run1")
        #expect(ws.resultsListing() == ["run1"])
        let report = try String(contentsOf: outcome.folder.appendingPathComponent("report.md"), encoding: .utf8)
        for needle in ["Step 1: training", "Step 2: test accuracy", "Table 8 view", "Step 3: multi-task inference", "mixed-task batch",
                       "Step 4: AdapterFusion", "fusion-activations", "Acceptance checks", "accuracy-vs-dropped-layers",
                       "speedup-vs-dropped-layers"] {
            #expect(report.contains(needle), "report.md lacks \(needle)")
        }
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: outcome.folder.appendingPathComponent("results.json"))) as? [String: Any]
        #expect(json?["run"] as? String == "run1")
        let adapters = try fm.contentsOfDirectory(atPath: outcome.folder.appendingPathComponent("adapters").path).sorted()
        #expect(adapters == ["alpha_robust", "alpha_specialized1", "alpha_standard", "beta_robust", "beta_specialized1", "beta_standard",
                             "gamma_robust", "gamma_specialized1", "gamma_standard"])
        // A saved adapter reloads and predicts as the demo evaluated it.
        var reloaded = AdapterModel(encoder: try BertEncoder(modelFolder: URL(fileURLWithPath: ws.model)))
        _ = try reloaded.loadAdapter(from: outcome.folder.appendingPathComponent("adapters/beta_robust"))
        #expect(reloaded.heads["beta_robust"]?.config.id2label?[2] == "z")

        // Progress: steps 0…5 in order, training progress ending at steps == steps for each adapter.
        let steps = events.compactMap { if case let .step(i, _) = $0 { return i } else { return nil } }
        #expect(steps == [0, 1, 2, 3, 4, 5])
        let finals = events.filter { if case let .training(p) = $0 { return p.step == p.steps } else { return false } }
        #expect(finals.count == 9 + 1)  // nine adapters and the fusion

        let summary = DemoReport.summary(r, folder: outcome.folder)
        #expect(summary.count <= 24)
        #expect(summary.contains { $0.contains("report.md") })
    }

    /// The acceptance checks read the right numbers and say "MISSED" when a target is missed.
    @Test func checksReportMetAndMissed() throws {
        var settings = DemoSettings.quick(runName: "x")
        settings.tasks = ["a", "b", "c", "d"]
        func evals(_ regime: DemoRegime, _ acc: [Double]) -> [DemoEvaluation] {
            acc.enumerated().map { DemoEvaluation(task: "a", regime: regime, droppedLayers: $0, accuracy: $1, macroF1: $1, count: 10) }
        }
        func row(_ n: Int, _ seconds: Double) -> DemoSpeedRow {
            DemoSpeedRow(tasks: 4, droppedLayers: n, texts: 8, seconds: seconds, baselineSeconds: 1, cpuSeconds: seconds,
                         baselineCPUSeconds: 1, layers: 6)
        }
        let run = DemoTrainingRun(task: "a", regime: .standard, steps: 1, examples: 1, seconds: 1, firstLoss: 1, lastLoss: 1, meanDroppedLayers: 0)
        var robust = run
        robust.regime = .robust
        var r = DemoResults(settings: settings, modelName: "m", layers: 6, hiddenSize: 8, modelMaxLength: 16, tasks: [],
                            training: [run, robust],
                            evaluations: evals(.standard, [0.8, 0.7, 0.6, 0.5, 0.5, 0.5]) + evals(.robust, [0.8, 0.79, 0.77, 0.7, 0.6, 0.5]),
                            speed: [row(0, 1), row(2, 1 / 1.25)], mixed: [],
                            fusion: DemoFusionResult(pending: "pending: no trainer", target: "a", adapters: [], activations: [], kept: []),
                            stepSeconds: [:])
        // Ideal at N = 4, L = 6, n = 2: 24 / 18 = 1.333…; measured 1.25 → 93.75% of ideal.
        var checks = DemoReport.checks(r)
        #expect(checks.map(\.met) == [true, true, true, nil])
        #expect(abs(r.keptPercent(.robust, dropped: 2)! - 96.25) < 1e-9)
        r.speed = [row(0, 1), row(2, 1 / 1.1)]
        r.evaluations = evals(.standard, [0.8, 0.8, 0.8, 0.8, 0.8, 0.8]) + evals(.robust, [0.8, 0.7, 0.7, 0.7, 0.6, 0.5])
        checks = DemoReport.checks(r)
        #expect(checks.map(\.met) == [false, false, false, nil])
        #expect(checks[0].verdict == "MISSED" && checks[3].verdict == "pending")
        // The report renders with these numbers (no plot name clashes, one row per (task count, n)).
        let content = DemoReport.content(r)
        #expect(content.linePlots.map(\.name) == ["accuracy-vs-dropped-layers", "speedup-vs-dropped-layers"])
        #expect(content.heatMaps.isEmpty)
    }

    /// Bad input: one typed error with a one-line message, and nothing in the results folder.
    @Test func badInputFailsBeforeWritingAnything() throws {
        let ws = try Workspace()
        try ws.writeTask("alpha", labels: ["neg", "pos"], seed: 1)
        func failure(_ settings: DemoSettings) -> Error? {
            do { _ = try Self.runDemo(settings); return nil } catch { return error }
        }
        // Missing model folder.
        var s = ws.settings(tasks: ["alpha"])
        s.modelFolder = ws.root.appendingPathComponent("no-such-model").path
        let missing = failure(s)
        #expect(missing as? DemoError == .missingFolder(path: s.modelFolder, what: "model folder (run scripts/fetch-model.sh)"))
        // Missing task folder.
        #expect(failure(ws.settings(tasks: ["alpha", "gamma"])) is DemoError)
        // Unknown label in a split.
        try ws.writeTask("badlabel", labels: ["neg", "pos"], seed: 3)
        let test = ws.root.appendingPathComponent("data/badlabel/test.jsonl")
        try (String(contentsOf: test, encoding: .utf8) + "{\"text\": \"w10 w11\", \"label\": \"maybe\"}\n").write(to: test, atomically: true, encoding: .utf8)
        let unknown = failure(ws.settings(tasks: ["badlabel"]))
        guard case .unknownLabel(_, _, "maybe", _)? = unknown as? DatasetError else {
            Issue.record("expected DatasetError.unknownLabel, got \(String(describing: unknown))"); return
        }
        // An empty split file.
        try ws.writeTask("empty", labels: ["neg", "pos"], seed: 4)
        try Data().write(to: ws.root.appendingPathComponent("data/empty/train.jsonl"))
        let empty = failure(ws.settings(tasks: ["empty"]))
        guard case .emptyFile? = empty as? DatasetError else {
            Issue.record("expected DatasetError.emptyFile, got \(String(describing: empty))"); return
        }
        // A maximum length above the model's (tiny-bert: 16 positions).
        s = ws.settings(tasks: ["alpha"])
        s.maxSequenceLength = 17
        #expect(failure(s) as? DemoError == .sequenceLengthTooLong(requested: 17, maximum: 16, model: s.modelFolder))
        // Bad settings and run names are rejected at construction.
        s = ws.settings(tasks: ["alpha"])
        s.speedTaskCounts = [3]
        #expect(throws: DemoError.self) { try AdapterDropDemo(settings: s) }
        #expect(throws: ReportError.self) { try AdapterDropDemo(settings: ws.settings(tasks: ["alpha"], run: "../escape")) }

        for error in [missing, unknown, empty] {
            let text = String(describing: error!)
            #expect(!text.contains("\n") && !text.isEmpty, "not one line: \(text)")
        }
        #expect(ws.resultsListing().isEmpty, "results/ holds \(ws.resultsListing())")

        // A results "folder" that is a file is refused up front (before any work), in one line.
        let resultsFile = ws.root.appendingPathComponent("results-file").path
        try Data("x".utf8).write(to: URL(fileURLWithPath: resultsFile))
        s = ws.settings(tasks: ["alpha"])
        s.resultsFolder = resultsFile
        #expect(failure(s) as? DemoError == .resultsFolderUnusable(path: resultsFile, reason: "is a file, not a folder"))
        s.resultsFolder = resultsFile + "/below"
        #expect(failure(s) as? DemoError == .resultsFolderUnusable(path: resultsFile + "/below",
                                                                   reason: "cannot be created: \(resultsFile) is a file"))
        // A specialized n the model cannot drop (tiny-bert has 2 layers: n in 1...1) is an error, not skipped.
        s = ws.settings(tasks: ["alpha"])
        s.specializedDrops = [1, 2]
        #expect(failure(s) as? DemoError == .invalidSetting(name: "specialized drops", value: "[1, 2]",
                                                            rule: "each in 1...1 (the model has 2 layers)"))
        #expect(ws.resultsListing().isEmpty)

        // An existing run folder is refused up front (before training), and left as it was.
        try FileManager.default.createDirectory(atPath: ws.results + "/taken", withIntermediateDirectories: true)
        #expect(failure(ws.settings(tasks: ["alpha"], run: "taken")) as? DemoError == .runExists(path: ws.results + "/taken"))
        #expect(ws.resultsListing() == ["taken"])
    }
    /// The README's library example is the body of `readmeLibraryExample()` (ReadmeExample.swift), which the test
    /// target compiles: the two must stay identical.
    @Test func readmeExampleIsTheCompiledOne() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
        let source = try String(contentsOf: root.appendingPathComponent("Tests/AdapterDropTests/ReadmeExample.swift"), encoding: .utf8)
        let start = try #require(readme.range(of: "## Library example"))
        let block = try #require(readme[start.upperBound...].range(of: "```swift\n"))
        let end = try #require(readme[block.upperBound...].range(of: "```"))
        let readmeLines = readme[block.upperBound..<end.lowerBound].split(separator: "\n").map(String.init)
            .filter { !$0.hasPrefix("import ") && !$0.isEmpty }
        let body = try #require(source.range(of: "func readmeLibraryExample() throws {\n"))
        let bodyEnd = try #require(source[body.upperBound...].range(of: "\n}"))
        let sourceLines = source[body.upperBound..<bodyEnd.lowerBound].split(separator: "\n").map { String($0.dropFirst(4)) }
        #expect(readmeLines == sourceLines)
        // The imports too: pasted alone, the README's block must compile (it uses Foundation's URL).
        let readmeImports = readme[block.upperBound..<end.lowerBound].split(separator: "\n").filter { $0.hasPrefix("import ") }
        let sourceImports = source.split(separator: "\n").filter { $0.hasPrefix("import ") }
        #expect(readmeImports == sourceImports)
        #expect(readmeImports.contains { $0.hasPrefix("import Foundation") })
        #expect(sourceLines.count <= 10, "the README promises an example of at most 10 lines")
    }
}

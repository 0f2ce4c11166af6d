// Turns DemoResults into the ReportContent that ReportWriter renders (report.md, results.json, three plots), and
// into the acceptance checks and the one-screen summary the CLI prints.
import Foundation

/// One acceptance check of the demo (issue #6): what was wanted, what was measured, whether it was met.
public struct DemoCheck: Sendable, Equatable {
    /// The target, e.g. `robust AdapterDrop keeps ≥ 95% of its n = 0 mean accuracy at n = 2`.
    public var target: String
    /// The measured numbers, in words.
    public var measured: String
    /// true: met; false: missed; nil: not measured (pending or not applicable to this run).
    public var met: Bool?

    /// `met`, `MISSED` or `pending`.
    public var verdict: String { met.map { $0 ? "met" : "MISSED" } ?? "pending" }
}

/// Builds the demo's report content.
public enum DemoReport {
    /// n used by the acceptance checks (2 of 6 layers ≈ the paper's 5 of 12).
    public static let checkDrop = 2
    /// Task count of the speed check.
    public static let checkTasks = 4

    static func pct(_ x: Double?) -> ReportValue { x.map { .number($0, decimals: 1) } ?? "–" }

    /// The acceptance checks, measured on this run.
    public static func checks(_ r: DemoResults) -> [DemoCheck] {
        var out: [DemoCheck] = []
        let n = min(checkDrop, r.layers - 1)
        let robust = r.keptPercent(.robust, dropped: n), standard = r.keptPercent(.standard, dropped: n)
        if let robust, let standard {
            let keeps = robust >= 95
            let fallsFaster = standard < robust
            out.append(DemoCheck(target: "robust AdapterDrop keeps ≥ 95% of its n = 0 mean accuracy at n = \(n)",
                                 measured: String(format: "robust keeps %.1f%% (mean accuracy %.1f%% → %.1f%%)", robust,
                                                  100 * (r.meanAccuracy(.robust, dropped: 0) ?? .nan),
                                                  100 * (r.meanAccuracy(.robust, dropped: n) ?? .nan)),
                                 met: keeps))
            out.append(DemoCheck(target: "the standard adapter falls off faster than robust AdapterDrop at n = \(n)",
                                 measured: String(format: "standard keeps %.1f%% (%.1f%% → %.1f%%), robust %.1f%%", standard,
                                                  100 * (r.meanAccuracy(.standard, dropped: 0) ?? .nan),
                                                  100 * (r.meanAccuracy(.standard, dropped: n) ?? .nan), robust),
                                 met: fallsFaster))
        }
        let tasks = r.speed.map(\.tasks).filter { $0 <= checkTasks }.max() ?? 0
        if tasks > 1, let row = r.speedRow(tasks: tasks, dropped: n) {
            let fraction = row.speedup / row.idealSpeedup
            out.append(DemoCheck(target: "\(tasks)-task Parallel speed-up at n = \(n) ≥ 90% of the ideal layer-count ratio",
                                 measured: String(format: "%.2f× wall clock (%.2f× CPU time) vs ideal %.2f×: %.0f%% of ideal",
                                                  row.speedup, row.cpuSpeedup, row.idealSpeedup, 100 * fraction),
                                 met: fraction >= 0.9))
        } else {
            out.append(DemoCheck(target: "\(checkTasks)-task Parallel speed-up at n = \(n) ≥ 90% of the ideal layer-count ratio",
                                 measured: "not measured in this run (needs at least 2 tasks)", met: nil))
        }
        if let pending = r.fusion.pending {
            out.append(DemoCheck(target: "pruned fusion (top 2) within 1 accuracy point of the full fusion",
                                 measured: pending, met: nil))
        } else if let full = r.fusion.fullAccuracy, let pruned = r.fusion.prunedAccuracy {
            out.append(DemoCheck(target: "pruned fusion (top 2) within 1 accuracy point of the full fusion",
                                 measured: String(format: "full %.1f%%, pruned (%@) %.1f%%; pruned runs %.2f× as fast", 100 * full,
                                                  r.fusion.kept.joined(separator: ", "), 100 * pruned,
                                                  (r.fusion.fullSeconds ?? .nan) / (r.fusion.prunedSeconds ?? .nan)),
                                 met: 100 * (full - pruned) <= 1))
        }
        return out
    }

    /// The report: settings, tables, plots and notes.
    public static func content(_ r: DemoResults) -> ReportContent {
        let s = r.settings
        let L = r.layers
        let regimes = r.regimes
        let drops = Array(0..<L)
        var tables: [ReportTable] = []

        // Data.
        tables.append(ReportTable(
            title: "Tasks",
            columns: ["task", "labels", "train / dev / test (full splits)", "used train", "used test",
                      "train label counts", "test label counts", "mean tokens per text", "truncated texts"],
            rows: r.tasks.map { t in
                [.text(t.name), .text(t.labels.joined(separator: ", ")), .text("\(t.fullTrain) / \(t.fullDev) / \(t.fullTest)"),
                 .integer(t.usedTrain), .integer(t.usedTest),
                 .text(zip(t.labels, t.trainLabelCounts).map { "\($0) \($1)" }.joined(separator: ", ")),
                 .text(zip(t.labels, t.testLabelCounts).map { "\($0) \($1)" }.joined(separator: ", ")),
                 .number(t.meanTokens, decimals: 1), .integer(t.truncated)]
            },
            note: "Seeded samples (seed \(s.seed)) of the splits written by scripts/fetch-data.sh; texts longer than "
                + "\(s.maxSequenceLength) tokens (special tokens included) are truncated."))

        // Step 1.
        tables.append(ReportTable(
            title: "Step 1: training (one seq_bn adapter + head per task and regime)",
            columns: ["task", "regime", "steps", "examples", "time (s)", "examples/s", "loss, first 10% of steps",
                      "loss, last 10% of steps", "mean dropped layers"],
            rows: r.training.map { t in
                [.text(t.task), .text(t.regime.description), .integer(t.steps), .integer(t.examples),
                 .number(t.seconds, decimals: 1), .number(t.examplesPerSecond, decimals: 1),
                 .number(t.firstLoss, decimals: 3), .number(t.lastLoss, decimals: 3), .number(t.meanDroppedLayers, decimals: 2)]
            },
            note: "Wall clock on a machine that may be shared with other jobs; robust AdapterDrop draws n from 0…\(L - 1) per batch."))

        // Step 2.
        func perTask(_ metric: (DemoEvaluation) -> Double) -> [[ReportValue]] {
            var rows: [[ReportValue]] = []
            for task in r.tasks.map(\.name) {
                for regime in regimes {
                    rows.append([.text(task), .text(regime.description)] + drops.map { n in
                        pct(r.evaluations.first { $0.task == task && $0.regime == regime && $0.droppedLayers == n }.map { 100 * metric($0) })
                    })
                }
            }
            return rows
        }
        tables.append(ReportTable(title: "Step 2: test accuracy (%) by dropped layers n",
                                  columns: ["task", "regime"] + drops.map { "n=\($0)" }, rows: perTask(\.accuracy),
                                  note: "Adapters removed from layers 0…n−1 at inference."))
        tables.append(ReportTable(title: "Step 2: test macro-F1 (%) by dropped layers n",
                                  columns: ["task", "regime"] + drops.map { "n=\($0)" }, rows: perTask(\.macroF1)))
        var meanRows: [[ReportValue]] = []
        for regime in regimes {
            meanRows.append([.text(regime.description), "mean accuracy (%)"] + drops.map { pct(r.meanAccuracy(regime, dropped: $0).map { 100 * $0 }) })
            meanRows.append([.text(regime.description), "mean macro-F1 (%)"] + drops.map { pct(r.meanMacroF1(regime, dropped: $0).map { 100 * $0 }) })
            meanRows.append([.text(regime.description), "accuracy, % of n=0"] + drops.map { pct(r.keptPercent(regime, dropped: $0)) })
        }
        tables.append(ReportTable(
            title: "Step 2: mean over the \(r.tasks.count) tasks, and as % of n = 0 (the paper's Table 8 view)",
            columns: ["regime", "value"] + drops.map { "n=\($0)" }, rows: meanRows,
            note: "Specialized AdapterDrop is one adapter per n: its '% of n=0' is relative to the standard adapter at n = 0 "
                + "(the specialized n = 0 model) and meaningful only at its own n. The paper (BERT-base, 12 layers, GLUE) "
                + "keeps 97.1% (specialized) and 95.4% (robust) with 5 of 12 layers dropped."))

        // Step 3.
        tables.append(ReportTable(
            title: "Step 3: multi-task inference, all task adapters in Parallel on the same \(r.speed.first?.texts ?? 0) texts (the paper's Table 2 view)",
            columns: ["tasks", "dropped layers n", "batch time (ms)", "per text (ms)", "texts/s", "speed-up vs n=0 (×, wall)",
                      "speed-up vs n=0 (×, CPU time)", "ideal layer-count ratio (×)", "wall speed-up / ideal (%)"],
            rows: r.speed.map { row in
                [.integer(row.tasks), .integer(row.droppedLayers), .number(row.seconds * 1000, decimals: 1),
                 .number(row.millisecondsPerText, decimals: 2), .number(row.textsPerSecond, decimals: 1),
                 .number(row.speedup, decimals: 2), .number(row.cpuSpeedup, decimals: 2),
                 .number(row.idealSpeedup, decimals: 2), .number(100 * row.speedup / row.idealSpeedup, decimals: 0)]
            },
            note: "The robust adapters (one per task) with their heads as Parallel(task1, …, taskN); layers 0…n−1 run once for "
                + "the batch, the rest N times. Medians of \(s.speedRepetitions) repetitions, n round-robin within each "
                + "repetition, \(s.threads) thread(s). Ideal = N·L / (n + N·(L − n)) with L = \(L)."))
        if !r.mixed.isEmpty {
            let base = r.mixed.first { $0.droppedLayers == 0 }?.seconds
            tables.append(ReportTable(
                title: "Step 3: mixed-task batch — each of the \(r.mixed[0].texts) texts answered only by its own task's adapter and head",
                columns: ["dropped layers n", "batch time (ms)", "per text (ms)", "texts/s", "speed-up vs n=0 (×)", "accuracy (%)"],
                rows: r.mixed.map { row in
                    [.integer(row.droppedLayers), .number(row.seconds * 1000, decimals: 1), .number(row.millisecondsPerText, decimals: 2),
                     .number(Double(row.texts) / row.seconds, decimals: 1), base.map { .number($0 / row.seconds, decimals: 2) } ?? "–",
                     .number(100 * row.accuracy, decimals: 1)]
                },
                note: "AdapterModel.mixedTaskLogits: one encoder pass over the batch with the robust adapters of \(r.mixed[0].tasks) tasks "
                    + "applied to their own rows (no replication), so each text costs what it would alone; the same texts as the Parallel table."))
        }

        // Step 4.
        var heatMaps: [ReportHeatMap] = []
        if let pending = r.fusion.pending {
            tables.append(ReportTable(title: "Step 4: AdapterFusion and pruning", columns: ["status"],
                                      rows: [[.text(pending)]]))
        } else {
            let f = r.fusion
            let own = r.evaluations.first { $0.task == f.target && $0.regime == .standard && $0.droppedLayers == 0 }
            func speedup(_ seconds: Double?) -> ReportValue {
                guard let seconds, let full = f.fullSeconds, seconds > 0 else { return "–" }
                return .number(full / seconds, decimals: 2)
            }
            tables.append(ReportTable(
                title: "Step 4: AdapterFusion over the \(f.adapters.count) standard task adapters for \(f.target), pruned to the top 2",
                columns: ["setup", "adapters", "test accuracy (%)", "time for the \(r.tasks.first { $0.name == f.target }?.usedTest ?? 0) test texts (ms)",
                          "speed-up vs full fusion (×)"],
                rows: [["full fusion", .text(f.adapters.joined(separator: ", ")), pct(f.fullAccuracy.map { 100 * $0 }),
                        pct(f.fullSeconds.map { 1000 * $0 }), speedup(f.fullSeconds)],
                       ["pruned fusion (top 2)", .text(f.kept.joined(separator: ", ")), pct(f.prunedAccuracy.map { 100 * $0 }),
                        pct(f.prunedSeconds.map { 1000 * $0 }), speedup(f.prunedSeconds)],
                       ["single adapter (standard, for reference)", .text(AdapterDropDemo.adapterName(task: f.target, regime: .standard)),
                        pct(own.map { 100 * $0.accuracy }), "–", "–"]],
                note: "The fusion (dynamic preset: query, key, value; value regulariser) and a new head are trained on \(f.target)'s "
                    + "training sample with the adapters frozen"
                    + (f.training.map { String(format: " (%d steps, %.0f s, loss %.3f → %.3f)", $0.steps, $0.seconds, $0.firstLoss, $0.lastLoss) } ?? "")
                    + ". Activations: mean softmax weight per adapter over the training sample's tokens; the 2 adapters with the "
                    + "highest mean over all layers are kept and the trained fusion weights are reused (no retraining). "
                    + "Times: median of \(s.speedRepetitions) passes over the test sample."))
            heatMaps.append(ReportHeatMap(name: "fusion-activations", title: "AdapterFusion attention for \(f.target)",
                                          xLabel: "layer", yLabel: "task adapter (standard)", columnLabels: (0..<L).map { "\($0)" },
                                          rowLabels: f.adapters.map { $0.hasSuffix("_standard") ? String($0.dropLast(9)) : $0 },
                                          values: f.activations,
                                          valueLabel: "mean attention weight (0–1)", valueRange: 0...1))
        }

        // Acceptance.
        let checks = checks(r)
        tables.append(ReportTable(title: "Acceptance checks (issue #6)", columns: ["target", "measured", "verdict"],
                                  rows: checks.map { [.text($0.target), .text($0.measured), .text($0.verdict)] }))

        // Plots.
        var accuracySeries: [ReportSeries] = []
        for regime in regimes {
            if case .specialized = regime { continue }
            accuracySeries.append(ReportSeries(name: regime.description, points: drops.compactMap { n in
                r.meanAccuracy(regime, dropped: n).map { (x: Double(n), y: 100 * $0) } }))
        }
        let specialized = regimes.compactMap { regime -> (x: Double, y: Double)? in
            guard case let .specialized(n) = regime, let v = r.meanAccuracy(regime, dropped: n) else { return nil }
            return (x: Double(n), y: 100 * v)
        }
        if !specialized.isEmpty, let base = r.meanAccuracy(.standard, dropped: 0) {
            accuracySeries.append(ReportSeries(name: "specialized (one adapter per n)", points: [(x: 0, y: 100 * base)] + specialized))
        }
        var speedSeries: [ReportSeries] = []
        for count in Array(Set(r.speed.map(\.tasks))).sorted() {
            speedSeries.append(ReportSeries(name: "\(count) task\(count == 1 ? "" : "s")", points: drops.compactMap { n in
                r.speedRow(tasks: count, dropped: n).map { (x: Double(n), y: $0.speedup) } }))
        }
        if let maxTasks = r.speed.map(\.tasks).max(), maxTasks > 1 {
            speedSeries.append(ReportSeries(name: "ideal layer-count ratio, \(maxTasks) tasks", points: drops.map {
                (x: Double($0), y: DemoSpeedRow.idealSpeedup(tasks: maxTasks, dropped: $0, layers: L)) }))
        }
        let linePlots = [
            ReportLinePlot(name: "accuracy-vs-dropped-layers", title: "Mean test accuracy over \(r.tasks.count) tasks vs dropped layers",
                           xLabel: "n, lowest layers without adapters", xUnit: "layers", yLabel: "mean test accuracy", yUnit: "%",
                           series: accuracySeries, integerXTics: true),
            ReportLinePlot(name: "speedup-vs-dropped-layers", title: "Parallel multi-task inference: speed-up vs dropped layers",
                           xLabel: "n, lowest layers without adapters", xUnit: "layers", yLabel: "wall-clock speed-up vs n = 0", yUnit: "×",
                           series: speedSeries, integerXTics: true),
        ]

        let settings: [ReportSetting] = [
            ReportSetting("preset", s.isQuick ? "--quick (smoke run: tiny samples, numbers are not meaningful)" : "full"),
            ReportSetting("model", "\(r.modelName) (\(L) layers, hidden \(r.hiddenSize), maximum \(r.modelMaxLength) tokens)"),
            ReportSetting("tasks", s.tasks.joined(separator: ", ")),
            ReportSetting("training examples per task", "\(s.trainExamplesPerTask) (seeded sample of train)"),
            ReportSetting("test examples per task", "\(s.testExamplesPerTask) (seeded sample of test)"),
            ReportSetting("max sequence length", "\(s.maxSequenceLength) tokens"),
            ReportSetting("adapter", "seq_bn (Pfeiffer), reduction factor \(s.reductionFactor) (bottleneck \(r.hiddenSize / s.reductionFactor)), + 2-layer classification head on [CLS]"),
            ReportSetting("regimes", regimes.map(\.description).joined(separator: ", ")),
            ReportSetting("optimizer", String(format: "AdamW, lr %g, linear warm-up over %.0f%% of the steps then linear decay, weight decay 0.01 (none on biases), clip 1.0, dropout on",
                                              s.learningRate, 100 * s.warmupFraction)),
            ReportSetting("epochs × batch size", "\(s.epochs) × \(s.batchSize) examples"),
            ReportSetting("evaluation batch", "\(s.evaluationBatchSize) examples"),
            ReportSetting("speed table", "\(s.speedBatchSize) texts per batch, task counts \(s.speedTaskCounts.map(String.init).joined(separator: ",")), \(s.speedRepetitions) repetitions"),
            ReportSetting("threads", "\(s.threads)"),
            ReportSetting("time per step (wall clock)", ["load", "train", "evaluate", "speed", "fusion"].compactMap { k in
                r.stepSeconds[k].map { String(format: "%@ %.0f s", k, $0) } }.joined(separator: ", ")
                + String(format: "; total %.0f s", ["load", "train", "evaluate", "speed", "fusion"].compactMap { r.stepSeconds[$0] }.reduce(0, +))),
            ReportSetting("process CPU time per step (all threads)", ["load", "train", "evaluate", "speed", "fusion"].compactMap { k in
                r.stepSeconds[k + " cpu"].map { String(format: "%@ %.0f s", k, $0) } }.joined(separator: ", ")
                + String(format: "; total %.0f s", ["load", "train", "evaluate", "speed", "fusion"].compactMap { r.stepSeconds[$0 + " cpu"] }.reduce(0, +))),
        ]

        let verdictLines = checks.map { "- **\($0.verdict)** — \($0.target): \($0.measured)" }.joined(separator: "\n")
        let summary = """
            Task adapters (seq_bn + classification head) trained on \(r.modelName) for \(r.tasks.count) real text-classification \
            tasks with and without AdapterDrop, evaluated with 0…\(L - 1) dropped adapter layers, then run together in one \
            Parallel block to measure how much sharing the lower layers speeds up multi-task inference \
            (Rücklé et al., *AdapterDrop*, EMNLP 2021).\(s.isQuick ? " **This is the --quick smoke run: the samples are tiny and the accuracies are not meaningful.**" : "")

            \(verdictLines)
            """
        var notes = [
            "Speed numbers are wall-clock medians on this machine; when other jobs share the cores they are slower and noisier. "
                + "The CPU-time speed-up column (process CPU time, all threads) is less affected by other processes.",
            "Accuracy numbers come from one seed and small training samples; differences of a point or two between regimes are within run-to-run noise.",
            "Trained adapters (AdapterHub layout, with heads) are in adapters/ inside this folder; try them with "
                + "`adapterdrop predict --model \(s.modelFolder) --adapter <folder> --setup <name> --text \"…\"`.",
        ]
        if r.fusion.pending != nil {
            notes.append("Step 4 (AdapterFusion, its activations per adapter and layer, pruning to the top 2) did not run: \(r.fusion.pending!).")
        }
        return ReportContent(title: "AdapterDrop demo: \(r.modelName) on \(r.tasks.count) tasks", summary: summary,
                             settings: settings, seed: s.seed, tables: tables, linePlots: linePlots, heatMaps: heatMaps,
                             notes: notes)
    }

    /// The one-screen summary the CLI prints at the end (≤ 24 lines).
    public static func summary(_ r: DemoResults, folder: URL) -> [String] {
        var lines: [String] = []
        let L = r.layers
        let n = min(checkDrop, L - 1)
        lines.append("AdapterDrop demo — \(r.modelName), \(r.tasks.count) tasks\(r.settings.isQuick ? " (--quick: tiny samples)" : "")")
        let header = "mean test accuracy (%)   " + (0..<L).map { String(format: "n=%-5d", $0) }.joined()
        lines.append(header)
        for regime in r.regimes {
            let cells = (0..<L).map { k -> String in
                guard let v = r.meanAccuracy(regime, dropped: k) else { return "  –   " }
                return String(format: "%-6.1f", 100 * v)
            }
            lines.append(regime.description.padding(toLength: 25, withPad: " ", startingAt: 0) + cells.joined())
        }
        if let maxTasks = r.speed.map(\.tasks).max() {
            let cells = (0..<L).map { k in r.speedRow(tasks: maxTasks, dropped: k).map { String(format: "%-6.2f", $0.speedup) } ?? "  –   " }
            lines.append("speed-up, \(maxTasks) tasks (×)".padding(toLength: 25, withPad: " ", startingAt: 0) + cells.joined())
            let ideal = (0..<L).map { String(format: "%-6.2f", DemoSpeedRow.idealSpeedup(tasks: maxTasks, dropped: $0, layers: L)) }
            lines.append("ideal ratio (×)".padding(toLength: 25, withPad: " ", startingAt: 0) + ideal.joined())
        }
        let f = r.fusion
        if f.pending == nil, let full = f.fullAccuracy, let pruned = f.prunedAccuracy {
            lines.append(String(format: "fusion for %@: full %.1f%%, pruned to %@ %.1f%%, %.2f× as fast", f.target, 100 * full,
                                f.kept.joined(separator: " + "), 100 * pruned, (f.fullSeconds ?? .nan) / (f.prunedSeconds ?? .nan)))
        }
        lines.append("checks (n = \(n)):")
        for c in checks(r) { lines.append("  [\(c.verdict)] \(c.target): \(c.measured)") }
        lines.append("report:  \(folder.appendingPathComponent("report.md").path)")
        lines.append("data:    \(folder.appendingPathComponent("results.json").path)")
        lines.append("plots:   \(folder.path)/*.png")
        lines.append("adapters: \(folder.appendingPathComponent("adapters").path)/<task>_<regime>")
        return lines
    }
}

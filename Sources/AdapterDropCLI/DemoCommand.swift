import AdapterCore
import AdapterDrop
import ArgumentParser
import Foundation

/// `adapterdrop demo`: the end-to-end AdapterDrop demo (library type `AdapterDropDemo`; docs/demo.md).
struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Train task adapters with and without AdapterDrop, evaluate them at 0…L−1 dropped layers, time "
            + "multi-task Parallel inference, and write results/<run>/report.md with tables and plots.",
        discussion: """
            Needs the model (scripts/fetch-model.sh) and the data (scripts/fetch-data.sh); scripts/demo.sh does both, \
            builds in release mode and runs this. The full run took 7 minutes on an idle 2-core machine (at most 15; docs/demo.md), --quick about 1.
            """)

    @Flag(help: "Smoke run (CI): tiny samples, every step, a report; numbers are not meaningful.")
    var quick = false
    @Option(help: "Hugging Face model folder.")
    var model: String = "models/all-MiniLM-L6-v2"
    @Option(help: "Folder of task folders (<task>/{labels.json,train,dev,test}.jsonl).")
    var data: String = "data"
    @Option(help: "Where the run folder is written.")
    var results: String = "results"
    @Option(name: .customLong("run"), help: "Run folder name (default: demo-<date>-<time>, or quick-… with --quick).")
    var runName: String?
    @Option(help: "Comma-separated task folder names (default: all five of fetch-data.sh).")
    var tasks: String?
    @Option(help: "Training examples per task (default: 640, --quick 48).")
    var trainExamples: Int?
    @Option(help: "Test examples per task (default: 300, --quick 32).")
    var testExamples: Int?
    @Option(help: "Longest input in tokens; longer texts are truncated (default: 64, --quick 32).")
    var maxLength: Int?
    @Option(help: "Training epochs (default: 1).")
    var epochs: Int?
    @Option(help: "Examples per training step (default: 16).")
    var batchSize: Int?
    @Option(help: "Peak learning rate of adapters, heads and the fusion (default: 1e-3).")
    var learningRate: Double?
    @Option(help: "Comma-separated n for specialized AdapterDrop adapters (default: 2,4; --quick 2; 'none' for none).")
    var specialized: String?
    @Option(help: "Seed of every random choice.")
    var seed: UInt64?
    @Option(help: "Worker threads (default: all active processors).")
    var threads: Int?
    @Flag(help: "Do not render plots (the report lists them as missing).")
    var noPlots = false

    func settings() throws -> DemoSettings {
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyyMMdd-HHmmss"
        formatter.timeZone = TimeZone(identifier: "UTC")
        let name = runName ?? "\(quick ? "quick" : "demo")-\(formatter.string(from: Date()))"
        var s = quick ? DemoSettings.quick(modelFolder: model, dataFolder: data, resultsFolder: results, runName: name)
            : DemoSettings.full(modelFolder: model, dataFolder: data, resultsFolder: results, runName: name)
        if let tasks {
            s.tasks = tasks.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            s.speedTaskCounts = s.speedTaskCounts.filter { $0 <= s.tasks.count }
            if s.speedTaskCounts.isEmpty || !s.speedTaskCounts.contains(s.tasks.count) { s.speedTaskCounts.append(s.tasks.count) }
        }
        if let trainExamples { s.trainExamplesPerTask = trainExamples }
        if let testExamples { s.testExamplesPerTask = testExamples }
        if let maxLength { s.maxSequenceLength = maxLength }
        if let epochs { s.epochs = epochs }
        if let batchSize { s.batchSize = batchSize }
        if let learningRate { s.learningRate = learningRate }
        if let specialized {
            if specialized == "none" {
                s.specializedDrops = []
            } else {
                let values = specialized.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
                guard values.allSatisfy({ $0 != nil }) else {
                    throw ValidationError("--specialized: expected comma-separated integers or 'none', got \(specialized)")
                }
                var seen = Set<Int>()
                if let twice = values.map({ $0! }).first(where: { !seen.insert($0).inserted }) {
                    throw ValidationError("--specialized \(specialized): n = \(twice) is given twice")
                }
                s.specializedDrops = values.map { $0! }
            }
        }
        if let seed { s.seed = seed }
        if let threads { s.threads = threads }
        return s
    }

    func run() throws {
        #if DEBUG
        if !quick { FileHandle.standardError.write(Data("warning: debug build; the demo's time budget assumes `swift build -c release`\n".utf8)) }
        #endif
        // Before any step: the run folder must be creatable under --results (a probe, so that read-only places such
        // as /proc fail here and not after the last step).
        try checkParentWritable(URL(fileURLWithPath: results).appendingPathComponent("run").path, option: "--results", shown: results)
        let demo = try AdapterDropDemo(settings: settings())
        if noPlots { demo.gnuplot = .disabled }
        let renderer = DemoProgressRenderer()
        let start = Date()
        let (results, outcome): (DemoResults, ReportOutcome)
        do {
            (results, outcome) = try demo.run { renderer.handle($0) }
        } catch let DemoError.invalidSetting(name: "specialized drops", value: _, rule: rule) {
            renderer.finish()
            throw CLIError("--specialized \(specialized ?? demo.settings.specializedDrops.map(String.init).joined(separator: ",")): \(rule)")
        } catch let DemoError.resultsFolderUnusable(path, reason) {
            renderer.finish()
            throw CLIError("--results \(path): \(reason)")
        }
        renderer.finish()
        print("")
        for line in DemoReport.summary(results, folder: outcome.folder) { print(line) }
        for missing in outcome.missingPlots { print("plot \(missing.name).png missing: \(missing.reason)") }
        print(String(format: "total %.0f s", Date().timeIntervalSince(start)))
    }
}

/// Draws progress lines on stderr: one redrawn line on a terminal, a line every few seconds otherwise (CI logs).
final class DemoProgressRenderer {
    private let isTerminal = isatty(2) == 1
    private var lastPrint = Date.distantPast
    private var openLine = false
    private let started = Date()

    private func write(_ text: String) { FileHandle.standardError.write(Data(text.utf8)) }

    private func line(_ text: String, final: Bool) {
        if isTerminal {
            write("\r\u{1B}[2K" + text + (final ? "\n" : ""))
            openLine = !final
        } else if final || Date().timeIntervalSince(lastPrint) >= 5 {
            write(text + "\n")
            lastPrint = Date()
        }
    }

    private func closeLine() {
        if openLine { write("\n"); openLine = false }
    }

    static func bar(_ fraction: Double, width: Int = 24) -> String {
        let filled = Int((max(0, min(1, fraction)) * Double(width)).rounded())
        return "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "]"
    }

    static func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 60 ? "\(s / 60)m\(String(format: "%02d", s % 60))s" : "\(s)s"
    }

    func handle(_ event: DemoEvent) {
        switch event {
        case let .step(index, title):
            closeLine()
            write("\n[\(Self.duration(Date().timeIntervalSince(started)))] " + (index == 0 ? "" : "Step \(index): ") + title + "\n")
        case let .message(text):
            closeLine()
            write("  " + text + "\n")
        case let .training(p):
            let final = p.step == p.steps
            var text = "  " + p.label.padding(toLength: 42, withPad: " ", startingAt: 0) + " " + Self.bar(Double(p.step) / Double(max(p.steps, 1)))
                + " \(p.step)/\(p.steps) steps  " + String(format: "%.1f ex/s", p.examplesPerSecond)
            if let loss = p.loss { text += String(format: final ? "  loss (last 10%%) %.3f" : "  loss %.3f", loss) }
            text += final ? "  done in \(Self.duration(p.elapsed))" : (p.secondsLeft.map { "  ETA \(Self.duration($0))" } ?? "")
            line(text, final: final)
        case let .work(label, done, total, elapsed):
            let final = done == total
            let eta = done > 0 ? elapsed / Double(done) * Double(total - done) : 0
            line("  " + label.padding(toLength: 42, withPad: " ", startingAt: 0) + " " + Self.bar(Double(done) / Double(max(total, 1)))
                 + " \(done)/\(total)" + (final ? "  done in \(Self.duration(elapsed))" : "  ETA \(Self.duration(eta))"), final: final)
        }
    }

    func finish() { closeLine() }
}

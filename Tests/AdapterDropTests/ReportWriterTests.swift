// Tests for ReportWriter: a full report from fake numbers (tables, the demo's three plots), PNG validity,
// the gnuplot-missing and gnuplot-failing paths, atomicity (nothing half-written in results/) and escaping.
@testable import AdapterDrop
import Foundation
import Testing

/// The demo's report shape, with made-up numbers.
func fakeDemoContent() -> ReportContent {
    let regimes = ["standard adapters", "specialized AdapterDrop (5)", "robust AdapterDrop"]
    let accuracy: [[Double]] = [
        [88.4, 87.9, 86.1, 83.0, 77.5, 70.2],
        [84.0, 84.3, 84.6, 85.1, 85.0, 85.2],
        [87.8, 87.5, 87.0, 86.2, 84.9, 81.3],
    ]
    let taskCounts = [1, 2, 4, 8]
    let speedUp = taskCounts.map { n in (0...5).map { k in 1 + Double(k) * 0.08 * (1 + log2(Double(n))) } }
    return ReportContent(
        title: "AdapterDrop demo (fake numbers)",
        summary: "Synthetic values used by the ReportWriter tests.",
        settings: [ReportSetting("model", "all-MiniLM-L6-v2"), ReportSetting("batch size", "32 sequences"),
                   ReportSetting("learning rate", "1e-4")],
        seed: 42,
        tables: [
            ReportTable(title: "Accuracy on movie-sentiment by dropped layers",
                        columns: ["regime"] + (0...5).map { "drop \($0) (%)" },
                        rows: zip(regimes, accuracy).map { name, values in
                            [.text(name)] + values.map { .number($0, decimals: 1) } },
                        note: "Accuracy on the test split, in percent."),
            ReportTable(title: "Edge cases", columns: ["name | with pipe", "value"],
                        rows: [["a|b\nc", .number(.nan, decimals: 2)], ["count", 7]]),
        ],
        linePlots: [
            ReportLinePlot(name: "accuracy-vs-dropped-layers", title: "Accuracy vs dropped layers (movie-sentiment)",
                           xLabel: "dropped layers", xUnit: "count", yLabel: "test accuracy", yUnit: "%",
                           series: zip(regimes, accuracy).map { name, values in
                               ReportSeries(name: name, points: values.enumerated().map { (Double($0.offset), $0.element) })
                           }, integerXTics: true),
            ReportLinePlot(name: "speedup-vs-dropped-layers", title: "Inference speed-up vs dropped layers",
                           xLabel: "dropped layers", xUnit: "count", yLabel: "speed-up over no dropping", yUnit: "×",
                           series: zip(taskCounts, speedUp).map { n, values in
                               ReportSeries(name: "\(n) task\(n == 1 ? "" : "s")",
                                            points: values.enumerated().map { (Double($0.offset), $0.element) })
                           }, integerXTics: true),
        ],
        heatMaps: [
            ReportHeatMap(name: "fusion-activation", title: "AdapterFusion attention per adapter and layer",
                          xLabel: "layer", yLabel: "adapter", columnLabels: (0..<6).map { "layer \($0)" },
                          rowLabels: ["movie-sentiment", "news-topic", "tweet-sentiment"],
                          values: [[0.61, 0.55, 0.48, 0.52, 0.70, 0.81],
                                   [0.22, 0.25, 0.30, 0.28, 0.12, 0.07],
                                   [0.17, 0.20, 0.22, 0.20, 0.18, 0.12]],
                          valueLabel: "mean attention weight", valueRange: 0...1),
        ],
        notes: ["All numbers on this page are made up."])
}

let fixedMachine = MachineInfo(cpuModel: "Test CPU 9000", logicalCores: 2, operatingSystem: "TestOS 1",
                               commit: "0123456789abcdef0123456789abcdef01234567")

/// A fresh results folder inside a temporary directory, removed when released (unless
/// ADAPTERDROP_KEEP_TEST_REPORT names a folder to use instead, for looking at the output).
final class ReportTempFolder {
    let url: URL
    let keep: Bool

    init() throws {
        if let kept = ProcessInfo.processInfo.environment["ADAPTERDROP_KEEP_TEST_REPORT"], !kept.isEmpty {
            url = URL(fileURLWithPath: kept).appendingPathComponent(UUID().uuidString)
            keep = true
        } else {
            url = FileManager.default.temporaryDirectory
                .appendingPathComponent("adapterdrop-report-tests-\(UUID().uuidString)")
            keep = false
        }
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit { if !keep { try? FileManager.default.removeItem(at: url) } }

    var results: URL { url.appendingPathComponent("results") }

    func listing(_ folder: URL? = nil) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: (folder ?? results).path)) ?? []).sorted()
    }
}

func reportError(sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) -> ReportError? {
    do {
        try body()
        Issue.record("expected a ReportError, nothing was thrown", sourceLocation: sourceLocation)
    } catch let error as ReportError {
        return error
    } catch {
        Issue.record("expected a ReportError, got \(error)", sourceLocation: sourceLocation)
    }
    return nil
}

@Suite("Report writer")
struct ReportWriterTests {
    @Test("a full report: report.md, results.json and three valid PNGs (or, without gnuplot, the reasons)")
    func fullReport() throws {
        let folder = try ReportTempFolder()
        let writer = ReportWriter(resultsDirectory: folder.results)
        let date = Date(timeIntervalSince1970: 1_800_000_000)
        let outcome = try writer.write(fakeDemoContent(), runName: "demo-1", machine: fixedMachine, date: date)
        let run = folder.results.appendingPathComponent("demo-1")
        #expect(outcome.folder.path == run.path)
        #expect(folder.listing() == ["demo-1"])  // no staging folder left behind

        let names = ["accuracy-vs-dropped-layers", "speedup-vs-dropped-layers", "fusion-activation"]
        let gnuplotAvailable = Subprocess.findExecutable("gnuplot") != nil
            && ProcessInfo.processInfo.environment["ADAPTERDROP_GNUPLOT"] == nil
        if gnuplotAvailable {
            #expect(outcome.missingPlots == [])
            #expect(Set(outcome.plots.keys) == Set(names))
            for name in names {
                let png = run.appendingPathComponent("\(name).png")
                #expect(ReportWriter.isPNG(png), "\(name).png")
                let size = (try? FileManager.default.attributesOfItem(atPath: png.path)[.size] as? Int) ?? 0
                #expect(size > 10_000, "\(name).png is only \(size) bytes")  // a blank 1100×650 PNG is ~5 kB
            }
        } else {
            #expect(outcome.plots.isEmpty)
            #expect(outcome.missingPlots.map(\.name) == names)
            #expect(outcome.missingPlots.allSatisfy { $0.reason.contains("gnuplot not found") })
        }
        for name in names {
            #expect(FileManager.default.fileExists(atPath: run.appendingPathComponent("plots/\(name).gp").path))
            #expect(FileManager.default.fileExists(atPath: run.appendingPathComponent("plots/\(name).dat").path))
        }

        let markdown = try String(contentsOf: run.appendingPathComponent("report.md"), encoding: .utf8)
        #expect(markdown.hasPrefix("# AdapterDrop demo (fake numbers)\n"))
        #expect(markdown.contains("| seed | 42 |"))
        #expect(markdown.contains("| commit | 0123456789abcdef0123456789abcdef01234567 |"))
        #expect(markdown.contains("| CPU | Test CPU 9000, 2 logical cores |"))
        #expect(markdown.contains("| date (UTC) | 2027-01-15T08:00:00Z |"))
        #expect(markdown.contains("| batch size | 32 sequences |"))
        #expect(markdown.contains("| regime | drop 0 (%) | drop 1 (%) | drop 2 (%) | drop 3 (%) | drop 4 (%) | drop 5 (%) |"))
        #expect(markdown.contains("| specialized AdapterDrop (5) | 84.0 | 84.3 | 84.6 | 85.1 | 85.0 | 85.2 |"))
        #expect(markdown.contains("| name \\| with pipe | value |"))
        #expect(markdown.contains("| a\\|b c | NaN |"))
        #expect(markdown.contains("- All numbers on this page are made up."))
        for name in names {
            #expect(markdown.contains("](\(name).png)") == gnuplotAvailable, "\(name)")
        }

        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: run.appendingPathComponent("results.json")))
            as! [String: Any]
        #expect(json["format"] as? Int == 1)
        #expect(json["run"] as? String == "demo-1")
        #expect(json["created"] as? String == "2027-01-15T08:00:00Z")
        #expect((json["machine"] as? [String: Any])?["cpuModel"] as? String == "Test CPU 9000")
        #expect(((json["plots"] as? [Any])?.count ?? -1) + ((json["missing_plots"] as? [Any])?.count ?? -1) == 3)
        // The content round-trips through results.json.
        let record = try JSONDecoder().decode(ReportRecord.self,
                                              from: Data(contentsOf: run.appendingPathComponent("results.json")))
        var expected = fakeDemoContent()
        expected.tables[1].rows[0][1] = .number(.nan, decimals: 2)
        #expect(record.content.linePlots == expected.linePlots)
        #expect(record.content.heatMaps == expected.heatMaps)
        #expect(record.content.tables[0].rows[1][4] == .number(85.1, decimals: 2))
        #expect(record.content.tables[1].rows[0][1].formatted == "NaN")
    }

    @Test("without gnuplot (disabled, wrong path, failing) the report is written and says which plots are missing and why")
    func missingGnuplot() throws {
        let folder = try ReportTempFolder()
        let cases: [(GnuplotSetting, String)] = [
            (.disabled, "plot rendering was disabled for this run"),
            (.path("/nonexistent/gnuplot"), "gnuplot not found at /nonexistent/gnuplot"),
            (.path("/bin/false"), "gnuplot exited with status 1"),
        ]
        for (index, (setting, reason)) in cases.enumerated() {
            let writer = ReportWriter(resultsDirectory: folder.results, gnuplot: setting)
            let outcome = try writer.write(fakeDemoContent(), runName: "run\(index)", machine: fixedMachine)
            #expect(outcome.plots.isEmpty)
            #expect(outcome.missingPlots.count == 3)
            #expect(outcome.missingPlots.allSatisfy { $0.reason == reason }, "\(outcome.missingPlots)")
            let files = folder.listing(outcome.folder)
            #expect(files == ["plots", "report.md", "results.json"])
            let markdown = try String(contentsOf: outcome.folder.appendingPathComponent("report.md"), encoding: .utf8)
            #expect(markdown.contains("### Missing plots"))
            #expect(markdown.contains("- `fusion-activation.png` (AdapterFusion attention per adapter and layer): \(reason)."))
            #expect(!markdown.contains(".png)"))
        }
    }

    @Test("a plot without data is reported missing while the others render")
    func emptyPlot() throws {
        guard Subprocess.findExecutable("gnuplot") != nil else { return }  // covered by missingGnuplot
        let folder = try ReportTempFolder()
        var content = fakeDemoContent()
        content.linePlots.append(ReportLinePlot(name: "empty", title: "Nothing", xLabel: "x", yLabel: "y",
                                                series: [ReportSeries(name: "none", points: [])]))
        let outcome = try ReportWriter(resultsDirectory: folder.results).write(content, runName: "r",
                                                                              machine: fixedMachine)
        #expect(outcome.missingPlots == [MissingPlot(name: "empty", reason: "the plot has no data points")])
        #expect(outcome.plots.count == 3)
    }

    @Test("existing runs, bad names and unwritable folders throw and leave nothing half-written")
    func atomicity() throws {
        let folder = try ReportTempFolder()
        let writer = ReportWriter(resultsDirectory: folder.results, gnuplot: .disabled)
        let content = fakeDemoContent()
        try writer.write(content, runName: "same", machine: fixedMachine)
        let report = folder.results.appendingPathComponent("same/report.md")
        let before = try Data(contentsOf: report)

        #expect(reportError { try writer.write(content, runName: "same", machine: fixedMachine) }
            == .runExists(path: folder.results.appendingPathComponent("same").path))
        #expect(try Data(contentsOf: report) == before)
        #expect(folder.listing() == ["same"])

        var changed = content
        changed.title = "Second version"
        let replacing = ReportWriter(resultsDirectory: folder.results, gnuplot: .disabled, replaceExisting: true)
        try replacing.write(changed, runName: "same", machine: fixedMachine)
        #expect(try String(contentsOf: report, encoding: .utf8).hasPrefix("# Second version\n"))
        #expect(folder.listing() == ["same"])

        for bad in ["", ".hidden", "a/b", "with space", "ü", String(repeating: "x", count: 129)] {
            #expect(reportError { try writer.write(content, runName: bad, machine: fixedMachine) }
                == .invalidRunName(bad))
        }
        var badPlot = content
        badPlot.linePlots[0].name = "../escape"
        #expect(reportError { try writer.write(badPlot, runName: "x", machine: fixedMachine) }
            == .invalidPlotName("../escape"))
        var duplicate = content
        duplicate.heatMaps[0].name = duplicate.linePlots[0].name
        #expect(reportError { try writer.write(duplicate, runName: "x", machine: fixedMachine) }
            == .duplicatePlotName("accuracy-vs-dropped-layers"))
        #expect(folder.listing() == ["same"])

        // The results "folder" is a regular file: an I/O error, and nothing is created.
        let blocker = folder.url.appendingPathComponent("blocker")
        try Data("x".utf8).write(to: blocker)
        let blocked = ReportWriter(resultsDirectory: blocker, gnuplot: .disabled)
        guard case .ioFailure? = reportError({ try blocked.write(content, runName: "r", machine: fixedMachine) })
        else { Issue.record("expected ioFailure"); return }
        #expect(folder.listing(folder.url).sorted() == ["blocker", "results"])
    }

    @Test("machine facts: CPU model, cores, and the commit of a git checkout")
    func machineInfo() throws {
        let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let machine = MachineInfo.current(directory: packageRoot)
        #expect(!machine.cpuModel.isEmpty)
        #expect(machine.logicalCores >= 1)
        let gitCheckout = FileManager.default.fileExists(atPath: packageRoot.appendingPathComponent(".git").path)
        if gitCheckout && Subprocess.findExecutable("git") != nil {
            let commit = try #require(machine.commit)
            let hash = commit.hasSuffix("-dirty") ? String(commit.dropLast(6)) : commit
            #expect(hash.count == 40 && hash.allSatisfy(\.isHexDigit), "\(commit)")
        }
        let outside = FileManager.default.temporaryDirectory
        #expect(MachineInfo.gitCommit(directory: outside) == nil)
    }

    @Test("number formatting and Markdown escaping")
    func formatting() {
        #expect(ReportValue.number(3.14159).formatted == "3.14")
        #expect(ReportValue.number(2.5, decimals: 0).formatted == "2")  // round-half-even in printf
        #expect(ReportValue.number(-.infinity, decimals: 1).formatted == "-inf")
        #expect(ReportValue.integer(-3).formatted == "-3")
        #expect(MarkdownReport.cell("a|b\\c\nd") == "a\\|b\\\\c d")
        #expect(GnuplotScript.quote("it's\na test") == "'it''s a test'")
    }
}

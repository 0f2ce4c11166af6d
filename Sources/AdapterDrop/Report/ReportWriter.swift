// Writes results/<run>/{report.md, results.json, <plot>.png, plots/<plot>.{gp,dat}} atomically: everything is
// written into a hidden temporary folder beside the target and renamed into place at the end, so a failure
// leaves nothing half-written in results/. Plots are rendered by gnuplot (pngcairo terminal) from generated
// scripts; when gnuplot is missing or fails, the report is still written and lists each missing plot and why.
import Foundation

/// Where `ReportWriter` finds gnuplot.
public enum GnuplotSetting: Sendable, Equatable {
    /// `$ADAPTERDROP_GNUPLOT` if set, else `gnuplot` on `PATH`.
    case automatic
    /// This executable.
    case path(String)
    /// Render no plots (the report lists them as missing).
    case disabled
}

/// A plot that could not be rendered, and why.
public struct MissingPlot: Sendable, Equatable, Codable {
    /// The plot's name (its PNG would have been `<name>.png`).
    public var name: String
    /// Why, e.g. `gnuplot not found on PATH` or gnuplot's error message.
    public var reason: String
}

/// What `ReportWriter.write` produced.
public struct ReportOutcome: Sendable, Equatable {
    /// The run folder, `resultsDirectory/<runName>`.
    public var folder: URL
    /// PNG files rendered, by plot name.
    public var plots: [String: URL]
    /// Plots that could not be rendered.
    public var missingPlots: [MissingPlot]
}

/// Errors that stop a report from being written (nothing is left in the results folder).
public enum ReportError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The run name is empty, too long, starts with a dot or has characters other than letters, digits,
    /// `.`, `_` and `-`.
    case invalidRunName(String)
    /// A plot name is empty or has characters other than letters, digits, `_` and `-`.
    case invalidPlotName(String)
    /// Two plots share a name.
    case duplicatePlotName(String)
    /// `resultsDirectory/<run>` exists and the writer was not told to replace it.
    case runExists(path: String)
    /// Creating, writing or renaming a file failed.
    case ioFailure(path: String, reason: String)

    /// A one-line explanation naming the value or path.
    public var description: String {
        switch self {
        case let .invalidRunName(name):
            return "invalid run name \"\(name)\": use letters, digits, '.', '_' and '-' (not starting with '.')"
        case let .invalidPlotName(name):
            return "invalid plot name \"\(name)\": use letters, digits, '_' and '-'"
        case let .duplicatePlotName(name):
            return "two plots are named \"\(name)\""
        case let .runExists(path):
            return "\(path) already exists (choose another run name or allow replacing it)"
        case let .ioFailure(path, reason):
            return "\(path): \(reason)"
        }
    }
}

/// Writes a run's report, results and plots under `resultsDirectory/<runName>/`.
///
/// Layout of the run folder:
/// - `report.md`: title, summary, run facts (date, seed, commit, CPU model and cores, OS), settings,
///   tables, the plots as images (or why each is missing), notes.
/// - `results.json`: the same content as data (`format`, `run`, `created`, `machine`, `content`, `plots`,
///   `missing_plots`), numbers at full precision.
/// - `<plot>.png`: each rendered plot; `plots/<plot>.gp` and `plots/<plot>.dat` are the gnuplot script and
///   data that made it, so a plot can be re-rendered or restyled by hand (`cd <run> && gnuplot plots/x.gp`).
public struct ReportWriter: Sendable {
    /// The folder that holds one sub-folder per run (e.g. `results/`); created when missing.
    public var resultsDirectory: URL
    /// Where gnuplot is found.
    public var gnuplot: GnuplotSetting
    /// The longest one gnuplot call may take, in seconds, before it is stopped and the plot marked missing.
    public var plotTimeout: Double
    /// Replace an existing run folder of the same name (the old one is removed only after the new one is in
    /// place); when false, an existing folder is an error.
    public var replaceExisting: Bool

    /// - Parameters: see the properties.
    public init(resultsDirectory: URL, gnuplot: GnuplotSetting = .automatic, plotTimeout: Double = 60,
                replaceExisting: Bool = false) {
        self.resultsDirectory = resultsDirectory
        self.gnuplot = gnuplot
        self.plotTimeout = plotTimeout
        self.replaceExisting = replaceExisting
    }

    /// Writes the run folder.
    ///
    /// - Parameters:
    ///   - content: the tables, plots, settings and seed.
    ///   - runName: the run folder's name (letters, digits, `.`, `_`, `-`; at most 128 characters).
    ///   - machine: the machine facts to record (default: this machine and the current directory's commit).
    ///   - date: the run's time, written in UTC (ISO 8601).
    /// - Returns: the folder, the rendered PNGs and the missing plots with reasons.
    /// - Throws: `ReportError` (`.invalidRunName`, `.invalidPlotName`, `.duplicatePlotName`, `.runExists`,
    ///   `.ioFailure`). Plot failures are not errors: they are listed in the outcome and the report.
    @discardableResult
    public func write(_ content: ReportContent, runName: String, machine: MachineInfo = .current(),
                      date: Date = Date()) throws -> ReportOutcome {
        try Self.validateRunName(runName)
        var names = Set<String>()
        for name in content.linePlots.map(\.name) + content.heatMaps.map(\.name) {
            guard Self.isValidPlotName(name) else { throw ReportError.invalidPlotName(name) }
            guard names.insert(name).inserted else { throw ReportError.duplicatePlotName(name) }
        }
        let fileManager = FileManager.default
        let target = resultsDirectory.appendingPathComponent(runName)
        if fileManager.fileExists(atPath: target.path) && !replaceExisting {
            throw ReportError.runExists(path: target.path)
        }
        try io(resultsDirectory.path) {
            try fileManager.createDirectory(at: resultsDirectory, withIntermediateDirectories: true)
        }
        let staging = resultsDirectory.appendingPathComponent(".tmp-\(runName)-\(UUID().uuidString)")
        try io(staging.path) {
            try fileManager.createDirectory(at: staging.appendingPathComponent("plots"),
                                            withIntermediateDirectories: true)
        }
        var committed = false
        defer { if !committed { try? fileManager.removeItem(at: staging) } }

        // Plots first: the report says which ones exist.
        var rendered: [String] = []
        var missing: [MissingPlot] = []
        let executable = resolveGnuplot()
        let jobs = content.linePlots.map { ($0.name, GnuplotScript.linePlot($0)) }
            + content.heatMaps.map { ($0.name, GnuplotScript.heatMap($0)) }
        for (name, script) in jobs {
            let scriptPath = staging.appendingPathComponent("plots/\(name).gp")
            try writeFile(staging.appendingPathComponent("plots/\(name).dat"), script.data)
            try writeFile(scriptPath, script.commands)
            if let problem = script.problem {
                missing.append(MissingPlot(name: name, reason: problem))
                continue
            }
            switch executable {
            case let .failure(unavailable):
                missing.append(MissingPlot(name: name, reason: unavailable.reason))
            case let .success(gnuplotPath):
                if let reason = render(gnuplotPath: gnuplotPath, plot: name, in: staging) {
                    missing.append(MissingPlot(name: name, reason: reason))
                } else {
                    rendered.append(name)
                }
            }
        }

        let created = Self.iso8601(date)
        let record = ReportRecord(format: 1, run: runName, created: created, machine: machine, content: content,
                                  plots: rendered.map { ReportRecord.Plot(name: $0, file: "\($0).png") },
                                  missingPlots: missing)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let json: Data
        do {
            json = try encoder.encode(record)
        } catch {
            throw ReportError.ioFailure(path: staging.appendingPathComponent("results.json").path,
                                        reason: "cannot encode: \(error)")
        }
        try writeFile(staging.appendingPathComponent("results.json"), json + Data("\n".utf8))
        let markdown = MarkdownReport.render(content: content, runName: runName, created: created,
                                             machine: machine, rendered: Set(rendered), missing: missing)
        try writeFile(staging.appendingPathComponent("report.md"), Data(markdown.utf8))

        // Move into place.
        if fileManager.fileExists(atPath: target.path) {
            guard replaceExisting else { throw ReportError.runExists(path: target.path) }
            let old = resultsDirectory.appendingPathComponent(".old-\(runName)-\(UUID().uuidString)")
            try io(target.path) { try fileManager.moveItem(at: target, to: old) }
            do {
                try fileManager.moveItem(at: staging, to: target)
            } catch {
                try? fileManager.moveItem(at: old, to: target)
                throw ReportError.ioFailure(path: target.path, reason: "cannot rename into place: \(error.localizedDescription)")
            }
            try? fileManager.removeItem(at: old)
        } else {
            try io(target.path) { try fileManager.moveItem(at: staging, to: target) }
        }
        committed = true
        var plots: [String: URL] = [:]
        for name in rendered { plots[name] = target.appendingPathComponent("\(name).png") }
        return ReportOutcome(folder: target, plots: plots, missingPlots: missing)
    }

    // MARK: - Helpers

    static func validateRunName(_ name: String) throws {
        let allowed = name.unicodeScalars.allSatisfy {
            ($0.isASCII && (CharacterSet.alphanumerics.contains($0))) || $0 == "." || $0 == "_" || $0 == "-"
        }
        guard !name.isEmpty, name.count <= 128, !name.hasPrefix("."), allowed else {
            throw ReportError.invalidRunName(name)
        }
    }

    static func isValidPlotName(_ name: String) -> Bool {
        !name.isEmpty && name.count <= 100 && name.unicodeScalars.allSatisfy {
            ($0.isASCII && CharacterSet.alphanumerics.contains($0)) || $0 == "_" || $0 == "-"
        }
    }

    static func iso8601(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date)
    }

    private func io(_ path: String, _ body: () throws -> Void) throws {
        do {
            try body()
        } catch let error as ReportError {
            throw error
        } catch {
            throw ReportError.ioFailure(path: path, reason: error.localizedDescription)
        }
    }

    private func writeFile(_ url: URL, _ data: Data) throws {
        try io(url.path) { try data.write(to: url) }
    }

    private func writeFile(_ url: URL, _ text: String) throws {
        try writeFile(url, Data(text.utf8))
    }

    /// The gnuplot executable, or why there is none.
    func resolveGnuplot() -> Result<String, GnuplotUnavailable> {
        switch gnuplot {
        case .disabled:
            return .failure(GnuplotUnavailable(reason: "plot rendering was disabled for this run"))
        case let .path(path):
            guard FileManager.default.isExecutableFile(atPath: path) else {
                return .failure(GnuplotUnavailable(reason: "gnuplot not found at \(path)"))
            }
            return .success(path)
        case .automatic:
            if let path = ProcessInfo.processInfo.environment["ADAPTERDROP_GNUPLOT"], !path.isEmpty {
                guard FileManager.default.isExecutableFile(atPath: path) else {
                    return .failure(GnuplotUnavailable(
                        reason: "gnuplot not found at \(path) (from ADAPTERDROP_GNUPLOT)"))
                }
                return .success(path)
            }
            guard let path = Subprocess.findExecutable("gnuplot") else {
                return .failure(GnuplotUnavailable(
                    reason: "gnuplot not found on PATH (install it: scripts/setup.sh, or apt-get install gnuplot-nox)"))
            }
            return .success(path)
        }
    }

    /// Runs gnuplot on `plots/<plot>.gp` inside `folder`; returns nil on success or why the plot is missing.
    private func render(gnuplotPath: String, plot: String, in folder: URL) -> String? {
        let output: Subprocess.Output
        do {
            output = try Subprocess.run(executable: gnuplotPath, arguments: ["plots/\(plot).gp"], directory: folder,
                                        timeout: plotTimeout)
        } catch {
            return "\(error)"
        }
        let png = folder.appendingPathComponent("\(plot).png")
        if output.timedOut {
            try? FileManager.default.removeItem(at: png)
            return "gnuplot did not finish within \(plotTimeout) s"
        }
        let message = output.stderr.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }.joined(separator: " ")
        guard output.status == 0 else {
            try? FileManager.default.removeItem(at: png)
            return "gnuplot exited with status \(output.status)" + (message.isEmpty ? "" : ": \(message)")
        }
        guard Self.isPNG(png) else {
            try? FileManager.default.removeItem(at: png)
            return "gnuplot wrote no valid PNG" + (message.isEmpty ? "" : ": \(message)")
        }
        return nil
    }

    /// True when the file starts with the 8-byte PNG signature.
    public static func isPNG(_ url: URL) -> Bool {
        guard let handle = try? FileHandle(forReadingFrom: url) else { return false }
        defer { try? handle.close() }
        let head = (try? handle.read(upToCount: 8)) ?? Data()
        return head == Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
    }
}

struct GnuplotUnavailable: Error {
    var reason: String
}

/// results.json.
struct ReportRecord: Codable {
    struct Plot: Codable {
        var name: String
        var file: String
    }

    var format: Int
    var run: String
    var created: String
    var machine: MachineInfo
    var content: ReportContent
    var plots: [Plot]
    var missingPlots: [MissingPlot]

    enum CodingKeys: String, CodingKey {
        case format, run, created, machine, content, plots
        case missingPlots = "missing_plots"
    }
}

// The structured results that `ReportWriter` turns into results/<run>/{report.md, results.json, *.png}:
// tables of named columns, line plots of named series, heat maps, run settings and the seed.
import AdapterCore
import Foundation

/// One table cell: text, an integer, or a number shown with a fixed count of decimals.
public enum ReportValue: Sendable, Equatable, Codable, ExpressibleByStringLiteral, ExpressibleByIntegerLiteral {
    /// Text shown as is (pipes and line breaks are escaped in Markdown).
    case text(String)
    /// An integer.
    case integer(Int)
    /// A number; `decimals` is how many digits after the point Markdown shows (results.json keeps full
    /// precision). NaN and ±infinity are shown as `NaN`, `inf`, `-inf` and stored as those strings in JSON.
    case number(Double, decimals: Int)

    /// Text from a string literal.
    public init(stringLiteral value: String) { self = .text(value) }
    /// An integer from an integer literal.
    public init(integerLiteral value: Int) { self = .integer(value) }

    /// A number shown with `decimals` digits (default 2).
    public static func number(_ value: Double) -> ReportValue { .number(value, decimals: 2) }

    /// The cell as Markdown shows it.
    public var formatted: String {
        switch self {
        case let .text(s): return s
        case let .integer(i): return String(i)
        case let .number(v, decimals):
            if v.isNaN { return "NaN" }
            if v.isInfinite { return v > 0 ? "inf" : "-inf" }
            return String(format: "%.\(max(0, min(decimals, 17)))f", v)
        }
    }

    /// Decodes what `encode(to:)` writes: an integer, a number (2 decimals), `"NaN"`/`"inf"`/`"-inf"`, or text.
    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let i = try? container.decode(Int.self) {
            self = .integer(i)
        } else if let d = try? container.decode(Double.self) {
            self = .number(d, decimals: 2)
        } else {
            let s = try container.decode(String.self)
            switch s {
            case "NaN": self = .number(.nan, decimals: 2)
            case "inf": self = .number(.infinity, decimals: 2)
            case "-inf": self = .number(-.infinity, decimals: 2)
            default: self = .text(s)
            }
        }
    }

    /// Encodes text as a string, numbers as JSON numbers (non-finite ones as `"NaN"`, `"inf"`, `"-inf"`).
    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case let .text(s): try container.encode(s)
        case let .integer(i): try container.encode(i)
        case let .number(v, _):
            if v.isFinite { try container.encode(v) } else { try container.encode(formatted) }
        }
    }
}

/// A table: a title, named columns and rows of cells (each row has one cell per column).
public struct ReportTable: Sendable, Equatable, Codable {
    /// Heading shown above the table.
    public var title: String
    /// Column names, with units where they apply (e.g. `accuracy (%)`).
    public var columns: [String]
    /// The rows; `rows[r].count == columns.count`.
    public var rows: [[ReportValue]]
    /// An optional sentence shown under the table (how the numbers were measured).
    public var note: String?

    /// - Precondition: every row has `columns.count` cells.
    public init(title: String, columns: [String], rows: [[ReportValue]], note: String? = nil) {
        for (index, row) in rows.enumerated() {
            require(row.count == columns.count,
                         "ReportTable \"\(title)\": row \(index) has \(row.count) cells for \(columns.count) columns")
        }
        self.title = title
        self.columns = columns
        self.rows = rows
        self.note = note
    }
}

/// One (x, y) point of a series.
public struct ReportPoint: Sendable, Equatable, Codable {
    /// The x value, in the plot's x unit.
    public var x: Double
    /// The y value, in the plot's y unit.
    public var y: Double
    /// - Parameters: the point's coordinates in the plot's units.
    public init(x: Double, y: Double) {
        self.x = x
        self.y = y
    }
}

/// A named series of points: one line of a line plot (e.g. one training regime).
public struct ReportSeries: Sendable, Equatable, Codable {
    /// The legend entry.
    public var name: String
    /// The points, drawn in this order.
    public var points: [ReportPoint]

    /// - Parameters:
    ///   - name: the legend entry.
    ///   - points: (x, y) pairs, drawn in order.
    public init(name: String, points: [(x: Double, y: Double)]) {
        self.name = name
        self.points = points.map { ReportPoint(x: $0.x, y: $0.y) }
    }
}

/// A line plot: several series over a shared x axis, with axis labels, units and a legend.
public struct ReportLinePlot: Sendable, Equatable, Codable {
    /// The PNG's file name without extension; letters, digits, `-` and `_` only (e.g. `accuracy-vs-dropped`).
    public var name: String
    /// The plot's title.
    public var title: String
    /// The x axis label, e.g. `dropped layers`.
    public var xLabel: String
    /// The x unit, shown in parentheses after the label (e.g. `layers`); nil for none.
    public var xUnit: String?
    /// The y axis label, e.g. `accuracy`.
    public var yLabel: String
    /// The y unit (e.g. `%`, `×`); nil for none.
    public var yUnit: String?
    /// The lines.
    public var series: [ReportSeries]
    /// Fixed y range (`min...max`), or nil to let gnuplot choose.
    public var yRange: ClosedRange<Double>?
    /// Tic marks only at integer x values (for counts such as dropped layers).
    public var integerXTics: Bool

    /// - Parameters: see the properties.
    public init(name: String, title: String, xLabel: String, xUnit: String? = nil, yLabel: String,
                yUnit: String? = nil, series: [ReportSeries], yRange: ClosedRange<Double>? = nil,
                integerXTics: Bool = false) {
        self.name = name
        self.title = title
        self.xLabel = xLabel
        self.xUnit = xUnit
        self.yLabel = yLabel
        self.yUnit = yUnit
        self.series = series
        self.yRange = yRange
        self.integerXTics = integerXTics
    }
}

/// A heat map: a matrix of values, one row per `rowLabels` entry and one column per `columnLabels` entry
/// (e.g. AdapterFusion attention per adapter × layer), with each cell's value printed in it.
public struct ReportHeatMap: Sendable, Equatable, Codable {
    /// The PNG's file name without extension; letters, digits, `-` and `_` only.
    public var name: String
    /// The plot's title.
    public var title: String
    /// Label of the x axis (columns), e.g. `layer`.
    public var xLabel: String
    /// Label of the y axis (rows), e.g. `adapter`.
    public var yLabel: String
    /// Names of the columns, left to right.
    public var columnLabels: [String]
    /// Names of the rows, top to bottom.
    public var rowLabels: [String]
    /// `values[row][column]`, shape `[rowLabels.count, columnLabels.count]`.
    public var values: [[Double]]
    /// What a value means, with its unit, shown on the colour bar (e.g. `mean fusion attention`).
    public var valueLabel: String
    /// Fixed colour range, or nil for the data's range.
    public var valueRange: ClosedRange<Double>?
    /// Digits after the point for the numbers printed in the cells.
    public var decimals: Int

    /// - Precondition: `values` has `rowLabels.count` rows of `columnLabels.count` values.
    public init(name: String, title: String, xLabel: String, yLabel: String, columnLabels: [String],
                rowLabels: [String], values: [[Double]], valueLabel: String,
                valueRange: ClosedRange<Double>? = nil, decimals: Int = 2) {
        require(values.count == rowLabels.count,
                     "ReportHeatMap \"\(name)\": \(values.count) rows of values for \(rowLabels.count) row labels")
        for (index, row) in values.enumerated() {
            require(row.count == columnLabels.count,
                         "ReportHeatMap \"\(name)\": row \(index) has \(row.count) values for \(columnLabels.count) columns")
        }
        self.name = name
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.columnLabels = columnLabels
        self.rowLabels = rowLabels
        self.values = values
        self.valueLabel = valueLabel
        self.valueRange = valueRange
        self.decimals = decimals
    }
}

/// One named setting of the run (model, batch size, learning rate, ...), shown in file order.
public struct ReportSetting: Sendable, Equatable, Codable {
    /// The setting's name, e.g. `batch size`.
    public var name: String
    /// Its value as text, with its unit, e.g. `32` or `1e-4`.
    public var value: String
    /// - Parameters: the setting's name and its value as text (with its unit).
    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

/// Everything a report shows. `ReportWriter.write(_:)` adds the machine, the commit and the time.
public struct ReportContent: Sendable, Equatable, Codable {
    /// The report's title (first heading).
    public var title: String
    /// Free text under the title (what was run, how to read the results); Markdown.
    public var summary: String
    /// The run's settings, in order.
    public var settings: [ReportSetting]
    /// The seed every random choice of the run derives from.
    public var seed: UInt64
    /// Tables, in order.
    public var tables: [ReportTable]
    /// Line plots, in order.
    public var linePlots: [ReportLinePlot]
    /// Heat maps, in order.
    public var heatMaps: [ReportHeatMap]
    /// Closing remarks (caveats, what is left out), one bullet each.
    public var notes: [String]

    /// - Parameters: see the properties.
    public init(title: String, summary: String = "", settings: [ReportSetting] = [], seed: UInt64,
                tables: [ReportTable] = [], linePlots: [ReportLinePlot] = [], heatMaps: [ReportHeatMap] = [],
                notes: [String] = []) {
        self.title = title
        self.summary = summary
        self.settings = settings
        self.seed = seed
        self.tables = tables
        self.linePlots = linePlots
        self.heatMaps = heatMaps
        self.notes = notes
    }
}

/// The machine a run was measured on.
public struct MachineInfo: Sendable, Equatable, Codable {
    /// The CPU's model name (`/proc/cpuinfo` on Linux, `machdep.cpu.brand_string` elsewhere), or `unknown`.
    public var cpuModel: String
    /// Logical processors available to the process.
    public var logicalCores: Int
    /// Operating system name and version.
    public var operatingSystem: String
    /// The git commit of the working directory's checkout (`-dirty` appended when it has uncommitted
    /// changes), or nil outside a git checkout or without git.
    public var commit: String?

    /// - Parameters: see the properties.
    public init(cpuModel: String, logicalCores: Int, operatingSystem: String, commit: String?) {
        self.cpuModel = cpuModel
        self.logicalCores = logicalCores
        self.operatingSystem = operatingSystem
        self.commit = commit
    }

    /// Reads the current machine; `directory` is where to ask git for the commit (default: the current
    /// directory).
    public static func current(directory: URL? = nil) -> MachineInfo {
        MachineInfo(cpuModel: readCPUModel(), logicalCores: ProcessInfo.processInfo.activeProcessorCount,
                    operatingSystem: ProcessInfo.processInfo.operatingSystemVersionString,
                    commit: gitCommit(directory: directory ?? URL(fileURLWithPath:
                                                                    FileManager.default.currentDirectoryPath)))
    }

    static func readCPUModel() -> String {
        if let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) {
            for line in text.split(separator: "\n") where line.hasPrefix("model name") {
                if let colon = line.firstIndex(of: ":") {
                    return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                }
            }
        }
        if let output = try? Subprocess.run(executable: "/usr/sbin/sysctl", arguments: ["-n", "machdep.cpu.brand_string"],
                                            timeout: 5), output.status == 0 {
            let model = output.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            if !model.isEmpty { return model }
        }
        return "unknown"
    }

    static func gitCommit(directory: URL) -> String? {
        guard let git = Subprocess.findExecutable("git") else { return nil }
        guard let head = try? Subprocess.run(executable: git, arguments: ["-C", directory.path, "rev-parse", "HEAD"],
                                             timeout: 10), head.status == 0 else { return nil }
        let commit = head.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !commit.isEmpty else { return nil }
        if let status = try? Subprocess.run(executable: git,
                                            arguments: ["-C", directory.path, "status", "--porcelain",
                                                        "--untracked-files=no"], timeout: 10),
           status.status == 0, !status.stdout.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            return commit + "-dirty"
        }
        return commit
    }
}

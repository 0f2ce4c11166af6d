// Renders report.md from the report content, the machine facts and which plots were rendered.
import Foundation

enum MarkdownReport {
    /// Escapes a table cell: pipes and backslashes escaped, line breaks become spaces.
    static func cell(_ text: String) -> String {
        text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "|", with: "\\|")
            .replacingOccurrences(of: "\r\n", with: " ").replacingOccurrences(of: "\n", with: " ")
            .replacingOccurrences(of: "\r", with: " ")
    }

    /// A one-line heading text (line breaks become spaces).
    static func heading(_ text: String) -> String {
        text.split(whereSeparator: \.isNewline).joined(separator: " ")
    }

    static func table(columns: [String], rows: [[String]]) -> String {
        var out = "| " + columns.map(cell).joined(separator: " | ") + " |\n"
        out += "|" + String(repeating: " --- |", count: columns.count) + "\n"
        for row in rows { out += "| " + row.map(cell).joined(separator: " | ") + " |\n" }
        return out
    }

    static func render(content: ReportContent, runName: String, created: String, machine: MachineInfo,
                       rendered: Set<String>, missing: [MissingPlot]) -> String {
        var out = "# \(heading(content.title))\n\n"
        if !content.summary.isEmpty { out += content.summary.trimmingCharacters(in: .whitespacesAndNewlines) + "\n\n" }

        out += "## Run\n\n"
        out += table(columns: ["", ""], rows: [
            ["run", runName],
            ["date (UTC)", created],
            ["seed", String(content.seed)],
            ["commit", machine.commit ?? "not in a git checkout"],
            ["CPU", "\(machine.cpuModel), \(machine.logicalCores) logical cores"],
            ["operating system", machine.operatingSystem],
        ])
        out += "\n"
        if !content.settings.isEmpty {
            out += "## Settings\n\n"
            out += table(columns: ["setting", "value"], rows: content.settings.map { [$0.name, $0.value] })
            out += "\n"
        }
        for t in content.tables {
            out += "## \(heading(t.title))\n\n"
            out += table(columns: t.columns, rows: t.rows.map { $0.map(\.formatted) })
            if let note = t.note, !note.isEmpty { out += "\n\(note)\n" }
            out += "\n"
        }
        let plots = content.linePlots.map { ($0.name, $0.title) } + content.heatMaps.map { ($0.name, $0.title) }
        if !plots.isEmpty {
            out += "## Plots\n\n"
            for (name, title) in plots where rendered.contains(name) {
                out += "### \(heading(title))\n\n![\(cell(title))](\(name).png)\n\n"
                out += "Data and gnuplot script: `plots/\(name).dat`, `plots/\(name).gp`.\n\n"
            }
            if !missing.isEmpty {
                out += "### Missing plots\n\n"
                for plot in missing {
                    let title = plots.first { $0.0 == plot.name }?.1 ?? plot.name
                    out += "- `\(plot.name).png` (\(heading(title))): \(heading(plot.reason)). "
                        + "Its data and script are in `plots/\(plot.name).dat` and `plots/\(plot.name).gp`.\n"
                }
                out += "\n"
            }
        }
        if !content.notes.isEmpty {
            out += "## Notes\n\n"
            for note in content.notes { out += "- \(heading(note))\n" }
            out += "\n"
        }
        out += "Machine-readable results: `results.json`.\n"
        return out
    }
}

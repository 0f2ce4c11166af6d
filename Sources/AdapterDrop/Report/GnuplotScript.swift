// Generates gnuplot scripts and data files for the report's plots. The scripts run with the run folder as
// the working directory: data in plots/<name>.dat, output <name>.png, pngcairo terminal, DejaVu Sans.
// Text is passed in single-quoted gnuplot strings (no escape processing; a quote is doubled) with the
// `noenhanced` terminal option, so titles and legends are shown literally (no ^, _ or @ markup).
import Foundation

enum GnuplotScript {
    /// A generated script, its data, and a reason the plot cannot be drawn (nil when it can).
    struct Script {
        var commands: String
        var data: String
        var problem: String?
    }

    /// Okabe–Ito colours (distinguishable with the common colour-vision deficiencies), then black.
    static let colours = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"]
    /// gnuplot point types: filled circle, square, triangle, diamond, inverted triangle, pentagon, ...
    static let pointTypes = [7, 5, 9, 13, 11, 15, 6, 4]

    static func quote(_ text: String) -> String {
        let flat = text.replacingOccurrences(of: "\r\n", with: " ").replacingOccurrences(of: "\n", with: " ")
            .replacingOccurrences(of: "\r", with: " ")
        return "'" + flat.replacingOccurrences(of: "'", with: "''") + "'"
    }

    static func number(_ value: Double) -> String {
        value.isFinite ? String(format: "%.17g", value) : "NaN"
    }

    static func axisLabel(_ label: String, _ unit: String?) -> String {
        guard let unit, !unit.isEmpty else { return label }
        return "\(label) (\(unit))"
    }

    static func header(name: String, width: Int, height: Int, title: String) -> String {
        """
        set terminal pngcairo noenhanced size \(width),\(height) font 'DejaVu Sans,12'
        set encoding utf8
        set output '\(name).png'
        set title \(quote(title)) font ',15'
        set datafile missing 'NaN'

        """
    }

    static func linePlot(_ plot: ReportLinePlot) -> Script {
        var data = "# \(plot.name): one block per series (x y), blocks separated by two blank lines\n"
        var plotClauses: [String] = []
        var block = 0
        for (index, series) in plot.series.enumerated() where !series.points.isEmpty {
            data += "# series \(block): \(series.name.replacingOccurrences(of: "\n", with: " "))\n"
            for point in series.points { data += "\(number(point.x)) \(number(point.y))\n" }
            data += "\n\n"
            let colour = colours[index % colours.count], point = pointTypes[index % pointTypes.count]
            plotClauses.append("'plots/\(plot.name).dat' index \(block) using 1:2 with linespoints lw 2.5 "
                               + "pt \(point) ps 1.4 lc rgb '\(colour)' title \(quote(series.name))")
            block += 1
        }
        var commands = header(name: plot.name, width: 1100, height: 650, title: plot.title)
        commands += """
        set xlabel \(quote(axisLabel(plot.xLabel, plot.xUnit))) font ',13'
        set ylabel \(quote(axisLabel(plot.yLabel, plot.yUnit))) font ',13'
        set grid lc rgb '#d9d9d9' lw 1
        set key outside right top vertical box spacing 1.3 width 1
        set offsets 0, 0, graph 0.06, graph 0.06
        set border lw 1.2

        """
        // An explicit x range with a small margin: autoscaling would extend it to the next tic (e.g. -1..6
        // for 0..5 dropped layers).
        let xs = plot.series.flatMap { $0.points.map(\.x) }.filter(\.isFinite)
        if let low = xs.min(), let high = xs.max() {
            let pad = high > low ? (high - low) * 0.04 : 0.5
            commands += "set xrange [\(number(low - pad)):\(number(high + pad))]\n"
        }
        if plot.integerXTics { commands += "set xtics 1\nset mxtics 1\n" }
        if let range = plot.yRange { commands += "set yrange [\(number(range.lowerBound)):\(number(range.upperBound))]\n" }
        commands += "plot " + plotClauses.joined(separator: ", \\\n     ") + "\n"
        return Script(commands: commands, data: data, problem: plotClauses.isEmpty ? "the plot has no data points" : nil)
    }

    static func heatMap(_ map: ReportHeatMap) -> Script {
        let rows = map.rowLabels.count, columns = map.columnLabels.count
        var data = "# \(map.name): column row value (column indexes columnLabels, row indexes rowLabels)\n"
        for (r, row) in map.values.enumerated() {
            for (c, value) in row.enumerated() { data += "\(c) \(r) \(number(value))\n" }
        }
        let width = max(760, 260 + 95 * columns), height = max(420, 190 + 62 * rows)
        func tics(_ labels: [String]) -> String {
            "(" + labels.enumerated().map { "\(quote($0.element)) \($0.offset)" }.joined(separator: ", ") + ")"
        }
        let decimals = max(0, min(map.decimals, 10))
        var commands = header(name: map.name, width: width, height: height, title: map.title)
        commands += """
        set xlabel \(quote(map.xLabel)) font ',13'
        set ylabel \(quote(map.yLabel)) font ',13'
        unset key
        set xrange [-0.5:\(columns) - 0.5]
        set yrange [\(rows) - 0.5:-0.5]
        set xtics \(columns > 0 ? tics(map.columnLabels) : "()") scale 0
        set ytics \(rows > 0 ? tics(map.rowLabels) : "()") scale 0
        set cblabel \(quote(map.valueLabel)) font ',13'
        set palette defined (0 '#f7fbff', 0.5 '#9ecae1', 1 '#3c8cc8')
        set style fill solid 1.0 noborder
        set border lw 1.2

        """
        if let range = map.valueRange {
            commands += "set cbrange [\(number(range.lowerBound)):\(number(range.upperBound))]\n"
        }
        commands += "plot 'plots/\(map.name).dat' using 1:2:(0.5):(0.5):3 with boxxyerror fillcolor palette, \\\n"
            + "     '' using 1:2:(sprintf('%.\(decimals)f', $3)) with labels font ',12' textcolor rgb '#000000'\n"
        let finite = map.values.joined().contains { $0.isFinite }
        return Script(commands: commands, data: data,
                      problem: rows == 0 || columns == 0 || !finite ? "the heat map has no finite values" : nil)
    }
}

// Reading the targets of a regression or multi-label head from the same JSONL/CSV files as classification data
// (`text`, optional `text_pair`, `label`): a number per example, or a list of label names.
import Foundation

extension TrainingTargets {
    /// Reads a JSONL or CSV dataset file for a head of kind `kind`: the texts as a `TextClassificationDataset`
    /// and the gold targets in file order.
    ///
    /// The `label` field by kind:
    /// - `.classification`: a class name (as `TextClassificationDataset(contentsOf:labels:options:)`).
    /// - `.regression`: a finite number — a JSON number in JSONL, a decimal number in CSV (e.g. `3.75`, `-1e-2`).
    ///   The dataset's `labels` are `["value"]` and every example's `label` is 0.
    /// - `.multiLabel`: the example's label names — a JSON array of strings in JSONL (`["sports", "politics"]`,
    ///   `[]` for none), names separated by `|` in CSV (`sports|politics`, an empty field for none). Names are
    ///   mapped through `labels`, else through the sorted distinct names of the file. The dataset's `labels` are
    ///   those names and every example's `label` is 0 (the targets carry the label sets).
    /// - Parameters:
    ///   - path: the file; its extension picks the format unless `options.format` is set.
    ///   - labels: class / label names in index order (classification, multi-label); nil: discovered.
    ///   - options: format, size limit and field names.
    /// - Returns: the dataset (texts) and targets `.classes`, `.values` or `.multiLabel`.
    /// - Throws: the `DatasetError`s of `TextClassificationDataset(contentsOf:…)`; for bad labels
    ///   `DatasetError.invalidFieldType` (file, line, field, what was expected and found: a string or
    ///   non-finite number for regression, a non-array or an array holding a non-string for multi-label),
    ///   `.unknownLabel` (a name not in `labels`), `.invalidLabelList` (multi-label without any label name,
    ///   or `labels` given for regression).
    public static func load(contentsOf path: String, kind: TrainingTaskKind, labels: [String]? = nil,
                            options: DatasetLoadOptions = DatasetLoadOptions()) throws
        -> (dataset: TextClassificationDataset, targets: TrainingTargets) {
        if kind == .classification {
            let dataset = try TextClassificationDataset(contentsOf: path, labels: labels, options: options)
            return (dataset, .classes(dataset.examples.map(\.label)))
        }
        guard let format = options.format ?? DatasetFormat(pathExtension: path) else {
            throw DatasetError.unknownFormat(file: path)
        }
        let file = try DatasetFileBytes(path: path, limit: options.maxFileBytes)
        let records: [RawTextRecord]
        switch format {
        case .jsonl: records = try JSONLRecordReader.read(file, options: options, anyLabel: true)
        case .csv: records = try CSVRecordReader.read(file, options: options)
        }
        guard !records.isEmpty else { throw DatasetError.emptyFile(file: path) }
        if let labels, kind == .multiLabel { try TextClassificationDataset.validate(labels: labels, file: "<argument>") }
        func fail(_ record: RawTextRecord, _ expected: String, found given: String? = nil) -> DatasetError {
            let found = given ?? record.labelValue.map { $0.string.map { "\"\($0)\"" } ?? $0.typeName } ?? "\"\(record.label)\""
            return .invalidFieldType(file: path, line: record.line, field: options.labelField, expected: expected, found: found)
        }
        func examples(_ names: [String]) -> TextClassificationDataset {
            TextClassificationDataset(labels: names, examples: records.map {
                TextExample(text: $0.text, textPair: $0.textPair, label: 0, line: $0.line)
            }, source: path)
        }
        switch kind {
        case .regression:
            if labels != nil { throw DatasetError.invalidLabelList(file: "<argument>", reason: "a regression head has no label names") }
            var values: [Float] = []
            for record in records {
                let number: Double?
                if let v = record.labelValue { number = v.double } else {
                    number = Double(record.label.trimmingCharacters(in: .whitespaces))
                }
                guard let number, number.isFinite else { throw fail(record, "a finite number") }
                // Targets are fp32: 1e308 is finite but not representable.
                guard Float(number).isFinite else {
                    throw fail(record, "a number within the fp32 range (|x| ≤ 3.4e38)", found: "\(number)")
                }
                values.append(Float(number))
            }
            return (examples(["value"]), .values(values))
        case .multiLabel:
            var sets: [[String]] = []
            for record in records {
                if let v = record.labelValue {
                    guard let items = v.array, case let names = items.compactMap(\.string), names.count == items.count else {
                        throw fail(record, "an array of label names")
                    }
                    sets.append(names)
                } else {
                    sets.append(record.label.isEmpty ? [] : record.label.split(separator: "|", omittingEmptySubsequences: false)
                        .map { $0.trimmingCharacters(in: .whitespaces) })
                }
            }
            let names = labels ?? TextClassificationDataset.sortedByCodePoints(Set(sets.joined()))
            guard !names.isEmpty else {
                throw DatasetError.invalidLabelList(file: path, reason: "no label names (every example's list is empty; give the labels)")
            }
            var index: [String: Int] = [:]
            for (i, name) in names.enumerated() { index[name] = i }
            var targets: [[Bool]] = []
            for (record, set) in zip(records, sets) {
                var row = [Bool](repeating: false, count: names.count)
                for name in set {
                    guard let i = index[name] else {
                        throw DatasetError.unknownLabel(file: path, line: record.line, label: name, known: names)
                    }
                    guard !row[i] else { throw fail(record, "distinct label names", found: "\"\(name)\" twice") }
                    row[i] = true
                }
                targets.append(row)
            }
            return (examples(names), .multiLabel(targets))
        case .classification:
            preconditionFailure("handled above")
        }
    }
}

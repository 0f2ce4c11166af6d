// Text-classification datasets from JSONL or CSV files: labels mapped to class indices, seeded shuffling and
// batching. The files written by scripts/fetch-data.sh (data/<task>/{train,dev,test}.jsonl + labels.json)
// load with `TextClassificationTask(folder:)`.
import AdapterCore
import Foundation

/// The file layout of a dataset.
public enum DatasetFormat: String, Sendable, CaseIterable {
    /// One JSON object per line (`{"text": ..., "text_pair": ..., "label": ...}`); blank lines are skipped.
    case jsonl
    /// Comma-separated values with a header row, quoted as in RFC 4180.
    case csv

    /// The format implied by a path's extension (`.jsonl`, `.ndjson`, `.json` → JSONL; `.csv` → CSV), or nil.
    public init?(pathExtension path: String) {
        switch (path as NSString).pathExtension.lowercased() {
        case "jsonl", "ndjson", "json": self = .jsonl
        case "csv": self = .csv
        default: return nil
        }
    }
}

/// How `TextClassificationDataset` reads a file.
public struct DatasetLoadOptions: Sendable, Equatable {
    /// The file format; nil chooses by extension (and throws `DatasetError.unknownFormat` if that fails).
    public var format: DatasetFormat?
    /// The largest file accepted, in bytes (default 256 MiB); larger files throw `DatasetError.fileTooLarge`
    /// before anything is read.
    public var maxFileBytes: Int
    /// Name of the text field or column (default `text`).
    public var textField: String
    /// Name of the optional second-text field or column (default `text_pair`), for sentence-pair tasks.
    public var textPairField: String
    /// Name of the label field or column (default `label`).
    public var labelField: String

    /// - Parameters: see the properties.
    public init(format: DatasetFormat? = nil, maxFileBytes: Int = 256 << 20, textField: String = "text",
                textPairField: String = "text_pair", labelField: String = "label") {
        require(maxFileBytes >= 0, "DatasetLoadOptions: maxFileBytes must be >= 0, got \(maxFileBytes)")
        self.format = format
        self.maxFileBytes = maxFileBytes
        self.textField = textField
        self.textPairField = textPairField
        self.labelField = labelField
    }
}

/// One labelled example.
public struct TextExample: Sendable, Hashable {
    /// The (first) text.
    public var text: String
    /// The second text of a sentence-pair task, or nil.
    public var textPair: String?
    /// The class index into the dataset's `labels`, in `0..<labels.count`.
    public var label: Int
    /// The 1-based line of the source file where the example starts (0 for examples made in code).
    public var line: Int

    /// - Parameters: see the properties.
    public init(text: String, textPair: String? = nil, label: Int, line: Int = 0) {
        self.text = text
        self.textPair = textPair
        self.label = label
        self.line = line
    }
}

/// A labelled text-classification dataset held in memory.
///
/// Load it from a user's JSONL or CSV file (`text`, optional `text_pair`, `label`) with
/// `init(contentsOf:labels:options:)`. Labels are strings in the file (a JSONL label may also be an integer,
/// read as its decimal text) and are mapped to class indices through the given label list, or through the
/// sorted list of distinct labels when none is given. Every input error is a `DatasetError` naming the file,
/// the line and the value.
public struct TextClassificationDataset: Sendable {
    /// The class names; `examples[i].label` indexes this array.
    public var labels: [String]
    /// The examples, in file order unless shuffled.
    public var examples: [TextExample]
    /// Where the examples came from (a path, or a description for datasets made in code).
    public var source: String

    /// A dataset from examples made in code.
    /// - Precondition: every `examples[i].label` is in `0..<labels.count`.
    public init(labels: [String], examples: [TextExample], source: String = "<memory>") {
        for example in examples {
            require(labels.indices.contains(example.label),
                         "TextClassificationDataset: label index \(example.label) outside 0..<\(labels.count)")
        }
        self.labels = labels
        self.examples = examples
        self.source = source
    }

    /// Loads a JSONL or CSV file.
    ///
    /// - Parameters:
    ///   - path: the file. Its extension picks the format unless `options.format` is set.
    ///   - labels: the class names in index order; nil discovers them (distinct labels sorted by Unicode code
    ///     points, which is what Python's `sorted` gives and what `labels.json` from fetch-data.sh holds).
    ///   - options: format, size limit and field names.
    /// - Throws: `DatasetError` — `.ioFailure`, `.notARegularFile`, `.fileTooLarge`, `.unknownFormat`,
    ///   `.invalidUTF8`, `.invalidJSON`, `.notAnObject`, `.missingField`, `.invalidFieldType`,
    ///   `.duplicateColumn`, `.malformedCSV`, `.fieldCountMismatch`, `.emptyFile` (no example), `.unknownLabel`,
    ///   `.invalidLabelList` (a given list that is empty or repeats a label).
    public init(contentsOf path: String, labels: [String]? = nil,
                options: DatasetLoadOptions = DatasetLoadOptions()) throws {
        guard let format = options.format ?? DatasetFormat(pathExtension: path) else {
            throw DatasetError.unknownFormat(file: path)
        }
        if let labels { try Self.validate(labels: labels, file: "<argument>") }
        let file = try DatasetFileBytes(path: path, limit: options.maxFileBytes)
        let records: [RawTextRecord]
        switch format {
        case .jsonl: records = try JSONLRecordReader.read(file, options: options)
        case .csv: records = try CSVRecordReader.read(file, options: options)
        }
        guard !records.isEmpty else { throw DatasetError.emptyFile(file: path) }

        let names = labels ?? Self.sortedByCodePoints(Set(records.map(\.label)))
        var index: [String: Int] = [:]
        for (i, name) in names.enumerated() { index[name] = i }
        var examples: [TextExample] = []
        examples.reserveCapacity(records.count)
        for record in records {
            guard let label = index[record.label] else {
                throw DatasetError.unknownLabel(file: path, line: record.line, label: record.label, known: names)
            }
            examples.append(TextExample(text: record.text, textPair: record.textPair, label: label,
                                        line: record.line))
        }
        self.labels = names
        self.examples = examples
        self.source = path
    }

    /// Reads a label list: a JSON array of distinct strings (the `labels.json` that fetch-data.sh writes).
    /// - Throws: `DatasetError.ioFailure`, `.fileTooLarge` (over `maxFileBytes`), `.invalidUTF8`,
    ///   `.invalidJSON`, `.invalidLabelList` (not an array of strings, empty, or a repeated label).
    public static func readLabelList(path: String, maxFileBytes: Int = 16 << 20) throws -> [String] {
        let file = try DatasetFileBytes(path: path, limit: maxFileBytes)
        let json: JSONValue
        do {
            json = try JSONParser.parse(file.bytes, limits: JSONParser.Limits(maxDepth: 8, maxBytes: maxFileBytes))
        } catch {
            let line = file.bytes.prefix(error.offset).reduce(1) { $1 == 0x0A ? $0 + 1 : $0 }
            throw DatasetError.invalidJSON(file: path, line: line, reason: error.message)
        }
        guard let elements = json.array, case let strings = elements.compactMap(\.string), strings.count == elements.count
        else {
            throw DatasetError.invalidLabelList(file: path, reason: "expected a JSON array of strings")
        }
        let value = strings
        try validate(labels: value, file: path)
        return value
    }

    /// The number of examples.
    public var count: Int { examples.count }

    /// Examples per class: `labelCounts[c]` is the number of examples with label `c`; length `labels.count`.
    public var labelCounts: [Int] {
        var counts = [Int](repeating: 0, count: labels.count)
        for example in examples { counts[example.label] += 1 }
        return counts
    }

    /// The same examples in a seeded random order (Fisher–Yates over `SeededRNG(seed:stream:)` with unbiased
    /// bounded draws), identical on every platform for the same seed and stream.
    public func shuffled(seed: UInt64, stream: UInt64 = 0) -> TextClassificationDataset {
        var copy = self
        copy.examples = SeededPermutation.indices(count: examples.count, seed: seed, stream: stream)
            .map { examples[$0] }
        return copy
    }

    /// The first `maxCount` examples (all of them if there are fewer), e.g. to cap a demo's training set.
    public func prefix(_ maxCount: Int) -> TextClassificationDataset {
        var copy = self
        copy.examples = Array(examples.prefix(maxCount))
        return copy
    }

    /// Splits the examples into consecutive batches of `size`.
    ///
    /// - Parameters:
    ///   - size: examples per batch (`>= 1`); the last batch may be smaller unless `dropLast`.
    ///   - shuffleSeed: when set, the order is a seeded permutation drawn with stream `epoch`, so every epoch
    ///     gets a different, reproducible order; nil keeps the dataset's order.
    ///   - epoch: the epoch number used as the permutation stream.
    ///   - dropLast: drop a final batch smaller than `size`.
    /// - Returns: batches of examples; the concatenation is a permutation of `examples` (minus a dropped tail).
    public func batches(size: Int, shuffleSeed: UInt64? = nil, epoch: Int = 0,
                        dropLast: Bool = false) -> [[TextExample]] {
        require(size >= 1, "TextClassificationDataset.batches: size must be >= 1, got \(size)")
        let order = shuffleSeed.map { SeededPermutation.indices(count: examples.count, seed: $0,
                                                                  stream: UInt64(truncatingIfNeeded: epoch)) }
            ?? Array(examples.indices)
        var result: [[TextExample]] = []
        result.reserveCapacity((order.count + size - 1) / size)
        var start = 0
        while start < order.count {
            let end = min(start + size, order.count)
            if dropLast && end - start < size { break }
            result.append(order[start..<end].map { examples[$0] })
            start = end
        }
        return result
    }

    static func validate(labels: [String], file: String) throws {
        guard !labels.isEmpty else { throw DatasetError.invalidLabelList(file: file, reason: "the list is empty") }
        var seen = Set<String>()
        for label in labels where !seen.insert(label).inserted {
            throw DatasetError.invalidLabelList(file: file, reason: "label \"\(label)\" appears twice")
        }
    }

    static func sortedByCodePoints(_ labels: Set<String>) -> [String] {
        labels.sorted { $0.unicodeScalars.lexicographicallyPrecedes($1.unicodeScalars) }
    }
}

/// Seeded permutations that are the same on every platform and Swift version (the standard library's
/// `shuffle(using:)` does not promise a fixed algorithm).
public enum SeededPermutation {
    /// A permutation of `0..<count` by Fisher–Yates with `SeededRNG(seed:stream:)` and rejection-sampled
    /// bounded integers (no modulo bias).
    public static func indices(count: Int, seed: UInt64, stream: UInt64 = 0) -> [Int] {
        require(count >= 0, "SeededPermutation.indices: count must be >= 0, got \(count)")
        var order = Array(0..<count)
        var rng = SeededRNG(seed: seed, stream: stream)
        var i = count - 1
        while i > 0 {
            let j = Int(below(UInt64(i + 1), using: &rng))
            order.swapAt(i, j)
            i -= 1
        }
        return order
    }

    /// Uniform in `0..<bound` (bound ≥ 1) by rejection: draws below the largest multiple of `bound` are kept.
    static func below(_ bound: UInt64, using rng: inout SeededRNG) -> UInt64 {
        let threshold = (0 &- bound) % bound  // 2^64 mod bound
        while true {
            let x = rng.next()
            if x >= threshold { return x % bound }
        }
    }
}

/// A task folder as written by `scripts/fetch-data.sh`: `labels.json` and `train.jsonl`, `dev.jsonl`,
/// `test.jsonl`, all mapped through the same label list.
public struct TextClassificationTask: Sendable {
    /// The folder's name, e.g. `movie-sentiment`.
    public var name: String
    /// The class names from `labels.json`.
    public var labels: [String]
    /// The training split.
    public var train: TextClassificationDataset
    /// The development (validation) split.
    public var dev: TextClassificationDataset
    /// The test split.
    public var test: TextClassificationDataset

    /// Loads `folder/labels.json` and the three splits.
    /// - Throws: `DatasetError` from `readLabelList` or `TextClassificationDataset.init(contentsOf:)`; a
    ///   missing split is `.ioFailure` naming the file.
    public init(folder: String, options: DatasetLoadOptions = DatasetLoadOptions()) throws {
        let base = URL(fileURLWithPath: folder)
        name = base.lastPathComponent
        let labels = try TextClassificationDataset.readLabelList(
            path: base.appendingPathComponent("labels.json").path)
        var options = options
        options.format = .jsonl
        let split = { (file: String) throws -> TextClassificationDataset in
            try TextClassificationDataset(contentsOf: base.appendingPathComponent(file).path, labels: labels,
                                          options: options)
        }
        self.labels = labels
        train = try split("train.jsonl")
        dev = try split("dev.jsonl")
        test = try split("test.jsonl")
    }
}

// Tests for TextClassificationDataset: JSONL and RFC 4180 CSV loading, label mapping, every typed error
// (with file, line and value), size bounds, seeded shuffling and batching. All fixtures are written here.
import AdapterCore
@testable import AdapterDrop
import Foundation
import Testing

/// A fresh temporary folder for dataset fixtures, removed when released.
final class DatasetTempFolder {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory
            .appendingPathComponent("adapterdrop-dataset-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: url) }

    /// Writes `text` as UTF-8 and returns the path.
    @discardableResult
    func write(_ name: String, _ text: String) throws -> String {
        try write(name, bytes: Array(text.utf8))
    }

    /// Writes raw bytes and returns the path.
    @discardableResult
    func write(_ name: String, bytes: [UInt8]) throws -> String {
        let target = url.appendingPathComponent(name)
        try Data(bytes).write(to: target)
        return target.path
    }
}

/// Runs `body` and returns the `DatasetError` it throws (recording a failure if it throws nothing or
/// something else).
func datasetError(sourceLocation: SourceLocation = #_sourceLocation,
                  _ body: () throws -> Void) -> DatasetError? {
    do {
        try body()
        Issue.record("expected a DatasetError, nothing was thrown", sourceLocation: sourceLocation)
    } catch let error as DatasetError {
        return error
    } catch {
        Issue.record("expected a DatasetError, got \(error)", sourceLocation: sourceLocation)
    }
    return nil
}

@Suite("Dataset: JSONL")
struct DatasetJSONLTests {
    @Test("loads text, optional text_pair, string and integer labels; discovers sorted labels")
    func loadsJSONL() throws {
        let folder = try DatasetTempFolder()
        // BOM, CRLF, a blank line, null text_pair, an integer label, non-ASCII text, extra keys ignored.
        let path = try folder.write("a.jsonl", "\u{FEFF}{\"text\": \"great film\", \"label\": \"pos\"}\r\n"
            + "\n"
            + "{\"text\": \"Ärger ☹\", \"text_pair\": \"second\", \"label\": \"neg\", \"id\": 7}\n"
            + "{\"label\": \"pos\", \"text\": \"x\", \"text_pair\": null}\n"
            + "{\"text\": \"number label\", \"label\": 3}")
        let data = try TextClassificationDataset(contentsOf: path)
        #expect(data.labels == ["3", "neg", "pos"])
        #expect(data.examples == [
            TextExample(text: "great film", label: 2, line: 1),
            TextExample(text: "Ärger ☹", textPair: "second", label: 1, line: 3),
            TextExample(text: "x", label: 2, line: 4),
            TextExample(text: "number label", label: 0, line: 5),
        ])
        #expect(data.labelCounts == [1, 1, 2])
        #expect(data.source == path)
    }

    @Test("a given label list fixes the indices; an unknown label names file, line and value")
    func givenLabels() throws {
        let folder = try DatasetTempFolder()
        let path = try folder.write("b.jsonl", "{\"text\": \"a\", \"label\": \"neg\"}\n{\"text\": \"b\", \"label\": \"meh\"}\n")
        let ok = try folder.write("c.jsonl", "{\"text\": \"a\", \"label\": \"neg\"}\n")
        #expect(try TextClassificationDataset(contentsOf: ok, labels: ["pos", "neg"]).examples[0].label == 1)
        let error = datasetError { _ = try TextClassificationDataset(contentsOf: path, labels: ["pos", "neg"]) }
        #expect(error == .unknownLabel(file: path, line: 2, label: "meh", known: ["pos", "neg"]))
        #expect(error?.description == "\(path):2: unknown label \"meh\" (known: pos, neg)")
        #expect(datasetError { _ = try TextClassificationDataset(contentsOf: ok, labels: []) }
            == .invalidLabelList(file: "<argument>", reason: "the list is empty"))
        #expect(datasetError { _ = try TextClassificationDataset(contentsOf: ok, labels: ["a", "b", "a"]) }
            == .invalidLabelList(file: "<argument>", reason: "label \"a\" appears twice"))
    }

    @Test("lines that are not JSON objects, missing and mistyped fields are typed errors with the line")
    func structuralErrors() throws {
        let folder = try DatasetTempFolder()
        let good = "{\"text\": \"a\", \"label\": \"x\"}\n"
        let cases: [(String, (String) -> DatasetError)] = [
            (good + "[1, 2]\n", { .notAnObject(file: $0, line: 2, found: "array") }),
            (good + good + "\"just a string\"\n", { .notAnObject(file: $0, line: 3, found: "string") }),
            (good + "42\n", { .notAnObject(file: $0, line: 2, found: "number") }),
            (good + "{\"label\": \"x\"}\n", { .missingField(file: $0, line: 2, field: "text") }),
            ("{\"text\": \"a\"}\n", { .missingField(file: $0, line: 1, field: "label") }),
            (good + "{\"text\": 5, \"label\": \"x\"}\n",
             { .invalidFieldType(file: $0, line: 2, field: "text", expected: "a string", found: "a number") }),
            (good + "{\"text\": null, \"label\": \"x\"}\n",
             { .invalidFieldType(file: $0, line: 2, field: "text", expected: "a string", found: "null") }),
            (good + "{\"text\": \"a\", \"label\": 1.5}\n",
             { .invalidFieldType(file: $0, line: 2, field: "label", expected: "a string or an integer",
                                 found: "a number") }),
            (good + "{\"text\": \"a\", \"label\": true}\n",
             { .invalidFieldType(file: $0, line: 2, field: "label", expected: "a string or an integer",
                                 found: "a boolean") }),
            (good + "{\"text\": \"a\", \"text_pair\": [\"b\"], \"label\": \"x\"}\n",
             { .invalidFieldType(file: $0, line: 2, field: "text_pair", expected: "a string", found: "an array") }),
        ]
        for (index, (content, expected)) in cases.enumerated() {
            let path = try folder.write("case\(index).jsonl", content)
            #expect(datasetError { _ = try TextClassificationDataset(contentsOf: path) } == expected(path),
                    "case \(index): \(content.debugDescription)")
        }
    }

    @Test("invalid JSON names the line")
    func invalidJSON() throws {
        let folder = try DatasetTempFolder()
        for (index, bad) in ["{\"text\": \"a\", \"label\": }", "{\"text\": \"a\"", "nonsense", "[1, 2"].enumerated() {
            let path = try folder.write("bad\(index).jsonl", "{\"text\": \"a\", \"label\": \"x\"}\n\n" + bad + "\n")
            let error = datasetError { _ = try TextClassificationDataset(contentsOf: path) }
            guard case let .invalidJSON(file, line, reason)? = error else {
                Issue.record("case \(index): expected invalidJSON, got \(String(describing: error))")
                continue
            }
            #expect(file == path)
            #expect(line == 3)
            #expect(!reason.isEmpty)
        }
    }

    @Test("invalid UTF-8 names the line and byte; the validator agrees with the standard library")
    func invalidUTF8() throws {
        let folder = try DatasetTempFolder()
        let good = Array("{\"text\": \"a\", \"label\": \"x\"}\n".utf8)
        // Line 2: `{"text": "é` then a lone continuation byte 0x80 at byte 13 of the line.
        let bad = Array("{\"text\": \"é".utf8) + [0x80] + Array("\", \"label\": \"x\"}\n".utf8)
        let path = try folder.write("u.jsonl", bytes: good + bad + good)
        #expect(datasetError { _ = try TextClassificationDataset(contentsOf: path) }
            == .invalidUTF8(file: path, line: 2, byteColumn: 13))
        let csvPath = try folder.write("u.csv", bytes: Array("text,label\n\"a\nb".utf8) + [0xC0, 0xAF] + Array("\",x\n".utf8))
        #expect(datasetError { _ = try TextClassificationDataset(contentsOf: csvPath) }
            == .invalidUTF8(file: csvPath, line: 3, byteColumn: 2))

        // Random byte strings biased towards UTF-8 lead and continuation bytes: our validator must accept
        // exactly what String(validating:) accepts.
        var rng = SeededRNG(seed: 7)
        let alphabet: [UInt8] = [0x41, 0x80, 0xBF, 0xC0, 0xC2, 0xDF, 0xE0, 0xA0, 0xED, 0x9F, 0xEF, 0xF0, 0x90,
                                 0xF4, 0x8F, 0xF5, 0xFF, 0x0A]
        for _ in 0..<5000 {
            let length = Int(rng.next() % 7)
            let bytes = (0..<length).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] }
            let ours = DatasetFileBytes.firstInvalidUTF8(bytes) == nil
            let standard = String(validating: bytes, as: UTF8.self) != nil
            #expect(ours == standard, "bytes \(bytes.map { String($0, radix: 16) })")
        }
    }

    @Test("empty files, size limit, directories, missing files and unknown formats")
    func fileErrors() throws {
        let folder = try DatasetTempFolder()
        let empty = try folder.write("empty.jsonl", "")
        #expect(datasetError { _ = try TextClassificationDataset(contentsOf: empty) } == .emptyFile(file: empty))
        let blank = try folder.write("blank.jsonl", "\n  \n\r\n")
        #expect(datasetError { _ = try TextClassificationDataset(contentsOf: blank) } == .emptyFile(file: blank))

        let content = String(repeating: "{\"text\": \"a\", \"label\": \"x\"}\n", count: 10)
        let size = content.utf8.count  // 280 bytes
        let big = try folder.write("big.jsonl", content)
        #expect(try TextClassificationDataset(contentsOf: big, options: .init(maxFileBytes: size)).count == 10)
        #expect(datasetError { _ = try TextClassificationDataset(contentsOf: big, options: .init(maxFileBytes: size - 1)) }
            == .fileTooLarge(file: big, size: size, limit: size - 1))

        #expect(datasetError { _ = try TextClassificationDataset(contentsOf: folder.url.path, options: .init(format: .csv)) }
            == .notARegularFile(file: folder.url.path))
        let missing = folder.url.appendingPathComponent("missing.jsonl").path
        guard case .ioFailure(let file, _)? = datasetError({ _ = try TextClassificationDataset(contentsOf: missing) })
        else { Issue.record("expected ioFailure"); return }
        #expect(file == missing)
        let txt = try folder.write("data.txt", content)
        #expect(datasetError { _ = try TextClassificationDataset(contentsOf: txt) } == .unknownFormat(file: txt))
        #expect(try TextClassificationDataset(contentsOf: txt, options: .init(format: .jsonl)).count == 10)
    }
}

@Suite("Dataset: CSV")
struct DatasetCSVTests {
    @Test("RFC 4180: quoted commas, doubled quotes, multi-line fields, CRLF, extra columns, empty text_pair")
    func loadsCSV() throws {
        let folder = try DatasetTempFolder()
        let path = try folder.write("a.csv", "id,label,text,text_pair\r\n"
            + "1,pos,\"Hello, world\",\r\n"
            + "2,neg,\"She said \"\"no\"\"\",\"pair\"\r\n"
            + "\r\n"
            + "3,neg,\"two\nlines\",\n"
            + "4,pos,\"\",last")  // no final line break
        let data = try TextClassificationDataset(contentsOf: path)
        #expect(data.labels == ["neg", "pos"])
        #expect(data.examples == [
            TextExample(text: "Hello, world", label: 1, line: 2),
            TextExample(text: "She said \"no\"", textPair: "pair", label: 0, line: 3),
            TextExample(text: "two\nlines", label: 0, line: 5),
            TextExample(text: "", textPair: "last", label: 1, line: 7),
        ])
        // Custom column names.
        let other = try folder.write("b.csv", "sentence,y\nok,1\n")
        let custom = try TextClassificationDataset(contentsOf: other,
                                                   options: .init(textField: "sentence", labelField: "y"))
        #expect(custom.examples == [TextExample(text: "ok", label: 0, line: 2)])
    }

    @Test("malformed CSV, field counts, missing and duplicate columns are typed errors with the line")
    func csvErrors() throws {
        let folder = try DatasetTempFolder()
        let cases: [(String, (String) -> DatasetError)] = [
            ("text,label\na,x\n\"open\nstill open,x\n", {
                .malformedCSV(file: $0, line: 3, reason: "quoted field opened here is never closed") }),
            ("text,label\na,x\nsay \"hi\",x\n", {
                .malformedCSV(file: $0, line: 3,
                              reason: "quote inside an unquoted field: \"say \"hi\",x\n\" (quote the whole field and double its quotes)") }),
            ("text,label\n\"a\nb\"c,x\n", {
                .malformedCSV(file: $0, line: 3, reason: "unexpected text after a closing quote: \"c,x\n\"") }),
            ("text,label\na,x\nb,x,extra\n", { .fieldCountMismatch(file: $0, line: 3, expected: 2, found: 3) }),
            ("text,label\n\"multi\nline\",x\nonly\n", { .fieldCountMismatch(file: $0, line: 4, expected: 2, found: 1) }),
            ("sentence,label\na,x\n", { .missingField(file: $0, line: 1, field: "text") }),
            ("text,lbl\na,x\n", { .missingField(file: $0, line: 1, field: "label") }),
            ("text,label,text\na,x,b\n", { .duplicateColumn(file: $0, column: "text") }),
            ("text,label\n", { .emptyFile(file: $0) }),
            ("", { .emptyFile(file: $0) }),
        ]
        for (index, (content, expected)) in cases.enumerated() {
            let path = try folder.write("case\(index).csv", content)
            #expect(datasetError { _ = try TextClassificationDataset(contentsOf: path) } == expected(path),
                    "case \(index): \(content.debugDescription)")
        }
    }

    @Test("random fields survive an RFC 4180 write/read round trip, with correct start lines")
    func roundTrip() throws {
        let folder = try DatasetTempFolder()
        var rng = SeededRNG(seed: 2024)
        let pieces = ["a", "Z", " ", ",", "\"", "\n", "\r\n", "é", "☃", "𝄞", "x y", "\t"]
        func randomField() -> String {
            (0..<Int(rng.next() % 6)).map { _ in pieces[Int(rng.next() % UInt64(pieces.count))] }.joined()
        }
        func encode(_ field: String) -> String {
            let needsQuotes = field.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r\n" })
                || rng.next() % 4 == 0  // quote some plain fields too
            return needsQuotes ? "\"" + field.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : field
        }
        for trial in 0..<40 {
            var csv = "text,label,text_pair\n"
            var expected: [TextExample] = []
            var line = 2
            for _ in 0..<Int(1 + rng.next() % 8) {
                var text = randomField()
                if text.isEmpty || text.hasPrefix("\n") || text.hasPrefix("\r\n") { text = "t" + text }
                let label = Int(rng.next() % 3)
                let pair = randomField()
                let record = encode(text) + "," + "L\(label)" + "," + encode(pair)
                csv += record + (rng.next() % 2 == 0 ? "\n" : "\r\n")
                expected.append(TextExample(text: text, textPair: pair.isEmpty ? nil : pair, label: label, line: line))
                line += record.reduce(0) { $1 == "\n" || $1 == "\r\n" ? $0 + 1 : $0 } + 1
            }
            let path = try folder.write("trial\(trial).csv", csv)
            let data = try TextClassificationDataset(contentsOf: path, labels: ["L0", "L1", "L2"])
            #expect(data.examples == expected, "trial \(trial): \(csv.debugDescription)")
        }
    }
}

@Suite("Dataset: shuffling, batching, task folders")
struct DatasetBatchingTests {
    func dataset(_ count: Int) -> TextClassificationDataset {
        TextClassificationDataset(labels: ["a", "b"],
                                  examples: (0..<count).map { TextExample(text: "t\($0)", label: $0 % 2) })
    }

    @Test("seeded permutations are permutations, reproducible, differ by seed and stream, and are pinned")
    func permutations() {
        for count in [0, 1, 2, 7, 100] {
            let p = SeededPermutation.indices(count: count, seed: 9)
            #expect(p.sorted() == Array(0..<count))
            #expect(p == SeededPermutation.indices(count: count, seed: 9))
        }
        let a = SeededPermutation.indices(count: 50, seed: 1)
        #expect(a != SeededPermutation.indices(count: 50, seed: 2))
        #expect(a != SeededPermutation.indices(count: 50, seed: 1, stream: 1))
        // Pinned: this order must not change across platforms or releases (splits and batches depend on it).
        #expect(SeededPermutation.indices(count: 10, seed: 42) == pinnedPermutation)
        // Uniformity: each of the 6 orders of 3 items appears about 1/6 of 6000 times (expected 1000,
        // binomial sd ≈ 29; ±150 is > 5 sd).
        var counts: [[Int]: Int] = [:]
        for seed in 0..<6000 { counts[SeededPermutation.indices(count: 3, seed: UInt64(seed)), default: 0] += 1 }
        #expect(counts.count == 6)
        for (order, n) in counts { #expect(abs(n - 1000) < 150, "order \(order): \(n)") }
    }

    /// Recorded from this implementation (xoshiro256** via SeededRNG, Fisher–Yates from the back).
    let pinnedPermutation = [7, 3, 8, 9, 5, 6, 4, 1, 0, 2]

    @Test("shuffled keeps the examples and labels; the same seed gives the same order")
    func shuffled() {
        let data = dataset(20)
        let s = data.shuffled(seed: 5)
        #expect(s.examples != data.examples)
        #expect(Set(s.examples) == Set(data.examples))
        #expect(s.examples == data.shuffled(seed: 5).examples)
        #expect(s.labelCounts == data.labelCounts)
        #expect(data.prefix(3).examples == Array(data.examples.prefix(3)))
    }

    @Test("batches: sizes, last batch, dropLast, per-epoch orders")
    func batches() {
        let data = dataset(10)
        let plain = data.batches(size: 4)
        #expect(plain.map(\.count) == [4, 4, 2])
        #expect(plain.flatMap { $0 } == data.examples)
        #expect(data.batches(size: 4, dropLast: true).map(\.count) == [4, 4])
        #expect(data.batches(size: 10).count == 1)
        #expect(data.batches(size: 11).map(\.count) == [10])
        let e0 = data.batches(size: 3, shuffleSeed: 1, epoch: 0).flatMap { $0 }
        let e1 = data.batches(size: 3, shuffleSeed: 1, epoch: 1).flatMap { $0 }
        #expect(Set(e0) == Set(data.examples))
        #expect(e0 != e1)
        #expect(e0 == data.batches(size: 3, shuffleSeed: 1, epoch: 0).flatMap { $0 })
        #expect(dataset(0).batches(size: 3).isEmpty)
    }

    @Test("a fetch-data task folder loads through labels.json; bad label files are typed errors")
    func taskFolder() throws {
        let folder = try DatasetTempFolder()
        let task = folder.url.appendingPathComponent("tiny-task")
        try FileManager.default.createDirectory(at: task, withIntermediateDirectories: true)
        try Data("[\"negative\", \"positive\"]\n".utf8).write(to: task.appendingPathComponent("labels.json"))
        for (split, count) in [("train", 3), ("dev", 1), ("test", 2)] {
            let lines = (0..<count).map { "{\"text\": \"\(split) \($0)\", \"label\": \"\($0 % 2 == 0 ? "positive" : "negative")\"}\n" }
            try Data(lines.joined().utf8).write(to: task.appendingPathComponent("\(split).jsonl"))
        }
        let loaded = try TextClassificationTask(folder: task.path)
        #expect(loaded.name == "tiny-task")
        #expect(loaded.labels == ["negative", "positive"])
        #expect(loaded.train.count == 3 && loaded.dev.count == 1 && loaded.test.count == 2)
        #expect(loaded.test.examples.map(\.label) == [1, 0])

        let dup = try folder.write("dup.json", "[\"a\", \"a\"]")
        #expect(datasetError { _ = try TextClassificationDataset.readLabelList(path: dup) }
            == .invalidLabelList(file: dup, reason: "label \"a\" appears twice"))
        let object = try folder.write("obj.json", "{\"a\": 1}")
        #expect(datasetError { _ = try TextClassificationDataset.readLabelList(path: object) }
            == .invalidLabelList(file: object, reason: "expected a JSON array of strings"))
        let empty = try folder.write("empty.json", "[]")
        #expect(datasetError { _ = try TextClassificationDataset.readLabelList(path: empty) }
            == .invalidLabelList(file: empty, reason: "the list is empty"))
        try FileManager.default.removeItem(at: task.appendingPathComponent("dev.jsonl"))
        guard case .ioFailure(let file, _)? = datasetError({ _ = try TextClassificationTask(folder: task.path) })
        else { Issue.record("expected ioFailure for the missing split"); return }
        #expect(file.hasSuffix("tiny-task/dev.jsonl"))
    }

    @Test("the real fetched data loads when present (skipped otherwise: run scripts/fetch-data.sh)")
    func realData() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let manifest = root.appendingPathComponent("data/manifest.json")
        guard FileManager.default.fileExists(atPath: manifest.path) else { return }
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: manifest)) as! [String: Any]
        let tasks = json["tasks"] as! [String: [String: Any]]
        #expect(tasks.count == 5)
        for (name, entry) in tasks {
            let task = try TextClassificationTask(folder: root.appendingPathComponent("data/\(name)").path)
            let splits = entry["splits"] as! [String: [String: Any]]
            #expect(task.labels == entry["labels"] as! [String])
            #expect(task.train.count == splits["train"]!["size"] as! Int, "\(name)")
            #expect(task.dev.count == splits["dev"]!["size"] as! Int, "\(name)")
            #expect(task.test.count == splits["test"]!["size"] as! Int, "\(name)")
            let trainCounts = splits["train"]!["label_counts"] as! [String: Int]
            #expect(task.train.labelCounts == task.labels.map { trainCounts[$0]! }, "\(name)")
        }
    }
}

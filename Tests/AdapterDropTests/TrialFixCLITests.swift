// Fresh-user trial defects of the `adapterdrop` executable: each bad input fails up front, in one plain line that
// names the option (runs the built binary like TrainCommandTests).
@testable import AdapterDrop
import Foundation
import Testing

@Suite struct TrialFixCLITests {
    typealias CLI = TrainCommandTests

    static func oneErrorLine(_ r: TrainCommandTests.Run) -> Bool {
        r.stderr.split(separator: "\n").filter { $0.hasPrefix("Error:") }.count == 1 && !r.stderr.contains("NSError")
            && !r.stderr.contains("Error Domain=")
    }

    /// `demo --results FILE` and `--results FILE/below` fail before step 1 (no "Step 1" progress line).
    @Test func demoResultsMustBeAFolder() throws {
        let root = try CLI.workspace()
        defer { try? FileManager.default.removeItem(at: root) }
        let p = { (name: String) in root.appendingPathComponent(name).path }
        try "x".write(toFile: p("file"), atomically: true, encoding: .utf8)
        for results in [p("file"), p("file/below")] {
            let r = try CLI.run(["demo", "--quick", "--model", p("model"), "--data", root.path, "--tasks", "none",
                                 "--results", results, "--threads", "1", "--no-plots"])
            #expect(r.status != 0)
            #expect(r.stderr.contains("--results \(results)") && !r.stderr.contains("Step 1"), "\(r.stderr)")
            #expect(Self.oneErrorLine(r), "\(r.stderr)")
        }
    }

    /// `demo --specialized 2` on the 2-layer tiny-bert: an error naming --specialized and the valid range.
    @Test func demoSpecializedOutOfRange() throws {
        let root = try CLI.workspace()
        defer { try? FileManager.default.removeItem(at: root) }
        let p = { (name: String) in root.appendingPathComponent(name).path }
        // A task folder so that the check is reached (it runs once the model is loaded, before training).
        try FileManager.default.createDirectory(atPath: p("data/t"), withIntermediateDirectories: true)
        let r = try CLI.run(["demo", "--quick", "--model", p("model"), "--data", p("data"), "--tasks", "t",
                             "--results", p("results"), "--specialized", "1,2", "--threads", "1", "--no-plots"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("--specialized 1,2") && r.stderr.contains("1...1") && r.stderr.contains("2 layers"), "\(r.stderr)")
        #expect(Self.oneErrorLine(r), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: p("results")))
    }

    /// `prune --out` refuses an existing non-empty folder (before loading anything), like train/eval/fuse, and
    /// leaves it untouched.
    @Test func pruneRefusesNonEmptyOut() throws {
        let root = try CLI.workspace()
        defer { try? FileManager.default.removeItem(at: root) }
        let p = { (name: String) in root.appendingPathComponent(name).path }
        try FileManager.default.createDirectory(atPath: p("full"), withIntermediateDirectories: true)
        try "x".write(toFile: p("full/keep.txt"), atomically: true, encoding: .utf8)
        let r = try CLI.run(["prune", "--model", p("model"), "--adapter", p("a"), "--adapter", p("b"), "--fusion", p("f"),
                             "--data", p("train.jsonl"), "--keep", "1", "--out", p("full"), "--threads", "1"])
        #expect(r.status != 0 && r.stderr.contains("--out \(p("full")): folder is not empty (pass --overwrite"), "\(r.stderr)")
        #expect(Self.oneErrorLine(r), "\(r.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: p("full")) == ["keep.txt"])
    }

    /// The command `fuse --help` recommends (`predict --adapter A --adapter B --fusion OUT --head-folder OUT
    /// --setup "Fuse(A,B)"`, no --head) runs the fusion's trained head, also without --head-folder; `prune` keeps
    /// that head next to the pruned fusion.
    @Test func fusionHeadIsTheDefaultAndSurvivesPruning() throws {
        let root = try CLI.workspace()
        defer { try? FileManager.default.removeItem(at: root) }
        let p = { (name: String) in root.appendingPathComponent(name).path }
        let common = ["--model", p("model"), "--train", p("train.jsonl"), "--dev", p("dev.jsonl"), "--epochs", "1",
                      "--batch-size", "16", "--threads", "1", "--json"]
        for task in ["a", "b"] {
            let r = try CLI.run(["train"] + common + ["--task", task, "--out", p(task)])
            #expect(r.status == 0, "\(r.stderr)")
        }
        let f = try CLI.run(["fuse"] + common + ["--adapter", p("a"), "--adapter", p("b"), "--task", "sentiment", "--out", p("f")])
        #expect(f.status == 0, "\(f.stderr)")
        for extra in [["--head-folder", p("f")], []] {
            let r = try CLI.run(["predict", "--model", p("model"), "--adapter", p("a"), "--adapter", p("b"), "--fusion", p("f"),
                                 "--setup", "Fuse(a,b)", "--input-ids", "[[1, 10, 2]]", "--threads", "1", "--json"] + extra)
            #expect(r.status == 0, "\(r.stderr)")
            let heads = try #require(try CLI.json(r.stdout)["heads"] as? [[String: Any]])
            #expect(heads.map { $0["name"] as? String } == ["sentiment"], "\(r.stdout)")
        }
        let pr = try CLI.run(["prune", "--model", p("model"), "--adapter", p("a"), "--adapter", p("b"), "--fusion", p("f"),
                              "--data", p("dev.jsonl"), "--keep", "1", "--out", p("pruned"), "--threads", "1", "--json"])
        #expect(pr.status == 0, "\(pr.stderr)")
        let fusionName = try #require(try CLI.json(pr.stdout)["fusion"] as? String)
        #expect(FileManager.default.fileExists(atPath: p("pruned/\(fusionName)/head_config.json")), "\(pr.stdout)")
        // Pruning again into the same folder: refused, then replaced with --overwrite.
        let again = try CLI.run(["prune", "--model", p("model"), "--adapter", p("a"), "--adapter", p("b"), "--fusion", p("f"),
                                 "--data", p("dev.jsonl"), "--keep", "1", "--out", p("pruned"), "--threads", "1", "--json"])
        #expect(again.status != 0 && again.stderr.contains("not empty"), "\(again.stderr)")
        let replaced = try CLI.run(["prune", "--model", p("model"), "--adapter", p("a"), "--adapter", p("b"), "--fusion", p("f"),
                                    "--data", p("dev.jsonl"), "--keep", "1", "--out", p("pruned"), "--threads", "1", "--json", "--overwrite"])
        #expect(replaced.status == 0, "\(replaced.stderr)")
    }

    /// `train --out` under an unwritable place fails before training, in one line without an NSError dump.
    @Test func trainOutParentMustBeWritable() throws {
        let root = try CLI.workspace()
        defer { try? FileManager.default.removeItem(at: root) }
        let p = { (name: String) in root.appendingPathComponent(name).path }
        try "x".write(toFile: p("file"), atomically: true, encoding: .utf8)
        for out in ["/proc/adapterdrop-x", p("file/x/y")] {
            let r = try CLI.run(["train", "--model", p("model"), "--train", p("train.jsonl"), "--dev", p("dev.jsonl"), "--task", "t",
                                 "--threads", "1", "--epochs", "1", "--out", out])
            #expect(r.status != 0 && r.stderr.contains("--out \(out): "), "\(r.stderr)")
            #expect(!r.stderr.contains("step"), "trained before failing: \(r.stderr)")
            #expect(Self.oneErrorLine(r), "\(r.stderr)")
        }
    }

    /// Foundation errors become one line with the POSIX reason.
    @Test func ioErrorReasonIsOneLine() {
        do {
            try Data("x".utf8).write(to: URL(fileURLWithPath: "/proc/adapterdrop-no/such/file"))
            Issue.record("writing under /proc succeeded")
        } catch {
            let reason = ioErrorReason(error)
            #expect(isFoundationError(error))
            #expect(!reason.isEmpty && !reason.contains("\n") && !reason.contains("Domain="), "\(reason)")
        }
        #expect(ioErrorReason(CocoaError(.fileWriteNoPermission, userInfo: [NSUnderlyingErrorKey: POSIXError(.EACCES) as NSError]))
                == "Permission denied")
        #expect(!isFoundationError(DemoError.runExists(path: "x")))
    }

    /// `encode --input-ids "[]"` (and an empty row) is an error, not an empty success.
    @Test func encodeRejectsEmptyIds() throws {
        let root = try CLI.workspace()
        defer { try? FileManager.default.removeItem(at: root) }
        for ids in ["[]", "[[1, 10, 2], []]"] {
            let r = try CLI.run(["encode", "--model", root.appendingPathComponent("model").path, "--input-ids", ids, "--threads", "1"])
            #expect(r.status != 0 && r.stderr.contains("--input-ids"), "\(ids): \(r.stderr)")
            #expect(Self.oneErrorLine(r), "\(r.stderr)")
        }
    }

    /// `--skip-layers 0,0` is refused; `eval --drop` above the layer count names --drop and the layer count.
    @Test func skipLayersAndDropRanges() throws {
        let root = try CLI.workspace()
        defer { try? FileManager.default.removeItem(at: root) }
        let p = { (name: String) in root.appendingPathComponent(name).path }
        let t = try CLI.run(["train", "--model", p("model"), "--train", p("train.jsonl"), "--dev", p("dev.jsonl"), "--task", "a",
                             "--epochs", "1", "--batch-size", "16", "--threads", "1", "--out", p("a")])
        #expect(t.status == 0, "\(t.stderr)")
        let twice = try CLI.run(["predict", "--model", p("model"), "--adapter", p("a"), "--setup", "a", "--input-ids", "[[1, 10, 2]]",
                                 "--skip-layers", "0,0", "--threads", "1"])
        #expect(twice.status != 0 && twice.stderr.contains("--skip-layers: layer 0 is given twice"), "\(twice.stderr)")
        let eval = ["eval", "--model", p("model"), "--adapter", p("a"), "--data", p("dev.jsonl"), "--threads", "1"]
        let deep = try CLI.run(eval + ["--drop", "3"])
        #expect(deep.status != 0 && deep.stderr.contains("--drop 3: the model has 2 layers (n in 0...2"), "\(deep.stderr)")
        let all = try CLI.run(eval + ["--drop", "2", "--json"])
        #expect(all.status == 0, "\(all.stderr)")
        let skip = try CLI.run(eval + ["--skip-layers", "2"])
        #expect(skip.status != 0 && skip.stderr.contains("--skip-layers: layer 2 is out of range: the model has 2 layers (0...1)"), "\(skip.stderr)")
        for r in [twice, deep, skip] { #expect(Self.oneErrorLine(r), "\(r.stderr)") }
    }

    /// A --text with bytes that are not UTF-8 (they arrive as U+FFFD) is refused instead of silently changed.
    @Test func nonUTF8TextIsRefused() throws {
        let root = try CLI.workspace()
        defer { try? FileManager.default.removeItem(at: root) }
        let r = try CLI.run(["tokenize", "--model", root.appendingPathComponent("model").path, "--text", "w10 \u{FFFD} w11"])
        #expect(r.status != 0 && r.stderr.contains("--text: character 5 is U+FFFD"), "\(r.stderr)")
        #expect(Self.oneErrorLine(r), "\(r.stderr)")
    }

    /// `--threads` help names the default once.
    @Test func threadsHelpShowsTheDefaultOnce() throws {
        let r = try CLI.run(["encode", "--help"])
        let lines = r.stdout.split(separator: "\n").map(String.init)
        let i = try #require(lines.firstIndex { $0.trimmingCharacters(in: .whitespaces).hasPrefix("--threads") })
        let text = lines[i] + (i + 1 < lines.count ? lines[i + 1] : "")   // the help may wrap onto the next line
        #expect(text.components(separatedBy: "default").count == 2, "\(text)")
    }
}

// End-to-end runs of the built `adapterdrop` executable (train, eval, fuse, bad input) on tiny-bert with a
// generated vocabulary and a synthetic two-class task. `swift build --build-tests` builds the executable next to
// the test bundle; the tests require it (they fail, not skip, when it is missing).
import AdapterCore
@testable import AdapterDrop
import Foundation
import TestSupport
import Testing

@Suite struct TrainCommandTests {
    struct Run {
        var status: Int32, stdout: String, stderr: String
    }

    /// The `adapterdrop` executable in the build folder of the running tests.
    static func binary() throws -> URL {
        var folder = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = folder.appendingPathComponent("adapterdrop")
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: candidate.path, isDirectory: &isDirectory), !isDirectory.boolValue {
                return candidate
            }
            folder = folder.deletingLastPathComponent()
        }
        throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: "adapterdrop next to \(CommandLine.arguments[0])"])
    }

    static func run(_ arguments: [String]) throws -> Run {
        let process = Process()
        process.executableURL = try binary()
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Run(status: process.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }

    /// A model folder (tiny-bert + a 100-token vocab: [PAD] [CLS] [SEP] [UNK] [MASK] w5 … w99) and
    /// train/dev files where class "pos" uses words w60…w69 and "neg" w10…w19.
    static func workspace() throws -> URL {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("train-cli-\(UUID().uuidString)")
        let model = root.appendingPathComponent("model")
        try FileManager.default.createDirectory(at: model, withIntermediateDirectories: true)
        for f in ["config.json", "model.safetensors"] {
            try FileManager.default.copyItem(at: fixtureURL("tiny-bert/\(f)"), to: model.appendingPathComponent(f))
        }
        let vocab = ["[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]"] + (5..<100).map { "w\($0)" }
        try (vocab.joined(separator: "\n") + "\n").write(to: model.appendingPathComponent("vocab.txt"), atomically: true, encoding: .utf8)
        for (split, count, seed) in [("train", 64, UInt64(5)), ("dev", 32, UInt64(6))] {
            let task = AdapterTrainingTrainerTests.syntheticTask(count: count, seed: seed)
            let lines = task.examples.map { "{\"text\": \"\($0.text)\", \"label\": \"\($0.label == 1 ? "pos" : "neg")\"}" }
            try (lines.joined(separator: "\n") + "\n").write(to: root.appendingPathComponent("\(split).jsonl"), atomically: true, encoding: .utf8)
        }
        return root
    }

    static func json(_ text: String) throws -> [String: Any] {
        let line = try #require(text.split(separator: "\n").last)
        return try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
    }

    @Test func trainEvalAndFuseEndToEnd() throws {
        let root = try Self.workspace()
        defer { try? FileManager.default.removeItem(at: root) }
        let p = { (name: String) in root.appendingPathComponent(name).path }
        let common = ["--model", p("model"), "--train", p("train.jsonl"), "--dev", p("dev.jsonl"), "--epochs", "15", "--warmup-steps", "10",
                      "--batch-size", "8", "--lr", "2e-2", "--reduction-factor", "4", "--threads", "1", "--json"]
        let a = try Self.run(["train"] + common + ["--task", "a", "--robust-drop", "0...1", "--out", p("a")])
        #expect(a.status == 0, "\(a.stderr)")
        let report = try Self.json(a.stdout)
        let dev = try #require(report["dev"] as? [String: Any])
        let accuracy = try #require(dev["accuracy"] as? Double)
        print("train CLI: \(a.stdout)")
        #expect(accuracy >= 0.85)
        for f in ["adapter_config.json", "adapter.safetensors", "head_config.json", "model_head.safetensors", "training_result.json"] {
            #expect(FileManager.default.fileExists(atPath: p("a/\(f)")), "missing \(f)")
        }
        // eval reads the saved adapter + head and its label names; with train's batching (batch size 8, so the same
        // padding) the same metrics as train's dev evaluation.
        let e = try Self.run(["eval", "--model", p("model"), "--adapter", p("a"), "--data", p("dev.jsonl"), "--batch-size", "8",
                              "--threads", "1", "--json"])
        #expect(e.status == 0, "\(e.stderr)")
        #expect(try Self.json(e.stdout)["accuracy"] as? Double == accuracy)
        #expect(try Self.json(e.stdout)["loss"] as? Double == dev["loss"] as? Double)
        let skipped = try Self.run(["eval", "--model", p("model"), "--adapter", p("a"), "--data", p("dev.jsonl"), "--skip-layers", "0",
                                    "--threads", "1", "--json"])
        #expect(skipped.status == 0, "\(skipped.stderr)")
        let skipList = try Self.json(skipped.stdout)["skip_layers"] as? [Int]
        #expect(skipList == [0])

        let b = try Self.run(["train"] + common + ["--task", "b", "--seed", "3", "--out", p("b")])
        #expect(b.status == 0, "\(b.stderr)")
        let f = try Self.run(["fuse", "--model", p("model"), "--adapter", p("a"), "--adapter", p("b"), "--train", p("train.jsonl"),
                              "--dev", p("dev.jsonl"), "--epochs", "2", "--batch-size", "8", "--lr", "5e-3", "--threads", "1",
                              "--json", "--out", p("f")])
        #expect(f.status == 0, "\(f.stderr)")
        for name in ["adapter_fusion_config.json", "model_adapter_fusion.safetensors", "head_config.json"] {
            #expect(FileManager.default.fileExists(atPath: p("f/\(name)")), "missing \(name)")
        }
    }

    /// Regression (JSONL numbers) and multi-label (CSV `a|b` lists) heads from the command line, trained with
    /// `--grad-accumulation 2` (batch 4 × 2: 8 optimizer steps an epoch); eval of the saved adapter + head reads
    /// the same files through the head's kind and reproduces train's dev metrics; bad labels are one-line errors
    /// naming the file, line and value.
    @Test func regressionAndMultiLabelEndToEnd() throws {
        let root = try Self.workspace()
        defer { try? FileManager.default.removeItem(at: root) }
        let p = { (name: String) in root.appendingPathComponent(name).path }
        // Same texts as train/dev.jsonl; regression target +0.9 / −1.1 by class, multi-label {pos|neg} ∪ {any}.
        for split in ["train", "dev"] {
            let lines = try String(contentsOfFile: p("\(split).jsonl"), encoding: .utf8).split(separator: "\n")
            var regression: [String] = [], csv = ["text,label"]
            for line in lines {
                let o = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String])
                let positive = o["label"] == "pos"
                regression.append("{\"text\": \"\(o["text"]!)\", \"label\": \(positive ? 0.9 : -1.1)}")
                csv.append("\(o["text"]!),\(positive ? "pos|any" : "neg|any")")
            }
            try (regression.joined(separator: "\n") + "\n").write(toFile: p("reg-\(split).jsonl"), atomically: true, encoding: .utf8)
            try (csv.joined(separator: "\n") + "\n").write(toFile: p("ml-\(split).csv"), atomically: true, encoding: .utf8)
        }
        let common = ["--model", p("model"), "--epochs", "12", "--warmup-steps", "10", "--batch-size", "4", "--grad-accumulation", "2",
                      "--lr", "2e-2", "--reduction-factor", "4", "--threads", "1", "--json"]
        let r = try Self.run(["train"] + common + ["--train", p("reg-train.jsonl"), "--dev", p("reg-dev.jsonl"), "--task", "r",
                                                   "--problem-type", "regression", "--out", p("r")])
        #expect(r.status == 0, "\(r.stderr)")
        let rReport = try Self.json(r.stdout)
        let rDev = try #require(rReport["dev"] as? [String: Any])
        print("train CLI regression: \(r.stdout)")
        #expect(rReport["steps"] as? Int == 12 * 8 && rReport["examples_per_step"] as? Int == 8)
        #expect(rReport["problem_type"] as? String == "regression")
        #expect(try #require(rDev["pearson"] as? Double) >= 0.8)
        #expect(rDev["spearman"] is Double && rDev["mse"] is Double && rDev["accuracy"] == nil)
        let re = try Self.run(["eval", "--model", p("model"), "--adapter", p("r"), "--data", p("reg-dev.jsonl"), "--batch-size", "4",
                               "--threads", "1", "--json"])
        #expect(re.status == 0, "\(re.stderr)")
        #expect(try Self.json(re.stdout)["pearson"] as? Double == rDev["pearson"] as? Double)

        let m = try Self.run(["train"] + common + ["--train", p("ml-train.csv"), "--dev", p("ml-dev.csv"), "--task", "m",
                                                   "--problem-type", "multi-label", "--out", p("m")])
        #expect(m.status == 0, "\(m.stderr)")
        let mDev = try #require(try Self.json(m.stdout)["dev"] as? [String: Any])
        print("train CLI multi-label: \(m.stdout)")
        #expect(try #require(mDev["accuracy"] as? Double) >= 0.85)
        let me = try Self.run(["eval", "--model", p("model"), "--adapter", p("m"), "--data", p("ml-dev.csv"), "--batch-size", "4",
                               "--threads", "1", "--json"])
        #expect(me.status == 0, "\(me.stderr)")
        #expect(try Self.json(me.stdout)["accuracy"] as? Double == mDev["accuracy"] as? Double)
        #expect(try Self.json(me.stdout)["macro_f1"] as? Double == mDev["macro_f1"] as? Double)
        // fuse takes the same problem types: a regression head over the two adapters just trained.
        let f = try Self.run(["fuse", "--model", p("model"), "--adapter", p("r"), "--adapter", p("m"), "--train", p("reg-train.jsonl"),
                              "--dev", p("reg-dev.jsonl"), "--problem-type", "regression", "--epochs", "1", "--batch-size", "8",
                              "--grad-accumulation", "2", "--threads", "1", "--json", "--out", p("f")])
        #expect(f.status == 0, "\(f.stderr)")
        let fReport = try Self.json(f.stdout)
        #expect(fReport["steps"] as? Int == 4 && (fReport["dev"] as? [String: Any])?["pearson"] is Double, "\(f.stdout)")

        // Bad labels: named file, line and value; nothing written.
        try "{\"text\": \"w10\", \"label\": 1.5}\n{\"text\": \"w11\", \"label\": \"high\"}\n"
            .write(toFile: p("reg-bad.jsonl"), atomically: true, encoding: .utf8)
        try "text,label\nw10,pos|any\nw11,pos|maybe\n".write(toFile: p("ml-bad.csv"), atomically: true, encoding: .utf8)
        try "{\"text\": \"w10\", \"label\": \"pos\"}\n".write(toFile: p("ml-bad.jsonl"), atomically: true, encoding: .utf8)
        let base = ["train", "--model", p("model"), "--task", "t", "--threads", "1", "--epochs", "1"]
        let cases: [([String], String)] = [
            (["--train", p("reg-bad.jsonl"), "--dev", p("reg-dev.jsonl"), "--problem-type", "regression"],
             "reg-bad.jsonl:2: field \"label\" must be a finite number, found \"high\""),
            (["--train", p("ml-train.csv"), "--dev", p("ml-bad.csv"), "--problem-type", "multi-label"],
             "ml-bad.csv:3: unknown label \"maybe\""),
            (["--train", p("ml-bad.jsonl"), "--dev", p("ml-dev.csv"), "--problem-type", "multi-label"],
             "ml-bad.jsonl:1: field \"label\" must be an array of label names, found \"pos\""),
            (["--train", p("reg-train.jsonl"), "--dev", p("reg-dev.jsonl"), "--problem-type", "regression", "--labels", "a,b"],
             "--labels: a regression head has no labels"),
            (["--train", p("train.jsonl"), "--dev", p("dev.jsonl"), "--grad-accumulation", "0"], "--grad-accumulation must be at least 1"),
        ]
        for (i, (arguments, message)) in cases.enumerated() {
            let bad = try Self.run(base + arguments + ["--out", p("bad\(i)")])
            #expect(bad.status != 0 && bad.stderr.contains(message), "\(arguments): \(bad.stderr)")
            #expect(bad.stderr.split(separator: "\n").filter { $0.hasPrefix("Error:") }.count == 1, "\(bad.stderr)")
            #expect(!FileManager.default.fileExists(atPath: p("bad\(i)")))
        }
    }

    /// JSONL text inputs (`embed`/`predict --input`, `prune --data`: one shared reader) go through the library's
    /// strict JSON parser: a duplicate key and a non-object line are one-line errors naming file and line; a good
    /// file embeds.
    @Test func jsonlInputLinesAreParsedStrictly() throws {
        let root = try Self.workspace()
        defer { try? FileManager.default.removeItem(at: root) }
        let p = { (name: String) in root.appendingPathComponent(name).path }
        let cases: [(String, String?)] = [
            ("{\"text\": \"w10 w11\"}\n{\"text\": \"w60\"}\n", nil),
            ("{\"text\": \"w10\"}\n{\"text\": \"w10\", \"text\": \"w11\"}\n", "in.jsonl:2: invalid JSON:"),
            ("{\"text\": \"w10\"}\n\n[1, 2]\n", "in.jsonl:3: not a JSON object"),
            ("{\"text\": 5}\n", "in.jsonl:1: missing string key \"text\""),
        ]
        for (content, message) in cases {
            try content.write(toFile: p("in.jsonl"), atomically: true, encoding: .utf8)
            let r = try Self.run(["embed", "--model", p("model"), "--input", p("in.jsonl"), "--threads", "1"])
            if let message {
                #expect(r.status != 0 && r.stderr.contains(message), "\(content): \(r.stderr)")
                #expect(r.stderr.split(separator: "\n").filter { $0.hasPrefix("Error:") }.count == 1, "\(r.stderr)")
            } else {
                #expect(r.status == 0, "\(r.stderr)")
            }
        }
    }

    /// Bad input: one-line error naming the file/line or option, non-zero exit, nothing written to --out.
    @Test func badInputFailsCleanly() throws {
        let root = try Self.workspace()
        defer { try? FileManager.default.removeItem(at: root) }
        let p = { (name: String) in root.appendingPathComponent(name).path }
        try "{\"text\": \"w10\", \"label\": \"meh\"}\n".write(to: root.appendingPathComponent("bad.jsonl"), atomically: true, encoding: .utf8)
        let base = ["train", "--model", p("model"), "--train", p("train.jsonl"), "--task", "t", "--threads", "1", "--epochs", "1"]
        let badLabel = try Self.run(base + ["--dev", p("bad.jsonl"), "--out", p("o1")])
        #expect(badLabel.status != 0)
        #expect(badLabel.stderr.contains("bad.jsonl:1: unknown label \"meh\""), "\(badLabel.stderr)")
        #expect(!FileManager.default.fileExists(atPath: p("o1")))
        let tooDeep = try Self.run(base + ["--dev", p("dev.jsonl"), "--drop", "3", "--out", p("o2")])
        #expect(tooDeep.status != 0 && tooDeep.stderr.contains("3") && tooDeep.stderr.contains("2 layers"), "\(tooDeep.stderr)")
        #expect(!FileManager.default.fileExists(atPath: p("o2")))
        try FileManager.default.createDirectory(atPath: p("full"), withIntermediateDirectories: true)
        try "x".write(toFile: p("full/keep.txt"), atomically: true, encoding: .utf8)
        let full = try Self.run(base + ["--dev", p("dev.jsonl"), "--out", p("full")])
        #expect(full.status != 0 && full.stderr.contains("not empty"), "\(full.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: p("full")) == ["keep.txt"])
        let both = try Self.run(base + ["--dev", p("dev.jsonl"), "--drop", "1", "--robust-drop", "0...1", "--out", p("o3")])
        #expect(both.status != 0 && both.stderr.contains("--robust-drop"), "\(both.stderr)")
        let missing = try Self.run(base + ["--dev", p("nope.jsonl"), "--out", p("o4")])
        #expect(missing.status != 0 && missing.stderr.contains("nope.jsonl"), "\(missing.stderr)")
        for r in [badLabel, tooDeep, full, missing] {
            #expect(r.stderr.split(separator: "\n").filter { $0.hasPrefix("Error:") }.count == 1, "\(r.stderr)")
        }
    }

    /// SIGKILL during training with a checkpoint after every step, 12 times at random moments: afterwards the
    /// checkpoint folder is always one complete save (its two files agree on the step: the safetensors metadata
    /// and trainer_state.json are written together and swapped in as one folder), and training resumes from it.
    @Test func killDuringCheckpointingLeavesACompleteCheckpoint() throws {
        let root = try Self.workspace()
        defer { try? FileManager.default.removeItem(at: root) }
        let p = { (name: String) in root.appendingPathComponent(name).path }
        let args = ["train", "--model", p("model"), "--train", p("train.jsonl"), "--dev", p("dev.jsonl"), "--task", "k",
                    "--epochs", "40", "--batch-size", "8", "--reduction-factor", "4", "--threads", "1",
                    "--checkpoint", p("ck"), "--checkpoint-every", "1"]
        var rng = SeededRNG(seed: 11)
        var steps: [Int] = []
        for trial in 0..<12 {
            let process = Process()
            process.executableURL = try Self.binary()
            process.arguments = args + ["--out", p("out\(trial)")]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            usleep(UInt32(300_000 + rng.next() % 1_200_000))
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            guard FileManager.default.fileExists(atPath: p("ck")) else { continue }
            #expect(Set(try FileManager.default.contentsOfDirectory(atPath: p("ck"))) == [TrainerCheckpoint.stateFile, TrainerCheckpoint.tensorFile])
            let state = try JSONDecoder().decode(TrainerCheckpoint.State.self,
                                                 from: Data(contentsOf: root.appendingPathComponent("ck/\(TrainerCheckpoint.stateFile)")))
            let tensors = try SafetensorsFile(url: root.appendingPathComponent("ck/\(TrainerCheckpoint.tensorFile)"))
            #expect(tensors.metadata["step"] == "\(state.step)" && state.lossBits.count == state.step)
            #expect(!FileManager.default.fileExists(atPath: p("out\(trial)")))
            steps.append(state.step)
        }
        print("kill during checkpointing: checkpoint steps after each kill \(steps)")
        #expect(steps.count >= 6)
        // Resume from the surviving checkpoint (fewer epochs would be a mismatch; same options finish the run).
        let resumed = try Self.run(args + ["--resume", p("ck"), "--out", p("final"), "--json"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(try Self.json(resumed.stdout)["steps"] as? Int == 320)
    }
}

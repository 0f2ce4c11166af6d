// Trial 3 defects D4–D11 (/work/notes/trial3.md): every bad input fails with one plain line naming the option,
// file or value — no trap, no hang, no silently lost or wrong result. CLI cases run the built binary
// (TrainCommandTests' helpers); library cases call the API directly.
import AdapterCore
@testable import AdapterDrop
import Foundation
import TestSupport
import Testing

@Suite struct TrialFix3Tests {
    typealias CLI = TrainCommandTests

    static func oneErrorLine(_ r: TrainCommandTests.Run) -> Bool { TrialFixCLITests.oneErrorLine(r) }

    /// No trap, no abort: a plain failure exit (1 for ArgumentParser errors, 64 for validation), never a signal.
    static func failedPlainly(_ r: TrainCommandTests.Run) -> Bool {
        r.status != 0 && r.status < 128 && !r.stderr.contains("runtime failure") && !r.stderr.contains("Fatal error")
            && !r.stderr.contains("crashed")
    }

    // MARK: D4 — epochs × steps bounded, 64-bit counts

    /// `--epochs Int.max` is refused by validation, and `--epochs 1000000` (4 steps an epoch → 4·10⁶ steps, above
    /// the 2·10⁶ limit) by the trainer before the first step, each in one line naming epochs.
    @Test func hugeEpochsAreRefused() throws {
        let root = try CLI.workspace()
        defer { try? FileManager.default.removeItem(at: root) }
        let p = { (name: String) in root.appendingPathComponent(name).path }
        let common = ["train", "--model", p("model"), "--train", p("train.jsonl"), "--dev", p("dev.jsonl"), "--task", "t",
                      "--batch-size", "16", "--threads", "1", "--out", p("o")]
        let max = try CLI.run(common + ["--epochs", "9223372036854775807"])
        #expect(Self.failedPlainly(max) && max.stderr.contains("--epochs 9223372036854775807: at most 2000000"), "\(max.stderr)")
        #expect(Self.oneErrorLine(max), "\(max.stderr)")
        let steps = try CLI.run(common + ["--epochs", "1000000"])
        #expect(Self.failedPlainly(steps), "\(steps.stderr)")
        #expect(steps.stderr.contains("epochs = 1000000") && steps.stderr.contains("1000000 epochs × 4 optimizer steps per epoch exceed the limit of 2000000"),
                "\(steps.stderr)")
        #expect(!steps.stderr.contains("step 1/"), "trained before failing: \(steps.stderr)")
        #expect(Self.oneErrorLine(steps), "\(steps.stderr)")
        #expect(!FileManager.default.fileExists(atPath: p("o")))
    }

    /// The library refuses the same run (an overflowing product included) with `TrainingError.invalidOption`.
    @Test func trainerBoundsTotalSteps() throws {
        let encoder = try BertEncoder(modelFolder: fixtureURL("tiny-bert"))
        let data = AdapterTrainingTrainerTests.syntheticTask(count: 8, seed: 1)
        for (epochs, batch, accumulation) in [(Int.max, 1, 1), (2_000_001, 8, 1), (3, Int.max, 2)] {
            var o = AdapterTrainingOptions()
            o.epochs = epochs
            o.batchSize = batch
            o.gradientAccumulationSteps = accumulation
            let adapter = try BottleneckAdapter(name: "a", config: .preset("seq_bn"), hiddenSize: encoder.config.hiddenSize,
                                                numLayers: encoder.config.numHiddenLayers, seed: 1)
            let head = PredictionHead(name: "a", config: .classification(numLabels: 2), hiddenSize: encoder.config.hiddenSize, seed: 2)
            func run() throws {
                let trainer = try AdapterTrainer(encoder: encoder, adapter: adapter, head: head, options: o) { _ in
                    if epochs != 3 { Issue.record("a batch was encoded") }
                    throw CocoaError(.featureUnsupported)
                }
                _ = try trainer.train(on: data, context: ComputeContext(threads: 1))
            }
            if epochs == 3 {
                // An overflowing batch × accumulation is one step an epoch: 3 steps, allowed (then fails encoding).
                #expect(throws: CocoaError.self) { try run() }
                continue
            }
            // Int.max: refused by the options' validation (trainer init); 2_000_001 × 1: by train().
            #expect {
                try run()
            } throws: { error in
                guard case let TrainingError.invalidOption(key, value, _) = error else { return false }
                return key == "epochs" && value == "\(epochs)"
            }
        }
    }

    /// The progress line prints 64-bit step counts in full (it printed 3·10¹² mod 2³²).
    @Test func progressLineKeepsSixtyFourBitCounts() {
        let progress = ConsoleTrainingProgress(isTerminal: false)
        let e = TrainingProgressEvent(step: 10, totalSteps: 3_000_000_000_000, epoch: 5_000_000_000, loss: 0.5, droppedLayers: 0,
                                      examplesPerSecond: 1, elapsedSeconds: 1, etaSeconds: 1, skippedSteps: 0)
        let line = progress.line(e)
        #expect(line.hasPrefix("step 10/3000000000000 epoch 5000000001 "), "\(line)")
    }

    // MARK: D5 — publishing --out never replaces a folder another process filled meanwhile

    /// `replacing: false`: a folder that became non-empty while the content was being written is left as it is
    /// (`TrainingError.folderExists`), the temporary folder is removed; a missing or empty folder is filled.
    @Test func publishDoesNotReplaceAFolderFilledMeanwhile() throws {
        let fm = FileManager.default
        let root = fm.temporaryDirectory.appendingPathComponent("trialfix3-publish-\(UUID().uuidString)")
        try fm.createDirectory(at: root, withIntermediateDirectories: true)
        defer { try? fm.removeItem(at: root) }
        let out = root.appendingPathComponent("out")
        #expect(throws: TrainingError.folderExists(path: out.path)) {
            try TrainerCheckpoint.writeFolderAtomically(out, replacing: false) { temporary in
                try Data("mine".utf8).write(to: temporary.appendingPathComponent("result.txt"))
                // Another run publishes the same folder before this one renames its result into place.
                try fm.createDirectory(at: out, withIntermediateDirectories: false)
                try Data("theirs".utf8).write(to: out.appendingPathComponent("result.txt"))
            }
        }
        #expect(try String(contentsOf: out.appendingPathComponent("result.txt"), encoding: .utf8) == "theirs")
        #expect(try fm.contentsOfDirectory(atPath: root.path) == ["out"])
        // Already non-empty at the start: refused before `write` runs.
        #expect(throws: TrainingError.folderExists(path: out.path)) {
            try TrainerCheckpoint.writeFolderAtomically(out, replacing: false) { _ in Issue.record("write ran") }
        }
        // Missing and empty folders are filled; replacing: true (--overwrite) still replaces.
        let empty = root.appendingPathComponent("empty")
        try fm.createDirectory(at: empty, withIntermediateDirectories: false)
        for folder in [root.appendingPathComponent("new"), empty] {
            try TrainerCheckpoint.writeFolderAtomically(folder, replacing: false) { t in
                try Data("x".utf8).write(to: t.appendingPathComponent("f"))
            }
            #expect(try fm.contentsOfDirectory(atPath: folder.path) == ["f"])
        }
        try TrainerCheckpoint.writeFolderAtomically(out) { t in try Data("new".utf8).write(to: t.appendingPathComponent("g")) }
        #expect(try fm.contentsOfDirectory(atPath: out.path) == ["g"])
    }

    /// A save leaves the temporary folder of a live writer of the same folder alone (pid 1 is always alive) and
    /// removes one of a dead writer.
    @Test func liveWritersTemporaryFolderSurvives() throws {
        let fm = FileManager.default
        let root = fm.temporaryDirectory.appendingPathComponent("trialfix3-tmp-\(UUID().uuidString)")
        try fm.createDirectory(at: root, withIntermediateDirectories: true)
        defer { try? fm.removeItem(at: root) }
        let live = root.appendingPathComponent(".out.tmp-1"), dead = root.appendingPathComponent(".out.tmp-2147483646")
        for f in [live, dead] { try fm.createDirectory(at: f, withIntermediateDirectories: false) }
        try TrainerCheckpoint.writeFolderAtomically(root.appendingPathComponent("out")) { t in
            try Data("x".utf8).write(to: t.appendingPathComponent("f"))
        }
        #expect(fm.fileExists(atPath: live.path))
        #expect(!fm.fileExists(atPath: dead.path))
    }

    // MARK: D6 — --resume checks the data's content

    /// A checkpoint resumes with the same data, and refuses other data of the same size in one line; the hash
    /// is stored in trainer_state.json.
    @Test func resumeRefusesOtherDataOfTheSameSize() throws {
        let root = try CLI.workspace()
        defer { try? FileManager.default.removeItem(at: root) }
        let p = { (name: String) in root.appendingPathComponent(name).path }
        // Same lines and labels, one word changed everywhere.
        let text = try String(contentsOfFile: p("train.jsonl"), encoding: .utf8)
        try text.replacingOccurrences(of: "w60", with: "w70").write(toFile: p("other.jsonl"), atomically: true, encoding: .utf8)
        let common = ["train", "--model", p("model"), "--dev", p("dev.jsonl"), "--task", "t", "--epochs", "2", "--batch-size", "16",
                      "--threads", "1"]
        let first = try CLI.run(common + ["--train", p("train.jsonl"), "--checkpoint", p("ck"), "--out", p("o1")])
        #expect(first.status == 0, "\(first.stderr)")
        let state = try String(contentsOfFile: p("ck/trainer_state.json"), encoding: .utf8)
        #expect(state.contains("\"dataHash\""), "\(state.prefix(400))")
        let other = try CLI.run(common + ["--train", p("other.jsonl"), "--resume", p("ck"), "--out", p("o2")])
        #expect(Self.failedPlainly(other) && other.stderr.contains("trainer_state.json: checkpoint training data"), "\(other.stderr)")
        #expect(Self.oneErrorLine(other), "\(other.stderr)")
        #expect(!FileManager.default.fileExists(atPath: p("o2")))
        let same = try CLI.run(common + ["--train", p("train.jsonl"), "--resume", p("ck"), "--out", p("o3")])
        #expect(same.status == 0, "\(same.stderr)")
    }

    /// The hash covers texts, pairs, labels and targets.
    @Test func dataHashSeesEveryField() {
        let base = TextClassificationDataset(labels: ["n", "p"], examples: [TextExample(text: "a b", label: 0),
                                                                             TextExample(text: "c", textPair: "d", label: 1)], source: "x")
        let h = TrainerCheckpoint.dataHash(base, targets: [.classes([0, 1])])
        #expect(h.count == 16 && h == TrainerCheckpoint.dataHash(base, targets: [.classes([0, 1])]))
        var text = base
        text.examples[0].text = "a c"
        var pair = base
        pair.examples[1].textPair = nil
        var labels = base
        labels.labels = ["n", "q"]
        for d in [text, pair, labels] { #expect(TrainerCheckpoint.dataHash(d, targets: [.classes([0, 1])]) != h) }
        #expect(TrainerCheckpoint.dataHash(base, targets: [.values([0, 1])]) != h)
        #expect(TrainerCheckpoint.dataHash(base, targets: [.classes([1, 0])]) != h)
    }

    // MARK: D7 — --checkpoint and --out are separate folders

    @Test func checkpointMustDifferFromOut() throws {
        let root = try CLI.workspace()
        defer { try? FileManager.default.removeItem(at: root) }
        let p = { (name: String) in root.appendingPathComponent(name).path }
        let common = ["train", "--model", p("model"), "--train", p("train.jsonl"), "--dev", p("dev.jsonl"), "--task", "t",
                      "--epochs", "1", "--threads", "1", "--checkpoint-every", "1"]
        for (checkpoint, out, message) in [(p("same"), p("same"), "are the same folder"), (p("x/../same"), p("same/"), "are the same folder"),
                                           (p("o/ck"), p("o"), "one folder lies inside the other"),
                                           (p("ck"), p("ck/out"), "one folder lies inside the other")] {
            let r = try CLI.run(common + ["--checkpoint", checkpoint, "--out", out])
            #expect(Self.failedPlainly(r) && r.stderr.contains("--checkpoint \(checkpoint) and --out \(out)") && r.stderr.contains(message),
                    "\(r.stderr)")
            #expect(Self.oneErrorLine(r), "\(r.stderr)")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: root.path).sorted() == ["dev.jsonl", "model", "train.jsonl"])
    }

    // MARK: D8 — bench commands check the memory estimate

    @Test func benchRefusesBatchesAboveTheMemoryLimit() throws {
        for command in [["bench", "encoder", "--config", "minilm"], ["bench", "drop", "--config", "minilm", "--tasks", "1", "--drop", "0"],
                        ["bench", "fusion", "--config", "minilm", "--adapters", "2"]] {
            let r = try CLI.run(command + ["--batch", "100000", "--seq", "512", "--repetitions", "1", "--threads", "1", "--memory-limit", "8G"])
            #expect(Self.failedPlainly(r) && r.stderr.contains("estimated memory") && r.stderr.contains("exceeds the limit"), "\(command): \(r.stderr)")
            #expect(Self.oneErrorLine(r), "\(r.stderr)")
        }
    }

    /// A --drop/--tasks range of 10¹⁸ values is refused instead of materialised.
    @Test func benchRangeListsAreBounded() throws {
        let r = try CLI.run(["bench", "drop", "--config", "minilm", "--tasks", "1..1000000000000000000", "--threads", "1"])
        #expect(Self.failedPlainly(r) && r.stderr.contains("--tasks 1..1000000000000000000: at most 4096 values"), "\(r.stderr)")
    }

    // MARK: D9 — output paths are checked before the work

    @Test func unwritableOutputsFailUpFront() throws {
        let root = try CLI.workspace()
        defer { try? FileManager.default.removeItem(at: root) }
        let p = { (name: String) in root.appendingPathComponent(name).path }
        try FileManager.default.createDirectory(atPath: p("data/t"), withIntermediateDirectories: true)
        let demo = try CLI.run(["demo", "--quick", "--model", p("model"), "--data", p("data"), "--tasks", "t", "--results", "/proc/adapterdrop-x",
                                "--threads", "1", "--no-plots"])
        #expect(Self.failedPlainly(demo) && demo.stderr.contains("--results /proc/adapterdrop-x: cannot write in /proc"), "\(demo.stderr)")
        #expect(!demo.stderr.contains("Step 1") && Self.oneErrorLine(demo), "\(demo.stderr)")
        for option in ["--json", "--dump-output"] {
            let r = try CLI.run(["bench", "encoder", "--config", "minilm", "--batch", "1", "--seq", "8", "--repetitions", "1", "--warmup", "0",
                                 "--threads", "1", option, "/proc/adapterdrop-x.out"])
            #expect(Self.failedPlainly(r) && r.stderr.contains("\(option) /proc/adapterdrop-x.out: folder /proc is not writable"), "\(r.stderr)")
            #expect(!r.stdout.contains("ms/batch") && !r.stdout.contains("model:"), "timed before failing: \(r.stdout)")
            #expect(Self.oneErrorLine(r), "\(r.stderr)")
        }
    }

    // MARK: D10 — bench kernels --seconds bounded

    @Test func kernelSecondsAreBounded() throws {
        for seconds in ["1e308", "inf", "3601"] {
            let r = try CLI.run(["bench", "kernels", "--seconds", seconds, "--no-reference", "--threads", "1"])
            #expect(Self.failedPlainly(r) && r.stderr.contains("--seconds") && r.stderr.contains("at most 3600"), "\(seconds): \(r.stderr)")
            #expect(Self.oneErrorLine(r), "\(r.stderr)")
        }
    }

    // MARK: D11 — two heads may not share a name

    /// `fuse --task a` over adapters a and b (a's head is named a) is refused, naming --task and the folder; a head
    /// folder whose head is already loaded is refused by `loadHead` / `loadAdapter`, naming both files.
    @Test func duplicateHeadNamesAreErrors() throws {
        let root = try CLI.workspace()
        defer { try? FileManager.default.removeItem(at: root) }
        let p = { (name: String) in root.appendingPathComponent(name).path }
        let common = ["--model", p("model"), "--train", p("train.jsonl"), "--dev", p("dev.jsonl"), "--epochs", "1", "--batch-size", "32",
                      "--threads", "1"]
        for task in ["a", "b"] {
            let r = try CLI.run(["train"] + common + ["--task", task, "--out", p(task)])
            #expect(r.status == 0, "\(r.stderr)")
        }
        let fuse = try CLI.run(["fuse"] + common + ["--adapter", p("a"), "--adapter", p("b"), "--task", "a", "--out", p("f")])
        #expect(Self.failedPlainly(fuse) && fuse.stderr.contains("--task a collides with the head \"a\" of --adapter \(p("a"))"), "\(fuse.stderr)")
        #expect(Self.oneErrorLine(fuse), "\(fuse.stderr)")
        #expect(!FileManager.default.fileExists(atPath: p("f")))

        // b2: adapter b with a copy of a's head (named "a").
        let fm = FileManager.default
        try fm.copyItem(atPath: p("b"), toPath: p("b2"))
        for f in ["head_config.json", "model_head.safetensors"] {
            try fm.removeItem(atPath: p("b2/\(f)"))
            try fm.copyItem(atPath: p("a/\(f)"), toPath: p("b2/\(f)"))
        }
        var model = try AdapterModel.loading(modelFolder: p("model"), adapterFolders: [p("a")])
        let before = model.heads["a"]?.config.numLabels
        #expect {
            try model.loadHead(from: URL(fileURLWithPath: p("b2")))
        } throws: { error in
            guard case let AdapterError.duplicateHead(name, file, existing) = error else { return false }
            return name == "a" && file == p("b2/head_config.json") && existing == p("a/head_config.json")
                && "\(error)".contains("already loaded from \(p("a/head_config.json"))")
        }
        #expect(model.heads["a"]?.config.numLabels == before)
        // The same folder twice (e.g. --fusion F --head-folder F) is not a collision.
        try model.loadHead(from: URL(fileURLWithPath: p("a") + "/"))
        let twice = try AdapterModel.loading(modelFolder: p("model"), adapterFolders: [], headFolders: [p("a"), p("a/")])
        #expect(twice.heads.keys.sorted() == ["a"])
        // An adapter folder with another adapter name but a head named like a loaded head.
        #expect(throws: AdapterError.duplicateHead(name: "a", file: p("b2/head_config.json"), existing: p("a/head_config.json"))) {
            try model.loadAdapter(from: URL(fileURLWithPath: p("b2")))
        }
        #expect(model.adapters["b"] == nil)
    }
}

/// Trial 3 D13–D15: what `train --json` prints, eval's default --max-length, --skip-nonfinite runs that end in NaN.
@Suite struct TrialFix3TrainOutputTests {
    typealias CLI = TrainCommandTests

    /// D13: the compact --json line leaves the histories out (it printed them as empty arrays); the file keeps
    /// them. D14: train records max_length and eval uses it by default, reproducing train's dev metrics.
    @Test func jsonLineAndRecordedMaxLength() throws {
        let root = try CLI.workspace()
        defer { try? FileManager.default.removeItem(at: root) }
        let p = { (name: String) in root.appendingPathComponent(name).path }
        let t = try CLI.run(["train", "--model", p("model"), "--train", p("train.jsonl"), "--dev", p("dev.jsonl"), "--task", "t",
                             "--epochs", "2", "--batch-size", "8", "--max-length", "5", "--threads", "1", "--json", "--out", p("o")])
        #expect(t.status == 0, "\(t.stderr)")
        let line = try CLI.json(t.stdout)
        #expect(line["losses"] == nil && line["dropped_layers"] == nil, "\(t.stdout)")
        #expect(line["steps"] as? Int == 16 && line["max_length"] as? Int == 5, "\(t.stdout)")
        let file = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: p("o/training_result.json")))) as? [String: Any])
        #expect((file["losses"] as? [Any])?.count == 16 && (file["dropped_layers"] as? [Any])?.count == 16 && file["max_length"] as? Int == 5)
        let devLoss = try #require((line["dev"] as? [String: Any])?["loss"] as? Double)
        let eval = ["eval", "--model", p("model"), "--adapter", p("o"), "--data", p("dev.jsonl"), "--batch-size", "8", "--threads", "1", "--json"]
        let byDefault = try CLI.run(eval)
        #expect(byDefault.status == 0, "\(byDefault.stderr)")
        #expect(try CLI.json(byDefault.stdout)["loss"] as? Double == devLoss, "\(byDefault.stdout) vs \(t.stdout)")
        // The texts have up to 11 tokens: 512 sees all of them, so the loss differs from train's (5 tokens).
        let full = try CLI.run(eval + ["--max-length", "512"])
        #expect(full.status == 0, "\(full.stderr)")
        #expect(try CLI.json(full.stdout)["loss"] as? Double != devLoss, "\(full.stdout)")
    }

    /// D15: --skip-nonfinite with a run that only produces NaN warns with the count and fails without writing --out.
    @Test func skipNonFiniteRunEndingInNaNFails() throws {
        let root = try CLI.workspace()
        defer { try? FileManager.default.removeItem(at: root) }
        let p = { (name: String) in root.appendingPathComponent(name).path }
        let r = try CLI.run(["train", "--model", p("model"), "--train", p("train.jsonl"), "--dev", p("dev.jsonl"), "--task", "t",
                             "--epochs", "2", "--batch-size", "8", "--lr", "1e30", "--max-grad-norm", "0", "--skip-nonfinite",
                             "--threads", "1", "--out", p("o")])
        #expect(r.status != 0 && r.status < 128, "\(r.stderr)")
        #expect(r.stderr.contains("warning: --skip-nonfinite skipped") && r.stderr.contains("dev loss is nan"), "\(r.stderr)")
        #expect(TrialFixCLITests.oneErrorLine(r), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: p("o")))
    }
}

/// Trial 3 D12: `embed` and `predict` run --text/--input in batches of --batch-size (the whole file was one batch:
/// GBs and no output for large files); results equal the one-text runs, in input order.
@Suite struct TrialFix3BatchingTests {
    typealias CLI = TrainCommandTests

    static func rows(_ text: String) -> [[Float]] {
        text.split(separator: "\n").map { $0.split(separator: " ").compactMap { Float($0) } }
    }

    @Test func embedAndPredictRunInBatches() throws {
        let root = try CLI.workspace()
        defer { try? FileManager.default.removeItem(at: root) }
        let p = { (name: String) in root.appendingPathComponent(name).path }
        // Texts of different lengths (1…12 tokens with [CLS]/[SEP]), 7 of them: batches of 3, 3, 1.
        let texts = ["w10", "w11 w12 w13 w14 w15 w16 w17 w18 w19 w20", "w30 w31", "w40 w41 w42 w43 w44", "w50", "w60 w61 w62", "w70 w71 w72 w73 w74 w75"]
        let lines = texts.map { "{\"text\": \"\($0)\", \"label\": \"pos\"}" }
        try (lines.joined(separator: "\n") + "\n").write(toFile: p("in.jsonl"), atomically: true, encoding: .utf8)
        let embed = ["embed", "--model", p("model"), "--input", p("in.jsonl"), "--threads", "1"]
        let batched = try CLI.run(embed + ["--batch-size", "3"])
        #expect(batched.status == 0, "\(batched.stderr)")
        let got = Self.rows(batched.stdout)
        #expect(got.count == texts.count)
        for (i, t) in texts.enumerated() {
            let single = try CLI.run(["embed", "--model", p("model"), "--text", t, "--threads", "1"])
            let want = try #require(Self.rows(single.stdout).first)
            // Same row alone or in a padded batch: masked padding changes only the GEMM shapes (fp32 rounding).
            #expect(got.count > i && zip(got[i], want).allSatisfy { abs($0 - $1) <= 1e-5 } && got[i].count == want.count, "row \(i)")
        }
        let json = try CLI.run(embed + ["--batch-size", "2", "--json"])
        let order = json.stdout.split(separator: "\n").compactMap {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["text"] as? String
        }
        #expect(order == texts)
        let bad = try CLI.run(embed + ["--batch-size", "0"])
        #expect(bad.status != 0 && bad.stderr.contains("--batch-size must be at least 1"), "\(bad.stderr)")
        // A text beyond the 16 positions of tiny-bert is reported with its index in the file, not in its batch.
        let long = texts + [Array(repeating: "w20", count: 20).joined(separator: " ")]
        try (long.map { "{\"text\": \"\($0)\"}" }.joined(separator: "\n") + "\n").write(toFile: p("long.jsonl"), atomically: true, encoding: .utf8)
        let tooLong = try CLI.run(["embed", "--model", p("model"), "--input", p("long.jsonl"), "--batch-size", "3", "--threads", "1"])
        #expect(tooLong.status != 0 && tooLong.stderr.contains("input 7 has 22 tokens"), "\(tooLong.stderr)")
        #expect(tooLong.stdout.isEmpty, "printed before failing: \(tooLong.stdout)")

        // predict: the same logits with batches of 2 as with one batch.
        let t = try CLI.run(["train", "--model", p("model"), "--train", p("train.jsonl"), "--dev", p("dev.jsonl"), "--task", "a",
                             "--epochs", "1", "--batch-size", "32", "--threads", "1", "--out", p("a")])
        #expect(t.status == 0, "\(t.stderr)")
        let predict = ["predict", "--model", p("model"), "--adapter", p("a"), "--setup", "a", "--input", p("in.jsonl"), "--threads", "1", "--json"]
        let one = try CLI.run(predict + ["--batch-size", "32"]), two = try CLI.run(predict + ["--batch-size", "2"])
        #expect(one.status == 0 && two.status == 0, "\(one.stderr) \(two.stderr)")
        func logits(_ r: TrainCommandTests.Run) throws -> [[Double]] {
            let heads = try #require(try CLI.json(r.stdout)["heads"] as? [[String: Any]])
            return try #require(heads.first?["logits"] as? [[Double]])
        }
        let a = try logits(one), b = try logits(two)
        #expect(a.count == texts.count && b.count == texts.count)
        #expect(zip(a, b).allSatisfy { zip($0, $1).allSatisfy { abs($0 - $1) <= 1e-5 } }, "\(a) vs \(b)")
    }
}

/// Trial 3 D15 addendum: predict and eval refuse non-finite logits from finite but huge weights (they printed the
/// label of index 0 and metrics computed from NaN).
@Suite struct TrialFix3NonFiniteOutputTests {
    typealias CLI = TrainCommandTests

    @Test func hugeHeadWeightsGiveAnErrorNotALabel() throws {
        let root = try CLI.workspace()
        defer { try? FileManager.default.removeItem(at: root) }
        let p = { (name: String) in root.appendingPathComponent(name).path }
        let t = try CLI.run(["train", "--model", p("model"), "--train", p("train.jsonl"), "--dev", p("dev.jsonl"), "--task", "a",
                             "--epochs", "1", "--batch-size", "32", "--threads", "1", "--out", p("a")])
        #expect(t.status == 0, "\(t.stderr)")
        // Finite weights (so the load-time NaN/Inf check passes) whose logits overflow: the first linear layer gives
        // tanh(10) ≈ 1 in every unit (weight 0, bias 10), the last sums those with weights 3.4e38 → +Inf.
        let url = URL(fileURLWithPath: p("a/model_head.safetensors"))
        let file = try SafetensorsFile(url: url)
        let layers = Set(file.tensors.keys.compactMap { $0.split(separator: ".").dropLast().last.flatMap { Int($0) } })
        try #require(layers.count == 2, "\(file.tensors.keys)")
        var writer = SafetensorsWriter(metadata: file.metadata)
        for name in file.tensors.keys.sorted() {
            let values = try file.floats(name), first = name.contains(".\(layers.min()!).")
            let value: Float = name.hasSuffix("weight") ? (first ? 0 : .greatestFiniteMagnitude) : (first ? 10 : 0)
            try writer.add(name, shape: file.tensors[name]!.shape, floats: values.map { _ in value })
        }
        try writer.write(to: url)
        let predict = try CLI.run(["predict", "--model", p("model"), "--adapter", p("a"), "--setup", "a", "--text", "w10 w11", "--threads", "1"])
        #expect(predict.status != 0 && predict.stderr.contains("head a: the logits of input 0 are not finite"), "\(predict.stdout) \(predict.stderr)")
        #expect(predict.stdout.isEmpty && TrialFixCLITests.oneErrorLine(predict), "\(predict.stdout) \(predict.stderr)")
        let eval = try CLI.run(["eval", "--model", p("model"), "--adapter", p("a"), "--data", p("dev.jsonl"), "--threads", "1"])
        #expect(eval.status != 0 && eval.stderr.contains("--adapter \(p("a")): the loss on \(p("dev.jsonl")) is"), "\(eval.stdout) \(eval.stderr)")
        #expect(eval.stdout.isEmpty && TrialFixCLITests.oneErrorLine(eval), "\(eval.stdout) \(eval.stderr)")
    }
}

/// Trial 3 L17: `--threads` beyond 1024 is refused naming --threads (it became an "estimated memory" error blaming
/// batch and sequence length, and each worker is a real thread now).
@Test func trialFix3ThreadsAreBounded() throws {
    let root = try TrainCommandTests.workspace()
    defer { try? FileManager.default.removeItem(at: root) }
    for threads in ["9223372036854775807", "100000"] {
        let r = try TrainCommandTests.run(["embed", "--model", root.appendingPathComponent("model").path, "--text", "w10", "--threads", threads])
        #expect(r.status != 0 && r.stderr.contains("--threads \(threads): at most 1024"), "\(r.stderr)")
        #expect(TrialFixCLITests.oneErrorLine(r), "\(r.stderr)")
    }
}

/// Trial 3 L1, L2, L3, L6, L13: range syntax, duplicate --labels, drop beyond the layer count, the memory estimate
/// uses min(batch size, examples), duplicate demo --specialized.
@Test func trialFix3LowSeverityMessages() throws {
    let root = try TrainCommandTests.workspace()
    defer { try? FileManager.default.removeItem(at: root) }
    let p = { (name: String) in root.appendingPathComponent(name).path }
    let ok = TrialFixCLITests.oneErrorLine
    // L1: LO...HI parsed like LO..HI (minilm has 6 layers: 0...6 is out of range, and said so).
    let dots = try TrainCommandTests.run(["bench", "drop", "--config", "minilm", "--drop", "0...6", "--threads", "1"])
    #expect(dots.status != 0 && dots.stderr.contains("--drop: each value must be in 0..<6"), "\(dots.stderr)")
    let reversed = try TrainCommandTests.run(["bench", "drop", "--config", "minilm", "--drop", "3..1", "--threads", "1"])
    #expect(reversed.status != 0 && reversed.stderr.contains("--drop 3..1: LO must be ≤ HI"), "\(reversed.stderr)")
    let train = ["train", "--model", p("model"), "--train", p("train.jsonl"), "--dev", p("dev.jsonl"), "--task", "t", "--epochs", "1",
                 "--threads", "1", "--out", p("o")]
    // L2
    let labels = try TrainCommandTests.run(train + ["--labels", "neg,pos,neg"])
    #expect(labels.status != 0 && labels.stderr.contains("--labels: label \"neg\" is given twice") && ok(labels), "\(labels.stderr)")
    // L3 (tiny-bert has 2 layers)
    let drop = try TrainCommandTests.run(train + ["--drop", "3"])
    #expect(drop.status != 0 && drop.stderr.contains("--drop 3: the model has 2 layers (n in 0...2)") && ok(drop), "\(drop.stderr)")
    let robust = try TrainCommandTests.run(train + ["--robust-drop", "0...99"])
    #expect(robust.status != 0 && robust.stderr.contains("--robust-drop 0...99: the model has 2 layers") && ok(robust), "\(robust.stderr)")
    // L6: --batch-size 10⁹ on 64 examples trains (the estimate uses 64).
    let big = try TrainCommandTests.run(train + ["--batch-size", "1000000000", "--memory-limit", "1G"])
    #expect(big.status == 0, "\(big.stderr)")
    let eval = try TrainCommandTests.run(["eval", "--model", p("model"), "--adapter", p("o"), "--data", p("dev.jsonl"), "--batch-size", "1000000000",
                                          "--memory-limit", "1G", "--threads", "1"])
    #expect(eval.status == 0, "\(eval.stderr)")
    // L13
    let demo = try TrainCommandTests.run(["demo", "--quick", "--model", p("model"), "--data", root.path, "--tasks", "none", "--results", p("r"),
                                          "--specialized", "1,1", "--threads", "1", "--no-plots"])
    #expect(demo.status != 0 && demo.stderr.contains("--specialized 1,1: n = 1 is given twice") && ok(demo), "\(demo.stderr)")
}

/// Trial 3 L19, L21: a regression label beyond fp32 says so (it said "must be a finite number" for 1e308); a
/// multi-label example naming a label twice is refused.
@Test func trialFix3LabelValues() throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("trialfix3-labels-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: root) }
    let reg = root.appendingPathComponent("reg.jsonl").path, ml = root.appendingPathComponent("ml.jsonl").path
    try "{\"text\": \"a\", \"label\": 1.5}\n{\"text\": \"b\", \"label\": 1e308}\n".write(toFile: reg, atomically: true, encoding: .utf8)
    try "{\"text\": \"a\", \"label\": [\"x\"]}\n{\"text\": \"b\", \"label\": [\"tech\", \"tech\"]}\n".write(toFile: ml, atomically: true, encoding: .utf8)
    #expect {
        _ = try TrainingTargets.load(contentsOf: reg, kind: .regression, labels: nil)
    } throws: { "\($0)".contains("reg.jsonl:2") && "\($0)".contains("within the fp32 range") && "\($0)".contains("1e+308") }
    #expect {
        _ = try TrainingTargets.load(contentsOf: ml, kind: .multiLabel, labels: nil)
    } throws: { "\($0)".contains("ml.jsonl:2") && "\($0)".contains("distinct label names") && "\($0)".contains("\"tech\" twice") }
}

/// Trial 3 L11: `bench encoder --seq 513` names --seq with the bench encoder usage, not the top-level one.
@Test func trialFix3BenchEncoderSeqUsage() throws {
    let r = try TrainCommandTests.run(["bench", "encoder", "--config", "minilm", "--seq", "513", "--threads", "1"])
    #expect(r.status != 0 && r.stderr.contains("--seq 513 exceeds the model's maximum 512"), "\(r.stderr)")
    #expect(!r.stderr.contains("adapterdrop <subcommand>") && TrialFixCLITests.oneErrorLine(r), "\(r.stderr)")
}

// Reliability: SIGKILL during training checkpoints (issue #7, "Nothing lost"). The built `adapterdrop train`
// runs on tiny-bert with a checkpoint after every optimizer step (`--checkpoint-every 1`, the folder replaced by
// `TrainerCheckpoint.writeFolderAtomically`); it is killed at a random moment, again and again, each run
// resuming from the checkpoint the previous kill left. After every kill the checkpoint folder must be one
// complete save (exactly its two files, agreeing on the step), and at the end the run resumed from the
// survivor must finish with exactly the losses of an uninterrupted run (the trainer resumes bit for bit).
//
// Kills: RELIABILITY_CHECKPOINT_KILLS (default 8, a few seconds; docs/reliability.md records the 100-kill
// measurement: `RELIABILITY_CHECKPOINT_KILLS=100 swift test --skip-build --filter ReliabilityCheckpointKillTests`).
import AdapterCore
@testable import AdapterDrop
import Foundation
import TestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("Reliability: SIGKILL during training checkpoints", .serialized)
struct ReliabilityCheckpointKillTests {
    static var kills: Int {
        ProcessInfo.processInfo.environment["RELIABILITY_CHECKPOINT_KILLS"].flatMap { Int($0) }.map { max($0, 1) } ?? 8
    }

    /// The losses in `folder/training_result.json`.
    static func losses(_ folder: URL) throws -> [Float] {
        let data = try Data(contentsOf: folder.appendingPathComponent("training_result.json"))
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let values = try #require(object["losses"] as? [Any])
        return values.map { ($0 as? NSNumber)?.floatValue ?? .nan }
    }

    @Test func killsDuringCheckpointingLeaveAResumableCheckpoint() throws {
        let root = try TrainCommandTests.workspace()
        defer { try? FileManager.default.removeItem(at: root) }
        let p = { (name: String) in root.appendingPathComponent(name).path }
        // 8 steps per epoch × 40 epochs = 320 steps; a checkpoint after each.
        let base = ["train", "--model", p("model"), "--train", p("train.jsonl"), "--dev", p("dev.jsonl"), "--task", "k",
                    "--epochs", "40", "--batch-size", "8", "--reduction-factor", "4", "--threads", "1"]
        let args = base + ["--checkpoint", p("ck"), "--checkpoint-every", "1"]
        // The reference: the same run, never interrupted.
        let start = Date()
        let reference = try TrainCommandTests.run(base + ["--out", p("reference"), "--json"])
        #expect(reference.status == 0, "\(reference.stderr)")
        let runSeconds = Date().timeIntervalSince(start)

        var rng = TestRNG(seed: 2026)
        var steps: [Int] = []
        var midSave = 0, finishedBeforeKill = 0
        let kills = Self.kills
        for trial in 0..<kills {
            let process = Process()
            process.executableURL = try TrainCommandTests.binary()
            // Every run after the first resumes from what the previous kill left.
            let resume = FileManager.default.fileExists(atPath: p("ck")) ? ["--resume", p("ck")] : []
            process.arguments = args + resume + ["--out", p("out")]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            // Kill 0.2–2.2 s in (past startup and model load, into the steps): every run makes some progress,
            // so the kills fall all along the 320 steps; a run that reaches the end starts over (below).
            let delay = 0.2 + Double(rng.next() % 1000) / 1000 * min(2, max(0.3, runSeconds / 2))
            usleep(UInt32(delay * 1e6))
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            if process.terminationReason == .exit {
                // Finished before the kill (a resumed run near the end): start over so later kills still land.
                finishedBeforeKill += 1
                try? FileManager.default.removeItem(atPath: p("ck"))
                try? FileManager.default.removeItem(atPath: p("out"))
                continue
            }
            // A temporary sibling (`.ck.tmp-<pid>`) means the kill landed inside a checkpoint save.
            let siblings = try FileManager.default.contentsOfDirectory(atPath: root.path)
            if siblings.contains(where: { $0.hasPrefix(".ck.") }) { midSave += 1 }
            #expect(!FileManager.default.fileExists(atPath: p("out")), "trial \(trial): --out written by a killed run")
            guard FileManager.default.fileExists(atPath: p("ck")) else { continue }  // killed before the first save
            let files = try FileManager.default.contentsOfDirectory(atPath: p("ck"))
            #expect(Set(files) == [TrainerCheckpoint.stateFile, TrainerCheckpoint.tensorFile], "trial \(trial): checkpoint folder holds \(files)")
            let state = try JSONDecoder().decode(TrainerCheckpoint.State.self,
                                                 from: Data(contentsOf: root.appendingPathComponent("ck/\(TrainerCheckpoint.stateFile)")))
            let tensors = try SafetensorsFile(url: root.appendingPathComponent("ck/\(TrainerCheckpoint.tensorFile)"))
            #expect(tensors.metadata["step"] == "\(state.step)" && state.lossBits.count == state.step,
                    "trial \(trial): state step \(state.step), tensors step \(tensors.metadata["step"] ?? "none")")
            steps.append(state.step)
        }
        print("checkpoint kills: \(kills) SIGKILLs, \(midSave) inside a checkpoint save, \(finishedBeforeKill) runs finished "
              + "before their kill, checkpoint steps after each kill \(steps), uninterrupted run \(String(format: "%.2f", runSeconds)) s")
        #expect(steps.count >= kills / 2, "too few kills left a checkpoint: \(steps.count) of \(kills)")
        // Resume from the survivor: the run finishes with exactly the uninterrupted run's losses.
        if FileManager.default.fileExists(atPath: p("ck")) {
            let resumed = try TrainCommandTests.run(args + ["--resume", p("ck"), "--out", p("final"), "--json"])
            #expect(resumed.status == 0, "\(resumed.stderr)")
            let a = try Self.losses(root.appendingPathComponent("final")), b = try Self.losses(root.appendingPathComponent("reference"))
            #expect(a.count == 320 && a.map(\.bitPattern) == b.map(\.bitPattern), "resumed losses differ from the uninterrupted run")
        }
    }
}

// Reliability: saving is crash-safe. A forked child saves two versions of a safetensors file and of an
// AdapterHub adapter folder in turn, forever; the parent SIGKILLs it at a random moment, 100 times, and checks
// after each kill that every file is byte-for-byte the complete old or the complete new version, and that
// orphaned temporary files (a kill between open and rename) are cleaned by the next save, and that the adapter
// folder's two files always belong to the same version (the folder is swapped as a whole, AtomicFolder.swift)
// (docs/reliability.md, "Crash-safe saving").
import AdapterCore
@testable import AdapterDrop
import Foundation
import TestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// FNV-1a 64 of a file's bytes (nil when absent): enough to tell two known versions and a torn write apart.
private func checksum(_ url: URL) -> UInt64? {
    guard let data = FileManager.default.contents(atPath: url.path) else { return nil }
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in data { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
    return h
}

/// Names of leftover temporary files (`.name.<…>.tmp`) in a folder.
private func temporaryFiles(in folder: URL) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).filter { $0.hasPrefix(".") && $0.hasSuffix(".tmp") }
}

/// Forks a child that saves version 1, 0, 1, … with `save` until it is killed (no test machinery runs in the child,
/// only the writers; a failed save exits with status 3). Returns the child's pid, or a value ≤ 0 if `fork` failed.
private func forkAlternatingSaver(_ save: (Int) throws -> Void) -> pid_t {
    let pid = fork()
    if pid == 0 {
        var v = 1
        while true {
            do { try save(v) } catch { _exit(3) }
            v ^= 1
        }
    }
    return pid
}

/// The two versions the child alternates between.
private struct SaveVersions {
    let writers: [SafetensorsWriter]     // big file: 2 versions (4 MiB of f32 each, so kills land mid-write)
    let adapters: [BottleneckAdapter]    // adapter folder: 2 versions (different weights and config)
    let model = ModelDescription(hiddenSize: 32, numLayers: 2, modelType: "bert", modelName: "tiny-bert")

    init() throws {
        var writers: [SafetensorsWriter] = []
        var adapters: [BottleneckAdapter] = []
        for v in 0..<2 {
            var w = SafetensorsWriter(metadata: ["format": "pt", "version": "\(v)"])
            try w.add("weight", shape: [1024, 1024], floats: [Float](repeating: Float(v + 1), count: 1024 * 1024))
            writers.append(w)
            let config = try BottleneckConfig.preset("seq_bn", overrides: ["reduction_factor": .int(v == 0 ? 16 : 8)])
            adapters.append(try BottleneckAdapter(name: "a", config: config, hiddenSize: 32, numLayers: 2, seed: UInt64(v)))
        }
        self.writers = writers
        self.adapters = adapters
    }

    func save(_ v: Int, folder: URL) throws {
        try writers[v].write(to: folder.appendingPathComponent("model.safetensors"))
        try adapters[v].save(to: folder.appendingPathComponent("adapter"), model: model)
    }
}

@Suite("Reliability: crash-safe saving", .serialized)
struct ReliabilityCrashSafetyTests {
    @Test func sigkillDuringSavesLeavesOldOrNewFiles() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("adapterdrop-crash-\(getpid())")
        try? FileManager.default.removeItem(at: folder)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let versions = try SaveVersions()
        let files = ["model.safetensors", "adapter/adapter.safetensors", "adapter/adapter_config.json"]
        // Checksums of each file's two complete versions (a save of version 1, then 0, which stays in place).
        var known: [String: Set<UInt64>] = [:]
        var pairs: Set<[UInt64?]> = []  // (adapter.safetensors, adapter_config.json) of one version
        let start = Date()
        for v in [1, 0] {
            try versions.save(v, folder: folder)
            for f in files { known[f, default: []].insert(checksum(folder.appendingPathComponent(f))!) }
            pairs.insert([checksum(folder.appendingPathComponent(files[1])), checksum(folder.appendingPathComponent(files[2]))])
        }
        let cycle = Date().timeIntervalSince(start) / 2  // one save of every file, in seconds
        for f in files { #expect(known[f]!.count == 2, "\(f): the two versions must differ") }

        var rng = TestRNG(seed: 42)
        var killedMidWrite = 0, changes = 0, mixedFolders = 0, betweenRenames = 0
        var lastState = files.map { checksum(folder.appendingPathComponent($0)) }
        var maxOrphans = 0
        for round in 0..<100 {
            let pid = forkAlternatingSaver { try versions.save($0, folder: folder) }
            #expect(pid > 0, "fork failed: errno \(errno)")
            guard pid > 0 else { return }
            // Kill somewhere within the first ~3 save cycles (at least 50 µs in).
            let delay = 50e-6 + Double(rng.next() % 1000) / 1000 * 3 * cycle
            usleep(UInt32(delay * 1e6))
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
            // Killed by our signal, not exited on its own (an _exit(3) would mean a save threw).
            #expect(status & 0x7f == SIGKILL, "round \(round): child status \(status)")

            // Count temporaries before a load's recovery touches them.
            let orphans = temporaryFiles(in: folder).count + temporaryFiles(in: folder.appendingPathComponent("adapter")).count
            // A kill between the two renames of the folder swap leaves no adapter folder; loading recovers it
            // (rolls the complete staging folder forward), as every loader does before reading.
            let adapterFolder = folder.appendingPathComponent("adapter")
            if !FileManager.default.fileExists(atPath: adapterFolder.path) { betweenRenames += 1 }
            recoverInterruptedFolderSave(adapterFolder)
            let state = files.map { checksum(folder.appendingPathComponent($0)) }
            for (f, c) in zip(files, state) {
                #expect(c != nil && known[f]!.contains(c!), "round \(round): \(f) is neither complete version")
            }
            if state != lastState { changes += 1 }
            lastState = state
            // The adapter folder is saved as a whole: its two files must be of the same version.
            if !pairs.contains([state[1], state[2]]) { mixedFolders += 1 }
            if orphans > 0 { killedMidWrite += 1 }
            maxOrphans = max(maxOrphans, orphans)
        }
        print("crash-safe saving: 100 SIGKILLs, \(killedMidWrite) left a temporary file (killed mid-save), "
              + "\(changes) changed the files, max \(maxOrphans) temporary files present after a kill, "
              + "\(mixedFolders) adapter folders mixed versions, \(betweenRenames) kills between the folder renames "
              + "(recovered), save cycle \(Int(cycle * 1e3)) ms")
        #expect(mixedFolders == 0, "adapter folders mixing the old and new files: \(mixedFolders)")
        // The test only means something if kills landed both mid-write and between saves.
        #expect(killedMidWrite >= 10, "too few kills landed mid-save: \(killedMidWrite)")
        #expect(changes >= 10, "the child made too little progress: \(changes) changes")
        // Orphans do not pile up: a kill leaves at most one per file, and the next save removes them.
        #expect(maxOrphans <= files.count, "temporary files pile up: \(maxOrphans)")
        try versions.save(0, folder: folder)
        #expect(temporaryFiles(in: folder).isEmpty && temporaryFiles(in: folder.appendingPathComponent("adapter")).isEmpty,
                "temporary files left after a clean save: \(temporaryFiles(in: folder)) \(temporaryFiles(in: folder.appendingPathComponent("adapter")))")
    }
}

/// Two versions of a folder of several artefacts (a pruned fusion's layout: `fusion/`, `a/` with its head, `b/`),
/// saved as one step with `saveFoldersAtomically`.
private struct TreeVersions {
    let adapters: [[BottleneckAdapter]]  // [version][a, b]
    let heads: [PredictionHead]
    let model = ModelDescription(hiddenSize: 32, numLayers: 2, modelType: "bert", modelName: "tiny-bert")
    static let files = ["a/adapter.safetensors", "a/adapter_config.json", "a/head_config.json", "a/model_head.safetensors",
                        "b/adapter.safetensors", "b/adapter_config.json", "notes.txt"]

    init() throws {
        var adapters: [[BottleneckAdapter]] = []
        var heads: [PredictionHead] = []
        for v in 0..<2 {
            let config = try BottleneckConfig.preset("seq_bn", overrides: ["reduction_factor": .int(v == 0 ? 16 : 8)])
            adapters.append(try ["a", "b"].enumerated().map { i, name in
                try BottleneckAdapter(name: name, config: config, hiddenSize: 32, numLayers: 2, seed: UInt64(10 * v + i))
            })
            heads.append(PredictionHead(name: "a", config: .classification(numLabels: 2 + v), hiddenSize: 32, seed: UInt64(v)))
        }
        self.adapters = adapters
        self.heads = heads
    }

    func save(_ v: Int, folder: URL) throws {
        try saveFoldersAtomically(folder) { staging in
            for a in adapters[v] { try a.save(to: staging.appendingPathComponent(a.name), model: model) }
            try heads[v].save(to: staging.appendingPathComponent("a"), model: model)
            try atomicWrite(path: staging.appendingPathComponent("notes.txt").path) { emit in
                try Array("version \(v)\n".utf8).withUnsafeBytes { try emit($0) }
            }
        }
    }
}

/// Checksums of every file of a tree (relative path → FNV-1a), after recovering an interrupted save of it.
private func treeState(_ folder: URL) -> [String: UInt64] {
    recoverInterruptedFolderSave(folder)
    var state: [String: UInt64] = [:]
    let walker = FileManager.default.enumerator(atPath: folder.path)
    while let entry = walker?.nextObject() as? String {
        if let c = checksum(folder.appendingPathComponent(entry)) { state[entry] = c }
    }
    return state
}

@Suite("Reliability: crash-safe multi-folder saves", .serialized)
struct ReliabilityMultiFolderCrashTests {
    /// A pruned fusion folder (fusion + adapters + heads, several subfolders) used to be saved subfolder by
    /// subfolder, so a kill could leave a new adapter `a` beside an old `b`. Now the tree is swapped as a whole:
    /// SIGKILLs at random moments (RELIABILITY_TREE_KILLS, default 40; docs/reliability.md records 100), and after
    /// each the tree is exactly one of its two complete versions.
    @Test func sigkillDuringMultiFolderSavesLeavesOneVersion() throws {
        let rounds = ProcessInfo.processInfo.environment["RELIABILITY_TREE_KILLS"].flatMap { Int($0) }.map { max($0, 10) } ?? 40
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("adapterdrop-tree-crash-\(getpid())")
        try? FileManager.default.removeItem(at: root)
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: root) }
        let folder = root.appendingPathComponent("pruned")
        let versions = try TreeVersions()
        var known: [[String: UInt64]] = []
        let start = Date()
        for v in [1, 0] {
            try versions.save(v, folder: folder)
            known.append(treeState(folder))
        }
        let cycle = Date().timeIntervalSince(start) / 2
        #expect(Set(known[0].keys) == Set(TreeVersions.files) && Set(known[1].keys) == Set(TreeVersions.files), "\(known[0].keys.sorted())")
        for f in TreeVersions.files { #expect(known[0][f] != known[1][f], "\(f): the two versions must differ") }

        var rng = TestRNG(seed: 7)
        var mixed = 0, changes = 0, leftovers = 0, parentMissing = 0
        var last = known[1]
        for round in 0..<rounds {
            let pid = forkAlternatingSaver { try versions.save($0, folder: folder) }
            #expect(pid > 0, "fork failed: errno \(errno)")
            guard pid > 0 else { return }
            usleep(UInt32((50e-6 + Double(rng.next() % 1000) / 1000 * 3 * cycle) * 1e6))
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
            #expect(status & 0x7f == SIGKILL, "round \(round): child status \(status)")
            let entries = (try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? []
            if entries.contains(where: { $0.hasSuffix(".tmp") }) { leftovers += 1 }
            if !entries.contains("pruned") { parentMissing += 1 }
            // A load of one subfolder alone recovers the tree (a kill between the renames left no `pruned`).
            let loaded = try BottleneckAdapter(folder: folder.appendingPathComponent("b"), model: versions.model)
            let state = treeState(folder)
            if state != known[0] && state != known[1] { mixed += 1 }
            if state != last { changes += 1 }
            last = state
            #expect([16, 8].contains(loaded.config.json["reduction_factor"]?.intValue ?? 0))
        }
        print("crash-safe multi-folder saves: \(rounds) SIGKILLs, \(mixed) trees mixing versions, \(changes) changed the tree, "
              + "\(leftovers) left a staging/backup folder (killed mid-save), \(parentMissing) between the renames "
              + "(recovered by the load), save cycle \(Int(cycle * 1e3)) ms")
        #expect(mixed == 0, "trees mixing the old and new version: \(mixed)")
        #expect(leftovers >= rounds / 10, "too few kills landed mid-save: \(leftovers)")
        #expect(changes >= rounds / 20, "the child made too little progress: \(changes) changes")
        try versions.save(0, folder: folder)
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? []) == ["pruned"])
    }
}

/// Regression test for orphaned temporary files: before the fix every killed save left a
/// `.name.<random>.tmp` behind forever. Now the name carries the writer's pid and the next save removes the
/// files of dead writers only.
@Suite("Reliability: orphaned temporary files")
struct ReliabilityOrphanTests {
    @Test func nextSaveRemovesTemporaryFilesOfDeadWritersOnly() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("adapterdrop-orphans-\(getpid())")
        try? FileManager.default.removeItem(at: folder)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        // A pid that surely is dead: a child that exited and was reaped.
        let dead = fork()
        if dead == 0 { _exit(0) }
        var status: Int32 = 0
        waitpid(dead, &status, 0)
        let orphan = ".w.safetensors.\(dead)-beef.tmp"
        let live = ".w.safetensors.\(getppid())-cafe.tmp"       // a live process: must be kept
        let other = ".other.safetensors.\(dead)-beef.tmp"        // another file's: not this save's business
        for name in [orphan, live, other] {
            #expect(FileManager.default.createFile(atPath: folder.appendingPathComponent(name).path, contents: Data([1])))
        }
        var w = SafetensorsWriter()
        try w.add("x", shape: [1], floats: [1])
        try w.write(to: folder.appendingPathComponent("w.safetensors"))
        let left = Set(try FileManager.default.contentsOfDirectory(atPath: folder.path))
        #expect(left == ["w.safetensors", live, other])
    }
}

// Reliability: adapter, head and fusion folders are saved as a whole (AtomicFolder.swift). These tests put the
// folder into each state a killed save can leave (docs/reliability.md, "Crash-safe saving") and check that a
// load sees one complete version, that the next save cleans up, and that files of other artefacts in the same
// folder survive a save. The random-kill version is ReliabilityCrashSafetyTests.
import AdapterCore
@testable import AdapterDrop
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The pid of a process that has exited and been reaped (so `kill(pid, 0)` fails with ESRCH).
private func deadPid() -> Int32 {
    let pid = fork()
    if pid == 0 { _exit(0) }
    var status: Int32 = 0
    waitpid(pid, &status, 0)
    return pid
}

private func scratch(_ name: String) throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("adapterdrop-\(name)-\(getpid())")
    try? FileManager.default.removeItem(at: url)
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

private func entries(_ folder: URL) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).sorted()
}

@Suite("Reliability: atomic folder saves", .serialized)
struct ReliabilityFolderSaveTests {
    let model = ModelDescription(hiddenSize: 32, numLayers: 2, modelType: "bert", modelName: "tiny-bert")

    func adapter(_ reductionFactor: Int, seed: UInt64) throws -> BottleneckAdapter {
        let config = try BottleneckConfig.preset("seq_bn", overrides: ["reduction_factor": .int(reductionFactor)])
        return try BottleneckAdapter(name: "a", config: config, hiddenSize: 32, numLayers: 2, seed: seed)
    }

    /// A kill between `rename(folder, backup)` and `rename(staging, folder)`: the load rolls the staging
    /// folder (complete) forward and removes the backup.
    @Test func loadRecoversAKillBetweenTheRenames() throws {
        let root = try scratch("folder-swap")
        defer { try? FileManager.default.removeItem(at: root) }
        let folder = root.appendingPathComponent("adapter")
        try adapter(16, seed: 1).save(to: folder, model: model)
        // Simulate the killed writer: staging holds the new version, the old folder is the backup.
        let id = "\(deadPid())-beef"
        let staging = root.appendingPathComponent(FolderSaveNames.staging("adapter", id))
        try adapter(8, seed: 2).save(to: staging, model: model)
        #expect(rename(folder.path, root.appendingPathComponent(FolderSaveNames.backup("adapter", id)).path) == 0)
        #expect(!FileManager.default.fileExists(atPath: folder.path))

        let loaded = try BottleneckAdapter(folder: folder, model: model)
        #expect(loaded.config.json["reduction_factor"]?.intValue == 8, "the complete new version is rolled forward")
        #expect(entries(root) == ["adapter"], "staging and backup are gone: \(entries(root))")
    }

    /// A kill between the renames with only the backup left (no staging): the old version is put back.
    @Test func loadRollsBackWhenOnlyTheBackupExists() throws {
        let root = try scratch("folder-rollback")
        defer { try? FileManager.default.removeItem(at: root) }
        let folder = root.appendingPathComponent("adapter")
        try adapter(16, seed: 1).save(to: folder, model: model)
        let backup = root.appendingPathComponent(FolderSaveNames.backup("adapter", "\(deadPid())-1"))
        #expect(rename(folder.path, backup.path) == 0)
        let loaded = try BottleneckAdapter(folder: folder, model: model)
        #expect(loaded.config.json["reduction_factor"]?.intValue == 16)
        #expect(entries(root) == ["adapter"])
    }

    /// A kill while the staging folder was being written (folder untouched) or after the swap but before the
    /// backup's removal: the next save removes the leftovers; a live writer's folders are kept.
    @Test func nextSaveRemovesLeftoversOfDeadWritersOnly() throws {
        let root = try scratch("folder-leftovers")
        defer { try? FileManager.default.removeItem(at: root) }
        let folder = root.appendingPathComponent("adapter")
        try adapter(16, seed: 1).save(to: folder, model: model)
        let dead = deadPid()
        let halfWritten = root.appendingPathComponent(FolderSaveNames.staging("adapter", "\(dead)-a1"))
        let oldBackup = root.appendingPathComponent(FolderSaveNames.backup("adapter", "\(dead)-b2"))
        let live = root.appendingPathComponent(FolderSaveNames.staging("adapter", "\(getppid())-c3"))
        for f in [halfWritten, oldBackup, live] { try FileManager.default.createDirectory(at: f, withIntermediateDirectories: false) }
        try Data([1, 2, 3]).write(to: halfWritten.appendingPathComponent(AdapterFiles.adapterWeights))

        try adapter(8, seed: 2).save(to: folder, model: model)
        #expect(entries(root) == [live.lastPathComponent, "adapter"].sorted(), "\(entries(root))")
        #expect(try BottleneckAdapter(folder: folder, model: model).config.json["reduction_factor"]?.intValue == 8)
    }

    /// Saving an adapter into a folder that already holds a head (and another file) keeps them; saving the
    /// head again keeps the adapter. `AdapterModel.saveAdapter(withHead:)` swaps all four files at once.
    @Test func otherFilesInTheFolderSurviveASave() throws {
        let root = try scratch("folder-keep")
        defer { try? FileManager.default.removeItem(at: root) }
        let folder = root.appendingPathComponent("a")
        let head = PredictionHead(name: "a", config: .classification(numLabels: 3), hiddenSize: 32, seed: 3)
        try head.save(to: folder, model: model)
        try Data("notes".utf8).write(to: folder.appendingPathComponent("README.md"))
        try adapter(16, seed: 1).save(to: folder, model: model)
        #expect(entries(folder) == ["README.md", AdapterFiles.adapterConfig, AdapterFiles.adapterWeights,
                                    AdapterFiles.headConfig, AdapterFiles.headWeights].sorted())
        try head.save(to: folder, model: model)
        #expect(try BottleneckAdapter(folder: folder, model: model).config.json["reduction_factor"]?.intValue == 16)
        #expect(try PredictionHead(folder: folder, model: model).config.numLabels == 3)
        #expect(entries(root) == ["a"], "no staging or backup folder left: \(entries(root))")
    }

    /// A path that is a file is not replaced by a folder.
    @Test func savingOverAFileThrows() throws {
        let root = try scratch("folder-file")
        defer { try? FileManager.default.removeItem(at: root) }
        let path = root.appendingPathComponent("adapter")
        try Data([0]).write(to: path)
        #expect(throws: SafetensorsWriterError.self) { try adapter(16, seed: 1).save(to: path, model: model) }
        #expect(FileManager.default.contents(atPath: path.path) == Data([0]))
    }
}

// Saving an artefact folder (adapter, head, fusion: a config file + a weights file) atomically as a whole, so
// that a crash never leaves new weights beside an old config. Protocol in `saveFolderAtomically`; the
// recovery a loader runs in `recoverInterruptedFolderSave` (docs/reliability.md, "Crash-safe saving").
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Names of the sibling folders a save of `P/name` uses, all in `P` (same file system, so `rename` is atomic):
/// `.name.<pid>-<token>.new.tmp` (staging) and `.name.<pid>-<token>.old.tmp` (the previous folder while the new
/// one is moved in). The writer's pid lets a later save or load tell a live writer from a killed one.
enum FolderSaveNames {
    static func staging(_ name: String, _ id: String) -> String { ".\(name).\(id).new.tmp" }
    static func backup(_ name: String, _ id: String) -> String { ".\(name).\(id).old.tmp" }

    /// Parses `.name.<pid>-<hex>.{new|old}.tmp` into (pid, id, isStaging); nil for other names.
    static func parse(_ entry: String, name: String) -> (pid: Int32, id: String, isStaging: Bool)? {
        let prefix = ".\(name)."
        guard entry.hasPrefix(prefix) else { return nil }
        let rest = entry.dropFirst(prefix.count)
        let isStaging: Bool
        if rest.hasSuffix(".new.tmp") { isStaging = true } else if rest.hasSuffix(".old.tmp") { isStaging = false } else { return nil }
        let id = rest.dropLast(".new.tmp".count)
        let parts = id.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, let pid = Int32(parts[0]), pid > 0, !parts[1].isEmpty, parts[1].allSatisfy(\.isHexDigit)
        else { return nil }
        return (pid, String(id), isStaging)
    }
}

/// True when process `pid` no longer exists (its temporary files may be removed or completed).
private func processIsGone(_ pid: Int32) -> Bool {
    pid != getpid() && kill(pid, 0) != 0 && errno == ESRCH
}

/// Best-effort `fsync` of a folder (makes renames and new entries durable; some file systems refuse it).
func fsyncFolder(_ path: String) {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    if fd >= 0 {
        _ = fsync(fd)
        close(fd)
    }
}

/// Finishes or cleans up saves of `folder` that were interrupted by a killed process, so `folder` is again one
/// complete version. Loaders call it before reading; `saveFolderAtomically` calls it before writing.
///
/// For each staging/backup pair of a writer that no longer exists:
/// - `folder` missing (killed between the two renames of step 4): the staging folder is complete (it was
///   fully written and synced before the first rename), so it is renamed to `folder` (roll forward); if there is
///   no staging folder, the backup is renamed back (roll back).
/// - `folder` present: leftovers are removed (a staging folder killed while being written, or a backup killed
///   before its removal).
///
/// Folders of live writers are left alone. If `folder` is missing while a live writer is between its renames,
/// waits up to about one second for the writer to finish. Errors are ignored (best effort); a load that
/// still finds no folder reports it missing.
func recoverInterruptedFolderSave(_ folder: URL) {
    let path = folder.standardizedFileURL.path
    let (parent, name) = splitPath(path)
    let parentPath = parent == "" ? "." : parent
    let fm = FileManager.default
    // A kill between the renames of a save of the parent (a multi-folder save, `saveFoldersAtomically`) leaves
    // the parent missing: recover it first (up to the first existing ancestor).
    if parent != "", parent != "/", !fm.fileExists(atPath: parentPath) {
        recoverInterruptedFolderSave(URL(fileURLWithPath: parentPath))
    }
    for attempt in 0..<100 {
        guard let entries = try? fm.contentsOfDirectory(atPath: parentPath) else { return }
        var byID: [String: (pid: Int32, staging: Bool, backup: Bool)] = [:]
        for e in entries {
            guard let (pid, id, isStaging) = FolderSaveNames.parse(e, name: name) else { continue }
            var v = byID[id] ?? (pid, false, false)
            if isStaging { v.staging = true } else { v.backup = true }
            byID[id] = v
        }
        if byID.isEmpty { return }
        var liveWriterBetweenRenames = false
        for (id, v) in byID.sorted(by: { $0.key < $1.key }) {
            let staging = parentPath + "/" + FolderSaveNames.staging(name, id)
            let backup = parentPath + "/" + FolderSaveNames.backup(name, id)
            let exists = fm.fileExists(atPath: path)
            guard processIsGone(v.pid) else {
                if !exists && v.backup { liveWriterBetweenRenames = true }
                continue
            }
            if !exists {
                if v.staging && v.backup {
                    if rename(staging, path) == 0 { fsyncFolder(parentPath) }
                } else if v.backup {
                    if rename(backup, path) == 0 { fsyncFolder(parentPath) }
                }
            }
            if fm.fileExists(atPath: path) {
                try? fm.removeItem(atPath: staging)
                try? fm.removeItem(atPath: backup)
            }
        }
        guard liveWriterBetweenRenames, attempt < 99 else { return }
        usleep(10_000)
    }
}

/// Saves the files of an artefact folder so that the folder changes from its complete old version to its
/// complete new version in one step, even if the process is killed at any point.
///
/// Protocol (`P/name` is `folder`; `id` is `<pid>-<random hex>`):
/// 1. Recover interrupted saves of `folder` by dead processes (`recoverInterruptedFolderSave`).
/// 2. Create the staging folder `P/.name.<id>.new.tmp` and hard-link (or, if linking fails, copy) into it
///    every regular file of the current `folder` that this save does not write (e.g. the head files when
///    an adapter is saved into the same folder, a README).
/// 3. `write` the new files into the staging folder (each file written, `fsync`ed and renamed into place by
///    `atomicWrite`), then `fsync` the staging folder.
/// 4. If `folder` does not exist: `rename(staging, folder)`. Otherwise `rename(folder, P/.name.<id>.old.tmp)`,
///    `rename(staging, folder)`. Then `fsync(P)`.
/// 5. Remove the backup folder.
///
/// A kill before step 4 leaves `folder` untouched (the staging folder is removed by the next save or load);
/// a kill between the two renames of step 4 leaves no `folder`, a complete staging folder and the backup, and
/// the next load or save renames the staging folder into place; a kill in step 5 leaves a backup that the next
/// save or load removes. Readers in other processes see either version, or, during the microseconds between
/// the renames, wait for the writer (`recoverInterruptedFolderSave`).
///
/// A `folder` that contains subfolders (a folder of several artefacts, e.g. a pruned fusion beside its
/// adapters) is swapped the same way: the staging folder gets the whole tree, subfolders re-created and their
/// files hard-linked (no data copied), so the subfolders are not lost and the tree changes in one step. Only a
/// tree too large to be an artefact folder (more than `maxReplicatedEntries` entries: e.g. a save pointed at a
/// home directory) is still written file by file in place (each file atomic, the set not).
///
/// Nested saves (`write` saving artefact folders into subfolders of the staging folder, each with this
/// protocol) make a multi-folder save atomic as a whole: `saveFoldersAtomically`.
///
/// Files linked from the old version are shared with it (same inodes), so `write` must replace files (every
/// writer of this library writes a temporary file and renames it), never modify them in place.
///
/// - Parameters:
///   - folder: the artefact folder; its parent is created if missing. A symbolic link is resolved first.
///   - names: the file names `write` creates (not copied from the old folder).
///   - write: writes those files into the folder it is given.
/// - Throws: `SafetensorsWriterError.ioFailure` naming the failed call, or what `write` throws; on a throw
///   before step 4 `folder` is unchanged and the staging folder is removed.
func saveFolderAtomically(_ folder: URL, writing names: Set<String>, _ write: (URL) throws -> Void) throws {
    let fm = FileManager.default
    let target = folder.standardizedFileURL.resolvingSymlinksInPath()
    let path = target.path
    let (parent, name) = splitPath(path)
    let parentPath = parent == "" ? "." : parent
    // Recover first: it may roll a missing parent forward (a killed multi-folder save), which creating the
    // parent first would prevent.
    recoverInterruptedFolderSave(target)
    try fm.createDirectory(atPath: parentPath, withIntermediateDirectories: true)

    var isDirectory: ObjCBool = false
    let exists = fm.fileExists(atPath: path, isDirectory: &isDirectory)
    if exists && !isDirectory.boolValue {
        throw SafetensorsWriterError.ioFailure(file: path, operation: "save folder (a file of that name exists)", errno: ENOTDIR)
    }
    let existing = exists ? try fm.contentsOfDirectory(atPath: path) : []
    if exists && !treeIsSmall(path, limit: maxReplicatedEntries) {
        try write(target)  // not an artefact folder: per-file atomic writes in place
        return
    }

    var token = ""
    for _ in 0..<4 { token += String(UInt16.random(in: 0...UInt16.max), radix: 16) }
    let id = "\(getpid())-\(token)"
    let staging = parentPath + "/" + FolderSaveNames.staging(name, id)
    let backup = parentPath + "/" + FolderSaveNames.backup(name, id)
    func fail(_ operation: String) -> SafetensorsWriterError {
        .ioFailure(file: path, operation: operation, errno: errno)
    }
    guard mkdir(staging, 0o755) == 0 else { throw fail("mkdir \(staging)") }
    var movedIn = false
    defer { if !movedIn { try? fm.removeItem(atPath: staging) } }

    for entry in existing where !names.contains(entry) && !entry.hasSuffix(".tmp") {
        try replicate(path + "/" + entry, to: staging + "/" + entry)
    }
    try write(URL(fileURLWithPath: staging, isDirectory: true))
    fsyncFolder(staging)

    if exists {
        guard rename(path, backup) == 0 else { throw fail("rename old folder to \(backup)") }
        guard rename(staging, path) == 0 else {
            let failure = fail("rename \(staging) to the folder")
            _ = rename(backup, path)  // put the old version back
            throw failure
        }
        movedIn = true
        fsyncFolder(parentPath)
        try? fm.removeItem(atPath: backup)
    } else {
        guard rename(staging, path) == 0 else { throw fail("rename \(staging) to the folder") }
        movedIn = true
        fsyncFolder(parentPath)
    }
}


/// Largest folder tree (files and folders, counted recursively) that `saveFolderAtomically` replicates into its
/// staging folder; larger trees are not artefact folders and are written in place.
let maxReplicatedEntries = 4096

/// True when the tree under `path` has at most `limit` entries (stops counting past the limit).
private func treeIsSmall(_ path: String, limit: Int) -> Bool {
    guard let walker = FileManager.default.enumerator(atPath: path) else { return true }
    var count = 0
    while walker.nextObject() != nil {
        count += 1
        if count > limit { return false }
    }
    return true
}

/// Re-creates `source` at `destination`: a folder as a new folder with its entries replicated (temporary
/// entries of interrupted saves, `*.tmp`, left out), a file as a hard link (a copy where linking fails, e.g.
/// across file systems), a symbolic link as itself.
private func replicate(_ source: String, to destination: String) throws {
    var info = stat()
    guard lstat(source, &info) == 0 else {
        throw SafetensorsWriterError.ioFailure(file: source, operation: "lstat", errno: errno)
    }
    if info.st_mode & S_IFMT == S_IFDIR {
        guard mkdir(destination, 0o755) == 0 else {
            throw SafetensorsWriterError.ioFailure(file: destination, operation: "mkdir", errno: errno)
        }
        for entry in try FileManager.default.contentsOfDirectory(atPath: source) where !entry.hasSuffix(".tmp") {
            try replicate(source + "/" + entry, to: destination + "/" + entry)
        }
        fsyncFolder(destination)
    } else if link(source, destination) != 0 {
        try FileManager.default.copyItem(atPath: source, toPath: destination)
    }
}

/// Saves several artefact folders (subfolders of `folder`) as one atomic step: `write` gets a staging copy of
/// `folder` (its current tree, files hard-linked) and saves into it, e.g. a fusion into `staging/<fusion>` and
/// each adapter into `staging/<adapter>` with the usual writers; the staging folder then replaces `folder` as
/// in `saveFolderAtomically`. After a crash `folder` holds the complete old tree or the complete new one: a
/// load of any subfolder first recovers `folder` itself when a kill between the two renames left it missing
/// (`recoverInterruptedFolderSave` walks up to the first existing ancestor).
///
/// - Parameters:
///   - folder: the folder holding the artefact folders; created if missing.
///   - write: saves the artefacts into the staging folder it is given (replacing files, never editing them in
///     place: see `saveFolderAtomically`).
/// - Throws: `SafetensorsWriterError.ioFailure`, or what `write` throws; `folder` is then unchanged.
func saveFoldersAtomically(_ folder: URL, _ write: (URL) throws -> Void) throws {
    try saveFolderAtomically(folder, writing: [], write)
}

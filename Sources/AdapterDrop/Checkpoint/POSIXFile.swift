// Thin wrappers over the POSIX calls the checkpoint code needs (open, fstat, mmap, write, fsync, rename).
// Kept in one file so the platform imports live in one place.
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The C library's text for an errno value.
func posixErrorMessage(_ code: Int32) -> String {
    guard let text = strerror(code) else { return "error \(code)" }
    return String(cString: text)
}

/// The current thread's errno.
@inline(__always) func currentErrno() -> Int32 { errno }

/// A read-only, private memory mapping of a whole file. The mapping lives as long as this object.
///
/// The file must not be truncated by another process while it is mapped: reading a page past the new end
/// raises SIGBUS (the usual caveat of every mmap-based reader, including the reference `safetensors`).
final class MappedFile: @unchecked Sendable {
    // @unchecked Sendable: the mapping is read-only (PROT_READ) and never changes after init, so
    // concurrent reads are safe.

    /// Start of the mapping, or nil for an empty file.
    let base: UnsafeRawPointer?
    /// File size in bytes.
    let size: Int

    /// Opens and maps `path`. Throws `SafetensorsError.ioFailure` / `.notARegularFile`.
    init(path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw SafetensorsError.ioFailure(file: path, operation: "open", errno: currentErrno())
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw SafetensorsError.ioFailure(file: path, operation: "fstat", errno: currentErrno())
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw SafetensorsError.notARegularFile(file: path) }
        let size = Int(info.st_size)
        self.size = size
        isMapped = size > 0
        if size == 0 {
            base = nil
            return
        }
        guard let pointer = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0),
              pointer != UnsafeMutableRawPointer(bitPattern: -1)
        else {
            throw SafetensorsError.ioFailure(file: path, operation: "mmap", errno: currentErrno())
        }
        base = UnsafeRawPointer(pointer)
    }

    /// True when `base` came from `mmap` (else from `allocate`, see `init(copying:)`).
    private let isMapped: Bool

    /// An in-memory stand-in holding a copy of `bytes` (tests use it to validate many images quickly).
    init(copying bytes: [UInt8]) {
        size = bytes.count
        isMapped = false
        if bytes.isEmpty {
            base = nil
        } else {
            let memory = UnsafeMutableRawPointer.allocate(byteCount: bytes.count, alignment: 16)
            bytes.withUnsafeBytes { memory.copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
            base = UnsafeRawPointer(memory)
        }
    }

    deinit {
        guard let base else { return }
        if isMapped {
            munmap(UnsafeMutableRawPointer(mutating: base), size)
        } else {
            UnsafeMutableRawPointer(mutating: base).deallocate()
        }
    }

    /// The whole file as a buffer (empty for an empty file).
    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: size) }
}

/// Writes `data` to a new file next to `path` and renames it over `path`: temporary file in the same
/// folder (`O_CREAT | O_EXCL`), write, `fsync`, `close`, `rename`, then `fsync` of the folder. On any
/// failure before the rename the temporary file is removed and `path` is untouched.
///
/// - Parameters:
///   - failAfterBytes: test hook; simulate an I/O error (EIO) once this many bytes were written.
///   - produce: calls its argument with each chunk of bytes, in file order.
/// - Throws: `SafetensorsWriterError.ioFailure` naming the failed call, or what `produce` throws.
func atomicWrite(
    path: String, failAfterBytes: Int? = nil,
    _ produce: ((UnsafeRawBufferPointer) throws -> Void) throws -> Void
) throws {
    let (directory, fileName) = splitPath(path)
    var suffix = ""
    for _ in 0..<4 { suffix += String(UInt16.random(in: 0...UInt16.max), radix: 16) }
    // The writer's process id is part of the name, so the next save can remove the temporary files of
    // writers that were killed before their rename (see `removeOrphanedTemporaryFiles`).
    let tempPath = (directory == "" ? "" : directory + "/") + ".\(fileName).\(getpid())-\(suffix).tmp"
    removeOrphanedTemporaryFiles(directory: directory, fileName: fileName)

    func fail(_ operation: String, _ code: Int32) -> SafetensorsWriterError {
        .ioFailure(file: path, operation: operation, errno: code)
    }

    let fd = open(tempPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode_t(0o644))
    guard fd >= 0 else { throw fail("open temporary file", currentErrno()) }
    var closed = false
    var renamed = false
    defer {
        if !closed { close(fd) }
        if !renamed { unlink(tempPath) }
    }

    var written = 0
    try produce { chunk in
        var offset = 0
        while offset < chunk.count {
            var count = chunk.count - offset
            if let limit = failAfterBytes {
                if written >= limit { throw fail("write", EIO) }
                count = min(count, limit - written)
            }
            let result = write(fd, chunk.baseAddress! + offset, count)
            if result < 0 {
                let code = currentErrno()
                if code == EINTR { continue }
                throw fail("write", code)
            }
            offset += result
            written += result
        }
    }
    if let limit = failAfterBytes, written >= limit { throw fail("write", EIO) }
    guard fsync(fd) == 0 else { throw fail("fsync", currentErrno()) }
    closed = true
    guard close(fd) == 0 else { throw fail("close", currentErrno()) }
    guard rename(tempPath, path) == 0 else { throw fail("rename", currentErrno()) }
    renamed = true
    // Make the rename durable. A failure here cannot be undone (the new file is in place), and some file
    // systems refuse fsync on a directory, so it is best effort.
    let dirFD = open(directory == "" ? "." : directory, O_RDONLY | O_CLOEXEC)
    if dirFD >= 0 {
        _ = fsync(dirFD)
        close(dirFD)
    }
}

/// Removes `.{fileName}.{pid}-{hex}.tmp` files in `directory` whose writer process no longer exists (a
/// writer killed between creating its temporary file and the rename). Files of live processes (this one
/// included) are left alone, so concurrent writers are not disturbed; a reused pid only delays the removal.
/// Best effort: errors are ignored.
func removeOrphanedTemporaryFiles(directory: String, fileName: String) {
    let folder = directory == "" ? "." : directory
    guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return }
    let prefix = ".\(fileName)."
    for name in names where name.hasPrefix(prefix) && name.hasSuffix(".tmp") {
        let middle = name.dropFirst(prefix.count).dropLast(".tmp".count)
        let parts = middle.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, let pid = Int32(parts[0]), pid > 0, pid != getpid(),
              parts[1].allSatisfy(\.isHexDigit) else { continue }
        if kill(pid, 0) != 0 && currentErrno() == ESRCH { unlink(folder + "/" + name) }
    }
}

/// Splits "a/b/c.txt" into ("a/b", "c.txt"); "c.txt" into ("", "c.txt"); "/c" into ("/", "c").
func splitPath(_ path: String) -> (directory: String, fileName: String) {
    guard let slash = path.lastIndex(of: "/") else { return ("", path) }
    let directory = String(path[..<slash])
    return (directory.isEmpty ? "/" : directory, String(path[path.index(after: slash)...]))
}

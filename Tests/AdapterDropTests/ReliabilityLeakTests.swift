// Reliability: no leaks over load/run/unload cycles (issue #7, "Sanitizers"). Each cycle loads the tiny-bert
// fixture with the seq_bn adapter "a" and its head from disk (`AdapterModel.loading`), makes a 2-thread
// `ComputeContext`, runs a padded batch through the adapter setup and the head, and releases everything.
//
// Default (every test run, and under LeakSanitizer in CI's sanitizer step): 20 cycles; the context and the
// memory-mapped weight file must be deallocated after every cycle (a retain cycle would keep them), and LSan
// reports any unreachable block at exit. Measurement (run alone, so no other test allocates meanwhile):
// `RELIABILITY_LEAK_CYCLES=1000 swift test --skip-build --filter ReliabilityLeakTests` prints the heap bytes in
// use (glibc `malloc_info`) and the RSS after the warm-up, middle and last cycle, and requires the heap not to
// grow linearly over the second half; docs/reliability.md records the figures and the valgrind run.
import AdapterCore
@testable import AdapterDrop
import Foundation
import TestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Heap bytes in use (glibc: arena bytes obtained from the system minus free chunks, plus mmapped blocks, from
/// `malloc_info`'s totals; the Glibc module does not export `mallinfo2`); nil when the allocator is replaced
/// (sanitizers) or the numbers cannot be read.
private func heapInUse() -> Int? {
    #if canImport(Glibc)
    let all = UnsafeMutableRawPointer(bitPattern: 0)
    if dlsym(all, "__asan_init") != nil { return nil }  // ASan's allocator: malloc_info describes nothing useful
    typealias MallocInfo = @convention(c) (Int32, UnsafeMutablePointer<FILE>?) -> Int32
    guard let symbol = dlsym(all, "malloc_info") else { return nil }
    var buffer: UnsafeMutablePointer<CChar>?
    var size = 0
    guard let stream = open_memstream(&buffer, &size) else { return nil }
    _ = unsafeBitCast(symbol, to: MallocInfo.self)(0, stream)
    fclose(stream)
    defer { free(buffer) }
    guard let buffer else { return nil }
    let xml = String(cString: buffer)
    // The document's last lines (after every per-arena <heap>) hold the process totals:
    // <total type="fast" count=".." size=".."/> <total type="rest" …/> <total type="mmap" …/> <system type="current" size=".."/>
    guard let tail = xml.range(of: "</heap>", options: .backwards).map({ xml[$0.upperBound...] }) else { return nil }
    func value(_ tag: String, _ type: String) -> Int? {
        guard let r = tail.range(of: "<\(tag) type=\"\(type)\"") else { return nil }
        let rest = tail[r.upperBound...]
        guard let s = rest.range(of: "size=\"") else { return nil }
        return Int(rest[s.upperBound...].prefix { $0.isNumber })
    }
    guard let current = value("system", "current"), let fast = value("total", "fast"), let free = value("total", "rest"),
          let mmapped = value("total", "mmap") else { return nil }
    return current - fast - free + mmapped
    #else
    return nil
    #endif
}

/// Resident set size in bytes (`/proc/self/statm`), or nil.
private func residentBytes() -> Int? {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return nil }
    let fields = text.split(separator: " ")
    guard fields.count > 1, let pages = Int(fields[1]) else { return nil }
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
}

@Suite("Reliability: load/run/unload leaks", .serialized)
struct ReliabilityLeakTests {
    static var cycles: Int? { ProcessInfo.processInfo.environment["RELIABILITY_LEAK_CYCLES"].flatMap { Int($0) } }

    /// One cycle; returns weak references to what must be gone once it returns.
    static func cycle(_ i: Int) throws -> (context: () -> ComputeContext?, file: () -> SafetensorsFile?) {
        weak var weakContext: ComputeContext?
        weak var weakFile: SafetensorsFile?
        do {
            let model = try AdapterModel.loading(modelFolder: fixtureURL("tiny-bert").path,
                                                 adapterFolders: [fixtureURL("adapters/seq_bn/a").path])
            let context = ComputeContext(threads: 2)
            weakContext = context
            let file = try SafetensorsFile(url: fixtureURL("tiny-bert/model.safetensors"))
            weakFile = file
            #expect(!file.tensorNames.isEmpty)
            let seq = 3 + i % 5
            let ids = (0..<2 * seq).map { ($0 * 7 + i) % 100 }
            var mask = [Int](repeating: 1, count: 2 * seq)
            mask[2 * seq - 1] = 0
            let input = try EncoderInput(batchSize: 2, sequenceLength: seq, inputIds: ids, attentionMask: mask,
                                         tokenTypeIds: [Int](repeating: 0, count: 2 * seq))
            let out = try model(input, setup: .adapter("a"), skipLayers: i % 3 == 0 ? [0] : [], context: context)
            #expect(out[head: "a"] != nil && out.encoder.lastHiddenState.scalars.allSatisfy(\.isFinite))
        }
        return ({ weakContext }, { weakFile })
    }

    @Test func loadRunUnloadCyclesReleaseEverything() throws {
        let cycles = Self.cycles ?? 20
        let warmUp = min(10, cycles / 2), middle = max(warmUp, cycles / 2)
        var heap: [Int: Int] = [:], rss: [Int: Int] = [:]
        var retained = 0
        let start = Date()
        for i in 0..<cycles {
            let (context, file) = try Self.cycle(i)
            if context() != nil || file() != nil { retained += 1 }
            if i + 1 == warmUp || i + 1 == middle || i + 1 == cycles { heap[i + 1] = heapInUse(); rss[i + 1] = residentBytes() }
        }
        let seconds = Date().timeIntervalSince(start)
        #expect(retained == 0, "\(retained) of \(cycles) cycles left their ComputeContext or weight file alive")
        func text(_ bytes: Int?) -> String { bytes.map { "\($0) B" } ?? "n/a" }
        print("leak cycles: \(cycles) load/run/unload cycles in \(String(format: "%.1f", seconds)) s; heap in use after "
              + [warmUp, middle, cycles].map { "\($0): \(text(heap[$0]))" }.joined(separator: ", ")
              + "; RSS " + [warmUp, middle, cycles].map { "\($0): \(text(rss[$0]))" }.joined(separator: ", "))
        // Measurement mode only (run alone: other suites allocate concurrently in a whole-suite run). The heap
        // wobbles by a bounded amount (≈ 70–80 KB over 1 000 or 3 000 cycles: glibc arenas of the short-lived
        // worker threads, Foundation caches), so the check is on the second half: a leak grows it linearly.
        // 64 KiB + 32 B per cycle fails a leak of ≥ ~160 B per cycle at 1 000 cycles; LeakSanitizer (CI) and
        // valgrind (docs/reliability.md) find smaller ones.
        if Self.cycles != nil, let a = heap[middle], let b = heap[cycles], cycles > middle {
            #expect(b - a < 65_536 + 32 * (cycles - middle), "heap grew by \(b - a) B over cycles \(middle)…\(cycles)")
        }
    }
}

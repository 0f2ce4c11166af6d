// ComputeContext: thread count, GEMM backend choice, per-worker GEMM workspaces and the parallel-for
// every op uses.
import Dispatch
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Which implementation computes matrix products.
public enum GemmBackend: String, Sendable, CaseIterable, Codable {
    /// The hand-tuned C micro-kernels (`ck_gemm_f32`, ISA chosen at run time). The default.
    case kernels
    /// The system CBLAS (`cblas_sgemm`, OpenBLAS on Debian) plus a separate epilogue pass; a
    /// baseline for benchmarks. OpenBLAS's own threading is pinned to 1 thread, since the context
    /// already splits the work.
    case cblas
    /// The scalar C reference (`ck_gemm_f32_ref`): slow, for tests.
    case reference
}

/// Execution resources for ops: how many threads to split work over, which GEMM backend to use,
/// and the per-worker, 64-byte-aligned GEMM workspaces (grown on demand, then reused).
///
/// Every op splits its output into a fixed set of tasks that depends only on the operand shapes —
/// never on `threads` — and each output element is produced by exactly one task in a fixed order.
/// Results are therefore bitwise identical for every thread count. (Matrix products are the one
/// exception to the fixed split: their tiles follow `threads`, one per worker, which changes no bit on
/// the `.kernels` and `.reference` backends because the C kernels give every output element the same
/// FMA chain wherever its tile starts; on `.cblas`, OpenBLAS may pick a different kernel for a
/// differently sized call, so that backend does not promise bitwise thread-count independence.) Reductions across rows (bias and
/// LayerNorm parameter gradients) use fixed row chunks with partial sums added in chunk order.
///
/// A context runs one parallel section at a time: concurrent calls from several threads are
/// serialized by an internal lock (they do not race, but they do not overlap either). Do not call an
/// op from inside `parallelFor`'s body on the same context (that would deadlock).
///
/// With `threads > 1` the context owns `threads − 1` helper threads (started at its first parallel section,
/// stopped when it is released) that poll for the next section for up to 100 µs before they sleep
/// (`ADAPTERCORE_SPIN_US`; no polling when `threads` exceeds the processor count, nor after a gap longer than
/// that until sections come close together again), so back-to-back
/// sections do not each pay a thread wake-up. `ADAPTERCORE_THREAD_POOL=dispatch` runs sections on
/// `DispatchQueue.concurrentPerform` instead (for comparisons).
public final class ComputeContext: @unchecked Sendable {
    /// Number of workers a parallel section uses (>= 1).
    public let threads: Int
    /// The GEMM implementation used by `linear`, `matmul` and their backward passes.
    public let gemmBackend: GemmBackend

    /// Per-worker GEMM workspaces; only touched while `lock` is held.
    private var workspaces: [UnsafeMutableRawPointer?]
    private var workspaceBytes: [Int]
    private let lock = Mutex(())
    #if canImport(Glibc) || canImport(Darwin)
    /// The helper threads (nil with one thread, or when `ADAPTERCORE_THREAD_POOL=dispatch` selects
    /// `DispatchQueue.concurrentPerform`).
    private let pool: WorkerPool?
    #endif

    /// - Parameters:
    ///   - threads: worker count; defaults to the number of active processors. Values above the
    ///     core count are allowed (the results do not change, only the speed).
    ///   - gemmBackend: the matrix-product implementation (default: the hand-tuned kernels).
    /// - Precondition: `threads >= 1`.
    public init(threads: Int = ComputeContext.activeProcessorCount, gemmBackend: GemmBackend = .kernels) {
        require(threads >= 1, "ComputeContext: threads must be >= 1, got \(threads)")
        self.threads = threads
        self.gemmBackend = gemmBackend
        workspaces = Array(repeating: nil, count: threads)
        workspaceBytes = Array(repeating: 0, count: threads)
        #if canImport(Glibc) || canImport(Darwin)
        pool = threads > 1 && !ThreadingSettings.useDispatch
            ? WorkerPool(size: threads, spinNanoseconds: threads <= ComputeContext.activeProcessorCount
                                                         ? ThreadingSettings.spinNanoseconds : 0)
            : nil
        #endif
        if gemmBackend == .cblas { KernelBridge.pinCBLASThreads() }
    }

    deinit {
        #if canImport(Glibc) || canImport(Darwin)
        pool?.stop()
        #endif
        for p in workspaces { p?.deallocate() }
    }

    /// Number of processors currently online (`sysconf(_SC_NPROCESSORS_ONLN)`), at least 1.
    public static var activeProcessorCount: Int {
        #if canImport(Glibc) || canImport(Darwin)
        return max(Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))), 1)
        #else
        return 1
        #endif
    }

    /// Runs `body(task, worker)` for every `task` in `0..<taskCount`, spread over up to `threads`
    /// workers that take tasks in increasing order from a shared counter. `worker` is in
    /// `0..<threads` and no two concurrently running bodies share it (use it to index per-worker
    /// scratch). Returns when every task has finished. With one thread (or one task) everything runs
    /// on the calling thread.
    ///
    /// For results independent of the thread count, make what each task computes depend only on
    /// `task`, never on `worker` or timing.
    ///
    /// `body` is `@Sendable` because it really runs on several threads at once; this also keeps a
    /// closure written in `@MainActor` code from inheriting the main actor's isolation (which
    /// would trap when a worker thread calls it).
    public func parallelFor(taskCount: Int, _ body: @Sendable (_ task: Int, _ worker: Int) -> Void) {
        lock.withLock { _ in
            runTasks(taskCount: taskCount, body)
        }
    }

    /// The ops' parallel-for: like `parallelFor`, but `body` need not be `@Sendable` (the ops capture
    /// raw pointers to disjoint output ranges). Only call it from nonisolated code, so `body` is
    /// nonisolated too.
    func parallelForUnchecked(taskCount: Int, _ body: (_ task: Int, _ worker: Int) -> Void) {
        lock.withLock { _ in
            runTasks(taskCount: taskCount, body)
        }
    }

    /// Like `parallelFor`, but first makes sure every worker that will run owns a workspace of at
    /// least `workspaceBytes` bytes (64-byte aligned), passed to `body` as the third argument.
    func parallelFor(taskCount: Int, workspaceBytes bytes: Int,
                     _ body: (_ task: Int, _ worker: Int, _ workspace: UnsafeMutableRawBufferPointer) -> Void) {
        lock.withLock { _ in
            let workers = min(threads, max(taskCount, 1))
            for w in 0..<workers where workspaceBytes[w] < bytes {
                workspaces[w]?.deallocate()
                // Grow geometrically so slowly increasing requests do not reallocate every call.
                let size = max(bytes, workspaceBytes[w] + workspaceBytes[w] / 2)
                workspaces[w] = UnsafeMutableRawPointer.allocate(byteCount: max(size, tensorAlignment),
                                                                 alignment: tensorAlignment)
                workspaceBytes[w] = size
            }
            let pointers = workspaces, sizes = workspaceBytes
            runTasks(taskCount: taskCount) { task, worker in
                body(task, worker, UnsafeMutableRawBufferPointer(start: pointers[worker], count: sizes[worker]))
            }
        }
    }

    /// Bytes of GEMM workspace currently held (all workers).
    public var workspaceBytesAllocated: Int {
        lock.withLock { _ in workspaceBytes.reduce(0, +) }
    }

    private func runTasks(taskCount: Int, _ body: (Int, Int) -> Void) {
        if taskCount <= 0 { return }
        if threads == 1 || taskCount == 1 {
            for t in 0..<taskCount { body(t, 0) }
            return
        }
        #if canImport(Glibc) || canImport(Darwin)
        if let pool {
            pool.run(taskCount: taskCount, body)
            return
        }
        #endif
        let workers = min(threads, taskCount)
        let next = TaskCounter()
        // concurrentPerform wants a @Sendable closure. `body` is shared by the workers on purpose:
        // each call writes only the outputs of its own task, and concurrentPerform returns only after
        // every call has finished, so neither the closure nor what it captures outlives this frame.
        withoutActuallyEscaping(body) { body in
            let shared = UncheckedSendableBox(body)
            DispatchQueue.concurrentPerform(iterations: workers) { worker in
                while true {
                    let task = next.take()
                    if task >= taskCount { break }
                    shared.value(task, worker)
                }
            }
        }
    }
}

/// How parallel sections run, read once from the environment (for A/B measurements):
/// `ADAPTERCORE_THREAD_POOL=dispatch` uses `DispatchQueue.concurrentPerform` (the implementation until
/// session 3) instead of the context's own helper threads; `ADAPTERCORE_SPIN_US` (default 100) is how long
/// an idle helper polls for the next section before it sleeps (0: sleep at once). Contexts with more threads
/// than processors never poll.
enum ThreadingSettings {
    static let useDispatch: Bool = environment("ADAPTERCORE_THREAD_POOL") == "dispatch"
    static let spinNanoseconds: UInt64 = {
        guard let text = environment("ADAPTERCORE_SPIN_US"), let us = UInt64(text) else { return 100_000 }
        return min(us, 1_000_000) * 1000
    }()

    private static func environment(_ name: String) -> String? {
        #if canImport(Glibc) || canImport(Darwin)
        return getenv(name).map { String(cString: $0) }
        #else
        return nil
        #endif
    }
}

/// A shared task counter for one parallel section.
private final class TaskCounter: Sendable {
    private let next = Atomic<Int>(0)
    /// The next task index (0, 1, 2, … across all callers).
    func take() -> Int { next.wrappingAdd(1, ordering: .relaxed).oldValue }
}

/// Carries a value into a @Sendable closure when the caller guarantees the sharing is safe.
struct UncheckedSendableBox<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}

/// Splits `0..<count` into `chunks` nearly equal consecutive ranges (the first `count % chunks`
/// ranges are one longer). Used for fixed, thread-count-independent partitions.
func chunkRange(_ chunk: Int, of chunks: Int, count: Int) -> Range<Int> {
    let base = count / chunks, extra = count % chunks
    let lo = chunk * base + min(chunk, extra)
    return lo..<(lo + base + (chunk < extra ? 1 : 0))
}

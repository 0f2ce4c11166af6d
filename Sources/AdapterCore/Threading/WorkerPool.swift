// WorkerPool: the persistent worker threads behind `ComputeContext.parallelFor` — woken by one atomic store,
// spinning briefly between parallel sections before they sleep, so the back-to-back sections of an encoder
// forward pass (seven per layer) do not each pay a thread wake-up.
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

#if canImport(Glibc) || canImport(Darwin)

/// `threads − 1` helper threads with fixed worker indices `1..<threads` (the calling thread is worker 0).
///
/// A parallel section publishes its task count and body, then bumps `state` (sequence number and the number of
/// workers taking part, one atomic word, so a helper that wakes late can never read a half-written section).
/// Helpers that take part claim their join slot, pull task indices from a shared counter and count themselves
/// out; the caller runs tasks too, cancels the slots of helpers that have not joined by the time every task is
/// taken (so it never waits for a thread that is still waking up), then waits for the joined ones. Between
/// sections a helper spins on `state` for up to `spinNanoseconds` (an encoder's sections follow each other
/// within microseconds) and then sleeps on a condition variable — after a longer gap it sleeps at once, until
/// sections come close together again; the caller only touches the condition variable when some helper sleeps.
///
/// Not re-entrant: `ComputeContext` serialises sections with its lock.
final class WorkerPool: @unchecked Sendable {
    /// Workers including the caller.
    let size: Int
    /// How long an idle helper (and a waiting caller) polls before it sleeps (yields).
    let spinNanoseconds: UInt64

    /// (sequence << 16) | workers taking part in the current section.
    private let state = Atomic<UInt64>(0)
    /// Helpers of the current section that have not finished yet.
    private let remaining = Atomic<Int>(0)
    /// The next task index of the current section.
    private let nextTask = Atomic<Int>(0)
    /// Helpers blocked (or about to block) on `condition`.
    private let sleepers = Atomic<Int>(0)
    private let stopping = Atomic<Bool>(false)

    /// The current section; written by the caller only while no helper runs, read by helpers only after they
    /// saw the section's `state` (acquire) and before they count themselves out (release).
    private var taskCount = 0
    private var body: ((Int, Int) -> Void)? = nil

    /// Per helper (index 1..<size): `sequence << 2 | 0` open for the helper to join the section, `| 1` joined,
    /// `| 2` cancelled by the caller (it ran every task itself before the helper woke up, and does not wait for it).
    private let slots: [HelperSlot]

    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>
    private var started = false

    init(size: Int, spinNanoseconds: UInt64) {
        self.size = size
        self.spinNanoseconds = spinNanoseconds
        slots = (0..<size).map { _ in HelperSlot() }
        mutex = .allocate(capacity: 1)
        condition = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
        condition.deallocate()
    }

    /// Tells the helpers to exit (each holds a reference to the pool until it has).
    func stop() {
        stopping.store(true, ordering: .sequentiallyConsistent)
        pthread_mutex_lock(mutex)
        pthread_cond_broadcast(condition)
        pthread_mutex_unlock(mutex)
    }

    /// Runs `body(task, worker)` for every task in `0..<taskCount` on up to `size` workers; returns when all
    /// have finished. Requires `taskCount ≥ 2` and `size ≥ 2`.
    func run(taskCount: Int, _ body: (Int, Int) -> Void) {
        startHelpersIfNeeded()
        let active = min(size, taskCount)
        withoutActuallyEscaping(body) { body in
            self.body = body
            self.taskCount = taskCount
            nextTask.store(0, ordering: .relaxed)
            remaining.store(active - 1, ordering: .relaxed)
            let sequence = (state.load(ordering: .relaxed) >> 16) &+ 1
            for i in 1..<active { slots[i].word.store(sequence << 2, ordering: .relaxed) }
            // Sequentially consistent with the helpers' `sleepers` increment and re-check: either this load
            // sees the sleeper, or the sleeper's re-check sees the new state (no lost wake-up).
            state.store(sequence << 16 | UInt64(active), ordering: .sequentiallyConsistent)
            if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
                pthread_mutex_lock(mutex)
                pthread_cond_broadcast(condition)
                pthread_mutex_unlock(mutex)
            }
            drain(worker: 0, body: body, taskCount: taskCount)
            // Every task has been taken. A helper that has not joined yet (still waking up) is cancelled rather
            // than waited for; one that has joined is awake and finishing its last task.
            for i in 1..<active
            where slots[i].word.compareExchange(expected: sequence << 2, desired: sequence << 2 | 2,
                                                ordering: .relaxed).exchanged {
                remaining.wrappingSubtract(1, ordering: .relaxed)
            }
            if remaining.load(ordering: .acquiring) > 0 {
                let deadline = WorkerPool.now() &+ spinNanoseconds
                var polls = 0
                while remaining.load(ordering: .acquiring) > 0 {
                    polls &+= 1
                    // A helper that was descheduled (a loaded machine) gets the core back sooner if we yield.
                    if polls & 63 == 0, WorkerPool.now() > deadline { sched_yield() }
                }
            }
            self.body = nil
        }
    }

    @inline(__always)
    private func drain(worker: Int, body: (Int, Int) -> Void, taskCount: Int) {
        while true {
            let task = nextTask.wrappingAdd(1, ordering: .relaxed).oldValue
            if task >= taskCount { return }
            body(task, worker)
        }
    }

    private func startHelpersIfNeeded() {
        if started { return }
        started = true
        for index in 1..<size {
            let argument = Unmanaged.passRetained(HelperStart(pool: self, index: index)).toOpaque()
            var thread = pthread_t()
            let status = pthread_create(&thread, nil, { raw in
                #if canImport(Darwin)
                let start = Unmanaged<HelperStart>.fromOpaque(raw).takeRetainedValue()
                #else
                let start = Unmanaged<HelperStart>.fromOpaque(raw!).takeRetainedValue()
                #endif
                start.pool.helperLoop(index: start.index)
                return nil
            }, argument)
            require(status == 0, "ComputeContext: could not start worker thread \(index) (pthread_create \(status))")
            pthread_detach(thread)
        }
    }

    private func helperLoop(index: Int) {
        var seen: UInt64 = 0
        // Poll only while sections keep coming within the polling window: after a longer gap the helper sleeps
        // at once, until a wait short enough for polling to have caught it turns polling back on. So a caller
        // that alternates our sections with other work (a benchmark timing OpenBLAS in between) does not have
        // a helper spinning through that work.
        var poll = true
        while true {
            var s = state.load(ordering: .acquiring)
            if s >> 16 == seen {
                let start = WorkerPool.now()
                if poll {
                    let deadline = start &+ spinNanoseconds
                    var polls = 0
                    while s >> 16 == seen && !stopping.load(ordering: .relaxed) {
                        polls &+= 1
                        if polls & 63 == 0, WorkerPool.now() > deadline { break }
                        s = state.load(ordering: .acquiring)
                    }
                }
                if s >> 16 == seen {
                    pthread_mutex_lock(mutex)
                    sleepers.wrappingAdd(1, ordering: .sequentiallyConsistent)
                    while state.load(ordering: .sequentiallyConsistent) >> 16 == seen
                            && !stopping.load(ordering: .sequentiallyConsistent) {
                        pthread_cond_wait(condition, mutex)
                    }
                    sleepers.wrappingSubtract(1, ordering: .sequentiallyConsistent)
                    pthread_mutex_unlock(mutex)
                    s = state.load(ordering: .acquiring)
                }
                poll = WorkerPool.now() &- start <= spinNanoseconds
            }
            if stopping.load(ordering: .acquiring) { return }
            seen = s >> 16
            if index < Int(s & 0xFFFF),
               slots[index].word.compareExchange(expected: seen << 2, desired: seen << 2 | 1,
                                                 ordering: .acquiring).exchanged {
                participate(index: index)
                remaining.wrappingSubtract(1, ordering: .releasing)
            }
        }
    }

    /// A helper's share of the current section. Not inlined, so the helper's reference to `body` is released before
    /// it counts itself out: `run`'s `withoutActuallyEscaping` checks, when it returns, that nothing still holds the
    /// closure.
    @inline(never)
    private func participate(index: Int) {
        let body = self.body!
        drain(worker: index, body: body, taskCount: taskCount)
    }

    /// Monotonic clock in nanoseconds (vDSO, ~20 ns).
    @inline(__always)
    static func now() -> UInt64 {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return UInt64(t.tv_sec) &* 1_000_000_000 &+ UInt64(t.tv_nsec)
    }
}

/// One helper's join slot (see `WorkerPool.slots`).
private final class HelperSlot: Sendable {
    let word = Atomic<UInt64>(0)
}

/// What a helper thread starts with.
private final class HelperStart {
    let pool: WorkerPool
    let index: Int
    init(pool: WorkerPool, index: Int) {
        self.pool = pool
        self.index = index
    }
}

#endif

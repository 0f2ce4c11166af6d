import AdapterCore
import Foundation  // NSLock
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A value behind an `NSLock` (a pthread mutex, whose lock and unlock ThreadSanitizer intercepts). The standard
/// library's `Mutex` synchronises inside uninstrumented code, so TSan reports accesses it protects as races (it did
/// for this suite's tests under both the helper threads and `concurrentPerform`).
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    /// Runs `body` on the value with the lock held.
    func withLock<R>(_ body: (inout Value) -> R) -> R {
        lock.lock()
        defer { lock.unlock() }
        return body(&value)
    }
}

@Suite struct ComputeContextTests {
    @Test func parallelForRunsEveryTaskOnceOnDistinctWorkers() {
        for threads in [1, 2, 3, 8] {
            let context = ComputeContext(threads: threads)
            #expect(context.threads == threads)
            let hits = Locked([Int](repeating: 0, count: 1000))
            let badWorker = Atomic<Bool>(false)
            context.parallelFor(taskCount: 1000) { task, worker in
                if worker < 0 || worker >= threads { badWorker.store(true, ordering: .relaxed) }
                hits.withLock { $0[task] += 1 }
            }
            #expect(hits.withLock { $0 } == [Int](repeating: 1, count: 1000))
            let sawBadWorker = badWorker.load(ordering: .relaxed)
            #expect(!sawBadWorker)
            context.parallelFor(taskCount: 0) { _, _ in Issue.record("no task expected") }
        }
    }

    /// The helper threads across many sections: varying task counts (fewer tasks than workers too), gaps long
    /// enough for the helpers to go to sleep between sections (100 µs of polling), and a worker index never
    /// used by two bodies at once.
    @Test func helperThreadsRunManySectionsWithSleepsBetween() {
        for threads in [2, 3] {
            let context = ComputeContext(threads: threads)
            let busy = Locked([Int](repeating: 0, count: threads))
            let overlap = Atomic<Bool>(false)
            let workersSeen = Locked(Set<Int>())
            for section in 0..<300 {
                let tasks = [1, 2, 3, 5, 64][section % 5]
                let hits = Locked([Int](repeating: 0, count: tasks))
                context.parallelFor(taskCount: tasks) { task, worker in
                    let wasBusy = busy.withLock { b in defer { b[worker] += 1 }; return b[worker] != 0 }
                    if wasBusy { overlap.store(true, ordering: .relaxed) }
                    var s = 0.0
                    for i in 0..<2_000 { s += Double(i ^ task) }
                    if s < 0 { overlap.store(true, ordering: .relaxed) }
                    hits.withLock { $0[task] += 1 }
                    workersSeen.withLock { _ = $0.insert(worker) }
                    busy.withLock { $0[worker] -= 1 }
                }
                #expect(hits.withLock { $0 } == [Int](repeating: 1, count: tasks), "section \(section)")
                if section % 50 == 49 { usleep(2_000) }  // helpers poll 100 µs, then sleep: wake them again
            }
            let sawOverlap = overlap.load(ordering: .relaxed)
            #expect(!sawOverlap)
            let seen = workersSeen.withLock { $0 }
            #expect(seen.isSubset(of: Set(0..<threads)) && seen.contains(0))
        }
    }

    /// Contexts come and go (their helper threads exit); each still computes correctly.
    @Test func manyShortLivedContexts() {
        for round in 0..<40 {
            let context = ComputeContext(threads: 2)
            let sum = Atomic<Int>(0)
            context.parallelFor(taskCount: 10) { task, _ in sum.add(task, ordering: .relaxed) }
            let total = sum.load(ordering: .relaxed)
            #expect(total == 45, "round \(round)")
        }
    }

    @Test func defaultThreadCountIsTheProcessorCount() {
        #expect(ComputeContext().threads == ComputeContext.activeProcessorCount)
        #expect(ComputeContext.activeProcessorCount >= 1)
        #expect(ComputeContext().gemmBackend == .kernels)
    }

    /// Calling from the main actor must not trap: the public body is @Sendable (so it does not
    /// inherit main-actor isolation), and the ops' internal closures are nonisolated.
    @MainActor @Test func callableFromTheMainActor() {
        let context = ComputeContext(threads: 2)
        let count = Atomic<Int>(0)
        context.parallelFor(taskCount: 64) { _, _ in
            var s = 0.0
            for i in 0..<10_000 { s += Double(i) }
            if s > 0 { count.add(1, ordering: .relaxed) }
        }
        let n = count.load(ordering: .relaxed)
        #expect(n == 64)
        let x = Tensor(shape: [300, 64], repeating: 0.5), w = Tensor(shape: [200, 64], repeating: 0.25)
        let y = linear(x, weight: w, activation: .gelu, context: context)
        #expect(y.scalars.allSatisfy { $0 == y.scalars[0] })
    }
}

import AdapterCore
import Synchronization
import Testing

@Suite struct ComputeContextTests {
    @Test func parallelForRunsEveryTaskOnceOnDistinctWorkers() {
        for threads in [1, 2, 3, 8] {
            let context = ComputeContext(threads: threads)
            #expect(context.threads == threads)
            let hits = Mutex([Int](repeating: 0, count: 1000))
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

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
}

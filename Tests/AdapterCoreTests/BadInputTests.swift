import AdapterCore
import Testing

/// Programmer errors stop the process with a message naming the op and both shapes (exit tests run
/// the body in a child process).
@Suite struct BadInputTests {
    @Test func linearShapeMismatchNamesBothShapes() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = linear(Tensor(zeros: [8, 768]), weight: Tensor(zeros: [3072, 512]), context: ComputeContext(threads: 1))
        }
        let message = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        #expect(message.contains("linear: x [8, 768] does not match weight [3072, 512]"), "\(message)")
    }

    @Test func matmulAndLayerNormMismatches() async {
        await #expect(processExitsWith: .failure) {
            _ = matmul(Tensor(zeros: [2, 3, 4]), Tensor(zeros: [2, 5, 6]), context: ComputeContext(threads: 1))
        }
        await #expect(processExitsWith: .failure) {
            _ = layerNorm(Tensor(zeros: [2, 4]), weight: Tensor(zeros: [5]), bias: nil, context: ComputeContext(threads: 1))
        }
        await #expect(processExitsWith: .failure) {
            _ = Tensor(shape: [2, 2], scalars: [1, 2, 3])
        }
        await #expect(processExitsWith: .failure) {
            Tensor(zeros: [2, 2]).transposed().withUnsafeBufferPointer { _ in }
        }
    }
}

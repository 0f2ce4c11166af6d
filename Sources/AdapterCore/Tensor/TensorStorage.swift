// The heap buffer behind `Tensor`: a final class owning 64-byte-aligned fp32 memory.

/// Alignment, in bytes, of every tensor buffer and every workspace (one cache line; the C kernels'
/// workspace contract and full AVX-512 vectors need it).
public let tensorAlignment = 64

/// Owns `capacity` fp32 elements of 64-byte-aligned memory. Shared between `Tensor` values and
/// their views; `Tensor` copies it before a write when it is shared (copy-on-write), so it is never
/// written while another value can observe it. That discipline is what makes `@unchecked Sendable`
/// sound here.
@usableFromInline
final class TensorStorage: @unchecked Sendable {
    /// First element (64-byte aligned).
    @usableFromInline let base: UnsafeMutablePointer<Float>
    /// Number of elements allocated.
    @usableFromInline let capacity: Int

    /// Allocates `capacity` elements (uninitialised contents; fp32 has no invalid bit patterns).
    @usableFromInline
    init(capacity: Int) {
        require(capacity >= 0, "TensorStorage: negative capacity \(capacity)")
        self.capacity = capacity
        // Round up to whole cache lines so SIMD loops may overrun into the padding harmlessly.
        let bytes = max((capacity * MemoryLayout<Float>.stride + tensorAlignment - 1) / tensorAlignment, 1)
            * tensorAlignment
        let raw = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: tensorAlignment)
        base = raw.bindMemory(to: Float.self, capacity: bytes / MemoryLayout<Float>.stride)
    }

    deinit {
        UnsafeMutableRawPointer(base).deallocate()
    }
}

// Tensor: an fp32 n-dimensional array with value semantics, copy-on-write storage and strided views.

/// An fp32 n-dimensional array with value semantics.
///
/// Storage is a reference-counted, 64-byte-aligned buffer shared between copies and views and copied
/// before the first write through a value that does not own it uniquely (copy-on-write). A tensor is
/// `shape` plus `strides` (in elements) plus an offset into that buffer, so `transposed()`,
/// `slice(rows:)`, `permuted(_:)` and `reshaped(_:)` of a contiguous tensor are views that copy
/// nothing. Logical order is row-major (C order): the last index varies fastest.
///
/// Raw memory is reachable only inside the closure-scoped `withUnsafe…` methods; no API returns an
/// escaping pointer. A zero-dimensional tensor (`shape == []`) holds one scalar. Dimensions of size 0
/// are allowed (the tensor is empty).
public struct Tensor: Sendable {
    @usableFromInline var storage: TensorStorage
    /// Offset of element `[0, 0, …]` in `storage`, in elements.
    @usableFromInline var offset: Int
    /// Size of each dimension, outermost first, e.g. `[batch, seq, hidden]`.
    public private(set) var shape: [Int]
    /// Distance in elements between consecutive indices of each dimension. Row-major contiguous
    /// tensors have `strides[i] == shape[i+1] * strides[i+1]` and `strides.last == 1`.
    public private(set) var strides: [Int]
    /// Number of elements (product of `shape`; 1 for a zero-dimensional tensor).
    public private(set) var count: Int

    // MARK: Initialisers

    /// Internal: a tensor over fresh, uninitialised, contiguous storage.
    @usableFromInline
    init(uninitializedShape shape: [Int], op: String = "Tensor") {
        let n = Tensor.elementCount(of: shape, op: op)
        storage = TensorStorage(capacity: n)
        offset = 0
        self.shape = shape
        strides = Tensor.contiguousStrides(for: shape)
        count = n
    }

    /// Internal: a view over existing storage.
    @usableFromInline
    init(storage: TensorStorage, offset: Int, shape: [Int], strides: [Int]) {
        self.storage = storage
        self.offset = offset
        self.shape = shape
        self.strides = strides
        count = shape.reduce(1, *)
    }

    /// A tensor of zeros.
    /// - Parameter shape: the size of each dimension; every entry must be `>= 0`.
    public init(zeros shape: [Int]) {
        self.init(shape: shape, repeating: 0)
    }

    /// A tensor with every element equal to `value`.
    /// - Parameters:
    ///   - shape: the size of each dimension; every entry must be `>= 0`.
    ///   - value: the fill value.
    public init(shape: [Int], repeating value: Float) {
        self.init(uninitializedShape: shape, op: "Tensor(shape:repeating:)")
        storage.base.initialize(repeating: value, count: count)
    }

    /// A tensor holding `scalars` in row-major order.
    /// - Parameters:
    ///   - shape: the size of each dimension.
    ///   - scalars: exactly `shape.reduce(1, *)` values, last index fastest.
    /// - Precondition: `scalars.count` equals the element count of `shape`.
    public init(shape: [Int], scalars: [Float]) {
        self.init(uninitializedShape: shape, op: "Tensor(shape:scalars:)")
        require(scalars.count == count,
                     "Tensor(shape:scalars:): shape \(shape) holds \(count) elements, got \(scalars.count) scalars")
        scalars.withUnsafeBufferPointer { src in
            if let s = src.baseAddress { storage.base.update(from: s, count: count) }
        }
    }

    /// A tensor whose contents are written by `body`, which receives the whole (uninitialised,
    /// contiguous, 64-byte-aligned) buffer of `shape.reduce(1, *)` elements in row-major order and
    /// must write every element. The buffer must not escape `body`.
    /// - Parameters:
    ///   - shape: the size of each dimension.
    ///   - body: fills the buffer; may throw, in which case the tensor is discarded.
    /// - Throws: whatever `body` throws.
    public init(shape: [Int], initializingWith body: (UnsafeMutableBufferPointer<Float>) throws -> Void) rethrows {
        self.init(uninitializedShape: shape, op: "Tensor(shape:initializingWith:)")
        try body(UnsafeMutableBufferPointer(start: storage.base, count: count))
    }

    /// A zero-dimensional tensor holding one scalar.
    public init(_ scalar: Float) {
        self.init(shape: [], scalars: [scalar])
    }

    // MARK: Properties

    /// Number of dimensions (`shape.count`).
    public var rank: Int { shape.count }

    /// Whether the elements lie in row-major order with no gaps (dimensions of size 1 may carry any
    /// stride). Contiguous tensors can be handed to `withUnsafeBufferPointer` and reshaped as views.
    public var isContiguous: Bool {
        var expected = 1
        for d in stride(from: shape.count - 1, through: 0, by: -1) where shape[d] != 1 {
            if shape[d] == 0 { return true }
            if strides[d] != expected { return false }
            expected *= shape[d]
        }
        return true
    }

    /// All elements in logical row-major order (a copy).
    public var scalars: [Float] {
        if isContiguous {
            return Array(UnsafeBufferPointer(start: storage.base + offset, count: count))
        }
        var out = [Float]()
        out.reserveCapacity(count)
        let base = storage.base
        forEachOffset { out.append(base[$0]) }
        return out
    }

    // MARK: Raw access

    /// Calls `body` with the elements of a contiguous tensor in row-major order. The pointer is
    /// valid only inside `body`.
    /// - Precondition: `isContiguous` (call `contiguous()` first otherwise).
    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        require(isContiguous, "Tensor.withUnsafeBufferPointer: tensor \(shape) with strides \(strides) is not contiguous")
        return try withExtendedLifetime(storage) {
            try body(UnsafeBufferPointer(start: storage.base + offset, count: count))
        }
    }

    /// Calls `body` with mutable access to the elements in row-major order. A shared or
    /// non-contiguous tensor is first copied into fresh contiguous storage that this value owns, so
    /// writes never reach other values. `body` may write through the buffer but must not replace it.
    public mutating func withUnsafeMutableBufferPointer<R>(
        _ body: (inout UnsafeMutableBufferPointer<Float>) throws -> R
    ) rethrows -> R {
        makeUniqueAndContiguous()
        let start = storage.base + offset
        var buffer = UnsafeMutableBufferPointer(start: start, count: count)
        defer {
            require(buffer.baseAddress == start && buffer.count == count,
                         "Tensor.withUnsafeMutableBufferPointer: the closure replaced the buffer")
        }
        return try withExtendedLifetime(storage) { try body(&buffer) }
    }

    // MARK: Element access

    /// The element at `indices` (one index per dimension, each in `0..<shape[d]`). Setting copies
    /// shared storage first (copy-on-write).
    public subscript(_ indices: Int...) -> Float {
        get { storage.base[elementOffset(indices)] }
        set {
            makeUnique()
            storage.base[elementOffset(indices)] = newValue
        }
    }

    @usableFromInline
    func elementOffset(_ indices: [Int]) -> Int {
        require(indices.count == shape.count,
                     "Tensor subscript: \(indices.count) indices for a tensor of shape \(shape)")
        var o = offset
        for d in 0..<indices.count {
            require(indices[d] >= 0 && indices[d] < shape[d],
                         "Tensor subscript: index \(indices) out of range for shape \(shape)")
            o += indices[d] * strides[d]
        }
        return o
    }

    // MARK: Views and copies

    /// The same elements with a new shape. A view (no copy) when the tensor is contiguous, otherwise
    /// a contiguous copy. One entry may be `-1`, meaning "whatever makes the counts match".
    /// - Precondition: the element counts match.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        var resolved = newShape
        if let inferred = newShape.firstIndex(of: -1) {
            require(newShape.filter({ $0 == -1 }).count == 1,
                         "reshaped: more than one -1 in \(newShape)")
            let known = newShape.enumerated().filter { $0.offset != inferred }.map(\.element).reduce(1, *)
            require(known > 0 && count % known == 0,
                         "reshaped: cannot reshape \(shape) into \(newShape)")
            resolved[inferred] = count / known
        }
        let n = Tensor.elementCount(of: resolved, op: "reshaped")
        require(n == count, "reshaped: tensor \(shape) (\(count) elements) does not match shape \(newShape) (\(n) elements)")
        let source = isContiguous ? self : contiguous()
        return Tensor(storage: source.storage, offset: source.offset, shape: resolved,
                      strides: Tensor.contiguousStrides(for: resolved))
    }

    /// The transpose of a 2-D tensor `[rows, cols]` as a `[cols, rows]` view (strides swapped).
    /// - Precondition: `rank == 2`.
    public func transposed() -> Tensor {
        require(rank == 2, "transposed: tensor \(shape) is not 2-D (use permuted(_:))")
        return Tensor(storage: storage, offset: offset, shape: [shape[1], shape[0]], strides: [strides[1], strides[0]])
    }

    /// A view with the dimensions reordered: dimension `d` of the result is dimension `axes[d]` of
    /// this tensor (like `torch.permute`). E.g. `[batch, seq, heads, headDim].permuted([0, 2, 1, 3])`
    /// is `[batch, heads, seq, headDim]`.
    /// - Precondition: `axes` is a permutation of `0..<rank`.
    public func permuted(_ axes: [Int]) -> Tensor {
        require(axes.count == rank && Set(axes) == Set(0..<rank),
                     "permuted: \(axes) is not a permutation of the dimensions of \(shape)")
        return Tensor(storage: storage, offset: offset, shape: axes.map { shape[$0] }, strides: axes.map { strides[$0] })
    }

    /// A view of rows `rows` along dimension 0 (`[rows.count, …]`).
    /// - Precondition: `rank >= 1` and `rows` lies within `0...shape[0]`.
    public func slice(rows: Range<Int>) -> Tensor {
        require(rank >= 1, "slice(rows:): tensor is zero-dimensional")
        require(rows.lowerBound >= 0 && rows.upperBound <= shape[0],
                     "slice(rows:): rows \(rows) out of range for shape \(shape)")
        var s = shape
        s[0] = rows.count
        return Tensor(storage: storage, offset: offset + (rows.isEmpty ? 0 : rows.lowerBound * strides[0]),
                      shape: s, strides: strides)
    }

    /// A view of index `index` along `axis`, with that dimension removed (like `t[:, index]` in
    /// PyTorch for `axis == 1`). E.g. the `[CLS]` vectors of `[batch, seq, hidden]` are
    /// `selecting(0, alongAxis: 1)`, a `[batch, hidden]` view with row stride `seq·hidden`.
    /// - Precondition: `0 <= axis < rank` and `0 <= index < shape[axis]`.
    public func selecting(_ index: Int, alongAxis axis: Int = 0) -> Tensor {
        require(axis >= 0 && axis < rank, "selecting: axis \(axis) out of range for shape \(shape)")
        require(index >= 0 && index < shape[axis], "selecting: index \(index) out of range for shape \(shape) along axis \(axis)")
        var s = shape, st = strides
        s.remove(at: axis)
        st.remove(at: axis)
        return Tensor(storage: storage, offset: offset + index * strides[axis], shape: s, strides: st)
    }

    /// This tensor if it is already contiguous, otherwise a contiguous copy in row-major order.
    public func contiguous() -> Tensor {
        if isContiguous { return self }
        var out = Tensor(uninitializedShape: shape)
        out.copyElements(from: self)
        return out
    }

    // MARK: Internals

    /// Row-major strides for `shape`.
    @usableFromInline
    static func contiguousStrides(for shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        var s = 1
        for d in stride(from: shape.count - 1, through: 0, by: -1) {
            strides[d] = s
            s *= max(shape[d], 1)
        }
        return strides
    }

    /// Element count of `shape`, checking for negative sizes and overflow.
    @usableFromInline
    static func elementCount(of shape: [Int], op: String) -> Int {
        var n = 1
        for s in shape {
            require(s >= 0, "\(op): negative dimension in shape \(shape)")
            let (p, overflow) = n.multipliedReportingOverflow(by: s)
            require(!overflow, "\(op): shape \(shape) overflows Int")
            n = p
        }
        return n
    }

    /// Calls `body` with the storage offset of every element, in logical row-major order.
    @inline(__always)
    func forEachOffset(_ body: (Int) -> Void) {
        if count == 0 { return }
        if rank == 0 { body(offset); return }
        let last = rank - 1
        let innerCount = shape[last], innerStride = strides[last]
        var index = [Int](repeating: 0, count: rank)
        var rowStart = offset
        while true {
            var o = rowStart
            for _ in 0..<innerCount {
                body(o)
                o += innerStride
            }
            // Advance the odometer over the outer dimensions.
            var d = last - 1
            while d >= 0 {
                index[d] += 1
                rowStart += strides[d]
                if index[d] < shape[d] { break }
                rowStart -= strides[d] * index[d]
                index[d] = 0
                d -= 1
            }
            if d < 0 { return }
        }
    }

    /// Copies `source`'s elements (same shape) into self, which must own its storage uniquely.
    mutating func copyElements(from source: Tensor) {
        require(source.shape == shape, "copy: shape \(source.shape) does not match \(shape)")
        let dst = storage.base, src = source.storage.base
        if isContiguous && source.isContiguous {
            (dst + offset).update(from: src + source.offset, count: count)
            return
        }
        if isContiguous && count > 0 && rank >= 2 {
            Tensor.copyStrided(from: src + source.offset, shape: shape, strides: source.strides, to: dst + offset)
            return
        }
        var offsets = [Int]()
        offsets.reserveCapacity(count)
        forEachOffset { offsets.append($0) }
        var i = 0
        source.forEachOffset { o in
            dst[offsets[i]] = src[o]
            i += 1
        }
    }

    /// Row-major copy of a strided source into contiguous `dst`: the leading dimensions are walked
    /// with an odometer; the last two are copied row by row, or in 32×32 blocks when the source is
    /// transposed there (unit stride in the second-to-last dimension), so both sides stay in cache.
    static func copyStrided(from src: UnsafePointer<Float>, shape: [Int], strides: [Int],
                            to dst: UnsafeMutablePointer<Float>) {
        let r = shape.count
        let rows = shape[r - 2], cols = shape[r - 1], rs = strides[r - 2], cs = strides[r - 1]
        let outerShape = Array(shape[..<(r - 2)]), outerStrides = Array(strides[..<(r - 2)])
        let outerCount = outerShape.reduce(1, *)
        var index = [Int](repeating: 0, count: outerShape.count)
        var srcOffset = 0
        let transposed = cs != 1 && rs == 1
        for o in 0..<outerCount {
            let s = src + srcOffset, d = dst + o * rows * cols
            if transposed {
                let block = 32
                for i0 in stride(from: 0, to: rows, by: block) {
                    let i1 = min(rows, i0 + block)
                    for j0 in stride(from: 0, to: cols, by: block) {
                        let j1 = min(cols, j0 + block)
                        for i in i0..<i1 {
                            for j in j0..<j1 { d[i * cols + j] = s[i + j * cs] }
                        }
                    }
                }
            } else if cs == 1 {
                for i in 0..<rows { (d + i * cols).update(from: s + i * rs, count: cols) }
            } else {
                for i in 0..<rows {
                    for j in 0..<cols { d[i * cols + j] = s[i * rs + j * cs] }
                }
            }
            // Advance the odometer over the leading dimensions.
            var k = outerShape.count - 1
            while k >= 0 {
                index[k] += 1
                srcOffset += outerStrides[k]
                if index[k] < outerShape[k] { break }
                srcOffset -= outerStrides[k] * index[k]
                index[k] = 0
                k -= 1
            }
        }
    }

    /// Makes the storage uniquely owned by this value (copying into contiguous storage if shared).
    @usableFromInline
    mutating func makeUnique() {
        if !isKnownUniquelyReferenced(&storage) {
            let copy = Tensor.contiguousCopy(of: self)
            self = copy
        }
    }

    /// Makes the storage uniquely owned and the layout contiguous.
    @usableFromInline
    mutating func makeUniqueAndContiguous() {
        if !isKnownUniquelyReferenced(&storage) || !isContiguous {
            self = Tensor.contiguousCopy(of: self)
        }
    }

    @usableFromInline
    static func contiguousCopy(of t: Tensor) -> Tensor {
        var out = Tensor(uninitializedShape: t.shape)
        out.copyElements(from: t)
        return out
    }
}

extension Tensor: Equatable {
    /// Equal when the shapes match and every element compares equal (layout is ignored; NaN is
    /// never equal, as for `Float`).
    public static func == (lhs: Tensor, rhs: Tensor) -> Bool {
        lhs.shape == rhs.shape && lhs.scalars == rhs.scalars
    }
}

extension Tensor: CustomStringConvertible {
    /// Shape plus the first few elements, e.g. `Tensor([2, 3]: [1.0, 2.0, 3.0, 4.0, 5.0, 6.0])`.
    public var description: String {
        let head = scalars.prefix(8).map { "\($0)" }.joined(separator: ", ")
        return "Tensor(\(shape): [\(head)\(count > 8 ? ", …" : "")])"
    }
}

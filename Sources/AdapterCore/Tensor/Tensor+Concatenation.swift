// Concatenation and stacking (copies).

extension Tensor {
    /// The tensors joined along `axis`; all other dimensions must match.
    /// E.g. `[2, 3]` and `[4, 3]` along 0 give `[6, 3]`.
    /// - Precondition: at least one tensor, equal ranks, equal sizes off `axis`, `0 <= axis < rank`.
    public init(concatenating tensors: [Tensor], alongAxis axis: Int = 0) {
        require(!tensors.isEmpty, "Tensor(concatenating:): no tensors")
        let first = tensors[0]
        require(axis >= 0 && axis < first.rank, "Tensor(concatenating:): axis \(axis) out of range for \(first.shape)")
        var shape = first.shape
        shape[axis] = 0
        for t in tensors {
            var s = t.shape
            require(s.count == first.rank, "Tensor(concatenating:): \(t.shape) does not match \(first.shape)")
            s[axis] = first.shape[axis]
            require(s == first.shape, "Tensor(concatenating:): \(t.shape) does not match \(first.shape) off axis \(axis)")
            shape[axis] += t.shape[axis]
        }
        self.init(uninitializedShape: shape, op: "Tensor(concatenating:)")
        // outer = product of dims before axis; each tensor contributes a block of shape[axis]*inner.
        let outer = shape[..<axis].reduce(1, *), inner = shape[(axis + 1)...].reduce(1, *)
        let dst = storage.base
        var column = 0
        for t in tensors {
            let c = t.contiguous()
            let width = t.shape[axis] * inner, src = c.basePointer
            withExtendedLifetime(c) {
                for o in 0..<outer {
                    (dst + o * shape[axis] * inner + column).update(from: src + o * width, count: width)
                }
            }
            column += width
        }
    }

    /// The tensors stacked along a new dimension at `axis`: n tensors of shape `s` give
    /// `s[..<axis] + [n] + s[axis...]` (e.g. adapter outputs `[tokens, hidden]` stacked at 1 give
    /// `[tokens, n, hidden]`).
    /// - Precondition: at least one tensor, all of the same shape, `0 <= axis <= rank`.
    public init(stacking tensors: [Tensor], alongAxis axis: Int = 0) {
        require(!tensors.isEmpty, "Tensor(stacking:): no tensors")
        let s = tensors[0].shape
        require(axis >= 0 && axis <= s.count, "Tensor(stacking:): axis \(axis) out of range for \(s)")
        for t in tensors { require(t.shape == s, "Tensor(stacking:): \(t.shape) does not match \(s)") }
        let expanded = Array(s[..<axis]) + [1] + Array(s[axis...])
        self.init(concatenating: tensors.map { $0.reshaped(expanded) }, alongAxis: axis)
    }
}

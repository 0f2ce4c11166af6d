// Internal raw access for the ops. Callers keep the tensor alive (withExtendedLifetime) while they
// use the pointer, and write only through tensors they own uniquely (fresh outputs, or inout
// tensors after `prepareOutput`).

extension Tensor {
    /// Address of element `[0, 0, …]` for reading.
    var basePointer: UnsafePointer<Float> { UnsafePointer(storage.base + offset) }

    /// Address of element `[0, 0, …]` for writing. Only valid on a uniquely owned tensor.
    var mutableBasePointer: UnsafeMutablePointer<Float> { storage.base + offset }

    /// Makes this tensor a uniquely owned, contiguous destination. When `preserveContents` is false
    /// the old values are not copied (the caller overwrites every element: the beta-zero rule).
    mutating func prepareOutput(preserveContents: Bool) {
        if isKnownUniquelyReferenced(&storage) && isContiguous { return }
        if preserveContents {
            self = Tensor.contiguousCopy(of: self)
        } else {
            self = Tensor(uninitializedShape: shape)
        }
    }

    /// Makes this tensor uniquely owned, keeping its layout when it already is (so strided
    /// destinations such as a permuted view stay strided); a shared one becomes a contiguous copy.
    mutating func prepareStridedOutput(preserveContents: Bool) {
        if isKnownUniquelyReferenced(&storage) { return }
        self = preserveContents ? Tensor.contiguousCopy(of: self) : Tensor(uninitializedShape: shape)
    }
}

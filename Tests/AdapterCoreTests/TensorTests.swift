import AdapterCore
import Testing

@Suite struct TensorTests {
    @Test func initialisersAndScalars() {
        let z = Tensor(zeros: [2, 3])
        #expect(z.shape == [2, 3] && z.count == 6 && z.strides == [3, 1] && z.isContiguous)
        #expect(z.scalars == [Float](repeating: 0, count: 6))
        #expect(Tensor(shape: [4], repeating: 2.5).scalars == [2.5, 2.5, 2.5, 2.5])
        let t = Tensor(shape: [2, 2], scalars: [1, 2, 3, 4])
        #expect(t[1, 0] == 3 && t[0, 1] == 2)
        let f = Tensor(shape: [3]) { buf in
            for i in buf.indices { buf[i] = Float(i * 10) }
        }
        #expect(f.scalars == [0, 10, 20])
        let s = Tensor(7)
        #expect(s.shape == [] && s.count == 1 && s.scalars == [7])
        let empty = Tensor(zeros: [0, 5])
        #expect(empty.count == 0 && empty.scalars.isEmpty && empty.isContiguous)
    }

    @Test func storageIs64ByteAligned() {
        for n in [1, 3, 17, 1000] {
            Tensor(zeros: [n]).withUnsafeBufferPointer { buf in
                #expect(UInt(bitPattern: buf.baseAddress) % 64 == 0)
            }
        }
    }

    @Test func copyOnWriteKeepsValueSemantics() {
        let a = Tensor(shape: [2, 2], scalars: [1, 2, 3, 4])
        var b = a
        b[0, 0] = 9
        #expect(a.scalars == [1, 2, 3, 4])
        #expect(b.scalars == [9, 2, 3, 4])
        var c = a
        c.withUnsafeMutableBufferPointer { $0[3] = -1 }
        #expect(a.scalars == [1, 2, 3, 4] && c.scalars == [1, 2, 3, -1])
    }

    @Test func writingThroughAViewDoesNotChangeTheBase() {
        let base = Tensor(shape: [3, 2], scalars: [1, 2, 3, 4, 5, 6])
        var v = base.slice(rows: 1..<3)
        #expect(v.shape == [2, 2] && v.scalars == [3, 4, 5, 6] && v.isContiguous)
        v[0, 0] = 100
        #expect(base.scalars == [1, 2, 3, 4, 5, 6])
        #expect(v.scalars == [100, 4, 5, 6])
    }

    @Test func uniqueTensorIsMutatedInPlace() {
        var t = Tensor(zeros: [1024])
        let before = t.withUnsafeBufferPointer { UInt(bitPattern: $0.baseAddress) }
        t[5] = 1
        t.withUnsafeMutableBufferPointer { $0[6] = 2 }
        let after = t.withUnsafeBufferPointer { UInt(bitPattern: $0.baseAddress) }
        #expect(before == after)
        #expect(t[5] == 1 && t[6] == 2)
    }

    @Test func transposeIsAStridedView() {
        let t = Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])
        let tt = t.transposed()
        #expect(tt.shape == [3, 2] && tt.strides == [1, 3] && !tt.isContiguous)
        #expect(tt.scalars == [1, 4, 2, 5, 3, 6])
        #expect(tt[2, 1] == 6)
        #expect(tt.contiguous().isContiguous && tt.contiguous().scalars == tt.scalars)
        #expect(tt.transposed().isContiguous && tt.transposed() == t)
        // Reshaping a non-contiguous tensor copies.
        #expect(tt.reshaped([6]).scalars == [1, 4, 2, 5, 3, 6])
        // Mutable access to a non-contiguous tensor makes it contiguous first.
        var m = tt
        m.withUnsafeMutableBufferPointer { $0[1] = 40 }
        #expect(m.isContiguous && m.scalars == [1, 40, 2, 5, 3, 6] && t.scalars == [1, 2, 3, 4, 5, 6])
    }

    @Test func permuteAndReshape() {
        // [batch 2, seq 3, heads 2, headDim 2] -> [batch, heads, seq, headDim]
        let x = Tensor(shape: [2, 3, 2, 2], scalars: (0..<24).map(Float.init))
        let p = x.permuted([0, 2, 1, 3])
        #expect(p.shape == [2, 2, 3, 2] && p.strides == [12, 2, 4, 1])
        #expect(p[1, 1, 2, 0] == x[1, 2, 1, 0])
        #expect(p.permuted([0, 2, 1, 3]).isContiguous)
        let r = x.reshaped([6, -1])
        #expect(r.shape == [6, 4] && r.scalars == x.scalars)
        // A view of a view keeps the offset.
        let s = r.slice(rows: 2..<4).reshaped([8])
        #expect(s.scalars == (8..<16).map(Float.init))
    }

    /// `contiguous()` of every permutation of a rank-4 tensor (row copies, blocked transposes with
    /// edge blocks, general strides) and of a strided slice matches element-by-element indexing.
    @Test func contiguousCopiesOfStridedViews() {
        let shape = [3, 5, 37, 33]
        let x = Tensor(shape: shape, scalars: (0..<(3 * 5 * 37 * 33)).map(Float.init))
        func permutations(_ a: [Int]) -> [[Int]] {
            a.count <= 1 ? [a] : a.indices.flatMap { i in
                permutations(Array(a[..<i] + a[(i + 1)...])).map { [a[i]] + $0 }
            }
        }
        for axes in permutations([0, 1, 2, 3]) {
            let p = x.permuted(axes), c = p.contiguous()
            #expect(c.isContiguous && c.shape == p.shape)
            var expected = [Float]()
            for i in 0..<p.shape[0] { for j in 0..<p.shape[1] { for k in 0..<p.shape[2] { for l in 0..<p.shape[3] {
                expected.append(p[i, j, k, l])
            } } } }
            #expect(c.scalars == expected, "axes \(axes)")
        }
        let window = x.reshaped([15, 37, 33]).permuted([0, 2, 1]).slice(rows: 4..<9)
        #expect(window.contiguous().scalars == window.scalars)
    }

    @Test func selectingDropsADimension() {
        let x = Tensor(shape: [2, 3, 4], scalars: (0..<24).map(Float.init))
        let cls = x.selecting(0, alongAxis: 1)
        #expect(cls.shape == [2, 4] && cls.strides == [12, 1] && cls.scalars == [0, 1, 2, 3, 12, 13, 14, 15])
        #expect(x.selecting(1).scalars == (12..<24).map(Float.init))
        #expect(x.selecting(3, alongAxis: 2).scalars == [3, 7, 11, 15, 19, 23])
        #expect(x.selecting(2, alongAxis: 1).selecting(1).shape == [4])
    }

    @Test func sliceOfTransposeAndEmptySlices() {
        let t = Tensor(shape: [3, 2], scalars: [1, 2, 3, 4, 5, 6]).transposed()  // [2, 3]
        #expect(t.slice(rows: 1..<2).scalars == [2, 4, 6])
        #expect(t.slice(rows: 2..<2).count == 0)
    }

    @Test func equalityIgnoresLayout() {
        let a = Tensor(shape: [2, 2], scalars: [1, 3, 2, 4]).transposed()
        #expect(a == Tensor(shape: [2, 2], scalars: [1, 2, 3, 4]))
        #expect(a != Tensor(shape: [4], scalars: [1, 2, 3, 4]))
    }
}

@Suite struct ConcatenationTests {
    @Test func concatenateAndStack() {
        let a = Tensor(shape: [2, 2], scalars: [1, 2, 3, 4]), b = Tensor(shape: [1, 2], scalars: [5, 6])
        let c0 = Tensor(concatenating: [a, b], alongAxis: 0)
        #expect(c0.shape == [3, 2] && c0.scalars == [1, 2, 3, 4, 5, 6])
        let c1 = Tensor(concatenating: [a, a.transposed()], alongAxis: 1)
        #expect(c1.shape == [2, 4] && c1.scalars == [1, 2, 1, 3, 3, 4, 2, 4])
        let s1 = Tensor(stacking: [a, a.transposed(), a], alongAxis: 1)
        #expect(s1.shape == [2, 3, 2])
        #expect(s1.scalars == [1, 2, 1, 3, 1, 2, 3, 4, 2, 4, 3, 4])
        let s0 = Tensor(stacking: [a, a], alongAxis: 0)
        #expect(s0.shape == [2, 2, 2] && s0.scalars == [1, 2, 3, 4, 1, 2, 3, 4])
        let s2 = Tensor(stacking: [a, a], alongAxis: 2)
        #expect(s2.shape == [2, 2, 2] && s2.scalars == [1, 1, 2, 2, 3, 3, 4, 4])
    }
}

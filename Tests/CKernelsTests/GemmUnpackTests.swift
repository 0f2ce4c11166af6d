// ck_gemm_unpack_b: the exact inverse of ck_gemm_pack_b on every ISA layout (what lets a caller hold only
// the packed copy of a weight).
import CKernels
import Testing
import TestSupport

@Suite struct GemmUnpackTests {
    /// Pack then unpack, both transposes each way, sizes around the panel widths (16, 48) and odd k:
    /// the original values come back bitwise, and nothing outside the destination rows is written.
    @Test func unpackInvertsPackOnEveryISA() {
        var rng = TestRNG(seed: 31)
        for isa in GemmBackend.isas {
            for (n, k) in [(1, 1), (47, 5), (48, 9), (49, 33), (100, 17), (3 * 48 + 7, 64)] {
                for packTrans in [false, true] {
                    // B as stored: [k, n] (no-trans) or [n, k] (trans), with one column of padding.
                    let rows = packTrans ? n : k, cols = packTrans ? k : n, ld = cols + 1
                    var b = nanFilled(rows * ld)
                    for i in 0..<rows { for j in 0..<cols { b[i * ld + j] = rng.uniform(-2, 2) } }
                    let packed = AlignedWorkspace(bytes: ck_gemm_pack_b_size(Int64(n), Int64(k)))
                    let st = withISA(isa) {
                        b.withUnsafeBufferPointer {
                            ck_gemm_pack_b(packTrans ? CK_TRANS : CK_NO_TRANS, Int64(n), Int64(k), $0.baseAddress,
                                           Int64(ld), packed.ptr, packed.bytes)
                        }
                    }
                    #expect(st == CK_OK)
                    for unpackTrans in [false, true] {
                        let urows = unpackTrans ? n : k, ucols = unpackTrans ? k : n, uld = ucols + 2
                        var out = nanFilled(urows * uld)
                        let su = out.withUnsafeMutableBufferPointer {
                            ck_gemm_unpack_b(packed.ptr, unpackTrans ? CK_TRANS : CK_NO_TRANS, $0.baseAddress, Int64(uld))
                        }
                        #expect(su == CK_OK)
                        // Expected: op(B)[p][j] = B[p][j] (no-trans) or B[j][p] (trans).
                        var want = nanFilled(urows * uld)
                        for p in 0..<k {
                            for j in 0..<n {
                                let v = packTrans ? b[j * ld + p] : b[p * ld + j]
                                if unpackTrans { want[j * uld + p] = v } else { want[p * uld + j] = v }
                            }
                        }
                        expectBitwiseEqual(out, want, "isa \(isa.rawValue) n \(n) k \(k) pack T \(packTrans) unpack T \(unpackTrans)")
                    }
                }
            }
        }
    }

    @Test func unpackValidation() {
        let packed = AlignedWorkspace(bytes: ck_gemm_pack_b_size(10, 8))
        let b = [Float](repeating: 1, count: 80)
        let st = b.withUnsafeBufferPointer { ck_gemm_pack_b(CK_NO_TRANS, 10, 8, $0.baseAddress, 10, packed.ptr, packed.bytes) }
        #expect(st == CK_OK)
        var out = [Float](repeating: 0, count: 100)
        out.withUnsafeMutableBufferPointer { o in
            #expect(ck_gemm_unpack_b(nil, CK_NO_TRANS, o.baseAddress, 10) == CK_ERR_NULL_POINTER)
            #expect(ck_gemm_unpack_b(packed.ptr, CK_NO_TRANS, nil, 10) == CK_ERR_NULL_POINTER)
            #expect(ck_gemm_unpack_b(packed.ptr, CK_NO_TRANS, o.baseAddress, 9) == CK_ERR_BAD_LD)   // needs ld >= n = 10
            #expect(ck_gemm_unpack_b(packed.ptr, CK_TRANS, o.baseAddress, 7) == CK_ERR_BAD_LD)      // needs ld >= k = 8
            #expect(ck_gemm_unpack_b(packed.ptr, ck_trans(rawValue: 7), o.baseAddress, 10) == CK_ERR_BAD_ARG)
        }
        let notPacked = AlignedWorkspace(bytes: 128)
        notPacked.ptr.initializeMemory(as: UInt8.self, repeating: 0, count: 128)
        out.withUnsafeMutableBufferPointer {
            #expect(ck_gemm_unpack_b(notPacked.ptr, CK_NO_TRANS, $0.baseAddress, 10) == CK_ERR_BAD_ARG)
        }
    }
}

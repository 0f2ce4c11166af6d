// The GEMM driver's tile grid (one tile per worker for a single product) and pre-packed weights held without
// their plain copy.
@testable import AdapterCore
import Foundation
import Testing
import TestSupport

private let reportErrors = ProcessInfo.processInfo.environment["ADAPTERCORE_REPORT_ERRORS"] == "1"

@Suite struct GemmGridTests {
    /// Tasks of one product at the shapes: one per worker, splitting the larger of M/N at the
    /// granules, so every worker gets exactly one tile (no worker packs A or B more than once per block).
    /// `ADAPTERCORE_REPORT_ERRORS=1` prints the grids.
    @Test func singleProductIsOneTilePerWorker() {
        let shapes = [(128, 768, 768), (128, 768, 3072), (128, 3072, 768), (1024, 768, 3072), (128, 384, 1536),
                      (128, 1536, 384), (1024, 3072, 768), (128, 768, 2304)]
        for (m, k, n) in shapes {
            for threads in [1, 2, 3, 4] {
                let g = GemmGrid(batch: 1, m: m, n: n, k: k, threads: threads)
                let mTiles = (m + g.mTile - 1) / g.mTile, nTiles = (n + g.nTile - 1) / g.nTile
                if reportErrors {
                    print("GemmGrid m \(m) k \(k) n \(n) threads \(threads): \(mTiles)×\(nTiles) tiles of \(g.mTile)×\(g.nTile)")
                }
                #expect(mTiles * nTiles == threads, "m \(m) n \(n) threads \(threads)")
                #expect(mTiles == 1 || nTiles == 1)
                if n >= m { #expect(g.nTile % 48 == 0 || nTiles == 1) } else { #expect(g.mTile % 16 == 0) }
                // The tiles cover the output and are nearly equal (the last one is the remainder).
                #expect((mTiles - 1) * g.mTile < m && (nTiles - 1) * g.nTile < n)
            }
        }
    }

    /// Batches: whole items when the batch balances the workers, otherwise items cut so that the task count is
    /// a multiple of the worker count; tiny products are never cut.
    @Test func batchesAndSmallProducts() {
        func tasks(_ batch: Int, _ m: Int, _ n: Int, _ k: Int, _ threads: Int) -> Int {
            let g = GemmGrid(batch: batch, m: m, n: n, k: k, threads: threads)
            return batch * ((m + g.mTile - 1) / g.mTile) * ((n + g.nTile - 1) / g.nTile)
        }
        #expect(tasks(12, 128, 128, 64, 2) == 12)    // attention scores: 12 heads, 2 workers
        #expect(tasks(3, 512, 512, 64, 2) == 6)      // 3 items on 2 workers: each cut in 2
        #expect(tasks(2, 512, 512, 64, 2) == 2)
        #expect(tasks(1, 16, 16, 16, 4) == 1)        // below the split threshold
        #expect(tasks(8, 512, 512, 512, 1) == 8)     // one thread: whole items
    }
}

@Suite struct PackedOnlyWeightTests {
    /// A `PackedWeight` without its plain copy: `weight` is rebuilt bitwise, and every op gives bitwise the
    /// results of the plain weight, on the kernels backend (packed) and on the others (unpacked on demand).
    @Test func packedOnlyMatchesPlain() {
        var rng = TestRNG(seed: 41)
        let (rows, inF, outF) = (37, 70, 101)
        let x = randomTensor([rows, inF], &rng), w = randomTensor([outF, inF], &rng)
        let b = randomTensor([outF], &rng), r = randomTensor([rows, outF], &rng)
        for packForBackward in [false, true] {
            let lean = PackedWeight(w, packForBackward: packForBackward, keepPlainWeight: false)
            #expect(!lean.holdsPlainWeight && PackedWeight(w).holdsPlainWeight)
            #expect(lean.shape == [outF, inF])
            #expect(bits(lean.weight) == bits(w))
            for backend in [GemmBackend.kernels, .reference, .cblas] {
                for threads in [1, 2] {
                    let context = ComputeContext(threads: threads, gemmBackend: backend)
                    let plain = linear(x, weight: w, bias: b, activation: .gelu, residual: r, savePreactivation: true,
                                       context: context)
                    let got = linear(x, weight: lean, bias: b, activation: .gelu, residual: r, savePreactivation: true,
                                     context: context)
                    #expect(bits(got.output) == bits(plain.output), "\(backend) threads \(threads)")
                    #expect(bits(got.preactivation!) == bits(plain.preactivation!))
                    #expect(bits(tiledLinear(x, weight: lean, bias: b, context: context))
                            == bits(tiledLinear(x, weight: w, bias: b, context: context)))
                    #expect(bits(linearBackward(r, input: x, weight: lean, context: context))
                            == bits(linearBackward(r, input: x, weight: w, context: context)))
                }
            }
        }
    }
}

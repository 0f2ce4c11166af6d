@testable import AdapterCore
import Foundation
import Testing

@Suite struct SeededRNGTests {
    @Test func sameSeedSameSequence() {
        var a = SeededRNG(seed: 42), b = SeededRNG(seed: 42), c = SeededRNG(seed: 43)
        let sa = (0..<100).map { _ in a.next() }
        let sb = (0..<100).map { _ in b.next() }
        let sc = (0..<100).map { _ in c.next() }
        #expect(sa == sb)
        #expect(sa != sc)
        var s1 = SeededRNG(seed: 42, stream: 1)
        #expect((0..<100).map { _ in s1.next() } != sa)
    }

    /// Pins the exact bit patterns of the first outputs, so any change to the generator, the normal
    /// transform or the portable logarithm (which would break reproducibility of saved runs) fails.
    @Test func goldenValues() {
        var r = SeededRNG(seed: 2024)
        let raw = (0..<3).map { _ in r.next() }
        let u = r.uniform(-1, 1)
        let n = (0..<3).map { _ in r.normal(mean: 0, std: 1) }
        let golden = "\(raw) \(u.bitPattern) \(n.map(\.bitPattern))"
        #expect(golden == SeededRNGTests.expectedGolden, "update only on purpose: \(golden)")
    }
    // Raw values checked against an independent Python xoshiro256** + SplitMix64 implementation.
    static let expectedGolden =
        "[1029197146548041518, 14427268137155694693, 1329179038587965441] 3207477690 [1061792596, 3208381655, 3206722120]"

    @Test func portableLogMatchesLibm() {
        var r = SeededRNG(seed: 7)
        var worst = 0.0
        for _ in 0..<100_000 {
            let x = r.unitDouble() + 1e-300
            let err = abs(portableLog(x) - Foundation.log(x)) / abs(Foundation.log(x)).ulp
            worst = max(worst, err)
        }
        for x in [0.5, 2.0, 1e-300, 0.999999, 1.0000001, 1.4142135623730951, 1e300] {
            worst = max(worst, abs(portableLog(x) - Foundation.log(x)) / abs(Foundation.log(x)).ulp)
        }
        #expect(portableLog(1) == 0)
        // A handful of roundings in the series and the reconstruction: a few ulp at most.
        #expect(worst <= 4, "worst error \(worst) ulp")
    }

    @Test func momentsOfNormalAndUniform() {
        var r = SeededRNG(seed: 1)
        let n = 200_000
        var sum = 0.0, sumSq = 0.0
        for _ in 0..<n {
            let z = Double(r.normal(mean: 1, std: 2))
            sum += z
            sumSq += z * z
        }
        let mean = sum / Double(n), variance = sumSq / Double(n) - mean * mean
        // Standard errors: 2/sqrt(n) = 0.0045 for the mean, about 4*sqrt(2/n) = 0.0126 for the
        // variance; allow 5 of each.
        #expect(abs(mean - 1) < 0.023)
        #expect(abs(variance - 4) < 0.064)
        var lo: Float = 1, hi: Float = -1, usum = 0.0
        for _ in 0..<n {
            let u = r.uniform(-3, 5)
            lo = min(lo, u); hi = max(hi, u); usum += Double(u)
        }
        #expect(lo >= -3 && hi < 5)
        #expect(abs(usum / Double(n) - 1) < 5 * 8 / (12.0.squareRoot() * Double(n).squareRoot()))
    }

    @Test func dropoutMaskRateAndScale() {
        var r = SeededRNG(seed: 3)
        let m = Tensor.dropoutMask(shape: [1000, 100], rate: 0.1, using: &r)
        let zeros = m.scalars.filter { $0 == 0 }.count
        let keep = Float(1) / Float(0.9)
        #expect(m.scalars.allSatisfy { $0 == 0 || $0 == keep })
        // Binomial(100000, 0.1): sd = 95; allow 5 sd.
        #expect(abs(zeros - 10_000) < 475)
        var r2 = SeededRNG(seed: 3)
        #expect(Tensor.dropoutMask(shape: [1000, 100], rate: 0.1, using: &r2) == m)
        var r3 = SeededRNG(seed: 3)
        #expect(Tensor.dropoutMask(shape: [10], rate: 0, using: &r3).scalars == [Float](repeating: 1, count: 10))
    }

    @Test func tensorFactoriesAreReproducible() {
        var a = SeededRNG(seed: 9), b = SeededRNG(seed: 9)
        let x = Tensor.randomNormal(shape: [4, 5], mean: 0, std: 0.02, using: &a)
        let y = Tensor.randomNormal(shape: [4, 5], mean: 0, std: 0.02, using: &b)
        #expect(x.scalars.map(\.bitPattern) == y.scalars.map(\.bitPattern))
        let u = Tensor.randomUniform(shape: [100], lo: -0.5, hi: 0.5, using: &a)
        #expect(u.scalars.allSatisfy { $0 >= -0.5 && $0 < 0.5 })
    }
}

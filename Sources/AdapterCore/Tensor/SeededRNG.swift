// SeededRNG: a seedable generator whose every output (raw bits, uniforms, normals, dropout masks) is
// bit-for-bit the same on every platform, because it uses only integer arithmetic and correctly
// rounded IEEE operations (+, -, *, /, sqrt) — no libm transcendental whose last bit may differ.

/// A deterministic, seedable random number generator (xoshiro256** seeded through SplitMix64).
///
/// The same seed (and stream) gives the same sequence of raw values, uniforms, normals and dropout
/// masks on every platform and Swift version: normals use the Marsaglia polar method with a
/// logarithm written here in plain Double arithmetic, so no platform `log`/`cos` is involved.
/// This is not a cryptographic generator, and its streams do not match PyTorch's.
public struct SeededRNG: RandomNumberGenerator, Sendable {
    private var s0: UInt64, s1: UInt64, s2: UInt64, s3: UInt64
    /// Second value from the last polar-method draw, returned by the next `normal` call.
    private var spareNormal: Double?

    /// - Parameters:
    ///   - seed: any value; equal seeds give equal sequences.
    ///   - stream: selects an independent sequence for the same seed (e.g. one per layer or per
    ///     worker), so parallel consumers need not share one generator.
    public init(seed: UInt64, stream: UInt64 = 0) {
        var sm = seed ^ (stream &* 0xD1B5_4A32_D192_ED03)
        func splitMix(_ x: inout UInt64) -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s0 = splitMix(&sm)
        s1 = splitMix(&sm)
        s2 = splitMix(&sm)
        s3 = splitMix(&sm)
        if s0 | s1 | s2 | s3 == 0 { s0 = 1 }  // the all-zero state is a fixed point
    }

    /// The next 64 uniformly distributed bits.
    public mutating func next() -> UInt64 {
        let result = rotateLeft(s1 &* 5, 7) &* 9
        let t = s1 << 17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = rotateLeft(s3, 45)
        return result
    }

    /// Uniform in `[lo, hi)` with 24 random bits (every representable step of a Float in [0, 1)
    /// scaled to the interval).
    /// - Precondition: `lo < hi`.
    public mutating func uniform(_ lo: Float = 0, _ hi: Float = 1) -> Float {
        require(lo < hi, "SeededRNG.uniform: empty interval [\(lo), \(hi))")
        let u = Float(next() >> 40) * 0x1p-24
        let v = lo + (hi - lo) * u
        return v < hi ? v : hi.nextDown
    }

    /// Uniform Double in `[0, 1)` with 53 random bits.
    public mutating func unitDouble() -> Double {
        Double(next() >> 11) * 0x1p-53
    }

    /// A normal (Gaussian) sample, computed in Double and rounded once to Float.
    /// - Parameters:
    ///   - mean: the distribution's mean.
    ///   - std: its standard deviation (`>= 0`).
    public mutating func normal(mean: Float = 0, std: Float = 1) -> Float {
        Float(Double(mean) + Double(std) * standardNormal())
    }

    /// A standard normal sample in Double (Marsaglia polar method; pairs are cached).
    public mutating func standardNormal() -> Double {
        if let z = spareNormal {
            spareNormal = nil
            return z
        }
        while true {
            let u = 2 * unitDouble() - 1
            let v = 2 * unitDouble() - 1
            let s = u * u + v * v
            if s >= 1 || s == 0 { continue }
            let factor = (-2 * portableLog(s) / s).squareRoot()
            spareNormal = v * factor
            return u * factor
        }
    }

    /// `true` with probability `p` (53-bit resolution). `p <= 0` is always false, `p >= 1` always true.
    public mutating func bernoulli(_ p: Float) -> Bool {
        unitDouble() < Double(p)
    }

    @inline(__always)
    private func rotateLeft(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }
}

/// Natural logarithm of a positive, finite, normal Double using only correctly rounded arithmetic,
/// so it returns the same bits everywhere. Accurate to a few ulp:
/// x = m·2^e with m in [√½, √2), ln x = e·ln 2 + 2·atanh((m−1)/(m+1)), with the atanh series
/// summed to 13 terms (|z| ≤ 0.172, so the truncation error is below 1e-20).
func portableLog(_ x: Double) -> Double {
    require(x > 0 && x.isFinite, "portableLog: \(x) is not positive and finite")
    var m = x.significand  // [1, 2)
    var e = Double(x.exponent)
    if m > 1.4142135623730951 {
        m /= 2
        e += 1
    }
    let z = (m - 1) / (m + 1)
    let z2 = z * z
    var sum = 0.0
    var k = 25.0
    while k >= 3 {
        sum = (sum + 1 / k) * z2
        k -= 2
    }
    // ln 2 split into a high part exact in 32 bits and a low correction.
    let ln2Hi = 0.693147180369123816490
    let ln2Lo = 1.90821492927058770002e-10
    return e * ln2Hi + (2 * z * (1 + sum) + e * ln2Lo)
}

extension Tensor {
    /// A tensor of independent normal samples `N(mean, std²)`, drawn in row-major order.
    /// - Parameters:
    ///   - shape: the size of each dimension.
    ///   - mean: the mean (e.g. 0).
    ///   - std: the standard deviation (BERT initialises weights with 0.02).
    ///   - rng: the generator (advanced by `count` normal draws).
    public static func randomNormal(shape: [Int], mean: Float = 0, std: Float = 1,
                                    using rng: inout SeededRNG) -> Tensor {
        Tensor(shape: shape) { buffer in
            for i in buffer.indices { buffer[i] = rng.normal(mean: mean, std: std) }
        }
    }

    /// A tensor of independent uniform samples in `[lo, hi)`, drawn in row-major order.
    public static func randomUniform(shape: [Int], lo: Float = 0, hi: Float = 1,
                                     using rng: inout SeededRNG) -> Tensor {
        Tensor(shape: shape) { buffer in
            for i in buffer.indices { buffer[i] = rng.uniform(lo, hi) }
        }
    }

    /// An inverted-dropout mask: each element is `0` with probability `rate` and `1 / (1 − rate)`
    /// otherwise, so `x * mask` keeps the expectation of `x` (PyTorch `nn.Dropout` in training mode).
    /// `rate == 0` gives all ones.
    /// - Precondition: `0 <= rate < 1`.
    public static func dropoutMask(shape: [Int], rate: Float, using rng: inout SeededRNG) -> Tensor {
        require(rate >= 0 && rate < 1, "dropoutMask: rate \(rate) is not in [0, 1)")
        let keep = 1 / (1 - rate)
        return Tensor(shape: shape) { buffer in
            for i in buffer.indices { buffer[i] = rng.bernoulli(rate) ? 0 : keep }
        }
    }
}

/// Elements per independently seeded block of `dropout(_:rate:using:context:)`: block b draws from
/// `SeededRNG(seed: key, stream: b)`, so the mask depends only on the key and the element count — not on how
/// the blocks are spread over threads.
let dropoutBlock = 16384

/// Inverted dropout in one pass (training-mode `torch.nn.Dropout`): `y = x ⊙ m` with each mask element `0` with
/// probability `rate` and `1 / (1 − rate)` otherwise, returning y and the mask m (for the backward pass,
/// `applyDropoutMask`).
///
/// Cheaper than `Tensor.dropoutMask` + `multiply` (one draw of 64 bits per two elements, an integer compare, one
/// pass, split over threads) and just as reproducible, but a different stream: it takes one 64-bit key from
/// `rng`, and block b of `dropoutBlock` elements draws from `SeededRNG(seed: key, stream: b)`; element i of the
/// block uses the low 32 bits (i even) or high 32 bits (i odd) of draw ⌊i/2⌋ and is dropped when that value is
/// below `round(rate · 2³²)` (so the drop probability is `rate` to within 2⁻³³). The result is bitwise the same at
/// any thread count.
/// - Parameters:
///   - x: any shape (read in row-major order).
///   - rate: in `[0, 1)`.
///   - rng: advanced by exactly one draw.
/// - Returns: `output` and `mask`, both contiguous with `x`'s shape.
/// - Precondition: `0 <= rate < 1`.
public func dropout(_ x: Tensor, rate: Float, using rng: inout SeededRNG,
                    context: ComputeContext) -> (output: Tensor, mask: Tensor) {
    require(rate >= 0 && rate < 1, "dropout: rate \(rate) is not in [0, 1)")
    let xc = x.contiguous()
    let n = xc.count
    let y = Tensor(uninitializedShape: x.shape), m = Tensor(uninitializedShape: x.shape)
    let key = rng.next()
    let keep = 1 / (1 - rate)
    let threshold = UInt64((Double(rate) * 0x1p32).rounded())  // ≤ 2³² − 2⁸ for rate < 1 in Float
    let xp = xc.basePointer, yp = y.mutableBasePointer, mp = m.mutableBasePointer
    withExtendedLifetime((xc, y, m)) {
        context.parallelForUnchecked(taskCount: (n + dropoutBlock - 1) / dropoutBlock) { block, _ in
            var g = SeededRNG(seed: key, stream: UInt64(block))
            let lo = block * dropoutBlock, hi = min(lo + dropoutBlock, n)
            var i = lo
            while i + 1 < hi {
                let r = g.next()
                let a: Float = r & 0xFFFF_FFFF < threshold ? 0 : keep
                let b: Float = r >> 32 < threshold ? 0 : keep
                mp[i] = a
                mp[i + 1] = b
                yp[i] = xp[i] * a
                yp[i + 1] = xp[i + 1] * b
                i += 2
            }
            if i < hi {
                let a: Float = g.next() & 0xFFFF_FFFF < threshold ? 0 : keep
                mp[i] = a
                yp[i] = xp[i] * a
            }
        }
    }
    return (y, m)
}

/// `x ⊙= mask` in place (the backward of `dropout`: dL/dx = dL/dy ⊙ m). Same shapes; `x` is made unique and
/// contiguous first (copy-on-write), so no other value observes the change.
public func applyDropoutMask(_ mask: Tensor, to x: inout Tensor, context: ComputeContext) {
    require(x.shape == mask.shape, "applyDropoutMask: x \(x.shape) does not match mask \(mask.shape)")
    x.prepareOutput(preserveContents: true)
    let mc = mask.contiguous()
    let xp = x.mutableBasePointer, mp = mc.basePointer
    let n = x.count
    withExtendedLifetime(mc) {
        context.parallelForUnchecked(taskCount: (n + elementwiseChunk - 1) / elementwiseChunk) { t, _ in
            for i in t * elementwiseChunk ..< min(n, (t + 1) * elementwiseChunk) { xp[i] *= mp[i] }
        }
    }
}

import AdapterCore

/// How many of the lowest layers lose their adapters while training (Rücklé et al., *AdapterDrop*, EMNLP 2021,
/// §3). Dropping n means layers `0…n−1` have no adapters (AdapterHub `skip_layers = [0, …, n−1]`), so the
/// backward pass stops at layer n.
public enum AdapterDropPolicy: Sendable, Equatable {
    /// No AdapterDrop: adapters in every layer (n = 0).
    case none
    /// *Specialized AdapterDrop*: the same n for every training batch (one model per n).
    case specialized(droppedLayers: Int)
    /// *Robust AdapterDrop*: n drawn uniformly from `droppedLayers` (inclusive) for every training batch; the
    /// paper uses `0...11` for a 12-layer model (`robust(numberOfLayers:)`). AdapterHub's notebook draws from
    /// `0...10` (`np.random.randint(0, 11)`); pass that range to reproduce it.
    case robust(droppedLayers: ClosedRange<Int>)

    /// Robust AdapterDrop over the paper's range `0...L−1`.
    public static func robust(numberOfLayers: Int) -> AdapterDropPolicy {
        require(numberOfLayers >= 1, "AdapterDropPolicy.robust: numberOfLayers \(numberOfLayers) must be ≥ 1")
        return .robust(droppedLayers: 0...(numberOfLayers - 1))
    }

    /// Checks the policy against a model with `numberOfLayers` layers (n must lie in `0…L`).
    public func validate(numberOfLayers: Int) -> Bool {
        switch self {
        case .none: return true
        case .specialized(let n): return n >= 0 && n <= numberOfLayers
        case .robust(let r): return r.lowerBound >= 0 && r.upperBound <= numberOfLayers
        }
    }

    /// The layers without adapters when `n` layers are dropped: `[0, …, n−1]` (AdapterHub `skip_layers`).
    public static func skippedLayers(dropping n: Int) -> [Int] {
        require(n >= 0, "AdapterDropPolicy.skippedLayers: n \(n) must be ≥ 0")
        return Array(0..<n)
    }
}

/// Draws the number of dropped layers for each training batch under an `AdapterDropPolicy`, reproducibly from a
/// seed, and logs every draw.
///
/// Evaluation never draws: call `AdapterDropPolicy.skippedLayers(dropping:)` with an explicitly chosen n (the
/// AdapterHub notebook's `on_evaluate` callback resets `skip_layers` only *after* evaluation, so evaluation there
/// silently uses the last training draw; here there is no implicit state to leak).
///
/// The draw is `lo + x mod (hi − lo + 1)` for a 64-bit `x` from `SeededRNG`, with rejection of the biased
/// low end (`x < 2⁶⁴ mod count`), so a seed gives the same sequence on every platform and toolchain.
public struct AdapterDropSampler: Sendable {
    /// The policy.
    public let policy: AdapterDropPolicy
    /// Layers in the model.
    public let numberOfLayers: Int
    /// The seed the generator started from.
    public let seed: UInt64
    /// Every n returned by `nextTrainingDrop()`, in order (step i used `drawn[i]`).
    public private(set) var drawn: [Int] = []
    private var rng: SeededRNG

    /// - Parameters:
    ///   - policy: must satisfy `policy.validate(numberOfLayers:)`.
    ///   - numberOfLayers: L.
    ///   - seed: generator seed (stream 0x41445250, "ADRP", independent of dropout streams seeded alike).
    public init(policy: AdapterDropPolicy, numberOfLayers: Int, seed: UInt64) {
        require(policy.validate(numberOfLayers: numberOfLayers),
                     "AdapterDropSampler: policy \(policy) does not fit a model with \(numberOfLayers) layers")
        self.policy = policy
        self.numberOfLayers = numberOfLayers
        self.seed = seed
        rng = SeededRNG(seed: seed, stream: 0x4144_5250)
    }

    /// The number of dropped layers n for the next training batch (logged in `drawn`).
    public mutating func nextTrainingDrop() -> Int {
        let n: Int
        switch policy {
        case .none: n = 0
        case .specialized(let fixed): n = fixed
        case .robust(let range):
            let count = UInt64(range.count)
            let threshold = (0 &- count) % count
            var x = rng.next()
            while x < threshold { x = rng.next() }
            n = range.lowerBound + Int(x % count)
        }
        drawn.append(n)
        return n
    }

    /// `skippedLayers(dropping: nextTrainingDrop())`.
    public mutating func nextTrainingSkippedLayers() -> [Int] {
        AdapterDropPolicy.skippedLayers(dropping: nextTrainingDrop())
    }
}

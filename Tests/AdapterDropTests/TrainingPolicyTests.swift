// AdapterDrop policies: specialized (fixed n) and robust (n uniform per batch, reproducible from the seed).
import AdapterCore
@testable import AdapterDrop
import Testing

@Suite struct TrainingPolicyTests {
    @Test func specializedAlwaysDropsTheSameLayers() {
        var s = AdapterDropSampler(policy: .specialized(droppedLayers: 5), numberOfLayers: 12, seed: 1)
        for _ in 0..<4 { #expect(s.nextTrainingSkippedLayers() == [0, 1, 2, 3, 4]) }
        #expect(s.drawn == [5, 5, 5, 5])
        var none = AdapterDropSampler(policy: .none, numberOfLayers: 12, seed: 1)
        #expect(none.nextTrainingSkippedLayers() == [])
    }

    /// Robust: every n in the inclusive range appears, none outside, roughly uniformly (12 values, 12 000
    /// draws: each count is 1000 ± 4.5σ with σ ≈ 30); the same seed replays the same log, another seed differs.
    @Test func robustDrawsUniformlyAndReproducibly() {
        var s = AdapterDropSampler(policy: .robust(numberOfLayers: 12), numberOfLayers: 12, seed: 42)
        var counts = [Int](repeating: 0, count: 12)
        for _ in 0..<12_000 {
            let n = s.nextTrainingDrop()
            #expect(n >= 0 && n <= 11)
            counts[n] += 1
        }
        #expect(counts.allSatisfy { abs($0 - 1000) < 135 }, "counts \(counts)")
        var replay = AdapterDropSampler(policy: .robust(numberOfLayers: 12), numberOfLayers: 12, seed: 42)
        for _ in 0..<12_000 { _ = replay.nextTrainingDrop() }
        #expect(replay.drawn == s.drawn)
        var other = AdapterDropSampler(policy: .robust(numberOfLayers: 12), numberOfLayers: 12, seed: 43)
        for _ in 0..<100 { _ = other.nextTrainingDrop() }
        #expect(Array(s.drawn.prefix(100)) != other.drawn)
    }

    /// A custom range (AdapterHub's notebook: 0...10) and a one-value range.
    @Test func robustCustomRange() {
        var s = AdapterDropSampler(policy: .robust(droppedLayers: 3...5), numberOfLayers: 12, seed: 7)
        let draws = (0..<300).map { _ in s.nextTrainingDrop() }
        #expect(Set(draws) == [3, 4, 5])
        var one = AdapterDropSampler(policy: .robust(droppedLayers: 2...2), numberOfLayers: 4, seed: 7)
        #expect(one.nextTrainingSkippedLayers() == [0, 1])
        #expect(AdapterDropPolicy.robust(droppedLayers: 0...12).validate(numberOfLayers: 12))
        #expect(!AdapterDropPolicy.robust(droppedLayers: 0...13).validate(numberOfLayers: 12))
        #expect(!AdapterDropPolicy.specialized(droppedLayers: -1).validate(numberOfLayers: 12))
    }
}

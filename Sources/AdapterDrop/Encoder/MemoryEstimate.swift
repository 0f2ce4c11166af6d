import Foundation

/// An up-front estimate of the memory a forward pass or a training step needs, so that a batch × sequence ×
/// layers that would not fit is rejected with the figure instead of the process being killed by the OS.
///
/// The estimate counts fp32 buffers (4 bytes per value) the code allocates for the given shapes:
/// - **weights**: the encoder's parameters from `BertConfig` (embeddings, every layer, pooler), plus
///   `extraParameters` (adapters, heads, fusion).
/// - **inference activations**, per encoder replica (`replicas` > 1 for `Parallel` compositions, which repeat the
///   batch): `tokens × (7·hidden + intermediate)` values for the layer buffers (embedding output, fused Q/K/V,
///   attended, two sums, LayerNorm output, FFN inner), `threads × seq²` attention scores, and
///   `layers × tokens × hidden` when every layer's hidden state is kept.
/// - **training activations**: every layer saves its inputs for backward: `layers × (tokens × (10·hidden +
///   2·intermediate) + batch × heads × seq²)` values (Q/K/V, attention probabilities, attended, both sums,
///   LayerNorm outputs and statistics, FFN pre- and post-activation), plus twice one layer's worth for the
///   gradients flowing back, plus 4 copies of the trainable parameters (value, gradient, AdamW m and v).
///
/// - **overhead** (`overheadBytes`): the weights a second time (the safetensors files stay mapped while their
///   tensors are copied out, so both are resident at the load peak) plus `runtimeBytes` (64 MiB: the Swift
///   runtime, Foundation, the binary, thread stacks, the tokenizer).
///
/// Validated against the peak RSS of real runs (`scripts/memory-estimate-check.py`, all-MiniLM-L6-v2, 2 threads,
/// docs/reliability.md "Resource bounds"): without the overhead the estimate was 1.2–2.3× too low for inference
/// (the second copy of the weights and the runtime), and training's peak was 1.38–1.48× the buffer count, the
/// gap growing with the size (allocator fragmentation of the per-layer tensors, the transient score and gradient
/// buffers of the backward pass). The training buffers are therefore scaled by 3/2. With both, measured peak
/// RSS is 0.68–0.96 of the estimate on every measured shape (the test `estimateCoversMeasuredPeakRSS` keeps it so).
///
/// All arithmetic saturates at `Int.max`, so absurd shapes give a huge estimate instead of overflowing.
public struct MemoryEstimate: Sendable, Equatable, CustomStringConvertible {
    /// What is being run.
    public enum Mode: String, Sendable {
        /// A forward pass (encode, embed, predict, evaluate).
        case inference
        /// Training steps (forward with saved activations, backward, optimizer state).
        case training
    }

    /// Bytes of model parameters (encoder + `extraParameters`).
    public let weightBytes: Int
    /// Bytes of activations, workspaces and (training) gradients and optimizer state.
    public let workingBytes: Int
    /// Bytes beside the buffers: a second copy of the weights while loading, plus `runtimeBytes`.
    public let overheadBytes: Int
    /// The process's own resident memory before any model is loaded (measured ≈ 26 MiB; rounded up).
    public static let runtimeBytes = 64 << 20
    /// The shape the estimate is for, for messages: "batch 8 × seq 128 × 12 layers".
    public let shapeDescription: String
    /// The mode estimated.
    public let mode: Mode

    /// The total in bytes (saturating).
    public var totalBytes: Int { Self.add(Self.add(weightBytes, workingBytes), overheadBytes) }

    /// Estimates the memory for running `config` on `batch` sequences of `sequenceLength` tokens.
    /// - Parameters:
    ///   - config: the encoder configuration (hidden size, layers, heads, intermediate size, vocabulary).
    ///   - batch: sequences per batch (≥ 0).
    ///   - sequenceLength: tokens per sequence (≥ 0).
    ///   - mode: `.inference` or `.training`.
    ///   - replicas: how many copies of the batch run through the upper layers (N for `Parallel` of N branches).
    ///   - threads: worker threads (each has its own attention-score workspace of `seq²` values).
    ///   - keepHiddenStates: inference keeps every layer's output `[batch, seq, hidden]`.
    ///   - extraParameters: adapter, head and fusion parameters loaded beside the encoder (values, not bytes).
    ///   - trainableParameters: parameters updated in training (each needs a gradient and two AdamW moments).
    public init(config: BertConfig, batch: Int, sequenceLength: Int, mode: Mode, replicas: Int = 1, threads: Int = 1,
                keepHiddenStates: Bool = false, extraParameters: Int = 0, trainableParameters: Int = 0) {
        let m = Self.mul, a = Self.add
        let h = max(config.hiddenSize, 0), i = max(config.intermediateSize, 0)
        let layers = max(config.numHiddenLayers, 0), heads = max(config.numAttentionHeads, 1)
        let b = m(max(batch, 0), max(replicas, 1)), s = max(sequenceLength, 0)
        let tokens = m(b, s)
        // Encoder parameters: word/position/type embeddings + LayerNorm; per layer Q, K, V, O (h×h + h each),
        // FFN (h×i + i, i×h + h), two LayerNorms (2h each); pooler h×h + h.
        let embeddings = a(m(a(a(config.vocabSize, config.maxPositionEmbeddings), config.typeVocabSize), h), 2 * h)
        let perLayer = a(a(m(4, a(m(h, h), h)), a(a(m(h, i), i), a(m(i, h), h))), 4 * h)
        let encoderParameters = a(a(embeddings, m(layers, perLayer)), a(m(h, h), h))
        weightBytes = m(a(encoderParameters, max(extraParameters, 0)), 4)
        let scores = m(m(s, s), max(threads, 1))
        var values: Int
        switch mode {
        case .inference:
            values = a(m(tokens, a(m(7, h), i)), scores)
            if keepHiddenStates { values = a(values, m(m(layers, tokens), h)) }
        case .training:
            let saved = a(m(tokens, a(m(10, h), m(2, i))), m(m(b, heads), m(s, s)))
            values = a(m(layers, saved), m(2, saved))
            values = a(values, scores)
            values = a(values, m(4, max(trainableParameters, 0)))
            values = a(values, values / 2)  // calibration against measured peak RSS (type doc)
        }
        workingBytes = m(values, 4)
        overheadBytes = a(weightBytes, Self.runtimeBytes)
        shapeDescription = "batch \(batch)\(replicas > 1 ? " × \(replicas) replicas" : "") × seq \(sequenceLength) × "
            + "\(layers) layers (hidden \(h), \(mode.rawValue))"
        self.mode = mode
    }

    /// Throws `MemoryLimitError` when `totalBytes` exceeds `limitBytes`.
    /// - Throws: `MemoryLimitError` carrying this estimate and the limit.
    public func check(limitBytes: Int) throws {
        if totalBytes > limitBytes { throw MemoryLimitError(estimate: self, limitBytes: limitBytes) }
    }

    /// "1.70 GiB (weights 418 MiB + activations 843 MiB + loading and runtime 482 MiB) for batch 8 × seq 128 ×
    /// 12 layers (…)".
    public var description: String {
        "\(Self.format(totalBytes)) (weights \(Self.format(weightBytes)) + "
            + "\(mode == .training ? "activations, gradients and optimizer state" : "activations") "
            + "\(Self.format(workingBytes)) + loading and runtime \(Self.format(overheadBytes))) for \(shapeDescription)"
    }

    /// The default limit: 80 % of physical memory (`ProcessInfo.physicalMemory`).
    public static var defaultLimitBytes: Int {
        let physical = ProcessInfo.processInfo.physicalMemory
        return Int(clamping: physical / 5 * 4)
    }

    /// Parses a byte count: plain bytes (`1048576`) or a number with a binary suffix `K`, `M`, `G`, `T`
    /// (optionally followed by `B` or `iB`, any case): `512M`, `8G`, `1.5GiB`. Nil for anything else,
    /// zero or negative values.
    public static func parseByteCount(_ text: String) -> Int? {
        var t = text.trimmingCharacters(in: .whitespaces).uppercased()
        if t.hasSuffix("IB") { t.removeLast(2) } else if t.hasSuffix("B") { t.removeLast() }
        var scale = 1.0
        if let last = t.last, let power = ["K": 1.0, "M": 2.0, "G": 3.0, "T": 4.0][String(last)] {
            scale = pow(1024, power)
            t.removeLast()
        }
        guard let value = Double(t), value.isFinite, value > 0 else { return nil }
        let bytes = value * scale
        guard bytes >= 1, bytes < 9.0e18 else { return nil }
        return Int(bytes)
    }

    /// Bytes in binary units with three significant digits: "512 B", "3.21 MiB", "1.50 GiB".
    public static func format(_ bytes: Int) -> String {
        if bytes == Int.max { return "more than 8 EiB" }
        let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
        var v = Double(bytes), u = 0
        while v >= 1024 && u < units.count - 1 { v /= 1024; u += 1 }
        return u == 0 ? "\(bytes) B" : String(format: v >= 100 ? "%.0f %@" : v >= 10 ? "%.1f %@" : "%.2f %@", v, units[u])
    }

    static func mul(_ x: Int, _ y: Int) -> Int {
        let (r, o) = x.multipliedReportingOverflow(by: y)
        return o ? Int.max : r
    }

    static func add(_ x: Int, _ y: Int) -> Int {
        let (r, o) = x.addingReportingOverflow(y)
        return o ? Int.max : r
    }
}

/// A run was refused because its estimated memory exceeds the limit.
public struct MemoryLimitError: Error, CustomStringConvertible, Sendable {
    /// The estimate that did not fit.
    public let estimate: MemoryEstimate
    /// The limit in bytes.
    public let limitBytes: Int

    public var description: String {
        "estimated memory \(estimate) exceeds the limit of \(MemoryEstimate.format(limitBytes)); use a smaller "
            + "batch or sequence length, or raise the limit (--memory-limit / ADAPTERDROP_MEMORY_LIMIT)"
    }
}

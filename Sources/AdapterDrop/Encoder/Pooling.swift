import AdapterCore

/// Sentence embeddings from token states (sentence-transformers `Pooling`, `models/Pooling.py`).
public enum Pooling {
    /// How token states become one vector per sequence.
    public enum Mode: String, Sendable, CaseIterable {
        /// The first token's state ([CLS] / `<s>`).
        case cls
        /// The mean over real (unmasked) tokens: `Σₜ hₜ·mₜ / max(Σₜ mₜ, 1e-9)`.
        case mean
    }

    /// The first token of every sequence: `[batch, seq, hidden]` → `[batch, hidden]`.
    public static func first(_ states: Tensor) -> Tensor {
        require(states.rank == 3, "Pooling.first: states \(states.shape) must be [batch, seq, hidden]")
        let batch = states.shape[0], seq = states.shape[1], hidden = states.shape[2]
        let s = states.contiguous()
        return s.withUnsafeBufferPointer { p in
            Tensor(shape: [batch, hidden]) { out in
                for b in 0..<batch {
                    for j in 0..<hidden { out[b * hidden + j] = p[b * seq * hidden + j] }
                }
            }
        }
    }

    /// Masked mean over the sequence, accumulated in token order in fp32 as sentence-transformers does
    /// (`torch.sum(h * mask, 1) / torch.clamp(mask.sum(1), min=1e-9)`).
    /// - Parameters:
    ///   - states: `[batch, seq, hidden]`.
    ///   - attentionMask: `[batch, seq]` of 0/1.
    /// - Returns: `[batch, hidden]`.
    public static func mean(_ states: Tensor, attentionMask: [Int]) -> Tensor {
        require(states.rank == 3, "Pooling.mean: states \(states.shape) must be [batch, seq, hidden]")
        let batch = states.shape[0], seq = states.shape[1], hidden = states.shape[2]
        require(attentionMask.count == batch * seq,
                     "Pooling.mean: mask of \(attentionMask.count) values does not match states \(states.shape)")
        let s = states.contiguous()
        return s.withUnsafeBufferPointer { p in
            Tensor(shape: [batch, hidden]) { out in
                for b in 0..<batch {
                    var tokens: Float = 0
                    for j in 0..<hidden { out[b * hidden + j] = 0 }
                    for t in 0..<seq where attentionMask[b * seq + t] != 0 {
                        tokens += 1
                        for j in 0..<hidden { out[b * hidden + j] += p[(b * seq + t) * hidden + j] }
                    }
                    let denominator = max(tokens, 1e-9)
                    for j in 0..<hidden { out[b * hidden + j] /= denominator }
                }
            }
        }
    }

    /// Rows divided by their L2 norm (`torch.nn.functional.normalize`, eps 1e-12): `[n, d]` → `[n, d]`.
    public static func l2Normalized(_ x: Tensor) -> Tensor {
        require(x.rank == 2, "Pooling.l2Normalized: x \(x.shape) must be [rows, features]")
        let rows = x.shape[0], d = x.shape[1]
        let c = x.contiguous()
        return c.withUnsafeBufferPointer { p in
            Tensor(shape: [rows, d]) { out in
                for r in 0..<rows {
                    var sumSquares: Float = 0
                    for j in 0..<d { sumSquares += p[r * d + j] * p[r * d + j] }
                    let norm = max(sumSquares.squareRoot(), 1e-12)
                    for j in 0..<d { out[r * d + j] = p[r * d + j] / norm }
                }
            }
        }
    }
}

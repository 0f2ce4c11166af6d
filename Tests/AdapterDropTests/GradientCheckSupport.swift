// Shared tier-C helper: analytic gradients against central finite differences (used by the adapter, stack,
// head and fusion gradient checks).
import AdapterCore
import TestSupport
import Testing

/// Central finite differences of a scalar loss, with a running worst error for the printed summary.
///
/// The perturbed tensors are fp32 (the library's only storage type); the loss is accumulated in Double by the
/// caller, so the error of `(L(x+ε) − L(x−ε)) / 2ε` is fp32 rounding of the forward (≈ 1e-7·|L| per value)
/// over 2ε plus the O(ε²) truncation term — the tolerance each caller passes is justified there.
struct FiniteDifferenceChecker {
    /// Step ε.
    var epsilon: Float
    /// `|analytic − numeric| ≤ atol + rtol·|numeric|`.
    var atol: Double, rtol: Double
    /// Prefix of failure messages.
    var label: String
    /// Largest absolute error seen so far.
    private(set) var worst = 0.0

    init(epsilon: Float = 1e-2, atol: Double, rtol: Double, label: String) {
        self.epsilon = epsilon
        self.atol = atol
        self.rtol = rtol
        self.label = label
    }

    /// `[(f(t + ε·e_i) − f(t − ε·e_i)) / 2ε for every element i]`.
    func numericGradient(_ t: Tensor, _ f: (Tensor) throws -> Double) rethrows -> [Double] {
        var s = t.scalars
        return try (0..<s.count).map { i in
            let x = s[i]
            s[i] = x + epsilon
            let up = try f(Tensor(shape: t.shape, scalars: s))
            s[i] = x - epsilon
            let down = try f(Tensor(shape: t.shape, scalars: s))
            s[i] = x
            return (up - down) / Double(2 * epsilon)
        }
    }

    /// Compares `analytic` with the numeric gradient of `f` at `t` and records the error.
    mutating func check(_ analytic: Tensor, at t: Tensor, _ what: String,
                        sourceLocation: SourceLocation = #_sourceLocation, _ f: (Tensor) throws -> Double) rethrows {
        let numeric = try numericGradient(t, f)
        let r = expectClose(analytic.scalars, numeric, atol: atol, rtol: rtol, "\(label) \(what)", sourceLocation: sourceLocation)
        worst = max(worst, r.maxAbsError)
    }

    /// Checks the gradient of every named parameter: `set` installs a perturbed value, `get` reads the
    /// current one (restored after each element).
    mutating func checkParameters(_ gradients: [String: Tensor], get: (String) -> Tensor, set: (String, Tensor) -> Void,
                                  sourceLocation: SourceLocation = #_sourceLocation, loss: () throws -> Double) rethrows {
        for name in gradients.keys.sorted() {
            let p = get(name)
            try check(gradients[name]!, at: p, name, sourceLocation: sourceLocation) { t in
                set(name, t)
                defer { set(name, p) }
                return try loss()
            }
        }
    }
}

/// Σ y ⊙ r in Double (the probe loss of the sub-layer gradient checks).
func probeLoss(_ y: Tensor, _ r: Tensor) -> Double {
    zip(y.scalars, r.scalars).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
}

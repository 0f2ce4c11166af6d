// Runs a composition setup at each adapter location (adapters 1.3.0 `BottleneckLayer.bottleneck_layer_forward`
// and the `compose_*` methods of `methods/adapter_layer_base.py` / `methods/bottleneck.py`).
import AdapterCore
import Foundation

/// AdapterFusion attention probabilities collected during one forward call (the reference's
/// `output_adapter_fusion_attentions=True`): per fusion name and site, `[batch', seq, N]` softmax weights over
/// the fused adapters, padding positions included.
public final class FusionAttentionRecorder: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [String: [AdapterSite: Tensor]] = [:]

    /// An empty recorder.
    public init() {}

    func record(fusion: String, site: AdapterSite, probabilities: Tensor) {
        lock.lock(); defer { lock.unlock() }
        storage[fusion, default: [:]][site] = probabilities
    }

    /// Everything recorded so far.
    public var attentions: [String: [AdapterSite: Tensor]] {
        lock.lock(); defer { lock.unlock() }
        return storage
    }
}

/// The `SublayerHook` that runs an adapter setup: adapters, fusion layers, the setup tree, the layers to
/// skip (AdapterDrop) and the caller's batch size (to know whether a Parallel block already replicated it).
public struct CompositionHook: SublayerHook {
    /// Adapters by name.
    public let adapters: [String: BottleneckAdapter]
    /// Fusions by name.
    public let fusions: [String: AdapterFusion]
    /// The setup (a bare name is treated as `Stack(name)`).
    public let setup: AdapterComposition
    /// Layers whose adapters and fusion are skipped.
    public let skipLayers: Set<Int>
    /// The batch size the encoder was called with.
    public let originalBatch: Int
    /// Where fusion attentions go, if wanted.
    public let recorder: FusionAttentionRecorder?
    private let names: Set<String>

    /// - Parameters: see the properties. The setup must be validated (`AdapterModel` does it).
    public init(adapters: [String: BottleneckAdapter], fusions: [String: AdapterFusion], setup: AdapterComposition,
                skipLayers: Set<Int>, originalBatch: Int, recorder: FusionAttentionRecorder?) {
        self.adapters = adapters
        self.fusions = fusions
        self.setup = setup.normalized
        self.skipLayers = skipLayers
        self.originalBatch = originalBatch
        self.recorder = recorder
        self.names = setup.flattened
    }

    /// The reference's `BottleneckState`: `[rows, hidden]` tensors.
    struct State {
        var hidden: Tensor
        var input: Tensor
        var adapterResidual: Tensor
        var up: Tensor?
        var last: String?
        var rows: Int { hidden.shape[0] }
        func slice(_ r: Range<Int>) -> State {
            State(hidden: hidden.slice(rows: r), input: input.slice(rows: r), adapterResidual: adapterResidual.slice(rows: r),
                  up: up?.slice(rows: r), last: last)
        }
        func repeated(_ n: Int) -> State {
            func rep(_ t: Tensor) -> Tensor { n == 1 ? t : Tensor(concatenating: Array(repeating: t, count: n)) }
            return State(hidden: rep(hidden), input: rep(input), adapterResidual: rep(adapterResidual), up: up.map(rep), last: last)
        }
        static func concatenated(_ states: [State]) -> State {
            func cat(_ ts: [Tensor]) -> Tensor { ts.count == 1 ? ts[0] : Tensor(concatenating: ts) }
            return State(hidden: cat(states.map(\.hidden)), input: cat(states.map(\.input)),
                         adapterResidual: cat(states.map(\.adapterResidual)),
                         up: states[0].up == nil ? nil : cat(states.map { $0.up! }), last: states.last!.last)
        }
    }

    /// Per-call facts shared by the compose functions.
    struct Site {
        var site: AdapterSite
        var layerNorm: SublayerLayerNorm
        var seq: Int
        var context: ComputeContext
    }

    /// See `SublayerHook`. Returns nil (plain `LN(h + a)`) in skipped layers and where no adapter of the setup
    /// has a module.
    public func sublayerOutput(layer: Int, location: AdapterLocation, hidden h: Tensor, residual a: Tensor,
                               layerNorm: SublayerLayerNorm, batch: Int, sequenceLength: Int,
                               context: ComputeContext) -> Tensor? {
        if skipLayers.contains(layer) { return nil }
        let site = AdapterSite(layer: layer, location: location)
        guard names.contains(where: { adapters[$0]?.weights[site] != nil }) else { return nil }
        let s = Site(site: site, layerNorm: layerNorm, seq: max(sequenceLength, 1), context: context)
        let state = compose(setup, State(hidden: h, input: a, adapterResidual: a, up: nil, last: nil), level: 0, needsUp: false, s)
        guard let last = state.last, let lastAdapter = adapters[last] else { return nil }
        let inputHidden = state.rows == h.shape[0] ? h : Tensor(concatenating: Array(repeating: h, count: state.rows / h.shape[0]))
        return lastAdapter.postForward(state.hidden, inputHidden: inputHidden, input: state.input,
                                       layerNorm: layerNorm, context: context)
    }

    private func present(_ name: String, _ s: Site) -> Bool { adapters[name]?.weights[s.site] != nil }

    private func preBlock(_ name: String, _ state: State, _ s: Site) -> State {
        guard present(name, s), let adapter = adapters[name] else { return state }
        var out = state
        let pre = adapter.preForward(hidden: state.hidden, input: state.input, layerNorm: s.layerNorm, context: s.context)
        out.hidden = pre.hidden
        out.adapterResidual = pre.residual
        return out
    }

    private func single(_ name: String, _ state: State, needsUp: Bool, _ s: Site) -> State {
        let adapter = adapters[name]!
        let result = adapter.forward(site: s.site, state.hidden, residual: state.adapterResidual, sequenceLength: s.seq,
                                     needsUp: needsUp, context: s.context)
        var out = state
        out.hidden = result.output
        out.up = result.up
        out.last = name
        return out
    }

    private func compose(_ block: AdapterComposition, _ state: State, level: Int, needsUp: Bool, _ s: Site) -> State {
        switch block {
        case let .adapter(name):
            return present(name, s) ? single(name, state, needsUp: needsUp, s) : state
        case let .stack(children):
            var state = state
            for child in children {
                if case let .adapter(name) = child {
                    guard present(name, s) else { continue }
                    state = single(name, preBlock(name, state, s), needsUp: needsUp, s)
                } else {
                    state = compose(child, state, level: level + 1, needsUp: needsUp, s)
                }
            }
            return state
        case let .fuse(children, _):
            return fuse(block, children, state, level: level, s)
        case let .parallel(children):
            var state = state
            let channels = children.count
            let orig: Int
            if state.rows == originalBatch * s.seq {
                orig = originalBatch
                state = state.repeated(channels)
            } else {
                require(state.rows % (channels * s.seq) == 0,
                             "Parallel: \(state.rows / s.seq) sequences are not divisible by \(channels) channels")
                orig = state.rows / s.seq / channels
            }
            state = preBlock(block.first, state, s)
            let rowsPerChannel = orig * s.seq
            let parts = children.enumerated().map { i, child in
                compose(child, state.slice(i * rowsPerChannel ..< (i + 1) * rowsPerChannel), level: level + 1, needsUp: needsUp, s)
            }
            return State.concatenated(parts)
        case let .batchSplit(children, sizes):
            require(sizes.reduce(0, +) * s.seq == state.rows,
                         "BatchSplit: sizes \(sizes) do not sum to the batch \(state.rows / s.seq) (validated by AdapterModel)")
            let state = preBlock(block.first, state, s)
            var start = 0
            let parts = zip(children, sizes).map { child, size in
                defer { start += size * s.seq }
                return compose(child, state.slice(start ..< start + size * s.seq), level: level + 1, needsUp: needsUp, s)
            }
            return State.concatenated(parts)
        case let .average(children, weights):
            let state = preBlock(block.first, state, s)
            let parts = children.map { compose($0, state, level: level + 1, needsUp: needsUp, s) }
            // torch.mean(stack(h_i) * w_i, dim=0): Σ (h_i·w_i), then / N.
            var sum = scaled(parts[0].hidden, by: weights[0], context: s.context)
            for i in 1..<parts.count { accumulate(scaled(parts[i].hidden, by: weights[i], context: s.context), into: &sum, context: s.context) }
            var out = parts[0]
            out.hidden = scaled(sum, by: 1 / Float(parts.count), context: s.context)
            if parts.count == 1 { out.hidden = sum }  // mean over one element is the element
            out.last = parts.last!.last
            return out
        }
    }

    private func fuse(_ block: AdapterComposition, _ children: [AdapterComposition], _ state: State, level: Int, _ s: Site) -> State {
        guard let fusionName = block.fusionName, let fusion = fusions[fusionName], fusion.weights[s.site] != nil else { return state }
        let last = block.last
        guard let lastAdapter = adapters[last], present(last, s) else { return state }
        let pre = lastAdapter.preForward(hidden: state.hidden, input: state.input, layerNorm: s.layerNorm,
                                         queryBeforeLayerNorm: fusion.config.queryBeforeLayerNorm, context: s.context)
        var state = state
        state.hidden = pre.hidden
        state.adapterResidual = pre.residual
        var ups: [Tensor] = []
        for child in children {
            if case let .adapter(name) = child {
                guard present(name, s) else { continue }
                ups.append(single(name, state, needsUp: true, s).up!)
            } else {
                let childState = compose(child, state, level: level + 1, needsUp: true, s)
                if let up = childState.up, childState.last != nil { ups.append(up) }
            }
        }
        guard !ups.isEmpty else { return state }
        let result = fusion.forward(site: s.site, query: pre.query, ups: ups, residual: state.adapterResidual, context: s.context)
        recorder?.record(fusion: fusionName, site: s.site,
                         probabilities: result.probabilities.reshaped([state.rows / s.seq, s.seq, ups.count]))
        state.hidden = result.output
        state.last = last
        return state
    }
}

// Pruning AdapterFusion (Rücklé et al. 2021, "AdapterDrop", Section 5.2): the average fusion activation of each
// adapter — the softmax weight AdapterFusion gives it — over a dataset, excluding padding tokens.
import AdapterCore
import Foundation

/// Errors of fusion pruning (user input: k, names, data).
public enum PruningError: Error, Equatable, Sendable, CustomStringConvertible {
    /// `keep` is 0 or larger than the number of adapters the fusion was run over.
    case invalidKeep(keep: Int, adapters: Int)
    /// The model has no fusion with this name.
    case unknownFusion(String)
    /// The setup has no `Fuse` block that runs this fusion.
    case fusionNotInSetup(fusion: String, setup: String)
    /// No unmasked token was seen (empty data, or every site skipped).
    case noActivations(fusion: String)
    /// A batch's attention tensor does not fit the input (e.g. a Parallel block around the Fuse).
    case unexpectedAttentionShape(site: String, shape: [Int], batch: Int, sequence: Int)

    /// A one-line explanation naming the fusion, site or value.
    public var description: String {
        switch self {
        case let .invalidKeep(keep, adapters):
            return "cannot keep \(keep) adapters of \(adapters): keep must be between 1 and \(adapters)"
        case let .unknownFusion(name): return "no fusion named \"\(name)\" is loaded"
        case let .fusionNotInSetup(fusion, setup): return "the setup \(setup) has no Fuse block running fusion \"\(fusion)\""
        case let .noActivations(fusion): return "fusion \"\(fusion)\": no unmasked tokens were seen (empty data or every layer skipped)"
        case let .unexpectedAttentionShape(site, shape, batch, sequence):
            return "fusion attentions at \(site) have shape \(shape), expected [k·\(batch), \(sequence), N]"
        }
    }
}

/// The mean activation of each adapter at one fusion site.
public struct SiteActivation: Sendable, Equatable, Codable {
    /// 0-based layer.
    public var layer: Int
    /// `mh_adapter` or `output_adapter`.
    public var location: AdapterLocation
    /// Unmasked tokens averaged over.
    public var tokens: Int
    /// Mean softmax weight per adapter, in `FusionActivationTable.adapterNames` order; sums to 1.
    public var mean: [Double]
}

/// Average fusion activations of a fusion's adapters: per site and over all sites.
///
/// `overall[i]` is the sum of adapter i's softmax weight over every unmasked token at every site, divided by
/// the number of (token, site) pairs — the mean of the per-site means when every site saw the same tokens.
/// Prints as a text table (`description`) and encodes to JSON (`Codable`).
public struct FusionActivationTable: Sendable, Equatable, Codable, CustomStringConvertible {
    /// The fusion's name.
    public var fusion: String
    /// The adapters (columns), in the order the Fuse block ran them.
    public var adapterNames: [String]
    /// Per site, ascending.
    public var sites: [SiteActivation]
    /// Over all sites, per adapter.
    public var overall: [Double]

    enum CodingKeys: String, CodingKey {
        case fusion, adapterNames = "adapter_names", sites, overall
    }

    /// Column widths fit the adapter names; values with 4 decimals.
    public var description: String {
        let widths = adapterNames.map { max($0.count, 6) }
        func pad(_ s: String, _ w: Int) -> String { String(repeating: " ", count: max(0, w - s.count)) + s }
        func row(_ label: String, _ tokens: String, _ values: [String]) -> String {
            ([label.padding(toLength: 20, withPad: " ", startingAt: 0), pad(tokens, 8)]
                + zip(values, widths).map { pad($0, $1) }).joined(separator: "  ")
        }
        var lines = ["fusion \(fusion)", row("site", "tokens", adapterNames)]
        for s in sites {
            lines.append(row("layer \(s.layer) \(s.location == .output ? "output" : "attention")", "\(s.tokens)",
                             s.mean.map { String(format: "%.4f", $0) }))
        }
        lines.append(row("all layers", "\(sites.reduce(0) { $0 + $1.tokens })", overall.map { String(format: "%.4f", $0) }))
        return lines.joined(separator: "\n")
    }

    /// Whether the top-k is taken over all layers or in each layer.
    public enum Scope: String, Sendable, Codable, CaseIterable {
        /// The k adapters with the highest `overall` activation.
        case global
        /// In each layer the k adapters with the highest mean over that layer's sites; the kept set is the
        /// union over layers (one fusion runs the same adapters in every layer).
        case perLayer = "per-layer"
    }

    /// The indices of the k largest values, ties to the earlier adapter, returned in adapter order.
    static func topIndices(_ values: [Double], _ k: Int) -> [Int] {
        Array(values.indices.sorted { values[$0] != values[$1] ? values[$0] > values[$1] : $0 < $1 }.prefix(k)).sorted()
    }

    /// The adapters to keep, in `adapterNames` order.
    /// - Parameters:
    ///   - keep: k, 1 ... N.
    ///   - scope: `.global` (default) or `.perLayer` (union of each layer's top k; may exceed k).
    /// - Throws: `PruningError.invalidKeep` for k = 0 or k > N.
    public func adaptersToKeep(_ keep: Int, scope: Scope = .global) throws -> [String] {
        guard keep >= 1, keep <= adapterNames.count else { throw PruningError.invalidKeep(keep: keep, adapters: adapterNames.count) }
        switch scope {
        case .global:
            return Self.topIndices(overall, keep).map { adapterNames[$0] }
        case .perLayer:
            return try keptPerLayer(keep).values.reduce(into: Set<String>()) { $0.formUnion($1) }
                .sorted { adapterNames.firstIndex(of: $0)! < adapterNames.firstIndex(of: $1)! }
        }
    }

    /// Each layer's top k adapters (by the token-weighted mean over the layer's sites), in adapter order.
    /// - Throws: `PruningError.invalidKeep`.
    public func keptPerLayer(_ keep: Int) throws -> [Int: [String]] {
        guard keep >= 1, keep <= adapterNames.count else { throw PruningError.invalidKeep(keep: keep, adapters: adapterNames.count) }
        var sums: [Int: [Double]] = [:]
        for s in sites {
            var acc = sums[s.layer] ?? Array(repeating: 0, count: adapterNames.count)
            for i in acc.indices { acc[i] += s.mean[i] * Double(s.tokens) }
            sums[s.layer] = acc
        }
        return sums.mapValues { Self.topIndices($0, keep).map { adapterNames[$0] } }
    }
}

/// Accumulates average fusion activations of one fusion over batches.
///
/// Each batch runs `model(input, setup:, skipLayers:, outputFusionAttentions: true)`; the softmax weights
/// `[batch', seq, N]` at each site are summed in Double over tokens whose attention mask is 1 (the mask is
/// repeated when a Parallel block replicated the batch, `batch' = k·batch`).
public struct FusionActivationCollector: Sendable {
    /// The model (with the fusion and its adapters loaded).
    public let model: AdapterModel
    /// The fusion whose activations are collected.
    public let fusion: String
    /// The setup that runs it.
    public let setup: AdapterComposition
    /// AdapterDrop layers (skipped sites contribute nothing).
    public let skipLayers: Set<Int>
    /// The adapters in the order the Fuse block runs them (the attention columns).
    public let adapterNames: [String]
    private var sums: [AdapterSite: [Double]] = [:]
    private var counts: [AdapterSite: Int] = [:]

    /// - Parameters:
    ///   - model: a model with the fusion loaded.
    ///   - fusion: its name.
    ///   - setup: nil = `Fuse(<its adapters>, name: fusion)`; otherwise a setup with a Fuse block named `fusion`
    ///     (e.g. `Stack(Fuse(a,b),c)`).
    ///   - skipLayers: layers whose adapters do not run.
    /// - Throws: `PruningError.unknownFusion`, `.fusionNotInSetup`, and the setup errors of `AdapterModel.validate`.
    public init(model: AdapterModel, fusion: String, setup: AdapterComposition? = nil, skipLayers: Set<Int> = []) throws {
        guard let f = model.fusions[fusion] else { throw PruningError.unknownFusion(fusion) }
        let setup = setup ?? .fuse(f.adapterNames.map { .adapter($0) },
                                   name: f.adapterNames.joined(separator: ",") == fusion ? nil : fusion)
        func find(_ block: AdapterComposition) -> [String]? {
            if case let .fuse(children, _) = block, block.fusionName == fusion { return children.map(\.last) }
            for c in block.children { if let r = find(c) { return r } }
            return nil
        }
        guard let names = find(setup) else { throw PruningError.fusionNotInSetup(fusion: fusion, setup: setup.description) }
        try model.validate(setup: setup, batchSize: 1)
        self.model = model
        self.fusion = fusion
        self.setup = setup
        self.skipLayers = skipLayers
        self.adapterNames = names
    }

    /// Runs one batch and adds its unmasked tokens.
    /// - Parameters:
    ///   - input: ids, mask and type ids `[batch, seq]`.
    ///   - context: threads, GEMM backend and workspaces the op runs with.
    /// - Throws: model errors; `PruningError.unexpectedAttentionShape`.
    public mutating func add(_ input: EncoderInput, context: ComputeContext) throws {
        let out = try model(input, setup: setup, heads: [], skipLayers: skipLayers, outputFusionAttentions: true, context: context)
        let n = adapterNames.count, b = input.batchSize, s = input.sequenceLength
        for (site, p) in out.fusionAttentions[fusion] ?? [:] {
            guard p.shape.count == 3, p.shape[0] % b == 0, p.shape[1] == s, p.shape[2] == n else {
                throw PruningError.unexpectedAttentionShape(site: "\(site)", shape: p.shape, batch: b, sequence: s)
            }
            var acc = sums[site] ?? Array(repeating: 0, count: n)
            var count = 0
            let values = p.scalars
            for row in 0..<p.shape[0] {
                for t in 0..<s where input.attentionMask[(row % b) * s + t] != 0 {
                    let base = (row * s + t) * n
                    for i in 0..<n { acc[i] += Double(values[base + i]) }
                    count += 1
                }
            }
            sums[site] = acc
            counts[site, default: 0] += count
        }
    }

    /// Tokenizes texts with the pretrained model's tokenizer (batches of `batchSize`) and adds them.
    /// - Throws: as `PretrainedModel.tokenize` and `add(_:context:)`.
    public mutating func add(texts: [TokenizerInput], tokenizer pretrained: PretrainedModel, batchSize: Int = 32,
                             truncation: TruncationStrategy? = .longestFirst, context: ComputeContext) throws {
        require(batchSize >= 1, "FusionActivationCollector.add(texts:): batchSize \(batchSize) < 1")
        var start = 0
        while start < texts.count {
            let chunk = Array(texts[start..<min(start + batchSize, texts.count)])
            try add(try pretrained.tokenize(chunk, truncation: truncation).1, context: context)
            start += batchSize
        }
    }

    /// The averages so far.
    /// - Throws: `PruningError.noActivations` if no unmasked token was seen.
    public func table() throws -> FusionActivationTable {
        let n = adapterNames.count
        var overall = Array(repeating: 0.0, count: n), total = 0
        var sites: [SiteActivation] = []
        for site in sums.keys.sorted() where counts[site]! > 0 {
            let c = counts[site]!, sum = sums[site]!
            sites.append(SiteActivation(layer: site.layer, location: site.location, tokens: c, mean: sum.map { $0 / Double(c) }))
            for i in 0..<n { overall[i] += sum[i] }
            total += c
        }
        guard total > 0 else { throw PruningError.noActivations(fusion: fusion) }
        return FusionActivationTable(fusion: fusion, adapterNames: adapterNames, sites: sites,
                                     overall: overall.map { $0 / Double(total) })
    }
}

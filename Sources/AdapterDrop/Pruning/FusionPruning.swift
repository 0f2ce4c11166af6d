// A pruned AdapterFusion: the trained query/key/value over a subset of its adapters (Rücklé et al. 2021,
// Section 5.2; the reference runs `Fuse("a","b", name="a,b,c")`, adapters-reference.md §2.b).
import AdapterCore
import Foundation

extension AdapterFusion {
    /// The same fusion layers (query, key and value weights shared, unchanged) over the adapters in `keep`.
    ///
    /// Q, K and V are `[H, H]` and do not depend on the number of adapters, so running the result as
    /// `Fuse(keep...)` equals the reference's `Fuse(keep..., name: <this fusion>)`.
    /// - Parameters:
    ///   - keep: adapter names, a non-empty subset of `adapterNames`; the result keeps `adapterNames` order.
    ///   - name: the new fusion's name; nil = the kept names joined by commas (so `Fuse(a,b)` finds it).
    /// - Throws: `PruningError.invalidKeep` for an empty list or more names than adapters,
    ///   `AdapterError.fusionAdapterMismatch` for a name the fusion was not trained over.
    public func pruned(keeping keep: [String], name: String? = nil) throws -> AdapterFusion {
        guard !keep.isEmpty, keep.count <= adapterNames.count else {
            throw PruningError.invalidKeep(keep: keep.count, adapters: adapterNames.count)
        }
        for k in keep where !adapterNames.contains(k) {
            throw AdapterError.fusionAdapterMismatch(fusion: self.name, reason: "adapter \"\(k)\" is not one of \(adapterNames)")
        }
        let kept = adapterNames.filter { keep.contains($0) }
        return AdapterFusion(name: name ?? kept.joined(separator: ","), adapterNames: kept, config: config, weights: weights,
                             isFrozen: isFrozen)
    }
}

/// The result of pruning a fusion inside a model.
public struct PrunedFusionModel: Sendable {
    /// The model without the dropped adapters and the original fusion, with `fusion` added.
    public var model: AdapterModel
    /// The pruned fusion.
    public var fusion: AdapterFusion
    /// The adapters removed from the model.
    public var dropped: [String]
    /// The setup that runs the pruned fusion: `Fuse(kept...)` (named when the name is not the joined list).
    public var setup: AdapterComposition {
        .fuse(fusion.adapterNames.map { .adapter($0) },
              name: fusion.adapterNames.joined(separator: ",") == fusion.name ? nil : fusion.name)
    }
}

extension AdapterModel {
    /// Prunes a fusion to the adapters in `keep`: returns a model whose fusion `fusionName` is replaced by
    /// `AdapterFusion.pruned(keeping:name:)` and whose other adapters of that fusion are removed (heads are kept).
    /// Adapters that another remaining fusion still uses are not removed.
    /// - Throws: `PruningError.unknownFusion`, as `AdapterFusion.pruned(keeping:name:)`.
    public func pruningFusion(_ fusionName: String, keeping keep: [String], name: String? = nil) throws -> PrunedFusionModel {
        guard let fusion = fusions[fusionName] else { throw PruningError.unknownFusion(fusionName) }
        let pruned = try fusion.pruned(keeping: keep, name: name)
        var model = self
        try model.removeFusion(fusionName)
        let stillUsed = Set(model.fusions.values.flatMap(\.adapterNames))
        let dropped = fusion.adapterNames.filter { !pruned.adapterNames.contains($0) && !stillUsed.contains($0) }
        for d in dropped { try model.removeAdapter(d) }
        if model.fusions[pruned.name] != nil { try model.removeFusion(pruned.name) }
        try model.addFusion(pruned)
        return PrunedFusionModel(model: model, fusion: pruned, dropped: dropped)
    }

    /// Collects average activations of `fusionName` over batches and prunes it to the top `keep` adapters.
    /// - Parameters:
    ///   - fusionName: the fusion to prune (its name, e.g. `f1,f2,f3`).
    ///   - keep: how many adapters to keep, `1...N`.
    ///   - scope: `.global` or `.perLayer` (see `FusionActivationTable.Scope`).
    ///   - batches: inputs `[batch, seq]` (padding excluded through their masks).
    ///   - setup: the setup the activations are collected under; nil for `Fuse(<the fusion's adapters>)`.
    ///   - skipLayers: AdapterDrop layers without adapters while collecting (they contribute nothing).
    ///   - name: the pruned fusion's name; nil for the kept adapter names joined by commas.
    ///   - context: threads, GEMM backend and workspaces the op runs with.
    /// - Returns: the activation table and the pruned model.
    /// - Throws: `PruningError` (`.invalidKeep` for k = 0 or k > N, `.noActivations`), model errors.
    public func pruneFusion(_ fusionName: String, keep: Int, scope: FusionActivationTable.Scope = .global,
                            batches: [EncoderInput], setup: AdapterComposition? = nil, skipLayers: Set<Int> = [],
                            name: String? = nil, context: ComputeContext) throws -> (table: FusionActivationTable, pruned: PrunedFusionModel) {
        var collector = try FusionActivationCollector(model: self, fusion: fusionName, setup: setup, skipLayers: skipLayers)
        guard keep >= 1, keep <= collector.adapterNames.count else {
            throw PruningError.invalidKeep(keep: keep, adapters: collector.adapterNames.count)
        }
        for b in batches { try collector.add(b, context: context) }
        let table = try collector.table()
        return (table, try pruningFusion(fusionName, keeping: try table.adaptersToKeep(keep, scope: scope), name: name))
    }
}

extension PrunedFusionModel {
    /// Writes the pruned artefacts with the AdapterHub writers: `folder/<fusion name>/` (the pruned fusion) and
    /// `folder/<adapter>/` for each kept adapter (with the head of the same name, if any). Each loads like
    /// any saved fusion or adapter (load the adapters first). The subfolders change together, as one atomic
    /// step (`saveFoldersAtomically`): a crash leaves all old or all new versions, never a new fusion beside old
    /// adapters.
    /// - Returns: the folders written, fusion first.
    /// - Throws: I/O errors of the writers.
    @discardableResult
    public func save(to folder: URL) throws -> [URL] {
        let names = [fusion.name] + fusion.adapterNames
        try saveFoldersAtomically(folder) { staging in
            try fusion.save(to: staging.appendingPathComponent(fusion.name), model: model.modelDescription)
            for a in fusion.adapterNames { try model.saveAdapter(a, to: staging.appendingPathComponent(a)) }
        }
        return names.map { folder.appendingPathComponent($0) }
    }
}

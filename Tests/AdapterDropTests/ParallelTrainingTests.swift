// Parallel training (two adapters, one head each, summed loss) with batch replication: tier D against
// adapters 1.3.0 + PyTorch (Tests/Fixtures/adapters/parallel_training) and tier C at one replicating site.
import AdapterCore
@testable import AdapterDrop
import Foundation
import TestSupport
import Testing

@Suite struct ParallelTrainingTests {
    func fixture() throws -> (AdapterModel, EncoderInput, SafetensorsFile, [Float]) {
        let model = try adapterFixtureModel("parallel_training", adapters: ["p1", "p2"])
        let (file, input) = try adapterFixture("parallel_training")
        return (model, input, file, try file.integers("labels").map(Float.init))
    }

    /// One step: forward (replicated above the first Parallel site), each head on its row block, summed loss,
    /// one backward with the concatenated head gradients. Returns the loss, per-head logits and all gradients.
    func replicatedStep(_ model: AdapterModel, _ input: EncoderInput, _ module: ParallelTrainingModule,
                        _ heads: [PredictionHeadTrainingModule], _ labels: [Float],
                        context: ComputeContext) throws -> (loss: Float, losses: [Float], logits: [Tensor], gradients: [String: Tensor], outputRows: Int) {
        var rng = SeededRNG(seed: 0)
        let tape = try model.encoder.trainingForward(input, trainable: module, dropout: .off, rng: &rng, context: context)
        let rows = tape.output.shape[0]
        var loss: Float = 0, losses: [Float] = [], logits: [Tensor] = [], dOut: [Tensor] = []
        for (i, head) in heads.enumerated() {
            let r = module.branchRows(i, outputRows: rows, batch: input.batchSize, sequenceLength: input.sequenceLength)
            let block = r == 0..<rows ? tape.output : tape.output.slice(rows: r).contiguous()
            let t = head.forward(block, batch: input.batchSize, sequenceLength: input.sequenceLength, context: context)
            let l = try head.loss(t, labels: labels)
            loss += l.loss
            losses.append(l.loss)
            logits.append(t.logits)
            dOut.append(head.backward(t, logitsGradient: l.gradient, context: context))
        }
        var g: Tensor
        if rows == input.batchSize * input.sequenceLength {
            g = dOut[0]
            for k in 1..<dOut.count { accumulate(dOut[k], into: &g, context: context) }
        } else {
            g = Tensor(concatenating: dOut)
        }
        var none: [LayerNormGradients]? = nil
        _ = model.encoder.trainingBackward(tape, outputGradient: g, trainable: module, layerNormGradients: &none, context: context)
        var grads = module.takeGradients()
        for h in heads { for (k, v) in h.takeGradients() { grads[k] = v } }
        return (loss, losses, logits, grads, rows)
    }

    func modules(_ model: AdapterModel) throws -> (ParallelTrainingModule, [PredictionHeadTrainingModule]) {
        let module = try ParallelTrainingModule(try ["p1", "p2"].map {
            BottleneckAdapterTrainingModule(try #require(model.adapters[$0]))
        })
        return (module, try ["p1", "p2"].map { PredictionHeadTrainingModule(try #require(model.heads[$0])) })
    }

    /// Summed loss, each head's loss and logits, and the gradients of all 24 trainable tensors (16 with
    /// skip_layers [0]: replication then happens at layer 1) against PyTorch; gradients within 1e-4 rel +
    /// 1e-6 abs (issue #5's bar), loss/logits 1e-5. The encoder output is replicated ([2·batch·seq, H]).
    @Test(arguments: ["", "skip_0."])
    func gradientsMatchPyTorch(_ prefix: String) throws {
        let (model, input, file, labels) = try fixture()
        let (module, heads) = try modules(model)
        module.skipLayers = prefix.isEmpty ? [] : [0]
        #expect(module.replicationSite == AdapterSite(layer: prefix.isEmpty ? 0 : 1, location: .output))
        let r = try replicatedStep(model, input, module, heads, labels, context: ComputeContext(threads: 2))
        #expect(r.outputRows == 2 * input.batchSize * input.sequenceLength)
        let loss = expectClose([r.loss], try file.floats(prefix + "loss"), atol: 0, rtol: 1e-5, "\(prefix)loss")
        print("parallel training \(prefix)loss: \(loss)")
        for (i, name) in ["p1", "p2"].enumerated() {
            _ = expectClose([r.losses[i]], try file.floats("\(prefix)\(name).loss"), atol: 0, rtol: 1e-5, "\(prefix)\(name) loss")
            let lr = expectClose(r.logits[i].scalars, try file.floats("\(prefix)\(name).logits"), atol: 1e-5, rtol: 1e-5,
                                 "\(prefix)\(name) logits")
            print("parallel training \(prefix)\(name) logits: \(lr)")
        }
        let gradPrefix = prefix + "grad."
        let expectedNames = file.tensorNames.filter { $0.hasPrefix(gradPrefix) }
        #expect(expectedNames.count == (prefix.isEmpty ? 24 : 16))
        #expect(Set(r.gradients.keys) == Set(expectedNames.map { String($0.dropFirst(gradPrefix.count)) }),
                "gradient names \(r.gradients.keys.sorted())")
        var worstAbs = 0.0, worstRel = 0.0
        for key in expectedNames.sorted() {
            let name = String(key.dropFirst(gradPrefix.count))
            let g = try #require(r.gradients[name], "no gradient for \(name)")
            let report = expectClose(g.scalars, try file.floats(key), atol: 1e-6, rtol: 1e-4, "\(prefix)grad \(name)")
            worstAbs = max(worstAbs, report.maxAbsError)
            worstRel = max(worstRel, report.maxRelError)
        }
        print("parallel training \(prefix)gradients: max abs \(worstAbs), max rel \(worstRel)")
    }

    /// One branch at a time (`selectBranch`, no replication; the per-branch trainer loop) gives the same
    /// gradients as the replicated pass (1e-6 abs + 1e-5 rel: same arithmetic per branch, other summation
    /// order of the two branches' gradients below the replication site).
    @Test func perBranchPassesEqualReplicatedPass() throws {
        let (model, input, _, labels) = try fixture()
        let (module, heads) = try modules(model)
        let context = ComputeContext(threads: 1)
        let replicated = try replicatedStep(model, input, module, heads, labels, context: context)
        var summed: [String: Tensor] = [:]
        for i in 0..<2 {
            module.selectBranch(i)
            var rng = SeededRNG(seed: 0)
            let tape = try model.encoder.trainingForward(input, trainable: module, dropout: .off, rng: &rng, context: context)
            #expect(tape.output.shape[0] == input.batchSize * input.sequenceLength)
            let t = heads[i].forward(tape.output, batch: input.batchSize, sequenceLength: input.sequenceLength, context: context)
            let l = try heads[i].loss(t, labels: labels)
            #expect(abs(l.loss - replicated.losses[i]) <= 1e-6 * abs(l.loss))
            var none: [LayerNormGradients]? = nil
            _ = model.encoder.trainingBackward(tape, outputGradient: heads[i].backward(t, logitsGradient: l.gradient, context: context),
                                               trainable: module, layerNormGradients: &none, context: context)
            for (k, v) in module.takeGradients() { summed[k] = v }
            for (k, v) in heads[i].takeGradients() { summed[k] = v }
        }
        module.selectBranch(nil)
        #expect(Set(summed.keys) == Set(replicated.gradients.keys))
        for (k, v) in summed { _ = expectClose(v.scalars, replicated.gradients[k]!.scalars, atol: 1e-6, rtol: 1e-5, k) }
    }

    /// Tier C at the replicating site: three seq_bn branches on 3 rows, hidden 8; the output is [9, 8]; dL/dh,
    /// dL/da (summed over the replicas) and every branch tensor for L = Σ y ⊙ R against central differences
    /// (the adapter checks' budget: ε = 1e-2, 3e-3 abs + 1e-2 rel).
    @Test func replicatingSiteMatchesFiniteDifferences() throws {
        let hidden = 8, rows = 3
        var rng = SeededRNG(seed: 41)
        func random(_ shape: [Int], _ std: Float) -> Tensor {
            Tensor(shape: shape, scalars: (0..<shape.reduce(1, *)).map { _ in rng.normal(mean: 0, std: std) })
        }
        let branches = try (0..<3).map { i in
            let c = try BottleneckConfig.preset("seq_bn", overrides: ["reduction_factor": .int(2 + 2 * (i % 2)),
                                                                      "non_linearity": .string(i == 1 ? "swish" : "tanh")])
            let m = BottleneckAdapterTrainingModule(try BottleneckAdapter(name: "b\(i)", config: c, hiddenSize: hidden, numLayers: 1),
                                                    keyPrefix: "")
            for k in m.parameters.keys.sorted() { m.parameters[k] = random(m.parameters[k]!.shape, 0.5) }
            return m
        }
        let module = try ParallelTrainingModule(branches)
        let h = random([rows, hidden], 1), a = random([rows, hidden], 1), r = random([3 * rows, hidden], 1)
        let ln = SublayerLayerNorm(weight: Tensor(shape: [hidden], scalars: (0..<hidden).map { 1 + 0.1 * Float($0) }),
                                   bias: random([hidden], 0.1), eps: 1e-12)
        let context = ComputeContext(threads: 1)
        func forward(_ h: Tensor, _ a: Tensor, save: Bool) -> TrainableSublayerForward {
            var g = SeededRNG(seed: 0)
            return module.trainingForward(layer: 0, location: .output, hidden: h, residual: a, layerNorm: ln, batch: 1,
                                          sequenceLength: rows, saveForBackward: save, dropout: .off, rng: &g,
                                          context: context)!
        }
        func loss(_ h: Tensor, _ a: Tensor) -> Double { probeLoss(forward(h, a, save: false).output, r) }
        let fwd = forward(h, a, save: true)
        #expect(fwd.output.shape == [3 * rows, hidden])
        let (dh, da) = module.trainingBackward(layer: 0, location: .output, outputGradient: r, saved: fwd.saved,
                                               layerNorm: ln, context: context)
        #expect(dh.shape == [rows, hidden] && da.shape == [rows, hidden])
        let grads = module.takeGradients()
        #expect(grads.count == 12)
        var checker = FiniteDifferenceChecker(atol: 3e-3, rtol: 1e-2, label: "parallel")
        checker.check(dh, at: h, "dh") { loss($0, a) }
        checker.check(da, at: a, "da") { loss(h, $0) }
        checker.checkParameters(grads, get: { module.parameters[$0]! }, set: { module.setParameters([$0: $1]) }) { loss(h, a) }
        print("parallel training finite differences: max abs err \(checker.worst)")
    }

    /// Mismatched branches are refused with a thrown error naming the adapter.
    @Test func mismatchedBranchesThrow() throws {
        let c1 = try BottleneckConfig.preset("seq_bn", overrides: ["reduction_factor": .int(2)])
        let c2 = try BottleneckConfig.preset("double_seq_bn", overrides: ["reduction_factor": .int(2)])
        let m1 = BottleneckAdapterTrainingModule(try BottleneckAdapter(name: "x", config: c1, hiddenSize: 8, numLayers: 2))
        let m2 = BottleneckAdapterTrainingModule(try BottleneckAdapter(name: "y", config: c2, hiddenSize: 8, numLayers: 2))
        #expect(throws: AdapterError.self) { try ParallelTrainingModule([m1, m2]) }
        #expect(throws: AdapterError.self) { try ParallelTrainingModule([m1, m1]) }
    }
}

// The setup parser, nesting and depth rules, and the run-time checks of AdapterModel (heads, batch sizes).
import AdapterCore
@testable import AdapterDrop
import Foundation
import TestSupport
import Testing

@Suite struct CompositionTests {
    @Test func parsesTheReferenceNotation() throws {
        #expect(try AdapterComposition.parse("a") == .adapter("a"))
        #expect(try AdapterComposition.parse("none") == nil)
        #expect(try AdapterComposition.parse("Parallel(a, b)") == .parallel([.adapter("a"), .adapter("b")]))
        #expect(try AdapterComposition.parse("Stack(Fuse(a,b),c)") == .stack([.fuse([.adapter("a"), .adapter("b")], name: nil), .adapter("c")]))
        #expect(try AdapterComposition.parse("BatchSplit(a,b,batch_sizes=[1,2])") == .batchSplit([.adapter("a"), .adapter("b")], batchSizes: [1, 2]))
        #expect(try AdapterComposition.parse("BatchSplit(a,b,batch_sizes=2)") == .batchSplit([.adapter("a"), .adapter("b")], batchSizes: [2, 2]))
        #expect(try AdapterComposition.parse(#"Fuse(a,b,name="a,b,c")"#) == .fuse([.adapter("a"), .adapter("b")], name: "a,b,c"))
        #expect(try AdapterComposition.parse("Average(a,b,weights=[1,3])") == .average([.adapter("a"), .adapter("b")], weights: [0.25, 0.75]))
        #expect(try AdapterComposition.parse("Average(a,b)") == .average([.adapter("a"), .adapter("b")], weights: [0.5, 0.5]))
        let s = try #require(try AdapterComposition.parse("Stack(Fuse(a,b),c)"))
        #expect(s.first == "a" && s.last == "c" && s.flattened == ["a", "b", "c"])
        #expect(s.children[0].fusionName == "a,b")
        #expect(try AdapterComposition.parse(s.description) == s)
        #expect(try #require(try AdapterComposition.parse("Stack(a,Parallel(b,c,d))")).parallelChannels == 3)
    }

    @Test func rejectsBadText() {
        for text in ["Stack(a,", "Stack()", "Foo(a)", "Stack(a))", "BatchSplit(a,b)", "Fuse(a,b,weights=[1])", "Stack(a b)"] {
            #expect(throws: AdapterError.self, "\(text)") { _ = try AdapterComposition.parse(text) }
        }
        #expect(throws: AdapterError.unsupportedBlock("Split")) { _ = try AdapterComposition.parse("Split(a,b,splits=[2,3])") }
    }

    /// Illegal nestings name both blocks; depth beyond level 1 allows only Stack.
    @Test func nestingRules() {
        #expect(throws: AdapterError.illegalNesting(parent: "Fuse", child: "Parallel")) { _ = try AdapterComposition.parse("Fuse(Parallel(a,b),c)") }
        #expect(throws: AdapterError.illegalNesting(parent: "Parallel", child: "Fuse")) { _ = try AdapterComposition.parse("Parallel(Fuse(a,b),c)") }
        #expect(throws: AdapterError.illegalNesting(parent: "Parallel", child: "Parallel")) { _ = try AdapterComposition.parse("Parallel(Parallel(a,b),c)") }
        #expect(throws: AdapterError.illegalNesting(parent: "Average", child: "Fuse")) { _ = try AdapterComposition.parse("Average(Fuse(a,b),c)") }
        #expect(throws: AdapterError.compositionTooDeep(block: "Fuse", level: 3)) { _ = try AdapterComposition.parse("Stack(Parallel(Stack(Fuse(a,b)),c))") }
        #expect(throws: AdapterError.compositionTooDeep(block: "BatchSplit", level: 2)) {
            _ = try AdapterComposition.parse("Parallel(Stack(BatchSplit(a,b,batch_sizes=[1,1])),c)")
        }
        #expect(throws: AdapterError.illegalNesting(parent: "Stack", child: "Stack")) { _ = try AdapterComposition.parse("Stack(Stack(a))") }
        #expect(throws: Never.self) { _ = try AdapterComposition.parse("Stack(Fuse(Stack(a,b),c),d)") }
        #expect(throws: Never.self) { _ = try AdapterComposition.parse("Parallel(Stack(a,b),BatchSplit(c,d,batch_sizes=[1,1]))") }
    }

    @Test func runTimeChecks() throws {
        let model = try adapterFixtureModel("parallel", adapters: ["p1", "p2"])
        let (_, input) = try adapterFixture("parallel")
        let context = ComputeContext(threads: 1)
        let parallel = AdapterComposition.parallel([.adapter("p1"), .adapter("p2")])
        #expect(throws: AdapterError.parallelHeadCount(channels: 2, heads: 1)) {
            _ = try model(input, setup: parallel, heads: ["p1"], context: context)
        }
        #expect(throws: AdapterError.batchSplitSizes(sizes: [1, 1], batch: 3)) {
            _ = try model(input, setup: .batchSplit([.adapter("p1"), .adapter("p2")], batchSizes: [1, 1]), context: context)
        }
        #expect(throws: AdapterError.unknownAdapter("q")) { _ = try model(input, setup: .adapter("q"), context: context) }
        #expect(throws: AdapterError.unknownHead("q")) { _ = try model(input, setup: .adapter("p1"), heads: ["q"], context: context) }
        #expect(throws: AdapterError.unknownFusion("p1,p2")) {
            _ = try model(input, setup: .fuse([.adapter("p1"), .adapter("p2")], name: nil), context: context)
        }
        // A Parallel whose layers are all skipped never replicates: both heads read the shared batch.
        let skipped = try model(input, setup: parallel, skipLayers: [0, 1], context: context)
        #expect(skipped.encoder.lastHiddenState.shape == [3, 12, 32])
        #expect(skipped.heads.map(\.rows) == [0..<3, 0..<3])
    }

    /// Per-call skipLayers is explicit: the same model value answers differently per call, and concurrent
    /// calls with different setups do not interfere.
    @Test func skipLayersIsPerCall() async throws {
        let model = try adapterFixtureModel("seq_bn", adapters: ["a"])
        let (expected, input) = try adapterFixture("seq_bn")
        async let full = Task.detached { try model(input, setup: .adapter("a"), context: ComputeContext(threads: 1)) }.value
        async let skip = Task.detached { try model(input, setup: .adapter("a"), skipLayers: [0], context: ComputeContext(threads: 1)) }.value
        let (f, s) = try await (full, skip)
        try expectParity(try #require(f[head: "a"]), expected, "logits", "concurrent")
        try expectParity(try #require(s[head: "a"]), expected, "skip_0.logits", "concurrent")
    }
}

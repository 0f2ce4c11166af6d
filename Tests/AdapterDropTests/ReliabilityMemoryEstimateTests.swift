// Reliability: batch × sequence × layers beyond a memory limit are rejected before running, with the estimate
// in the error (MemoryEstimate.swift, docs/reliability.md "Resource bounds").
@testable import AdapterDrop
import Foundation
import Testing

@Suite("Reliability: memory estimate")
struct ReliabilityMemoryEstimateTests {
    let bertBase = BertConfig(hiddenSize: 768, numHiddenLayers: 12, numAttentionHeads: 12, intermediateSize: 3072,
                              vocabSize: 30522)

    /// The weight count is exact: bert-base-uncased has 109 482 240 parameters (transformers
    /// `BertModel.num_parameters()`, pooler included).
    @Test func weightBytesMatchBertBase() {
        let e = MemoryEstimate(config: bertBase, batch: 1, sequenceLength: 1, mode: .inference)
        #expect(e.weightBytes == 109_482_240 * 4)
    }

    /// Inference activations for batch 8 × seq 128 on bert-base: tokens·(7·768 + 3072) + seq² values.
    @Test func inferenceActivationsFollowTheFormula() {
        let e = MemoryEstimate(config: bertBase, batch: 8, sequenceLength: 128, mode: .inference, threads: 2)
        #expect(e.workingBytes == (1024 * (7 * 768 + 3072) + 2 * 128 * 128) * 4)
        let parallel = MemoryEstimate(config: bertBase, batch: 8, sequenceLength: 128, mode: .inference, replicas: 4, threads: 2)
        #expect(parallel.workingBytes > 3 * e.workingBytes, "Parallel(4) repeats the batch")
    }

    /// Training grows with layers (saved activations) and with the square of the sequence (attention).
    @Test func trainingGrowsWithLayersAndSequence() {
        let e = MemoryEstimate(config: bertBase, batch: 32, sequenceLength: 128, mode: .training, trainableParameters: 900_000)
        var six = bertBase
        six.numHiddenLayers = 6
        let e6 = MemoryEstimate(config: six, batch: 32, sequenceLength: 128, mode: .training, trainableParameters: 900_000)
        let long = MemoryEstimate(config: bertBase, batch: 32, sequenceLength: 512, mode: .training, trainableParameters: 900_000)
        #expect(e.workingBytes > e6.workingBytes && long.workingBytes > 4 * e.workingBytes)
        // batch 32 × 128 tokens on bert-base needs several GiB of saved activations: more than 2, less than 20.
        #expect(e.workingBytes > 2 << 30 && e.workingBytes < 20 << 30, "\(e)")
    }

    /// Absurd shapes saturate instead of overflowing, and are rejected with the figure in the message.
    @Test func hugeShapesAreRejectedWithTheEstimate() throws {
        let e = MemoryEstimate(config: bertBase, batch: Int.max / 2, sequenceLength: 1 << 40, mode: .training)
        #expect(e.totalBytes == Int.max)
        let error = #expect(throws: MemoryLimitError.self) { try e.check(limitBytes: 8 << 30) }
        let text = "\(error!)"
        #expect(text.contains("more than 8 EiB") && text.contains("8.00 GiB") && text.contains("--memory-limit"), "\(text)")
        let small = MemoryEstimate(config: bertBase, batch: 1, sequenceLength: 16, mode: .inference)
        try small.check(limitBytes: 1 << 30)
        let denied = #expect(throws: MemoryLimitError.self) { try small.check(limitBytes: 100 << 20) }
        #expect("\(denied!)".contains("batch 1 × seq 16 × 12 layers"), "\(denied!)")
    }

    @Test func byteCountsParse() {
        #expect(MemoryEstimate.parseByteCount("1048576") == 1 << 20)
        #expect(MemoryEstimate.parseByteCount("512M") == 512 << 20)
        #expect(MemoryEstimate.parseByteCount("8g") == 8 << 30)
        #expect(MemoryEstimate.parseByteCount("1.5GiB") == 3 << 29)
        #expect(MemoryEstimate.parseByteCount("2KB") == 2048)
        for bad in ["", "0", "-1G", "G", "1X", "nan", "1e30", "inf"] { #expect(MemoryEstimate.parseByteCount(bad) == nil, "\(bad)") }
        #expect(MemoryEstimate.defaultLimitBytes > 0)
    }

    /// The estimate against the peak RSS measured by `scripts/memory-estimate-check.py` (release CLI, 2 threads,
    /// all-MiniLM-L6-v2; docs/reliability.md "Resource bounds"): every measured peak lies at or below the
    /// estimate, and the estimate is not above 1/0.6 of the peak (so it stays useful as a limit). Before the
    /// overhead term and the training calibration, the ratio RSS / estimate was 1.17–2.29 (inference) and
    /// 1.38–1.48 (training): every run used more memory than its estimate.
    @Test func estimateCoversMeasuredPeakRSS() {
        let miniLM = BertConfig(hiddenSize: 384, numHiddenLayers: 6, numAttentionHeads: 12, intermediateSize: 1536,
                                vocabSize: 30522)
        // (mode, batch, seq, measured peak RSS in MiB)
        let measured: [(MemoryEstimate.Mode, Int, Int, Double)] = [
            (.inference, 1, 16, 198.8), (.inference, 8, 128, 198.9), (.inference, 32, 256, 265.4),
            (.inference, 64, 256, 410.5), (.training, 8, 64, 285.0), (.training, 16, 128, 876.4),
            (.training, 32, 256, 3825.8),
        ]
        for (mode, batch, seq, rss) in measured {
            let e = MemoryEstimate(config: miniLM, batch: batch, sequenceLength: seq, mode: mode, threads: 2)
            let ratio = rss * Double(1 << 20) / Double(e.totalBytes)
            #expect(ratio <= 1 && ratio >= 0.6, "\(mode) \(batch) × \(seq): peak RSS \(rss) MiB = \(ratio) × the estimate \(e)")
        }
    }
}

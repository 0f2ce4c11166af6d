// One call that trains a new bottleneck adapter + classification head on a text-classification dataset with
// `AdapterTrainer` and adds both to an `AdapterModel` (what the README's library example and the demo use).
import AdapterCore
import Foundation

extension AdapterModel {
    /// Trains a new adapter and classification head named `name` on `dataset` (the encoder stays frozen) and
    /// adds both to the model, replacing an adapter or head of the same name.
    ///
    /// The head is AdapterHub's classification head (2 layers, tanh, on [CLS]) with `label2id` from
    /// `dataset.labels`. Training is `AdapterTrainer` (AdamW, linear warm-up/decay, clipping, AdapterDrop per
    /// `options.policy`).
    /// - Parameters:
    ///   - name: the adapter's and the head's name.
    ///   - dataset: training examples; `dataset.labels.count` classes.
    ///   - config: the adapter configuration (default: `seq_bn`, reduction factor 16).
    ///   - options: trainer options; `policy` selects standard, specialized or robust AdapterDrop.
    ///   - seed: initialisation seed of the adapter (the head uses `seed + 1`).
    ///   - context: threads and workspaces.
    ///   - progress: receives one event per optimizer step (e.g. `ConsoleTrainingProgress()`); nil for none.
    ///   - encode: turns a batch of examples into encoder input `[batch, seq]`.
    /// - Returns: the trainer's result (per-step losses and drops, the adapter and the head).
    /// - Throws: `AdapterError` (bad config), `TrainingError` (options, unsupported adapter, non-finite values),
    ///   errors of `encode`, `EncoderError`.
    @discardableResult
    public mutating func trainAdapter(_ name: String, on dataset: TextClassificationDataset,
                                      config: BottleneckConfig? = nil, options: AdapterTrainingOptions = AdapterTrainingOptions(),
                                      seed: UInt64 = 0, context: ComputeContext = ComputeContext(),
                                      progress: (any TrainingProgressReporter)? = nil,
                                      encode: @escaping AdapterTrainer.BatchEncoder) throws -> AdapterTrainingResult {
        let adapter = try BottleneckAdapter(name: name, config: config ?? .preset("seq_bn"), hiddenSize: encoder.config.hiddenSize,
                                            numLayers: encoder.config.numHiddenLayers, seed: seed)
        var headConfig = PredictionHeadConfig.classification(numLabels: dataset.labels.count)
        headConfig.label2id = Dictionary(uniqueKeysWithValues: dataset.labels.enumerated().map { ($1, $0) })
        let head = PredictionHead(name: name, config: headConfig, hiddenSize: encoder.config.hiddenSize, seed: seed &+ 1)
        let trainer = try AdapterTrainer(encoder: encoder, adapter: adapter, head: head, options: options, encode: encode)
        trainer.progress = progress
        let result = try trainer.train(on: dataset, context: context)
        if adapters[name] != nil { try removeAdapter(name) }
        try addAdapter(result.adapter)
        addHead(result.head)
        return result
    }

    /// `trainAdapter(_:on:config:options:seed:context:encode:)` with texts tokenized by a pretrained model's
    /// tokenizer, cut to `maxLength` tokens (special tokens included; longest-first for pairs).
    /// - Parameter maxLength: at most `tokenizer.maxLength` (nil: that maximum).
    /// - Throws: as the other overload; `DemoError.sequenceLengthTooLong` for a `maxLength` above the model's.
    @discardableResult
    public mutating func trainAdapter(_ name: String, on dataset: TextClassificationDataset, tokenizer: PretrainedModel,
                                      maxLength: Int? = nil, policy: AdapterDropPolicy = .none,
                                      options: AdapterTrainingOptions = AdapterTrainingOptions(), seed: UInt64 = 0,
                                      context: ComputeContext = ComputeContext(),
                                      progress: (any TrainingProgressReporter)? = nil) throws -> AdapterTrainingResult {
        let limit = maxLength ?? tokenizer.maxLength
        guard limit <= tokenizer.maxLength else {
            throw DemoError.sequenceLengthTooLong(requested: limit, maximum: tokenizer.maxLength, model: tokenizer.url.path)
        }
        var options = options
        options.policy = policy
        let words = tokenizer.tokenizer
        return try trainAdapter(name, on: dataset, options: options, seed: seed, context: context, progress: progress) { batch in
            let encoded = try words.encode(batch: batch.map { e in e.textPair.map { .pair(e.text, $0) } ?? .single(e.text) },
                                           options: EncodingOptions(truncation: .longestFirst, maxLength: limit, padding: .longest))
            return try EncoderInput(encoded, padTokenId: words.padTokenID)
        }
    }
}

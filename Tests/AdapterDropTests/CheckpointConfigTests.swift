// config.json parsing: required keys name themselves and the file, unsupported variants are clear errors,
// unknown keys are ignored, and the Codable round trip keeps every value.
import AdapterCore
import Foundation
import Testing

@testable import AdapterDrop

/// A complete MiniLM-style config (the all-MiniLM-L6-v2 config.json) with `overrides` applied;
/// a `nil` override removes the key.
func bertConfigJSON(_ overrides: [String: Any?] = [:]) -> Data {
    var object: [String: Any] = [
        "_name_or_path": "nreimers/MiniLM-L6-H384-uncased", "architectures": ["BertModel"],
        "attention_probs_dropout_prob": 0.1, "gradient_checkpointing": false, "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1, "hidden_size": 384, "initializer_range": 0.02, "intermediate_size": 1536,
        "layer_norm_eps": 1e-12, "max_position_embeddings": 512, "model_type": "bert", "num_attention_heads": 12,
        "num_hidden_layers": 6, "pad_token_id": 0, "position_embedding_type": "absolute",
        "transformers_version": "4.8.2", "type_vocab_size": 2, "use_cache": true, "vocab_size": 30522,
    ]
    for (key, value) in overrides { object[key] = value ?? nil }
    return try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
}

@Suite("Checkpoint config.json")
struct CheckpointConfigTests {
    @Test("Parses a MiniLM (bert) config; unknown keys are ignored")
    func parsesMiniLM() throws {
        let config = try BertConfig(jsonData: bertConfigJSON(), file: "m/config.json")
        #expect(config.modelType == .bert)
        #expect(config.hiddenSize == 384)
        #expect(config.numHiddenLayers == 6)
        #expect(config.numAttentionHeads == 12)
        #expect(config.headSize == 32)
        #expect(config.intermediateSize == 1536)
        #expect(config.hiddenAct == "gelu")
        #expect(config.hiddenActivation == .gelu)
        #expect(config.layerNormEps == 1e-12)
        #expect(config.maxPositionEmbeddings == 512)
        #expect(config.typeVocabSize == 2)
        #expect(config.vocabSize == 30522)
        #expect(config.padTokenId == 0)
        #expect(config.positionEmbeddingType == "absolute")
        #expect(config.hiddenDropoutProb == 0.1)
        #expect(config.attentionProbsDropoutProb == 0.1)
    }

    @Test("Parses a RoBERTa config")
    func parsesRoberta() throws {
        let config = try BertConfig(jsonData: bertConfigJSON([
            "model_type": "roberta", "pad_token_id": 1, "max_position_embeddings": 514, "type_vocab_size": 1,
            "vocab_size": 50265, "layer_norm_eps": 1e-5,
        ]))
        #expect(config.modelType == .roberta)
        #expect(config.modelType.weightPrefix == "roberta.")
        #expect(config.padTokenId == 1)
        #expect(config.layerNormEps == 1e-5)
    }

    @Test("hidden_act maps to the activation enum", arguments: [
        ("gelu", Activation.gelu), ("gelu_new", .geluTanh), ("gelu_pytorch_tanh", .geluTanh), ("relu", .relu),
        ("silu", .silu), ("swish", .silu),
    ])
    func activations(name: String, activation: Activation) throws {
        let config = try BertConfig(jsonData: bertConfigJSON(["hidden_act": name]))
        #expect(config.hiddenActivation == activation)
        #expect(config.hiddenAct == name)
    }

    @Test("A missing required key throws naming the key and the file", arguments: BertConfig.CodingKeys.allCases.filter {
        ![.padTokenId, .positionEmbeddingType, .hiddenDropoutProb, .attentionProbsDropoutProb].contains($0)
    })
    func missingKey(key: BertConfig.CodingKeys) throws {
        let error = ModelConfigError.missingKey(file: "/models/x/config.json", key: key.rawValue)
        #expect(throws: error) {
            try BertConfig(jsonData: bertConfigJSON([key.rawValue: nil]), file: "/models/x/config.json")
        }
        #expect(error.description == "/models/x/config.json: missing required key \"\(key.rawValue)\"")
        // JSON null counts as missing.
        #expect(throws: error) {
            try BertConfig(jsonData: bertConfigJSON([key.rawValue: NSNull()]), file: "/models/x/config.json")
        }
    }

    @Test("Optional keys may be absent")
    func optionalKeys() throws {
        let config = try BertConfig(jsonData: bertConfigJSON([
            "pad_token_id": nil, "position_embedding_type": nil, "hidden_dropout_prob": nil,
            "attention_probs_dropout_prob": nil,
        ]))
        #expect(config.padTokenId == nil)
        #expect(config.positionEmbeddingType == "absolute")
        #expect(config.hiddenDropoutProb == nil)
    }

    @Test("Relative position embeddings are unsupported", arguments: ["relative_key", "relative_key_query"])
    func unsupportedPositionEmbedding(type: String) throws {
        #expect(throws: ModelConfigError.unsupportedPositionEmbedding(file: "c.json", positionEmbeddingType: type)) {
            try BertConfig(jsonData: bertConfigJSON(["position_embedding_type": type]), file: "c.json")
        }
    }

    @Test("Unsupported model type, activation; indivisible heads; bad values")
    func invalidValues() throws {
        #expect(throws: ModelConfigError.unsupportedModelType(file: "c.json", modelType: "gpt2")) {
            try BertConfig(jsonData: bertConfigJSON(["model_type": "gpt2"]), file: "c.json")
        }
        #expect(throws: ModelConfigError.unsupportedActivation(file: "c.json", hiddenAct: "tanh")) {
            try BertConfig(jsonData: bertConfigJSON(["hidden_act": "tanh"]), file: "c.json")
        }
        #expect(throws: ModelConfigError.hiddenSizeNotDivisible(file: "c.json", hiddenSize: 384, numAttentionHeads: 7)) {
            try BertConfig(jsonData: bertConfigJSON(["num_attention_heads": 7]), file: "c.json")
        }
        #expect(throws: ModelConfigError.invalidValue(file: "c.json", key: "num_hidden_layers", reason: "must be positive, got 0")) {
            try BertConfig(jsonData: bertConfigJSON(["num_hidden_layers": 0]), file: "c.json")
        }
        #expect(throws: ModelConfigError.invalidValue(file: "c.json", key: "hidden_size", reason: "expected an integer")) {
            try BertConfig(jsonData: bertConfigJSON(["hidden_size": "384"]), file: "c.json")
        }
        #expect(throws: ModelConfigError.invalidValue(file: "c.json", key: "hidden_size", reason: "expected an integer")) {
            try BertConfig(jsonData: bertConfigJSON(["hidden_size": 384.5]), file: "c.json")
        }
        #expect(throws: ModelConfigError.invalidValue(file: "c.json", key: "layer_norm_eps", reason: "must be a positive number, got 0.0")) {
            try BertConfig(jsonData: bertConfigJSON(["layer_norm_eps": 0]), file: "c.json")
        }
        #expect(throws: ModelConfigError.invalidValue(file: "c.json", key: "pad_token_id", reason: "must be in 0..<vocab_size, got 30522")) {
            try BertConfig(jsonData: bertConfigJSON(["pad_token_id": 30522]), file: "c.json")
        }
        #expect(throws: ModelConfigError.invalidValue(file: "c.json", key: "hidden_dropout_prob", reason: "must be in [0, 1), got 1.0")) {
            try BertConfig(jsonData: bertConfigJSON(["hidden_dropout_prob": 1.0]), file: "c.json")
        }
    }

    @Test("Invalid JSON and unreadable files")
    func invalidFiles() throws {
        #expect(throws: ModelConfigError.invalidJSON(file: "c.json", reason: "the root is not an object")) {
            try BertConfig(jsonData: Data("[1]".utf8), file: "c.json")
        }
        do {
            _ = try BertConfig(jsonData: Data("{\"hidden_size\": ".utf8), file: "c.json")
            Issue.record("expected invalidJSON")
        } catch let ModelConfigError.invalidJSON(file, _) {
            #expect(file == "c.json")
        }
        let folder = try CheckpointTempFolder()
        let missing = folder.file("config.json")
        do {
            _ = try BertConfig.load(from: missing)
            Issue.record("expected unreadable")
        } catch let ModelConfigError.unreadable(file, _) {
            #expect(file == missing.path)
        }
        try bertConfigJSON(["vocab_size": nil]).write(to: missing)
        #expect(throws: ModelConfigError.missingKey(file: missing.path, key: "vocab_size")) { try BertConfig.load(from: missing) }
    }

    @Test("Encoding writes snake_case keys and decodes back to the same value")
    func roundTrip() throws {
        let config = BertConfig(
            modelType: .roberta, hiddenSize: 8, numHiddenLayers: 2, numAttentionHeads: 2, intermediateSize: 16,
            hiddenAct: "gelu_new", layerNormEps: 1e-5, maxPositionEmbeddings: 20, typeVocabSize: 1, vocabSize: 30,
            padTokenId: 1, hiddenDropoutProb: nil, attentionProbsDropoutProb: 0.2)
        try config.validate()
        let data = try JSONEncoder().encode(config)
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(object["model_type"] as? String == "roberta")
        #expect(object["hidden_act"] as? String == "gelu_new")
        #expect(object["intermediate_size"] as? Int == 16)
        #expect(object["hidden_dropout_prob"] == nil)
        #expect(try BertConfig(jsonData: data) == config)
        #expect(throws: ModelConfigError.hiddenSizeNotDivisible(file: "config.json", hiddenSize: 8, numAttentionHeads: 3)) {
            var bad = config
            bad.numAttentionHeads = 3
            try bad.validate()
        }
    }
}

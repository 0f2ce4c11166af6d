// Reliability: error messages a new user meets with bad inputs are one useful line naming the file and key
// (docs/reliability.md, "Bad input"): empty or garbage config.json, a config for another model size (weight
// list capped), a path that is a file, an adapter or head saved for another model family.
@testable import AdapterDrop
import AdapterCore
import Foundation
import TestSupport
import Testing

@Suite("Reliability: input error messages")
struct ReliabilityInputErrorTests {
    /// Empty and garbage `config.json` name the file and say what is wrong, without Foundation's
    /// `DecodingError` / `NSCocoaErrorDomain` dump.
    @Test func emptyAndGarbageConfigsGiveOneLine() {
        for (bytes, expected) in [("", "the file is empty"), ("  \n", "the file is empty"),
                                  ("{\"hidden_size\": 32,,}", "expected a string key at byte 19"), ("[1, 2]", "not an object")] {
            let error = #expect(throws: ModelConfigError.self) { try BertConfig(jsonData: Data(bytes.utf8), file: "m/config.json") }
            let text = "\(error!)"
            #expect(text.hasPrefix("m/config.json: ") && text.contains(expected), "\(bytes): \(text)")
            #expect(!text.contains("DecodingError") && !text.contains("NSCocoa") && !text.contains("\n"), "\(text)")
        }
    }

    /// A config for another model size makes every tensor mismatch: the message lists the first
    /// `listedProblems`, then "… and N more", and says every problem is a shape mismatch.
    @Test func weightProblemListIsCapped() {
        let problems = (0..<103).map {
            WeightProblem(name: "encoder.layer.\($0).x.weight", expectedShape: [64], kind: .shapeMismatch(found: [32]))
        }
        let text = WeightLoadingError.invalidWeights(source: "m/model.safetensors", problems: problems).description
        let lines = text.split(separator: "\n")
        #expect(lines.count == 1 + WeightLoadingError.listedProblems + 1, "\(text)")
        #expect(lines.last == "  … and \(103 - WeightLoadingError.listedProblems) more")
        #expect(lines[0].hasPrefix("m/model.safetensors: 103 weight problems") && lines[0].contains("another model size"))
        let few = WeightLoadingError.invalidWeights(source: "s", problems: Array(problems.prefix(3))).description
        #expect(few.split(separator: "\n").count == 4 && !few.contains("more"))
    }

    /// A path that is a file, where a folder is expected, says so.
    @Test func fileInsteadOfFolderIsNamed() throws {
        let file = fixtureURL("tiny-bert/config.json").path
        let error = #expect(throws: PredictionError.self) { try AdapterModel.loading(modelFolder: file, adapterFolders: []) }
        #expect("\(error!)" == "\(file): is a file, not a model folder")
        let missing = #expect(throws: PredictionError.self) { try AdapterModel.loading(modelFolder: "/nonexistent/m", adapterFolders: []) }
        #expect("\(missing!)" == "/nonexistent/m: model folder not found")
    }

    /// A RoBERTa adapter on a BERT model: the adapter loads (adapters 1.3.0 does not check; a warning is
    /// logged), its head is rejected naming `model_type` (the reference's head loader raises on a model-class
    /// mismatch).
    @Test func adapterForAnotherModelFamily() throws {
        let bert = ModelDescription(hiddenSize: 32, numLayers: 2, modelType: "bert")
        let folder = fixtureURL("adapters/roberta_seq_bn/r")
        _ = try BottleneckAdapter(folder: folder, model: bert)
        let error = #expect(throws: AdapterError.self) { try PredictionHead(folder: folder, model: bert) }
        #expect("\(error!)".contains("head_config.json: key \"model_type\": saved for a roberta (RobertaAdapterModel) model, but the model is bert"), "\(error!)")
        let roberta = ModelDescription(hiddenSize: 32, numLayers: 2, modelType: "roberta")
        _ = try PredictionHead(folder: folder, model: roberta)
        #expect(AdapterFiles.savedModelFamily(["model_class": .string("BertModelWithHeads")]) == "bert")
        #expect(AdapterFiles.savedModelFamily(["model_class": .string("RobertaForSequenceClassification")]) == "roberta")
        #expect(AdapterFiles.savedModelFamily(["model_type": .string("xlm-roberta")]) == "xlmroberta")
        #expect(AdapterFiles.savedModelFamily([:]) == nil)
    }
}

// The README's library example, kept here so that it keeps compiling (it is not run: it needs a model folder
// with a tokenizer and two trained adapters).
import AdapterCore
import AdapterDrop
import Foundation

func readmeLibraryExample() throws {
    let base = try PretrainedModel(folder: URL(fileURLWithPath: "models/all-MiniLM-L6-v2"))
    var model = AdapterModel(encoder: base.encoder)
    try model.loadAdapter(from: URL(fileURLWithPath: "adapters/sentiment"))   // AdapterHub folder (+ its head)
    try model.loadAdapter(from: URL(fileURLWithPath: "adapters/topic"))
    let (_, input) = try base.tokenize([.single("A gripping, beautifully shot film.")])
    let setup = try AdapterComposition.parse("Parallel(sentiment,topic)")
    // AdapterDrop: no adapters in layers 0-1, which are then computed once for both tasks.
    let out = try model(input, setup: setup, skipLayers: [0, 1], context: ComputeContext())
    print(out[head: "sentiment"]!.scalars, out[head: "topic"]!.scalars)   // logits per task
}

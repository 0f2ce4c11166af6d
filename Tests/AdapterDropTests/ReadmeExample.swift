// The README's library example, kept here so that it keeps compiling (it is not run: it needs the real model and
// data folders and trains for minutes). Keep the body identical to the README's code block.
import AdapterCore
import AdapterDrop
import Foundation   // URL

func readmeLibraryExample() throws {
    let base = try PretrainedModel(folder: URL(fileURLWithPath: "models/all-MiniLM-L6-v2"))
    var model = AdapterModel(encoder: base.encoder)
    for task in ["movie-sentiment", "news-topic"] {   // one seq_bn adapter + head per task, robust AdapterDrop
        let data = try TextClassificationTask(folder: "data/\(task)")
        try model.trainAdapter(task, on: data.train.prefix(640), tokenizer: base, maxLength: 64, policy: .robust(numberOfLayers: 6))
    }
    let (_, input) = try base.tokenize([.single("A gripping, beautifully shot film.")])
    // AdapterDrop at inference: no adapters in layers 0-1, which then run once for both tasks.
    let out = try model(input, setup: .parallel([.adapter("movie-sentiment"), .adapter("news-topic")]), skipLayers: [0, 1], context: ComputeContext())
    print(out[head: "movie-sentiment"]!.scalars, out[head: "news-topic"]!.scalars)   // logits per task
}

// libFuzzer entry points for AdapterDrop's file and text parsers.
//
// Built with `-parse-as-library -sanitize=fuzzer,address` (see scripts/fuzz.sh); `fuzzMain` calls libFuzzer.
// The environment variable FUZZ_TARGET picks the harness (one of `FuzzTarget.allCases`). Every harness feeds
// arbitrary bytes to a public loader; a thrown error is the expected outcome for malformed input, and any
// crash, sanitizer report, hang or out-of-memory is a finding.
import AdapterDrop
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The fuzzed entry points.
enum FuzzTarget: String, CaseIterable {
    /// `SafetensorsFile(url:)` then every tensor read as floats (or integers).
    case safetensors
    /// `BertConfig(jsonData:)` + `validate()`.
    case bertConfig = "bert_config"
    /// `AdapterJSON.parse` then `BottleneckConfig(object:)` (plain and legacy), `PredictionHeadConfig(json:)`
    /// and `AdapterFusionConfig(json:)` on the same document (and on its `config` member, as the files nest it).
    case adapterConfig = "adapter_config"
    /// `SubwordTokenizer.bertWordPiece(vocabularyFile:)` on the input as `vocab.txt`, then encoding a fixed text.
    case wordpieceVocab = "wordpiece_vocab"
    /// `SubwordTokenizer(tokenizerJSON:)` on the input, then encoding a fixed text.
    case tokenizerJSON = "tokenizer_json"
    /// `byteLevelBPE(vocabularyFile:mergesFile:)`: the input split at the first NUL into vocab.json and merges.txt.
    case bpeFiles = "bpe_files"
    /// Encoding arbitrary text (single and pair, truncated batch) with the fixture WordPiece and BPE tokenizers.
    case tokenizeText = "tokenize_text"
    /// `AdapterComposition.parse` on arbitrary text.
    case composition
    /// Training/eval data files: `TextClassificationDataset(contentsOf:)` as JSONL and as CSV (the first byte
    /// picks the format; the rest is the file), then batching; and `readLabelList` on the same bytes.
    case dataset
}

nonisolated(unsafe) var target: FuzzTarget = .composition
nonisolated(unsafe) var scratch = URL(fileURLWithPath: "/tmp")
nonisolated(unsafe) var wordPiece: SubwordTokenizer?
nonisolated(unsafe) var bpe: SubwordTokenizer?

/// The package's fixture folder (FUZZ_FIXTURES, else relative to this source file).
func fixtures() -> URL {
    if let path = ProcessInfo.processInfo.environment["FUZZ_FIXTURES"] { return URL(fileURLWithPath: path) }
    return URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../../Tests/Fixtures")
        .standardizedFileURL
}

func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

@_cdecl("LLVMFuzzerInitialize")
public func fuzzInitialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    let name = ProcessInfo.processInfo.environment["FUZZ_TARGET"] ?? ""
    guard let t = FuzzTarget(rawValue: name) else {
        printError("set FUZZ_TARGET to one of: \(FuzzTarget.allCases.map(\.rawValue).joined(separator: " "))")
        exit(2)
    }
    target = t
    // Per-process scratch folder (parallel fuzzing jobs must not share files); /dev/shm when present.
    let base = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
    scratch = URL(fileURLWithPath: base).appendingPathComponent("adapterdrop-fuzz-\(getpid())")
    try? FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    if t == .tokenizeText {
        let f = fixtures().appendingPathComponent("tokenizer")
        do {
            wordPiece = try SubwordTokenizer.bertWordPiece(vocabularyFile: f.appendingPathComponent("bert/vocab.txt"))
            bpe = try SubwordTokenizer.byteLevelBPE(vocabularyFile: f.appendingPathComponent("bpe/vocab.json"),
                                                    mergesFile: f.appendingPathComponent("bpe/merges.txt"))
        } catch {
            printError("cannot load the fixture tokenizers: \(error)")
            exit(2)
        }
    }
    return 0
}

/// Writes `bytes` to a scratch file and returns its URL.
func scratchFile(_ name: String, _ bytes: UnsafeRawBufferPointer) -> URL {
    let url = scratch.appendingPathComponent(name)
    let fd = open(url.path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    precondition(fd >= 0, "cannot open \(url.path)")
    var done = 0
    while done < bytes.count {
        let n = write(fd, bytes.baseAddress! + done, bytes.count - done)
        precondition(n > 0, "short write")
        done += n
    }
    close(fd)
    return url
}

let sampleText = "Hello, World! Héllo wörld 東京 can't  stop\t123 <mask> [MASK] ##ing"

/// Encodes `text` once in full (with a short pair) and a prefix of it in a truncated, padded batch: every
/// encoding path runs while the long text is tokenized only once (the batch repeats only its first 40 scalars).
func exercise(_ tokenizer: SubwordTokenizer, _ text: String) {
    let short = String(text.unicodeScalars.prefix(40))
    let e = tokenizer.encode(text, pair: text.isEmpty ? nil : String(text.prefix(7)))
    for id in e.ids.prefix(64) { _ = tokenizer.token(forID: id) }
    _ = try? tokenizer.encode(batch: [.single(short), .pair(short, short)],
                              options: EncodingOptions(truncation: .longestFirst, maxLength: 9, padding: .longest))
}

/// The composition with Average weights rounded to 5 decimals: `parse` normalises weights by their sum, and
/// normalising already-normalised Float weights again can move the last bit (e.g. 0.11666667 → 0.116666675).
func roundedWeights(_ c: AdapterComposition) -> AdapterComposition {
    switch c {
    case .adapter: return c
    case let .stack(children): return .stack(children.map(roundedWeights))
    case let .parallel(children): return .parallel(children.map(roundedWeights))
    case let .fuse(children, name): return .fuse(children.map(roundedWeights), name: name)
    case let .batchSplit(children, sizes): return .batchSplit(children.map(roundedWeights), batchSizes: sizes)
    case let .average(children, weights):
        return .average(children.map(roundedWeights), weights: weights.map { ($0 * 1e5).rounded() / 1e5 })
    }
}

/// True when every adapter and Fuse name in `c` has a printed form (`AdapterComposition.isPrintable(name:)`).
func allNamesPrintable(_ c: AdapterComposition) -> Bool {
    switch c {
    case let .adapter(n): return AdapterComposition.isPrintable(name: n)
    case let .fuse(children, name):
        return (name.map { AdapterComposition.isPrintable(name: $0) } ?? true) && children.allSatisfy(allNamesPrintable)
    default: return c.children.allSatisfy(allNamesPrintable)
    }
}

func runOne(_ bytes: UnsafeRawBufferPointer) {
    switch target {
    case .safetensors:
        let url = scratchFile("input.safetensors", bytes)
        guard let file = try? SafetensorsFile(url: url) else { return }
        for name in file.tensorNames {
            if (try? file.floats(name)) == nil { _ = try? file.integers(name) }
        }
        _ = file.nonFiniteTensors()
    case .bertConfig:
        if let c = try? BertConfig(jsonData: Data(bytes), file: "fuzz.json") { try? c.validate(file: "fuzz.json") }
    case .adapterConfig:
        guard let json = try? AdapterJSON.parse(Data(bytes), file: "fuzz.json") else { return }
        var documents = [json]
        if let inner = json.objectValue?["config"] { documents.append(inner) }
        for d in documents {
            if let o = d.objectValue {
                if let c = try? BottleneckConfig(object: o, file: "fuzz.json") {
                    for layer in 0..<3 { _ = try? c.bottleneckSize(hiddenSize: 32, layer: layer) }
                }
                _ = try? BottleneckConfig(object: o, legacy: true, file: "fuzz.json")
            }
            _ = try? PredictionHeadConfig(json: d, file: "fuzz.json")
            _ = try? AdapterFusionConfig(json: d, file: "fuzz.json")
        }
        _ = json.pythonJSONText()
    case .wordpieceVocab:
        let url = scratchFile("vocab.txt", bytes)
        if let t = try? SubwordTokenizer.bertWordPiece(vocabularyFile: url) { exercise(t, sampleText) }
    case .tokenizerJSON:
        let url = scratchFile("tokenizer.json", bytes)
        if let t = try? SubwordTokenizer(tokenizerJSON: url) { exercise(t, sampleText) }
    case .bpeFiles:
        let split = bytes.firstIndex(of: 0) ?? bytes.count
        let vocab = scratchFile("vocab.json", UnsafeRawBufferPointer(rebasing: bytes[0..<split]))
        let merges = scratchFile("merges.txt", UnsafeRawBufferPointer(rebasing: bytes[min(split + 1, bytes.count)...]))
        if let t = try? SubwordTokenizer.byteLevelBPE(vocabularyFile: vocab, mergesFile: merges) { exercise(t, sampleText) }
    case .tokenizeText:
        let text = String(decoding: bytes, as: UTF8.self)
        exercise(wordPiece!, text)
        exercise(bpe!, text)
    case .dataset:
        guard let first = bytes.first else { return }
        let body = UnsafeRawBufferPointer(rebasing: bytes[1...])
        let name = first & 1 == 0 ? "data.jsonl" : "data.csv"
        let url = scratchFile(name, body)
        if let d = try? TextClassificationDataset(contentsOf: url.path) {
            precondition(d.examples.allSatisfy { $0.label >= 0 && $0.label < d.labels.count }, "label index out of range")
            _ = d.batches(size: 1 + Int(first >> 4), shuffleSeed: UInt64(first))
        }
        let labels = scratchFile("labels.json", body)
        _ = try? TextClassificationDataset.readLabelList(path: labels.path)
    case .composition:
        let text = String(decoding: bytes, as: UTF8.self)
        // (Some names holding both quote characters have no printed form that reads back: `isPrintable(name:)`.)
        if let c = try? AdapterComposition.parse(text), allNamesPrintable(c) {
            // The printed form must parse back to the same composition.
            let again = try? AdapterComposition.parse(c.description)
            precondition(again.map(roundedWeights) == roundedWeights(c), "round trip changed \(c) into \(String(describing: again))")
        }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    runOne(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

/// libFuzzer's driver (in libclang_rt.fuzzer): parses the libFuzzer flags and runs the loop.
@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzerDriver(
    _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

/// SwiftPM links executables with `main` aliased to `<module>_main`, so the entry point is ours (the
/// `-parse-as-library` build has no top-level code); it hands over to libFuzzer's driver.
@_cdecl("AdapterDropFuzz_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var arguments = argv
    return runFuzzerDriver(&count, &arguments) { data, size in fuzzTestOneInput(data, size) }
}

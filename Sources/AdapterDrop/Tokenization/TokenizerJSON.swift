import Foundation

extension SubwordTokenizer {
    /// Loads a Hugging Face `tokenizer.json` (the fast-tokenizer file).
    ///
    /// Supported: `model.type` `WordPiece` or `BPE` (byte-level: no subword prefix/suffix, no dropout, no byte
    /// fallback); `normalizer` null or `BertNormalizer`; `pre_tokenizer` `BertPreTokenizer` or `ByteLevel`
    /// (with `use_regex`); `post_processor` `TemplateProcessing`, `BertProcessing`, `RobertaProcessing` or
    /// null; `added_tokens` (not `single_word`). The file's own `truncation`/`padding` sections are ignored:
    /// pass `EncodingOptions` instead (as `transformers` does per call).
    ///
    /// - Parameters:
    ///   - url: path of `tokenizer.json`.
    ///   - padToken: padding token; nil takes `padding.pad_token` from the file, else `[PAD]` or `<pad>`.
    ///   - limits: file size, entry count and JSON depth bounds.
    /// - Throws: `TokenizerError` naming the file and key: unreadable/too large/invalid UTF-8/invalid JSON,
    ///   `missingKey` (e.g. `model.vocab`), `unsupportedModelType` (e.g. `model.type` = `Unigram`),
    ///   `unsupportedOption`, empty/duplicate vocabulary, tokens missing from the vocabulary.
    public convenience init(tokenizerJSON url: URL, padToken: String? = nil,
                            limits: TokenizerLoadingLimits = TokenizerLoadingLimits()) throws {
        let path = url.path
        let root = try TokenizerFiles.parseJSON(try TokenizerFiles.readBytes(url, limits: limits), path: path,
                                                limits: limits)
        guard root.members != nil else { throw TokenizerError.missingKey(path: path, key: "<top-level object>") }
        guard let modelJSON = root["model"], modelJSON.members != nil else { throw TokenizerError.missingKey(path: path, key: "model") }
        let modelType = modelJSON["type"]?.string ?? (modelJSON["merges"] != nil ? "BPE" : "")
        guard let vocabMembers = modelJSON["vocab"]?.members else { throw TokenizerError.missingKey(path: path, key: "model.vocab") }
        func optionalString(_ value: JSONValue?, _ key: String) throws -> String? {
            guard let value, !value.isNull else { return nil }
            guard let s = value.string else { throw TokenizerError.missingKey(path: path, key: key) }
            return s
        }
        func flag(_ value: JSONValue?, _ key: String, default d: Bool) throws -> Bool {
            guard let value, !value.isNull else { return d }
            guard let b = value.bool else { throw TokenizerError.missingKey(path: path, key: key) }
            return b
        }

        // normalizer
        var normalizer: BertNormalizer? = nil
        if let n = root["normalizer"], !n.isNull {
            let type = n["type"]?.string ?? ""
            guard type == "BertNormalizer" else {
                throw TokenizerError.unsupportedModelType(path: path, key: "normalizer.type", value: type)
            }
            let lowercase = try flag(n["lowercase"], "normalizer.lowercase", default: true)
            normalizer = BertNormalizer(
                cleanText: try flag(n["clean_text"], "normalizer.clean_text", default: true),
                handleChineseChars: try flag(n["handle_chinese_chars"], "normalizer.handle_chinese_chars", default: true),
                stripAccents: try flag(n["strip_accents"], "normalizer.strip_accents", default: lowercase),
                lowercase: lowercase)
        }

        // pre-tokenizer
        let preType = root["pre_tokenizer"]?["type"]?.string ?? "null"
        var addPrefixSpace = false
        switch (modelType, preType) {
        case ("WordPiece", "BertPreTokenizer"): break
        case ("BPE", "ByteLevel"):
            let pre = root["pre_tokenizer"]!
            addPrefixSpace = try flag(pre["add_prefix_space"], "pre_tokenizer.add_prefix_space", default: true)
            if try !flag(pre["use_regex"], "pre_tokenizer.use_regex", default: true) {
                throw TokenizerError.unsupportedOption(path: path, key: "pre_tokenizer.use_regex", value: "false")
            }
            if normalizer != nil {
                throw TokenizerError.unsupportedOption(path: path, key: "normalizer", value: "BertNormalizer with BPE")
            }
        case ("WordPiece", _), ("BPE", _):
            throw TokenizerError.unsupportedModelType(path: path, key: "pre_tokenizer.type", value: preType)
        default:
            throw TokenizerError.unsupportedModelType(path: path, key: "model.type", value: modelType)
        }

        let vocabulary = try Self.buildVocabulary(vocabMembers, path: path, key: "model.vocab", limits: limits)
        func require(_ token: String, _ key: String) throws -> Int32 {
            guard let id = vocabulary.id(of: token) else { throw TokenizerError.tokenNotInVocabulary(path: path, token: token) }
            _ = key
            return id
        }

        // model
        let model: TokenizationModel
        if modelType == "WordPiece" {
            let unk = try optionalString(modelJSON["unk_token"], "model.unk_token") ?? "[UNK]"
            let prefix = try optionalString(modelJSON["continuing_subword_prefix"], "model.continuing_subword_prefix") ?? "##"
            var maxChars = 100
            if let m = modelJSON["max_input_chars_per_word"], !m.isNull {
                guard let v = m.exactInt, v >= 0 else { throw TokenizerError.missingKey(path: path, key: "model.max_input_chars_per_word") }
                maxChars = v
            }
            model = .wordPiece(WordPieceModel(vocabulary: vocabulary, unknownID: try require(unk, "model.unk_token"),
                                              continuingPrefix: Array(prefix.utf8), maxInputCharsPerWord: maxChars))
        } else {
            for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
                if let v = try optionalString(modelJSON[key], "model.\(key)"), !v.isEmpty {
                    throw TokenizerError.unsupportedOption(path: path, key: "model.\(key)", value: v)
                }
            }
            if let d = modelJSON["dropout"], !d.isNull {
                throw TokenizerError.unsupportedOption(path: path, key: "model.dropout", value: "non-null")
            }
            if try flag(modelJSON["byte_fallback"], "model.byte_fallback", default: false) {
                throw TokenizerError.unsupportedOption(path: path, key: "model.byte_fallback", value: "true")
            }
            guard let mergesJSON = modelJSON["merges"]?.array else { throw TokenizerError.missingKey(path: path, key: "model.merges") }
            if mergesJSON.count > limits.maxEntries {
                throw TokenizerError.tooManyEntries(path: path, count: mergesJSON.count, limit: limits.maxEntries)
            }
            var merges: [(String, String)] = []
            merges.reserveCapacity(mergesJSON.count)
            for (i, entry) in mergesJSON.enumerated() {
                if let s = entry.string {
                    let parts = s.utf8.split(separator: 0x20, omittingEmptySubsequences: false)
                    guard parts.count == 2 else { throw TokenizerError.invalidMerge(path: path, line: i + 1, text: s) }
                    merges.append((String(decoding: parts[0], as: UTF8.self), String(decoding: parts[1], as: UTF8.self)))
                } else if let pair = entry.array, pair.count == 2, let a = pair[0].string, let b = pair[1].string {
                    merges.append((a, b))
                } else {
                    throw TokenizerError.invalidMerge(path: path, line: i + 1, text: "model.merges[\(i)]")
                }
            }
            let bpe = try Self.buildBPE(
                vocabulary: vocabulary, merges: merges,
                unknownToken: try optionalString(modelJSON["unk_token"], "model.unk_token"),
                ignoreMerges: try flag(modelJSON["ignore_merges"], "model.ignore_merges", default: false), path: path)
            model = .byteLevelBPE(bpe, addPrefixSpace: addPrefixSpace)
        }

        // added tokens
        var added: [AddedToken] = []
        var fullVocabulary = vocabulary
        if let list = root["added_tokens"], !list.isNull {
            guard let entries = list.array else { throw TokenizerError.missingKey(path: path, key: "added_tokens") }
            for (i, entry) in entries.enumerated() {
                guard let content = entry["content"]?.string, !content.isEmpty, let id = entry["id"]?.exactInt, id >= 0, id < Int(Int32.max) else {
                    throw TokenizerError.missingKey(path: path, key: "added_tokens[\(i)]")
                }
                if try flag(entry["single_word"], "added_tokens[\(i)].single_word", default: false) {
                    throw TokenizerError.unsupportedOption(path: path, key: "added_tokens[\(i)].single_word", value: "true")
                }
                let special = try flag(entry["special"], "added_tokens[\(i)].special", default: false)
                // An added token either is a model-vocabulary entry with the same id, or extends the vocabulary
                // (HF `AddedVocabulary`: ids past the model vocabulary).
                if let existing = fullVocabulary.token(of: Int32(id)) {
                    guard existing.utf8.elementsEqual(content.utf8) else {
                        throw TokenizerError.unsupportedOption(
                            path: path, key: "added_tokens[\(i)].id", value: "\(id) (model.vocab has \(existing.debugDescription) there)")
                    }
                } else if let other = fullVocabulary.id(of: content) {
                    throw TokenizerError.unsupportedOption(
                        path: path, key: "added_tokens[\(i)].id", value: "\(id) (model.vocab has \(content.debugDescription) as \(other))")
                } else {
                    _ = fullVocabulary.insert(content, id: Int32(id))
                }
                added.append(AddedToken(
                    content: content.unicodeScalars.map(\.value), id: Int32(id), special: special,
                    lstrip: try flag(entry["lstrip"], "added_tokens[\(i)].lstrip", default: false),
                    rstrip: try flag(entry["rstrip"], "added_tokens[\(i)].rstrip", default: false),
                    normalized: try flag(entry["normalized"], "added_tokens[\(i)].normalized", default: !special)))
            }
        }

        // post-processor
        var single: [TemplateItem] = [.sequence(first: true, typeID: 0)]
        var pair: [TemplateItem] = [.sequence(first: true, typeID: 0), .sequence(first: false, typeID: 1)]
        if let post = root["post_processor"], !post.isNull {
            let type = post["type"]?.string ?? ""
            func tokenPair(_ key: String) throws -> (String, Int32) {
                guard let a = post[key]?.array, a.count == 2, let t = a[0].string, let id = a[1].exactInt, id >= 0, id < Int(Int32.max) else {
                    throw TokenizerError.missingKey(path: path, key: "post_processor.\(key)")
                }
                return (t, Int32(id))
            }
            switch type {
            case "RobertaProcessing":
                let (sepToken, sep) = try tokenPair("sep")
                let (clsToken, cls) = try tokenPair("cls")
                single = Self.robertaTemplate(cls, clsToken, sep, sepToken, pair: false)
                pair = Self.robertaTemplate(cls, clsToken, sep, sepToken, pair: true)
            case "BertProcessing":
                let (sepToken, sep) = try tokenPair("sep")
                let (clsToken, cls) = try tokenPair("cls")
                single = [.special(id: cls, token: clsToken, typeID: 0), .sequence(first: true, typeID: 0),
                          .special(id: sep, token: sepToken, typeID: 0)]
                pair = single + [.sequence(first: false, typeID: 1), .special(id: sep, token: sepToken, typeID: 1)]
            case "TemplateProcessing":
                guard let specials = post["special_tokens"]?.members else {
                    throw TokenizerError.missingKey(path: path, key: "post_processor.special_tokens")
                }
                func parseTemplate(_ key: String) throws -> [TemplateItem] {
                    guard let items = post[key]?.array else { throw TokenizerError.missingKey(path: path, key: "post_processor.\(key)") }
                    var out: [TemplateItem] = []
                    for (i, item) in items.enumerated() {
                        let itemKey = "post_processor.\(key)[\(i)]"
                        if let s = item["SpecialToken"] {
                            guard let name = s["id"]?.string, let typeID = s["type_id"]?.exactInt else {
                                throw TokenizerError.missingKey(path: path, key: itemKey)
                            }
                            guard let entry = specials.first(where: { $0.key.utf8.elementsEqual(name.utf8) })?.value,
                                  let ids = entry["ids"]?.array, let tokens = entry["tokens"]?.array, ids.count == tokens.count else {
                                throw TokenizerError.missingKey(path: path, key: "post_processor.special_tokens.\(name)")
                            }
                            for (idValue, tokenValue) in zip(ids, tokens) {
                                guard let id = idValue.exactInt, id >= 0, id < Int(Int32.max), let token = tokenValue.string else {
                                    throw TokenizerError.missingKey(path: path, key: "post_processor.special_tokens.\(name)")
                                }
                                out.append(.special(id: Int32(id), token: token, typeID: typeID))
                            }
                        } else if let s = item["Sequence"] {
                            guard let which = s["id"]?.string, which == "A" || which == "B", let typeID = s["type_id"]?.exactInt else {
                                throw TokenizerError.missingKey(path: path, key: itemKey)
                            }
                            out.append(.sequence(first: which == "A", typeID: typeID))
                        } else {
                            throw TokenizerError.missingKey(path: path, key: itemKey)
                        }
                    }
                    return out
                }
                single = try parseTemplate("single")
                pair = try parseTemplate("pair")
            default:
                throw TokenizerError.unsupportedModelType(path: path, key: "post_processor.type", value: type)
            }
        }

        // padding token
        var pad = padToken
        if pad == nil, let p = root["padding"]?["pad_token"]?.string { pad = p }
        if pad == nil { pad = ["[PAD]", "<pad>"].first { fullVocabulary.id(of: $0) != nil } }
        guard let padName = pad else { throw TokenizerError.tokenNotInVocabulary(path: path, token: "[PAD]/<pad>") }
        guard let padID = fullVocabulary.id(of: padName) else { throw TokenizerError.tokenNotInVocabulary(path: path, token: padName) }

        self.init(normalizer: normalizer, model: model, addedTokens: added, singleTemplate: single, pairTemplate: pair,
                  vocabulary: fullVocabulary, padTokenID: Int(padID), padToken: padName)
    }
}

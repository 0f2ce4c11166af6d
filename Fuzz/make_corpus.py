#!/usr/bin/env python3
"""Writes the fuzzing seed corpora under Fuzz/corpus/ from the committed test fixtures (run from the repo root:
python3 Fuzz/make_corpus.py). Seeds are kept small so libFuzzer's mutations stay fast."""
import json, os, shutil

F = "Tests/Fixtures"
C = "Fuzz/corpus"

def put(target, name, data):
    os.makedirs(f"{C}/{target}", exist_ok=True)
    with open(f"{C}/{target}/{name}", "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())

def read(path):
    with open(f"{F}/{path}", "rb") as f:
        return f.read()

put("safetensors", "reference-dtypes.safetensors", read("checkpoint/reference-dtypes.safetensors"))
put("safetensors", "head.safetensors", read("adapters/seq_bn/a/model_head.safetensors"))
put("safetensors", "adapter.safetensors", read("adapters/heads/h/adapter.safetensors"))
put("bert_config", "tiny-bert.json", read("tiny-bert/config.json"))
put("bert_config", "tiny-roberta.json", read("tiny-roberta/config.json"))
put("adapter_config", "seq_bn.json", read("adapters/seq_bn/a/adapter_config.json"))
put("adapter_config", "head.json", read("adapters/seq_bn/a/head_config.json"))
put("adapter_config", "fusion.json", read("adapters/fusion/fusion/adapter_fusion_config.json"))
# WordPiece vocab.txt: the first 300 lines (special tokens and unused slots) plus a few word pieces.
lines = read("tokenizer/bert/vocab.txt").split(b"\n")
put("wordpiece_vocab", "vocab300.txt", b"\n".join(lines[:300] + [b"hello", b"world", b"##s", b"##ing", b"can", b"'", b"t"]) + b"\n")
# Tokenizer files are cut small (compact JSON, ids below 340 and the merges among them) so each fuzz input builds
# its tokenizer quickly and fits in the harness's -max_len (scripts/fuzz.sh: 8192 for these targets).
compact = dict(ensure_ascii=False, separators=(",", ":"))
def small_bpe(vocab, merges, limit=340):
    v = {k: i for k, i in vocab.items() if i < limit}
    m = [p for p in merges if all(t in v for t in (p[0], p[1], p[0] + p[1]))]
    return v, m
tj = json.loads(read("tokenizer/bpe/tokenizer.json"))
tj["model"]["vocab"], tj["model"]["merges"] = small_bpe(tj["model"]["vocab"], tj["model"]["merges"])
put("tokenizer_json", "bpe.tokenizer.json", json.dumps(tj, **compact))
tj = json.loads(read("tokenizer/bert/small.tokenizer.json"))
# BERT: the special tokens and 250 real word pieces (ids 999 up; ids 1-99 and 104-998 are [unusedN] slots).
tj["model"]["vocab"] = {k: v for k, v in tj["model"]["vocab"].items() if v in (0, 100, 101, 102, 103) or 999 <= v < 1250}
put("tokenizer_json", "bert-small.tokenizer.json", json.dumps(tj, **compact))
# BPE: vocab.json NUL merges.txt (the harness splits at the first NUL), cut the same way.
merges = [tuple(l.split(" ")) for l in read("tokenizer/bpe/merges.txt").decode().splitlines()[1:] if l]
v, m = small_bpe(json.loads(read("tokenizer/bpe/vocab.json")), merges)
put("bpe_files", "roberta-small", json.dumps(v, **compact).encode() + b"\0" + ("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in m)).encode())
# Text: a few corpus lines.
for i, line in enumerate(read("tokenizer/corpus.jsonl").decode().splitlines()[:12]):
    obj = json.loads(line)
    text = obj.get("a") or obj.get("text") if isinstance(obj, dict) else str(obj)
    put("tokenize_text", f"line{i:02}.txt", (text or line)[:300])
for i, s in enumerate(["a", "Stack(a,b)", "Parallel(a,b)", "Fuse(a,b)", 'Fuse(a,b,name="a,b,c")', "Stack(Fuse(a,b),c)",
                       "BatchSplit(a,b,batch_sizes=[1,2])", "BatchSplit(a,b,batch_sizes=2)",
                       "Average(a,b,weights=[0.3,0.7])", "none", "Parallel(Stack(a,b),Stack(c,d))", "'quoted'"]):
    put("composition", f"seed{i:02}.txt", s)
# Datasets: the first byte picks the format (even: JSONL, odd: CSV); small hand-written files (fetch-data.sh's
# files are not committed).
put("dataset", "jsonl.seed", b"\x00" + b'{"text": "a good film", "label": "pos"}\n{"text": "bad", "text_pair": "worse", "label": "neg"}\n\n{"text": "ok", "label": 1}\n')
put("dataset", "csv.seed", b"\x01" + b'text,text_pair,label\n"a, quoted ""film""",x,pos\nbad,,neg\n')
put("dataset", "labels.seed", b"\x00" + b'["neg", "pos"]')

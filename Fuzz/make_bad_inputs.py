#!/usr/bin/env python3
"""Writes Fuzz/bad-inputs/: malformed files, each of which every loader must reject with a thrown error that
names the file (ReliabilityBadInputTests). Generated, never edited by hand: python3 Fuzz/make_bad_inputs.py"""
import json, os, shutil, struct

OUT = "Fuzz/bad-inputs"
shutil.rmtree(OUT, ignore_errors=True)

def put(kind, name, data):
    os.makedirs(f"{OUT}/{kind}", exist_ok=True)
    with open(f"{OUT}/{kind}/{name}", "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())

def st(header, data=b"", length=None):
    h = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(h) if length is None else length) + h + data

ok = {"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}
put("safetensors", "empty.safetensors", b"")
put("safetensors", "short.safetensors", b"\x01\x02\x03")
put("safetensors", "header-past-end.safetensors", st(ok, b"\0" * 8, length=10_000))
put("safetensors", "header-huge.safetensors", st(ok, b"\0" * 8, length=2**62))
put("safetensors", "header-not-json.safetensors", st(b"{not json", b"\0" * 8))
put("safetensors", "header-invalid-utf8.safetensors", st(b'{"\xff\xfe":1}', b""))
put("safetensors", "header-array.safetensors", st(b"[1,2,3]", b""))
put("safetensors", "offsets-past-end.safetensors", st({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 80]}}, b"\0" * 8))
put("safetensors", "offsets-reversed.safetensors", st({"w": {"dtype": "F32", "shape": [0], "data_offsets": [8, 0]}}, b"\0" * 8))
put("safetensors", "shape-mismatch.safetensors", st({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 8))
put("safetensors", "negative-shape.safetensors", st({"w": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}, b"\0" * 8))
put("safetensors", "shape-overflow.safetensors", st({"w": {"dtype": "F32", "shape": [2**40, 2**40], "data_offsets": [0, 8]}}, b"\0" * 8))
put("safetensors", "unknown-dtype.safetensors", st({"w": {"dtype": "Q4", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 8))
put("safetensors", "overlap.safetensors", st({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                              "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, b"\0" * 12))
put("safetensors", "deep-nesting.safetensors", st(b"[" * 10000 + b"]" * 10000, b""))

good_config = json.load(open("Tests/Fixtures/tiny-bert/config.json"))
def cfg(name, **changes):
    c = dict(good_config)
    for k, v in changes.items():
        if v is None: c.pop(k, None)
        else: c[k] = v
    put("config", name, json.dumps(c))
put("config", "not-json.json", "{\"hidden_size\": 32,")
put("config", "array.json", "[]")
put("config", "empty.json", "")
cfg("missing-hidden-size.json", hidden_size=None)
cfg("hidden-size-string.json", hidden_size="32")
cfg("heads-do-not-divide.json", num_attention_heads=5)
cfg("negative-layers.json", num_hidden_layers=-1)
cfg("zero-vocab.json", vocab_size=0)
cfg("unknown-activation.json", hidden_act="swish-9000")

vocab_ok = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\n"
put("vocab", "empty.txt", "")
put("vocab", "invalid-utf8.txt", b"[PAD]\n[UNK]\n\xff\xfe\n[CLS]\n[SEP]\n")
put("vocab", "duplicate.txt", vocab_ok + "hello\n")
put("vocab", "missing-unk.txt", "[PAD]\n[CLS]\n[SEP]\n[MASK]\n")

put("tokenizer_json", "not-json.json", "{\"model\": ")
put("tokenizer_json", "empty.json", "")
put("tokenizer_json", "array.json", "[]")
put("tokenizer_json", "no-model.json", json.dumps({"version": "1.0", "added_tokens": []}))
put("tokenizer_json", "unknown-model.json", json.dumps({"model": {"type": "Unigram", "vocab": []}}))
put("tokenizer_json", "deep-nesting.json", "[" * 10000 + "]" * 10000)
put("tokenizer_json", "invalid-utf8.json", b'{"model": {"type": "WordPiece", "vocab": {"\xff": 0}}}')

# (No "gap between tensors" case: SafetensorsFile accepts gaps by design, see its doc comment.)
# Adapter folders (adapter_config.json + adapter.safetensors); the bad file of each is named in the folder name.
src = "Tests/Fixtures/adapters/seq_bn/a"
good_adapter = json.load(open(f"{src}/adapter_config.json"))
weights = open(f"{src}/adapter.safetensors", "rb").read()
def adapter(name, config_text=None, weights_bytes=None):
    d = f"adapter/{name}"
    put(d, "adapter_config.json", config_text if config_text is not None else json.dumps(good_adapter, indent=2))
    put(d, "adapter.safetensors", weights_bytes if weights_bytes is not None else weights)
adapter("config-not-json", config_text="{\"config\": ")
adapter("config-root-array", config_text="[]")
adapter("config-missing-config", config_text=json.dumps({k: v for k, v in good_adapter.items() if k != "config"}))
adapter("config-hidden-size-mismatch", config_text=json.dumps(dict(good_adapter, hidden_size=64)))
adapter("config-bad-reduction", config_text=json.dumps(dict(good_adapter, config=dict(good_adapter["config"], reduction_factor="x"))))
adapter("config-unknown-activation", config_text=json.dumps(dict(good_adapter, config=dict(good_adapter["config"], non_linearity="nope"))))
adapter("weights-truncated", weights_bytes=weights[: len(weights) // 2])
adapter("weights-empty", weights_bytes=b"")

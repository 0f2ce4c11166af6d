#!/usr/bin/env python3
"""Generates the encoder parity fixtures under Tests/Fixtures/ (see docs/fixtures.md for the file formats).

    /work/venv/bin/python scripts/parity/make_encoder_fixtures.py [--only tiny|minilm] [--corpus-dir DIR]

- tiny-bert/, tiny-roberta/: tiny random models (HF folders: config.json + model.safetensors) and
  expected.safetensors with padded inputs and the outputs of transformers 4.57.6 (eager attention, fp32, eval).
- minilm/: 64 real English sentences tokenized with the fast tokenizer of all-MiniLM-L6-v2, and the model's
  outputs. Needs models/all-MiniLM-L6-v2 (scripts/fetch-model.sh) and the vaderSentiment 3.3.2 sdist, which
  is downloaded with pip (hash-pinned) unless --corpus-dir points at an unpacked hutto_ICWSM_2014/ folder.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    FIXTURES,
    REPO_ROOT,
    check_versions,
    max_abs_diff,
    provenance,
    redraw_parameters,
    save_tensors,
    set_deterministic,
    sha256_file,
    to_numpy,
    write_checksums,
    write_json,
)

SCRIPT = "scripts/parity/make_encoder_fixtures.py"
SEED = 20211107  # AdapterDrop, EMNLP 2021

# ----------------------------------------------------------------------------------------------------------
# Tiny random models
# ----------------------------------------------------------------------------------------------------------

TINY_COMMON = dict(
    vocab_size=100,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=128,
    hidden_dropout_prob=0.1,  # inactive in eval mode, kept at the HF default so configs look real
    attention_probs_dropout_prob=0.1,
    initializer_range=0.02,
)


def tiny_bert_config():
    from transformers import BertConfig

    return BertConfig(
        **TINY_COMMON,
        max_position_embeddings=16,
        type_vocab_size=2,
        hidden_act="gelu",  # exact erf GELU
        layer_norm_eps=1e-12,
        pad_token_id=0,
    )


def tiny_roberta_config():
    from transformers import RobertaConfig

    return RobertaConfig(
        **TINY_COMMON,
        # RoBERTa positions start at pad_token_id + 1 = 2, so 12 tokens need 14 rows (roberta-base has 514).
        max_position_embeddings=16,
        type_vocab_size=1,
        hidden_act="gelu_new",  # tanh approximation; exercises the non-default activation
        layer_norm_eps=1e-5,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
    )


def tiny_bert_inputs():
    """Batch 3, padded to 12: a sentence pair (types 0/1, no padding), a single sentence of 7, one of 3.
    Ids: [PAD]=0, [CLS]=2, [SEP]=3, ordinary tokens 5..99."""
    g = torch.Generator().manual_seed(SEED + 1)
    L = 12
    ids = torch.zeros(3, L, dtype=torch.long)
    types = torch.zeros(3, L, dtype=torch.long)
    mask = torch.zeros(3, L, dtype=torch.long)
    words = lambda n: torch.randint(5, 100, (n,), generator=g)  # noqa: E731
    # row 0: [CLS] a a a a [SEP] b b b b b [SEP]   (pair, length 12)
    ids[0] = torch.cat([torch.tensor([2]), words(4), torch.tensor([3]), words(5), torch.tensor([3])])
    types[0, 6:] = 1
    mask[0] = 1
    # row 1: [CLS] w w w w w [SEP] (length 7)
    ids[1, :7] = torch.cat([torch.tensor([2]), words(5), torch.tensor([3])])
    mask[1, :7] = 1
    # row 2: [CLS] w [SEP] (length 3)
    ids[2, :3] = torch.cat([torch.tensor([2]), words(1), torch.tensor([3])])
    mask[2, :3] = 1
    return ids, mask, types


def tiny_roberta_inputs():
    """Batch 3, padded to 12 with <pad>=1: lengths 12, 9, 4. <s>=0, </s>=2, ordinary tokens 3..99 (never the
    pad id, so the position ids derived from input_ids agree with the attention mask)."""
    g = torch.Generator().manual_seed(SEED + 2)
    L = 12
    ids = torch.ones(3, L, dtype=torch.long)
    mask = torch.zeros(3, L, dtype=torch.long)
    for row, n in enumerate([12, 9, 4]):
        ids[row, :n] = torch.cat([torch.tensor([0]), torch.randint(3, 100, (n - 2,), generator=g), torch.tensor([2])])
        mask[row, :n] = 1
    types = torch.zeros(3, L, dtype=torch.long)
    return ids, mask, types


def position_ids_for(kind: str, ids: torch.Tensor, pad_id: int) -> torch.Tensor:
    if kind == "roberta":
        from transformers.models.roberta.modeling_roberta import create_position_ids_from_input_ids

        return create_position_ids_from_input_ids(ids, pad_id)
    return torch.arange(ids.shape[1]).expand_as(ids)


def make_tiny(kind: str, versions: dict[str, str]) -> dict:
    from transformers import AutoModel, BertModel, RobertaModel

    set_deterministic(SEED)
    if kind == "bert":
        config, cls, (ids, mask, types) = tiny_bert_config(), BertModel, tiny_bert_inputs()
        alt_act = "gelu_new"
    else:
        config, cls, (ids, mask, types) = tiny_roberta_config(), RobertaModel, tiny_roberta_inputs()
        alt_act = "gelu"
    out_dir = FIXTURES / f"tiny-{kind}"
    out_dir.mkdir(parents=True, exist_ok=True)

    model = cls(config, add_pooling_layer=True).eval()
    redraw_parameters(model, SEED + (0 if kind == "bert" else 100))
    model.save_pretrained(out_dir, safe_serialization=True)

    # Reload from disk, so the expected values are exactly those of the committed files.
    model = AutoModel.from_pretrained(out_dir, attn_implementation="eager").eval()
    assert model.config._attn_implementation == "eager"
    with torch.no_grad():
        out = model(
            input_ids=ids,
            attention_mask=mask,
            token_type_ids=types,
            output_hidden_states=True,
            output_attentions=True,
        )
    hs = torch.stack(out.hidden_states)  # [layers+1, batch, seq, hidden]
    att = torch.stack(out.attentions)  # [layers, batch, heads, seq, seq]

    checks = {}
    # Does the fixture discriminate the activation? Same weights, other GELU variant.
    alt_config = type(config).from_dict({**config.to_dict(), "hidden_act": alt_act})
    alt_config._attn_implementation = "eager"
    other = cls(alt_config, add_pooling_layer=True).eval()
    assert other.config._attn_implementation == "eager"
    other.load_state_dict(model.state_dict())
    with torch.no_grad():
        alt = other(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state
    checks[f"max_abs_diff_vs_{alt_act}"] = max_abs_diff(alt, out.last_hidden_state)

    # Padding independence: each row alone, unpadded, must agree on its real tokens.
    worst = 0.0
    for row in range(ids.shape[0]):
        n = int(mask[row].sum())
        with torch.no_grad():
            single = model(input_ids=ids[row : row + 1, :n], attention_mask=mask[row : row + 1, :n],
                           token_type_ids=types[row : row + 1, :n]).last_hidden_state
        worst = max(worst, max_abs_diff(single[0], out.last_hidden_state[row, :n]))
    checks["max_abs_diff_unpadded_rows_vs_padded_batch"] = worst
    checks["attention_prob_max"] = float(att.max())
    checks["last_hidden_state_absmax"] = float(out.last_hidden_state.abs().max())

    tensors = {
        "input_ids": to_numpy(ids),
        "attention_mask": to_numpy(mask),
        "token_type_ids": to_numpy(types),
        "position_ids": to_numpy(position_ids_for(kind, ids, config.pad_token_id)),
        "last_hidden_state": to_numpy(out.last_hidden_state),
        "pooler_output": to_numpy(out.pooler_output),
        "hidden_states": to_numpy(hs),
        "attentions": to_numpy(att),
    }
    meta = provenance(SCRIPT, versions, model=f"tiny-{kind}", seed=SEED, attn_implementation="eager",
                      **{f"check.{k}": f"{v:.3e}" for k, v in checks.items()})
    save_tensors(out_dir / "expected.safetensors", tensors, meta)
    write_checksums(out_dir)
    print(f"tiny-{kind}: {checks}")
    return checks


# ----------------------------------------------------------------------------------------------------------
# Real model: all-MiniLM-L6-v2
# ----------------------------------------------------------------------------------------------------------

VADER_REQ = "vaderSentiment==3.3.2"
VADER_SDIST_SHA256 = "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9"
CORPUS_SHA256 = {
    "amazonReviewSnippets_GroundTruth.txt": "11a9807a0974a2506a2d3b4851eaf69b3d6d20688ce4923adda2312a4f6dd6c2",
    "movieReviewSnippets_GroundTruth.txt": "c8293b0d942e90e223ea2c0955d969040d1a1be514a978b9af0698940bd13350",
    "tweets_GroundTruth.txt": "dfbe7102e2f92579ed8b19df9a3822491880697c67adf712fb66e520cc05102f",
}
MAX_SEQ_LENGTH = 256  # sentence_bert_config.json of all-MiniLM-L6-v2


def fetch_corpus(tmp: Path) -> Path:
    """Downloads the vaderSentiment 3.3.2 sdist (hash-pinned) and unpacks hutto_ICWSM_2014/ from it."""
    req = tmp / "req.txt"
    req.write_text(f"{VADER_REQ} --hash=sha256:{VADER_SDIST_SHA256}\n")
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
                    "--require-hashes", "-r", str(req), "-d", str(tmp / "dl")], check=True)
    sdist = tmp / "dl" / "vaderSentiment-3.3.2.tar.gz"
    if sha256_file(sdist) != VADER_SDIST_SHA256:
        sys.exit("error: vaderSentiment sdist checksum mismatch")
    with tarfile.open(sdist) as tf:
        inner = tf.extractfile("vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz")
        (tmp / "hutto.tar.gz").write_bytes(inner.read())
    with tarfile.open(tmp / "hutto.tar.gz") as tf:
        tf.extractall(tmp / "corpus", filter="data")
    return tmp / "corpus" / "hutto_ICWSM_2014"


def read_snippets(path: Path) -> list[tuple[str, str]]:
    """Lines are `id<TAB>score<TAB>text` with CRLF endings, UTF-8. Returns [(id, text)]."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split("\t")
        if len(parts) >= 3 and parts[2].strip():
            rows.append((parts[0], "\t".join(parts[2:]).strip()))
    return rows


def select_sentences(corpus: Path) -> list[dict]:
    """64 sentences, chosen by fixed strides (no RNG):
    - 40 Amazon review snippets (ASCII, lower-cased by the authors), every 92nd line starting at line 1;
    - 12 movie review snippets: the first 8 with non-ASCII characters (accents, dashes) and 4 by stride;
    - 12 tweets: both tweets with non-ASCII characters and 10 by stride (mixed case, emoticons, @, #, &amp;)."""
    picked = []

    def add(file: str, rows: list[tuple[str, str]]):
        for rid, text in rows:
            picked.append({"source": file, "id": rid, "text": text})

    amazon = read_snippets(corpus / "amazonReviewSnippets_GroundTruth.txt")
    add("amazonReviewSnippets_GroundTruth.txt", amazon[::92][:40])
    movie = read_snippets(corpus / "movieReviewSnippets_GroundTruth.txt")
    non_ascii = [r for r in movie if not r[1].isascii()][:8]
    ascii_rows = [r for r in movie if r[1].isascii()][::997][:4]
    add("movieReviewSnippets_GroundTruth.txt", non_ascii + ascii_rows)
    tweets = read_snippets(corpus / "tweets_GroundTruth.txt")
    t_non_ascii = [r for r in tweets if not r[1].isascii()]
    t_ascii = [r for r in tweets if r[1].isascii()][::401][:12 - len(t_non_ascii)]
    add("tweets_GroundTruth.txt", t_non_ascii + t_ascii)
    assert len(picked) == 64, len(picked)
    return picked


def make_minilm(versions: dict[str, str], corpus_dir: Path | None) -> dict:
    from transformers import AutoModel, AutoTokenizer, BertTokenizer

    set_deterministic(SEED)
    model_dir = REPO_ROOT / "models" / "all-MiniLM-L6-v2"
    if not (model_dir / "model.safetensors").exists():
        sys.exit(f"error: {model_dir} missing; run scripts/fetch-model.sh first")
    if sha256_file(model_dir / "model.safetensors") != \
            "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db":
        sys.exit("error: model.safetensors checksum mismatch; rerun scripts/fetch-model.sh")

    with tempfile.TemporaryDirectory() as tmp:
        corpus = corpus_dir if corpus_dir else fetch_corpus(Path(tmp))
        corpus_hashes = {name: sha256_file(corpus / name) for name in CORPUS_SHA256}
        for name, expected in CORPUS_SHA256.items():
            if corpus_hashes[name] != expected:
                sys.exit(f"error: {name} checksum mismatch")
        sentences = select_sentences(corpus)
        # A tokenizer-only case longer than 256 tokens: the whole Amazon review 287 (all its snippets, joined by
        # single spaces), truncated to max_seq_length like sentence-transformers does.
        long_text = " ".join(t for rid, t in read_snippets(corpus / "amazonReviewSnippets_GroundTruth.txt")
                             if rid.startswith("287_"))
    texts = [s["text"] for s in sentences]

    fast = AutoTokenizer.from_pretrained(model_dir)  # BertTokenizerFast from tokenizer.json
    assert fast.is_fast, type(fast)
    # What sentence-transformers' Transformer module does: padding to the longest, truncation at 256.
    enc = fast(texts, padding=True, truncation="longest_first", max_length=MAX_SEQ_LENGTH, return_tensors="pt")
    slow = BertTokenizer(str(model_dir / "vocab.txt"), do_lower_case=True)
    slow_disagreements = []
    for i, text in enumerate(texts):
        n = int(enc["attention_mask"][i].sum())
        fast_ids = enc["input_ids"][i, :n].tolist()
        slow_ids = slow(text, truncation=True, max_length=MAX_SEQ_LENGTH)["input_ids"]
        if fast_ids != slow_ids:
            slow_disagreements.append(i)
        sentences[i]["tokens"] = fast.convert_ids_to_tokens(fast_ids)
        sentences[i]["num_tokens"] = n

    full_ids = fast(long_text)["input_ids"]
    trunc_ids = fast(long_text, truncation="longest_first", max_length=MAX_SEQ_LENGTH)["input_ids"]
    assert len(full_ids) > MAX_SEQ_LENGTH and trunc_ids == full_ids[: MAX_SEQ_LENGTH - 1] + [full_ids[-1]]
    truncation_case = {
        "source": "amazonReviewSnippets_GroundTruth.txt, all lines with id 287_*, joined by single spaces",
        "text": long_text,
        "untruncated_num_tokens": len(full_ids),
        "max_length": MAX_SEQ_LENGTH,
        "input_ids": trunc_ids,
    }

    model = AutoModel.from_pretrained(model_dir, attn_implementation="eager").eval()
    with torch.no_grad():
        out = model(**enc)
    h = out.last_hidden_state  # [64, L, 384]
    # sentence-transformers Pooling (mean tokens): sum(h * mask) / clamp(sum(mask), min=1e-9)
    m = enc["attention_mask"].unsqueeze(-1).to(h.dtype)
    mean = (h * m).sum(1) / torch.clamp(m.sum(1), min=1e-9)
    # sentence-transformers Normalize: F.normalize(p=2, dim=1), eps 1e-12
    normalized = torch.nn.functional.normalize(mean, p=2, dim=1)

    # Padding independence on the real model: sentence 0..2 alone.
    worst = 0.0
    for i in range(3):
        n = int(enc["attention_mask"][i].sum())
        with torch.no_grad():
            single = model(**{k: v[i : i + 1, :n] for k, v in enc.items()}).last_hidden_state
        worst = max(worst, max_abs_diff(single[0], h[i, :n]))

    l3 = int(enc["attention_mask"][:3].sum(1).max())
    out_dir = FIXTURES / "minilm"
    checks = {
        "max_abs_diff_unpadded_vs_batch_first3": worst,
        "slow_tokenizer_disagreements": len(slow_disagreements),
        "padded_length": int(enc["input_ids"].shape[1]),
    }
    tensors = {
        "input_ids": to_numpy(enc["input_ids"]),
        "attention_mask": to_numpy(enc["attention_mask"]),
        "token_type_ids": to_numpy(enc["token_type_ids"]),
        "embeddings_mean": to_numpy(mean),
        "embeddings_normalized": to_numpy(normalized),
        "token_states_first3": to_numpy(h[:3, :l3]),
        "pooler_output": to_numpy(out.pooler_output),
    }
    meta = provenance(SCRIPT, versions, model="sentence-transformers/all-MiniLM-L6-v2",
                      model_safetensors_sha256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
                      attn_implementation="eager",
                      **{f"check.{k}": str(v) for k, v in checks.items()})
    save_tensors(out_dir / "expected.safetensors", tensors, meta)
    write_json(out_dir / "sentences.json", {
        "source": "vaderSentiment==3.3.2 sdist (PyPI), additional_resources/hutto_ICWSM_2014.tar.gz; "
                  "Hutto & Gilbert, ICWSM 2014. Lines are id<TAB>score<TAB>text; the text field is used as is "
                  "(HTML entities such as &amp; kept). License: MIT (vaderSentiment, (c) 2016 C.J. Hutto).",
        "sdist_sha256": VADER_SDIST_SHA256,
        "file_sha256": corpus_hashes,
        "selection": select_sentences.__doc__.strip(),
        "tokenizer": "BertTokenizerFast from models/all-MiniLM-L6-v2/tokenizer.json; padding=longest, "
                     f"truncation=longest_first, max_length={MAX_SEQ_LENGTH}",
        "slow_tokenizer_disagreements": slow_disagreements,
        "sentences": sentences,
        "truncation_case": truncation_case,
    })
    write_checksums(out_dir)
    print(f"minilm: {checks}")
    return checks


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=["tiny", "minilm"])
    ap.add_argument("--corpus-dir", type=Path, help="unpacked hutto_ICWSM_2014/ folder (skips the pip download)")
    ap.add_argument("--allow-version-mismatch", action="store_true")
    args = ap.parse_args()
    versions = check_versions(args.allow_version_mismatch,
                              ("torch", "transformers", "tokenizers", "safetensors", "numpy"))
    if args.only in (None, "tiny"):
        make_tiny("bert", versions)
        make_tiny("roberta", versions)
    if args.only in (None, "minilm"):
        make_minilm(versions, args.corpus_dir)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Encoder speed: ours (adapterdrop bench encoder) vs PyTorch eager vs ONNX Runtime on the SAME weights.

Manual step, never CI. Pinned stack: scripts/requirements-parity.txt + scripts/peers/requirements.txt.

    swift build -c release --product adapterdrop
    scripts/fetch-model.sh                      # models/all-MiniLM-L6-v2 (for the MiniLM rows)
    /work/venv/bin/python scripts/peers/bench_peers.py [--rounds 3] [--reps 3] [--json results/peers/peers.json]

What it does
1. Creates a random-init BERT-base (hidden 768, 12 layers, 12 heads, intermediate 3072; torch.manual_seed(0),
   transformers' own init) and saves it as a Hugging Face folder (safetensors) under results/peers/bert-base-random
   (git-ignored). Reused if already there.
2. Exports each model to ONNX (TorchScript exporter, opset 17, fp32, dynamic batch/sequence axes) and runs it
   with ONNX Runtime's default CPU provider and the optimization level a user would pick, ORT_ENABLE_ALL.
3. For every (model, batch, threads): rounds of [our variants…, PyTorch, ORT] in rotating order;
   each times --reps forward passes per round after one warm-up, and the reported figure is the median of all
   its samples (ours: the median of the per-round medians, since each round is one subprocess).
   PyTorch: torch.set_num_threads(t), inference_mode, eager attention. ORT: intra_op_num_threads = t,
   inter_op_num_threads = 1, sequential execution. Ours: --threads t.
4. Checks that our last_hidden_state matches PyTorch's on the same ids (max abs diff, printed and stored).

Our variants (--variants, comma-separated; default "ours,ours_plain"):
    ours           `bench encoder` as shipped: weights held pre-packed (the default since session 3)
    ours_plain     `--no-prepack`: plain weight matrices, B packed in every product (the library default)
    ours_dispatch  pre-packed, parallel sections on DispatchQueue.concurrentPerform instead of the
                   context's helper threads (ADAPTERCORE_THREAD_POOL=dispatch, the session-2 threading)
    ours_nospin    pre-packed, helper threads that sleep at once between sections (ADAPTERCORE_SPIN_US=0)

Inputs: seq 128, ids[b, s] = 101 for s == 0, else 1000 + (b*131 + s*31) % (vocab - 1000) (the same formula as
`adapterdrop bench encoder`), attention mask all ones, token type ids 0.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
import transformers
from transformers import BertConfig, BertModel

ROOT = Path(__file__).resolve().parents[2]
SEQ = 128


def make_ids(batch: int, seq: int, vocab: int) -> np.ndarray:
    b = np.arange(batch)[:, None]
    s = np.arange(seq)[None, :]
    ids = 1000 + (b * 131 + s * 31) % max(vocab - 1000, 1)
    ids[:, 0] = 101
    return ids.astype(np.int64)


def make_random_bert(folder: Path) -> None:
    if (folder / "model.safetensors").exists() and (folder / "config.json").exists():
        return
    torch.manual_seed(0)
    config = BertConfig(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
                        vocab_size=30522, attn_implementation="eager")
    model = BertModel(config, add_pooling_layer=True).eval()
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    (folder / "README.txt").write_text("Random-init BERT-base (torch.manual_seed(0)) for speed benchmarks only; "
                                       "NOT a trained model. Made by scripts/peers/bench_peers.py.\n")


def load_torch(folder: Path) -> BertModel:
    return BertModel.from_pretrained(folder, attn_implementation="eager").eval()


def export_onnx(model: BertModel, path: Path) -> None:
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    ids = torch.tensor(make_ids(2, SEQ, model.config.vocab_size))
    mask = torch.ones_like(ids)
    types = torch.zeros_like(ids)
    axes = {0: "batch", 1: "seq"}
    with torch.inference_mode():
        torch.onnx.export(model, (ids, mask, types), str(path), dynamo=False, opset_version=17,
                          input_names=["input_ids", "attention_mask", "token_type_ids"],
                          output_names=["last_hidden_state", "pooler_output"],
                          dynamic_axes={"input_ids": axes, "attention_mask": axes, "token_type_ids": axes,
                                        "last_hidden_state": axes, "pooler_output": {0: "batch"}})


def ort_session(path: Path, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def time_calls(fn, reps: int) -> list[float]:
    fn()  # warm-up
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


VARIANTS = {
    "ours": ([], {}),
    "ours_plain": (["--no-prepack"], {}),
    "ours_dispatch": ([], {"ADAPTERCORE_THREAD_POOL": "dispatch"}),
    "ours_nospin": ([], {"ADAPTERCORE_SPIN_US": "0"}),
}


def run_ours(binary: Path, folder: Path, batch: int, threads: int, reps: int, dump: Path | None = None,
             variant: str = "ours") -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        json_path = Path(f.name)
    cmd = [str(binary), "bench", "encoder", "--model", str(folder), "--batch", str(batch), "--seq", str(SEQ),
           "--threads", str(threads), "--repetitions", str(reps), "--warmup", "1", "--json", str(json_path)]
    if dump is not None:
        cmd += ["--dump-output", str(dump)]
    extra, env = VARIANTS[variant]
    cmd += extra
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env={**os.environ, **env})
    row = json.loads(json_path.read_text())[0]
    json_path.unlink()
    return row


def bench_model(name: str, folder: Path, binary: Path, onnx_path: Path, grid: list[tuple[int, int]],
                rounds: int, reps: int, variants: list[str]) -> tuple[list[dict], dict]:
    model = load_torch(folder)
    export_onnx(model, onnx_path)
    vocab = model.config.vocab_size
    sessions = {t: ort_session(onnx_path, t) for t in sorted({t for _, t in grid})}

    # Agreement with PyTorch on the same weights and ids (batch 2).
    ids = make_ids(2, SEQ, vocab)
    with torch.inference_mode():
        ref = model(input_ids=torch.tensor(ids), attention_mask=torch.ones(ids.shape, dtype=torch.long),
                    token_type_ids=torch.zeros(ids.shape, dtype=torch.long)).last_hidden_state.numpy()
    with tempfile.NamedTemporaryFile(suffix=".f32", delete=False) as f:
        dump = Path(f.name)
    run_ours(binary, folder, 2, 1, 1, dump=dump)
    ours_out = np.fromfile(dump, dtype="<f4").reshape(ref.shape)
    dump.unlink()
    ort_out = sessions[min(sessions)].run(["last_hidden_state"], {
        "input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)})[0]
    agreement = {"model": name, "max_abs_diff_ours_vs_torch": float(np.max(np.abs(ours_out - ref))),
                 "max_abs_diff_ort_vs_torch": float(np.max(np.abs(ort_out - ref))),
                 "max_abs_torch": float(np.max(np.abs(ref)))}
    print(f"[{name}] max |ours − torch| = {agreement['max_abs_diff_ours_vs_torch']:.3g}, "
          f"max |ort − torch| = {agreement['max_abs_diff_ort_vs_torch']:.3g} (max |torch| {agreement['max_abs_torch']:.3g})",
          flush=True)

    rows = []
    for batch, threads in grid:
        ids = make_ids(batch, SEQ, vocab)
        feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
        t_ids, t_mask, t_types = (torch.tensor(ids), torch.ones(ids.shape, dtype=torch.long),
                                  torch.zeros(ids.shape, dtype=torch.long))
        session = sessions[threads]

        def torch_call():
            torch.set_num_threads(threads)
            with torch.inference_mode():
                model(input_ids=t_ids, attention_mask=t_mask, token_type_ids=t_types)

        def ort_call():
            session.run(["last_hidden_state"], feeds)

        samples = {v: [] for v in variants} | {"pytorch": [], "onnxruntime": []}
        peaks = {v: [0.0, 0.0] for v in variants}   # load peak, inference peak (MiB)
        order = list(samples)
        for r in range(rounds):
            for fw in order[r % len(order):] + order[:r % len(order)]:
                if fw in peaks:
                    row = run_ours(binary, folder, batch, threads, reps, variant=fw)
                    samples[fw].append(row["ms_per_batch"] / 1e3)
                    peaks[fw][0] = max(peaks[fw][0], row.get("load_peak_resident_mib") or 0.0)
                    peaks[fw][1] = max(peaks[fw][1], row.get("inference_peak_resident_mib") or 0.0)
                elif fw == "pytorch":
                    samples["pytorch"] += time_calls(torch_call, reps)
                else:
                    samples["onnxruntime"] += time_calls(ort_call, reps)
        med = {fw: statistics.median(s) for fw, s in samples.items()}
        row = {"model": name, "batch": batch, "seq": SEQ, "threads": threads}
        for fw, sec in med.items():
            row[fw] = {"ms_per_batch": sec * 1e3, "sequences_per_second": batch / sec,
                       "tokens_per_second": batch * SEQ / sec}
        for fw in variants:
            row[fw]["load_peak_resident_mib"], row[fw]["inference_peak_resident_mib"] = peaks[fw]
            row[fw]["speedup_vs_onnxruntime"] = med["onnxruntime"] / med[fw]
            row[fw]["speedup_vs_pytorch"] = med["pytorch"] / med[fw]
        row["variants"] = variants
        rows.append(row)
        ours = "; ".join(f"{fw} {med[fw]*1e3:.1f} ms ×{row[fw]['speedup_vs_onnxruntime']:.2f} ORT "
                         f"×{row[fw]['speedup_vs_pytorch']:.2f} PyTorch RSS {peaks[fw][1]:.0f} MiB" for fw in variants)
        print(f"[{name}] batch {batch} threads {threads}: pytorch {med['pytorch']*1e3:.1f} ms, "
              f"ort {med['onnxruntime']*1e3:.1f} ms; {ours}", flush=True)
    del sessions
    return rows, agreement


def print_table(rows: list[dict]) -> None:
    if not rows:
        return
    variants = rows[0]["variants"]
    header = ["model", "batch", "threads"] + [f"{v} ms" for v in variants] + ["PyTorch ms", "ORT ms"]
    header += [f"{v} tok/s" for v in variants] + ["PyTorch tok/s", "ORT tok/s"]
    header += [f"{v} vs ORT" for v in variants] + [f"{v} vs PyTorch" for v in variants]
    header += [f"{v} RSS MiB" for v in variants]
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for r in rows:
        fws = [r[v] for v in variants] + [r["pytorch"], r["onnxruntime"]]
        cells = [r["model"], str(r["batch"]), str(r["threads"])]
        cells += [f"{v['ms_per_batch']:.1f}" for v in fws]
        cells += [f"{v['tokens_per_second']:.0f}" for v in fws]
        cells += [f"{r[v]['speedup_vs_onnxruntime']:.2f}×" for v in variants]
        cells += [f"{r[v]['speedup_vs_pytorch']:.2f}×" for v in variants]
        cells += [f"{r[v]['inference_peak_resident_mib']:.0f}" for v in variants]
        print("| " + " | ".join(cells) + " |")
    print("(RSS: peak resident set after loading, during the timed forward passes; Linux VmHWM)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", type=Path, default=ROOT / ".build/release/adapterdrop")
    ap.add_argument("--work", type=Path, default=ROOT / "results/peers", help="git-ignored output folder")
    ap.add_argument("--json", type=Path, default=None, help="default: WORK/peers.json")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--reps", type=int, default=3, help="timed forward passes per framework per round")
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--minilm", type=Path, default=ROOT / "models/all-MiniLM-L6-v2")
    ap.add_argument("--variants", default="ours,ours_plain",
                    help=f"our variants to time, comma-separated, from {', '.join(VARIANTS)}")
    ap.add_argument("--skip-bert", action="store_true")
    ap.add_argument("--skip-minilm", action="store_true")
    args = ap.parse_args()
    if not args.binary.exists():
        sys.exit(f"{args.binary} not found: run `swift build -c release --product adapterdrop` first")
    variants = args.variants.split(",")
    if not variants or any(v not in VARIANTS for v in variants):
        sys.exit(f"--variants: choose from {', '.join(VARIANTS)}")
    grid = [(b, t) for b in map(int, args.batches.split(",")) for t in map(int, args.threads.split(","))]
    args.work.mkdir(parents=True, exist_ok=True)
    rows, agreements = [], []
    if not args.skip_bert:
        folder = args.work / "bert-base-random"
        make_random_bert(folder)
        r, a = bench_model("bert-base (random init)", folder, args.binary, args.work / "onnx/bert-base-random.onnx",
                           grid, args.rounds, args.reps, variants)
        rows += r
        agreements.append(a)
    if not args.skip_minilm:
        if not (args.minilm / "model.safetensors").exists():
            print(f"skipping MiniLM: {args.minilm} missing (run scripts/fetch-model.sh)", file=sys.stderr)
        else:
            r, a = bench_model("all-MiniLM-L6-v2", args.minilm, args.binary, args.work / "onnx/all-MiniLM-L6-v2.onnx",
                               grid, args.rounds, args.reps, variants)
            rows += r
            agreements.append(a)
    print_table(rows)
    out = {"versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                        "onnxruntime": ort.__version__, "numpy": np.__version__},
           "seq": SEQ, "rounds": args.rounds, "reps": args.reps, "rows": rows, "agreement": agreements,
           "date": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    path = args.json or args.work / "peers.json"
    path.write_text(json.dumps(out, indent=2))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

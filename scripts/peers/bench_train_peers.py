#!/usr/bin/env python3
"""Training step speed: ours (adapterdrop bench train) vs PyTorch + adapters 1.3.0, seq_bn, BERT-base shapes.

Manual step, never CI. Pinned stack: scripts/requirements-parity.txt + scripts/peers/requirements.txt.

    swift build -c release --product adapterdrop
    /work/venv/bin/python scripts/peers/bench_train_peers.py [--threads 1] [--drop 0] [--rounds 3] [--steps 3]
                                                             [--json results/peers/train_peers.json]

What it times (issue #5: "training step (seq_bn, batch 8, seq 128): >= 1.2x faster than PyTorch + adapters per
step at n = 0"):
- PyTorch: a random-init BERT-base (torch.manual_seed(0), transformers' init) as adapters' BertAdapterModel with
  one seq_bn adapter (reduction factor 16) and a 2-label classification head, `train_adapter` (everything else
  frozen), model.train() (dropout on), AdamW(lr 1e-4, weight decay 0.01, no decay on biases) with a linear
  schedule, clip_grad_norm_(1.0). One step = forward with labels, loss.backward(), clipping, optimizer.step(),
  scheduler.step(), zero_grad(set_to_none=True). n > 0 (specialized AdapterDrop) uses the adapter config's
  `leave_out = [0..n-1]`, so autograd stops at layer n as ours does. torch.set_num_threads(threads).
- Ours: `adapterdrop bench train --config bert-base --batch B --seq S --drop n --threads t --steps K` (random
  weights of the same shapes; the same step: forward with dropout, CE loss, backward to layer n, clipping, AdamW).
- Rounds alternate [ours, PyTorch] (rotating order) so both see the same machine load; each figure is the
  median of its per-round medians. Speed-up = PyTorch ms / ours ms. On a shared machine only run it idle.

Inputs: ids[b, s] = 101 for s == 0, else 1000 + (b*131 + s*31) % (vocab - 1000) (as `bench encoder`), mask all
ones, labels b % 2.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from transformers import BertConfig, get_linear_schedule_with_warmup

import adapters
from adapters import BertAdapterModel, SeqBnConfig

ROOT = Path(__file__).resolve().parents[2]


def make_ids(batch: int, seq: int, vocab: int) -> torch.Tensor:
    b = np.arange(batch)[:, None]
    s = np.arange(seq)[None, :]
    ids = 1000 + (b * 131 + s * 31) % max(vocab - 1000, 1)
    ids[:, 0] = 101
    return torch.from_numpy(ids.astype(np.int64))


def torch_stepper(batch: int, seq: int, dropped: int, steps_total: int):
    torch.manual_seed(0)
    config = BertConfig(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
                        vocab_size=30522, max_position_embeddings=512)
    model = BertAdapterModel(config)
    model.add_adapter("task", config=SeqBnConfig(reduction_factor=16, leave_out=list(range(dropped))))
    model.add_classification_head("task", num_labels=2)
    model.train_adapter("task")
    model.train()
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    groups = [{"params": [p for n, p in named if not n.endswith(".bias")], "weight_decay": 0.01},
              {"params": [p for n, p in named if n.endswith(".bias")], "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(groups, lr=1e-4)
    scheduler = get_linear_schedule_with_warmup(optimizer, 0, steps_total)
    ids = make_ids(batch, seq, config.vocab_size)
    mask = torch.ones_like(ids)
    labels = torch.arange(batch) % 2

    def step() -> float:
        out = model(input_ids=ids, attention_mask=mask, labels=labels)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_([p for _, p in named], 1.0)
        optimizer.step()
        scheduler.step()
        model.zero_grad(set_to_none=True)
        return out.loss.item()

    return step


def time_torch(step, steps: int) -> float:
    step()  # warm-up
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - t0) / steps * 1e3


def run_ours(binary: Path, batch: int, seq: int, dropped: int, threads: int, steps: int) -> float:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        json_path = Path(f.name)
    cmd = [str(binary), "bench", "train", "--config", "bert-base", "--batch", str(batch), "--seq", str(seq),
           "--drop", str(dropped), "--threads", str(threads), "--steps", str(steps), "--repetitions", "1",
           "--json", str(json_path)]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    rows = json.loads(json_path.read_text())
    json_path.unlink()
    return [r for r in rows if r["dropped_layers"] == str(dropped)][-1]["ms_per_step"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", type=Path, default=ROOT / ".build/release/adapterdrop")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--drop", default="0", help="comma-separated n (specialized AdapterDrop)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=3, help="timed optimizer steps per framework per round")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--skip-ours", action="store_true", help="time PyTorch only")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, adapters {adapters.__version__}, threads {args.threads}, "
          f"batch {args.batch}, seq {args.seq}, RANDOM weights")
    rows = []
    for n in [int(x) for x in args.drop.split(",")]:
        step = torch_stepper(args.batch, args.seq, n, steps_total=10_000)
        ours_ms, torch_ms = [], []
        for r in range(args.rounds):
            order = ["ours", "torch"] if r % 2 == 0 else ["torch", "ours"]
            for which in order:
                if which == "ours" and not args.skip_ours:
                    ours_ms.append(run_ours(args.binary, args.batch, args.seq, n, args.threads, args.steps))
                elif which == "torch":
                    torch_ms.append(time_torch(step, args.steps))
        row = {"dropped_layers": n, "threads": args.threads, "batch": args.batch, "seq": args.seq,
               "torch_ms_per_step": statistics.median(torch_ms),
               "ours_ms_per_step": statistics.median(ours_ms) if ours_ms else None}
        row["speedup_vs_torch"] = (row["torch_ms_per_step"] / row["ours_ms_per_step"]) if ours_ms else None
        rows.append(row)
        ours_text = f"{row['ours_ms_per_step']:.1f}" if ours_ms else "-"
        ratio = f"{row['speedup_vs_torch']:.2f}x" if ours_ms else "-"
        print(f"n={n:2d}  torch {row['torch_ms_per_step']:.1f} ms/step  ours {ours_text} ms/step  speed-up {ratio}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env python3
"""Multi-task AdapterDrop inference: ours (`adapterdrop bench drop`) vs PyTorch + adapters 1.3.0.

Manual step, never CI; run it on an idle machine (2 cores shared with anything else skew both sides).

    swift build -c release --product adapterdrop
    /work/venv/bin/python scripts/peers/bench_drop_peers.py [--tasks 8] [--drop 0,5] [--threads 1,2] \
        [--rounds 3] [--reps 3] [--prepack] [--clock wall|cpu] [--json results/peers/drop_peers.json]

What it measures (the issue's "Performance acceptance" setting): BERT-base shapes with random weights, N seq_bn
adapters (reduction factor 16) each with a 2-label classification head, run as Parallel(task0, ..., taskN-1), batch 1,
seq 128, with AdapterDrop skip_layers = [0, ..., n-1] for each n in --drop.
- PyTorch: `BertAdapterModel` (adapters 1.3.0, torch.manual_seed(0) init, eval, inference_mode, eager attention),
  `set_active_adapters(Parallel(...), skip_layers=...)`, torch.set_num_threads(t); per round one warm-up and --reps
  timed forward passes.
- Ours: `adapterdrop bench drop --tasks N --drop D --threads t --repetitions R` as a subprocess per round (its own
  seeded random weights: the speed of either side does not depend on the values); its per-row median.
Clock: --clock wall (default; use on an idle machine) or --clock cpu: at 1 thread the CPU time of the timing thread
on both sides (PyTorch: time.thread_time; ours: ADAPTERDROP_BENCH_CLOCK=thread), which leaves out the waiting a
loaded machine adds (at more threads cpu falls back to wall clock).
Rounds alternate which side runs first. Reported: medians over rounds, ours/PyTorch time ratio (the issue's bar:
<= 0.85 at 1 thread, both for n = 0 and n = 5), and each side's speed-up from dropping layers.
Inputs: ids[0, s] = 101 for s == 0, else 1000 + (s*31) % (vocab - 1000) (as `bench encoder`), mask all ones.
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

import torch
from adapters import BertAdapterModel
from adapters.composition import Parallel
from transformers import BertConfig

ROOT = Path(__file__).resolve().parents[2]
SEQ = 128


def make_ids(seq: int, vocab: int) -> torch.Tensor:
    ids = [101] + [1000 + (s * 31) % (vocab - 1000) for s in range(1, seq)]
    return torch.tensor([ids], dtype=torch.long)


def torch_model(tasks: int) -> BertAdapterModel:
    torch.manual_seed(0)
    config = BertConfig(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
                        vocab_size=30522, attn_implementation="eager")
    model = BertAdapterModel(config)
    names = [f"task{t}" for t in range(tasks)]
    for n in names:
        model.add_adapter(n, config="seq_bn")
        model.add_classification_head(n, num_labels=2)
    return model.eval()


def time_torch(model: BertAdapterModel, tasks: int, dropped: int, threads: int, reps: int, cpu: bool = False) -> list[float]:
    torch.set_num_threads(threads)
    names = [f"task{t}" for t in range(tasks)]
    setup = Parallel(*names) if tasks > 1 else names[0]
    model.set_active_adapters(setup, skip_layers=list(range(dropped)) if dropped else None)
    ids = make_ids(SEQ, model.config.vocab_size)
    mask = torch.ones_like(ids)
    out = []
    clock = time.thread_time if cpu and threads == 1 else time.perf_counter
    with torch.inference_mode():
        model(input_ids=ids, attention_mask=mask)  # warm-up
        for _ in range(reps):
            t0 = clock()
            model(input_ids=ids, attention_mask=mask)
            out.append(clock() - t0)
    return out


def time_ours(binary: Path, tasks: int, drops: list[int], threads: int, reps: int, prepack: bool,
              cpu: bool = False) -> dict[int, float]:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        path = Path(f.name)
    cmd = [str(binary), "bench", "drop", "--config", "bert-base", "--tasks", str(tasks), "--drop",
           ",".join(map(str, drops)), "--batch", "1", "--seq", str(SEQ), "--threads", str(threads),
           "--repetitions", str(reps), "--json", str(path)] + (["--prepack"] if prepack else [])
    env = dict(os.environ)
    if cpu and threads == 1:
        env["ADAPTERDROP_BENCH_CLOCK"] = "thread"
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env)
    rows = json.loads(path.read_text())
    path.unlink()
    return {r["dropped_layers"]: r["ms"] / 1e3 for r in rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", type=Path, default=ROOT / ".build/release/adapterdrop")
    ap.add_argument("--tasks", type=int, default=8)
    ap.add_argument("--drop", default="0,5")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--prepack", action="store_true", help="pass --prepack to ours")
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                    help="wall (default, idle machine) or cpu: the timing thread's CPU time at 1 thread on both sides")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    drops = [int(d) for d in args.drop.split(",")]
    if not args.binary.exists():
        sys.exit(f"{args.binary} missing: swift build -c release --product adapterdrop")
    model = torch_model(args.tasks)
    results = []
    for threads in [int(t) for t in args.threads.split(",")]:
        ours: dict[int, list[float]] = {d: [] for d in drops}
        theirs: dict[int, list[float]] = {d: [] for d in drops}
        for r in range(args.rounds):
            order = ["ours", "torch"] if r % 2 == 0 else ["torch", "ours"]
            for side in order:
                if side == "ours":
                    for d, t in time_ours(args.binary, args.tasks, drops, threads, args.reps, args.prepack,
                                          args.clock == "cpu").items():
                        ours[d].append(t)
                else:
                    for d in drops:
                        theirs[d] += time_torch(model, args.tasks, d, threads, args.reps, args.clock == "cpu")
        for d in drops:
            o, p = statistics.median(ours[d]), statistics.median(theirs[d])
            row = {"tasks": args.tasks, "dropped_layers": d, "threads": threads, "ours_ms": o * 1e3, "pytorch_ms": p * 1e3,
                   "ours_vs_pytorch_time": o / p, "prepack": args.prepack,
                   "clock": "thread-cpu" if args.clock == "cpu" and threads == 1 else "wall"}
            results.append(row)
            print(f"tasks {args.tasks} dropped {d:2d} threads {threads}: ours {o * 1e3:8.1f} ms  PyTorch {p * 1e3:8.1f} ms  "
                  f"ours/PyTorch {o / p:.2f}")
        if 0 in drops:
            for d in drops:
                if d:
                    o0, p0 = statistics.median(ours[0]), statistics.median(theirs[0])
                    print(f"  speed-up from dropping {d}: ours {o0 / statistics.median(ours[d]):.2f}x, "
                          f"PyTorch {p0 / statistics.median(theirs[d]):.2f}x")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

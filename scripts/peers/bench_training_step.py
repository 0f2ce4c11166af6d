#!/usr/bin/env python3
"""Training-step speed: ours (AdapterTrainer, opt-in release test) vs PyTorch + adapters 1.3.0, interleaved.

Manual step, never CI. Issue #5 "Performance acceptance", training rows:

    /work/venv/bin/python scripts/peers/bench_training_step.py [--rounds 2] [--threads 1,2] [--drops 0,...,11]
                                                               [--no-ours] [--no-torch] [--xctest BUNDLE] [--json FILE]

Setup on both sides: BERT-base shapes (hidden 768, 12 layers, 12 heads, intermediate 3072), random weights,
one seq_bn adapter (reduction 16, adapters' default init) + a 2-class classification head, batch 8 x seq 128
(every token real, attention mask all ones), dropout on (model.train()), cross-entropy, gradient clipping at
1.0, AdamW (lr 1e-4, weight decay 0.01 except biases as ours), zero_grad — one optimizer step per batch.
PyTorch: BertAdapterModel, add_adapter(seq_bn) + add_classification_head, model.train_adapter("a") (freezes the
base model), AdapterDrop through set_active_adapters("a", skip_layers=[0..n-1]) as the paper's notebook does;
autograd stops at layer n by itself (no parameter below it requires grad). torch.set_num_threads(t), eager attention.
Ours: `ADAPTERDROP_TRAIN_STEP_BENCH=1 swift test -c release --filter TrainingStepBenchmarkTests` (builds first)
(Tests/AdapterDropTests/TrainingStepBenchmarkTests.swift), one subprocess per round, with pre-packed frozen weights
(PackedTrainingWeights, as `adapterdrop bench train`; --no-pack: without).

Each round runs ours (all threads x drops) then PyTorch (all threads x drops); the order alternates per round.
Clock (--clock cpu, default): at 1 thread the CPU time of the timing thread on both sides (robust to a loaded
machine); at 2 threads wall clock. --clock wall: wall clock everywhere (use on an idle machine).
Reported: the median over rounds of the per-step wall time (ours: the mean over BENCH_STEPS steps of one `train`
call; PyTorch: the median of --steps steps after one warm-up step). Robust AdapterDrop draws n uniformly from
0..11 per batch and does exactly the work of specialized n, so its expected step time is the mean over n of the
specialized times (only printed when all 12 are measured).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BATCH, SEQ = 8, 128


def torch_times(threads: list[int], drops: list[int], steps: int, cpu_clock: bool) -> dict[tuple[int, int], float]:
    import torch
    from adapters import BertAdapterModel
    from transformers import BertConfig

    torch.manual_seed(0)
    config = BertConfig(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
                        attn_implementation="eager")
    model = BertAdapterModel(config)
    model.add_adapter("a", config="seq_bn")
    model.add_classification_head("a", num_labels=2)
    model.train_adapter("a")
    model.train()
    decay = [p for n, p in model.named_parameters() if p.requires_grad and not n.endswith(".bias")]
    no_decay = [p for n, p in model.named_parameters() if p.requires_grad and n.endswith(".bias")]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
                                  lr=1e-4)
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(1000, config.vocab_size, (BATCH, SEQ), generator=g)
    ids[:, 0] = 101
    mask = torch.ones_like(ids)
    labels = torch.arange(BATCH) % 2
    trainable = [p for p in model.parameters() if p.requires_grad]
    out: dict[tuple[int, int], float] = {}
    for t in threads:
        torch.set_num_threads(t)
        for n in drops:
            model.set_active_adapters("a", skip_layers=list(range(n)) if n > 0 else None)
            samples = []
            for i in range(steps + 1):
                if os.environ.get("BENCH_VERBOSE"):
                    print(f"torch t{t} n{n} step {i}", flush=True)
                # 1 thread: intra-op work and CPU autograd run on this thread, so its CPU time is the step time
                # without the waiting a shared machine adds (as ours); more threads: wall clock.
                clock = time.thread_time if (t == 1 and cpu_clock) else time.perf_counter
                start = clock()
                loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
                loss.backward()
                if i == 0:  # the adapter trains (and only in layers n..11) and the base model is frozen
                    named = dict(model.named_parameters())
                    down = lambda l: named[f"bert.encoder.layer.{l}.output.adapters.a.adapter_down.0.weight"].grad
                    assert down(11) is not None and float(down(11).abs().sum()) > 0, "adapter got no gradient"
                    assert n == 0 or down(n - 1) is None or float(down(n - 1).abs().sum()) == 0, "skipped layer trained"
                    assert named["bert.encoder.layer.0.attention.self.query.weight"].grad is None
                torch.nn.utils.clip_grad_norm_(trainable, 1.0)
                optimizer.step()
                optimizer.zero_grad()
                if i > 0:
                    samples.append((clock() - start) * 1000)
            out[(t, n)] = statistics.median(samples)
    return out


def ours_times(threads: list[int], drops: list[int], steps: int, cpu_clock: bool, pack: bool = True,
               xctest: Path | None = None) -> dict[tuple[int, int], float]:
    env = dict(os.environ, BENCH_PACK="1" if pack else "0", BENCH_CLOCK="cpu" if cpu_clock else "wall", ADAPTERDROP_TRAIN_STEP_BENCH="1", BENCH_THREADS=",".join(map(str, threads)),
               BENCH_DROPS=",".join(map(str, drops)), BENCH_ROUNDS="1", BENCH_STEPS=str(steps))
    cmd = ([str(xctest), "--testing-library", "swift-testing"] if xctest else ["swift", "test", "-c", "release"]) \
        + ["--filter", "TrainingStepBenchmarkTests"]
    run = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    out: dict[tuple[int, int], float] = {}
    for line in run.stdout.splitlines():
        if "TRAINSTEP " in line:
            row = json.loads(line.split("TRAINSTEP ", 1)[1])
            if row["dropped_layers"] is not None:
                out[(row["threads"], row["dropped_layers"])] = row["ms_per_step"]
    if not out:
        raise SystemExit(f"no TRAINSTEP lines from swift test (exit {run.returncode}):\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--drops", default=",".join(map(str, range(12))))
    ap.add_argument("--steps", type=int, default=2, help="timed steps per (threads, n) per round")
    ap.add_argument("--no-ours", action="store_true")
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--no-pack", action="store_true", help="ours without PackedTrainingWeights (packs on every GEMM)")
    ap.add_argument("--xctest", type=Path, help="run this prebuilt release test bundle (e.g. "
                    ".build/release/adapterdrop-swiftPackageTests.xctest) instead of `swift test -c release`")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--clock", choices=["cpu", "wall"], default="cpu",
                    help="cpu (default): at 1 thread the timing thread's CPU time on both sides; wall: wall clock")
    args = ap.parse_args()
    threads = [int(x) for x in args.threads.split(",")]
    drops = [int(x) for x in args.drops.split(",")]
    samples: dict[str, dict[tuple[int, int], list[float]]] = {"ours": {}, "torch": {}}
    for r in range(args.rounds):
        order = ["ours", "torch"] if r % 2 == 0 else ["torch", "ours"]
        for who in order:
            if (who == "ours" and args.no_ours) or (who == "torch" and args.no_torch):
                continue
            cpu = args.clock == "cpu"
            got = ours_times(threads, drops, args.steps, cpu, not args.no_pack, args.xctest) if who == "ours" \
                else torch_times(threads, drops, args.steps, cpu)
            for k, v in got.items():
                samples[who].setdefault(k, []).append(v)
            print(f"round {r + 1}/{args.rounds} {who}: " + ", ".join(f"t{t} n{n} {v:.0f} ms" for (t, n), v in sorted(got.items())),
                  flush=True)
    med = {who: {k: statistics.median(v) for k, v in s.items()} for who, s in samples.items()}
    rows = []
    print(f"\ntraining step, seq_bn + head, BERT-base random, batch {BATCH} x seq {SEQ}; ms/step (median of {args.rounds} rounds)")
    print("| mode | n dropped | threads | ours ms | PyTorch ms | ours vs PyTorch | ours speed-up vs n=0 | PyTorch speed-up vs n=0 |")
    print("|---|---|---|---|---|---|---|---|")
    for t in threads:
        def cell(who, n):
            return med[who].get((t, n))
        modes = [("none" if n == 0 else "specialized", str(n), n) for n in drops]
        for mode, label, n in modes + ([("robust", "0..11 (mean)", None)] if set(drops) == set(range(12)) else []):
            vals = {}
            for who in ("ours", "torch"):
                if n is None:
                    xs = [cell(who, k) for k in range(12)]
                    vals[who] = sum(xs) / 12 if all(x is not None for x in xs) else None
                else:
                    vals[who] = cell(who, n)
            def fmt(x, spec=".0f"):
                return format(x, spec) if x is not None else "–"
            vs = vals["ours"] and vals["torch"] and vals["torch"] / vals["ours"]
            su = {who: (cell(who, 0) / vals[who] if vals[who] and cell(who, 0) else None) for who in ("ours", "torch")}
            print(f"| {mode} | {label} | {t} | {fmt(vals['ours'])} | {fmt(vals['torch'])} | {fmt(vs, '.2f')}x | "
                  f"{fmt(su['ours'], '.2f')}x | {fmt(su['torch'], '.2f')}x |")
            rows.append({"mode": mode, "dropped_layers": n, "threads": t, "ours_ms_per_step": vals["ours"],
                         "torch_ms_per_step": vals["torch"], "ours_speedup_vs_torch": vs,
                         "speedup_vs_no_drop": su["ours"], "torch_speedup_vs_no_drop": su["torch"]})
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()

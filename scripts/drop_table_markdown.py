#!/usr/bin/env python3
"""Markdown for docs/benchmarks.md from `adapterdrop bench drop --json FILE` rows (standard library only).

    .build/release/adapterdrop bench drop --config bert-base --tasks 1,2,4,8,16 --drop 0..11 --threads 1 --json drop.json
    python3 scripts/drop_table_markdown.py drop.json

Prints two tables (tasks as columns, dropped layers as rows): ms per batch with the speed-up over no drop, and the
fraction of the no-drop time saved, plus per task count the time saved per shared layer (least-squares slope of
1 - t(n)/t(0) over n through the origin) — the paper's "speed-up per shared layer" (8.4 % at 16 tasks, 4.3 % at 2),
and the saving at 5 dropped layers (the paper's 39 % at 8 tasks).
"""
import json
import sys


def main() -> None:
    rows = json.load(open(sys.argv[1]))
    tasks = sorted({r["tasks"] for r in rows})
    drops = sorted({r["dropped_layers"] for r in rows})
    cell = {(r["tasks"], r["dropped_layers"]): r for r in rows}
    print("| dropped layers | " + " | ".join(f"{t} task{'s' if t > 1 else ''}" for t in tasks) + " |")
    print("|---|" + "---|" * len(tasks))
    for d in drops:
        line = [f"{d}"]
        for t in tasks:
            r = cell.get((t, d))
            line.append("–" if r is None else f"{r['ms']:.0f} ms ({r['speedup_vs_no_drop']:.2f}×)")
        print("| " + " | ".join(line) + " |")
    print()
    print("| tasks | time saved per shared layer | saved with 5 dropped | speed-up with 5 dropped | "
          "no drop vs single-task encoder |")
    print("|---|---|---|---|---|")
    for t in tasks:
        points = [(d, 1 - 1 / cell[(t, d)]["speedup_vs_no_drop"]) for d in drops if (t, d) in cell and d > 0]
        slope = sum(d * s for d, s in points) / sum(d * d for d, _ in points) if points else float("nan")
        five = cell.get((t, 5))
        zero = cell.get((t, 0))
        enc = f"{zero['ms'] / zero['encoder_ms']:.2f}×" if zero and "encoder_ms" in zero else "–"
        print(f"| {t} | {slope * 100:.1f} % | "
              + (f"{(1 - 1 / five['speedup_vs_no_drop']) * 100:.0f} % | {five['speedup_vs_no_drop']:.2f}× | " if five else "– | – | ")
              + f"{enc} |")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Compares MemoryEstimate (the up-front check of embed/train) with the measured peak RSS of the same run.

Usage: python3 scripts/memory-estimate-check.py [--binary .build/release/adapterdrop] [--model models/all-MiniLM-L6-v2]
                                                [--configs inference:8x128,training:16x128,...] [--threads 2]

For each config, the CLI is run twice on synthetic texts that tokenize to exactly `seq` tokens (special tokens
included): once with `--memory-limit 1`, whose error message carries the estimate, and once for real, whose peak
RSS is read from the kernel (`wait4` → ru_maxrss). Inference is `adapterdrop embed` (one batch of `batch`
texts: `--batch-size batch`); training is `adapterdrop train` (2 steps of `batch` texts, then the dev evaluation of `batch` texts).
Prints one Markdown row per config: estimate, peak RSS, RSS / estimate. docs/reliability.md ("Resource bounds")
records the figures.
"""
import argparse, json, os, re, subprocess, sys, tempfile

UNITS = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}


def parse_bytes(text):
    value, unit = text.split()
    return float(value) * UNITS[unit]


def estimate(cmd):
    r = subprocess.run(cmd + ["--memory-limit", "1"], capture_output=True, text=True)
    m = re.search(r"estimated memory (\S+ \S+) \(weights (\S+ \S+) \+ [a-z ,]+? ([0-9.]+ \S+)", r.stderr)
    if not m:
        sys.exit(f"no estimate in: {r.stderr.strip()}")
    return tuple(parse_bytes(g.rstrip(")")) for g in m.groups())


def peak_rss(cmd):
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    err = p.stderr.read().decode()
    if status != 0:
        sys.exit(f"{' '.join(cmd[:3])} failed ({status}): {err.strip()[-400:]}")
    return usage.ru_maxrss * 1024


def texts(n, seq, words=("good", "bad")):
    # seq − 2 word tokens + [CLS] + [SEP]; the words are single tokens of the uncased BERT vocabulary.
    return [" ".join([words[i % 2]] * max(seq - 2, 1)) for i in range(n)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=".build/release/adapterdrop")
    ap.add_argument("--model", default="models/all-MiniLM-L6-v2")
    ap.add_argument("--configs", default="inference:1x16,inference:8x128,inference:32x256,inference:64x512,"
                                         "training:8x64,training:16x128,training:32x256")
    ap.add_argument("--threads", default="2")
    ap.add_argument("--no-embed-batch-size", dest="embed_batch_size", action="store_false",
                    help="for binaries built before embed had --batch-size (then every text is one batch)")
    a = ap.parse_args()
    print("| Mode | batch × seq | estimate (weights + working buffers) | peak RSS | RSS / estimate | RSS − estimate |")
    print("| --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        for spec in a.configs.split(","):
            mode, shape = spec.split(":")
            batch, seq = (int(x) for x in shape.split("x"))
            if mode == "inference":
                path = os.path.join(tmp, f"in-{batch}-{seq}.jsonl")
                with open(path, "w") as f:
                    for t in texts(batch, seq):
                        f.write(json.dumps({"text": t}) + "\n")
                cmd = [a.binary, "embed", "--model", a.model, "--input", path, "--threads", a.threads]
                if a.embed_batch_size:  # embed runs --batch-size texts per pass (default 32) since Trial-3 D12
                    cmd += ["--batch-size", str(batch)]
            else:
                train, dev = (os.path.join(tmp, f"{s}-{batch}-{seq}.jsonl") for s in ("train", "dev"))
                for path, n in ((train, 2 * batch), (dev, batch)):
                    with open(path, "w") as f:
                        for i, t in enumerate(texts(n, seq)):
                            f.write(json.dumps({"text": t, "label": "pos" if i % 2 == 0 else "neg"}) + "\n")
                cmd = [a.binary, "train", "--model", a.model, "--train", train, "--dev", dev, "--task", "m",
                       "--epochs", "1", "--batch-size", str(batch), "--max-length", str(seq), "--threads", a.threads,
                       "--out", os.path.join(tmp, f"out-{batch}-{seq}"), "--overwrite"]
            total, weights, working = estimate(cmd)
            rss = peak_rss(cmd)
            mib = lambda b: f"{b / (1 << 20):.1f} MiB"
            print(f"| {mode} | {batch} × {seq} | {mib(total)} ({mib(weights)} + {mib(working)}) | {mib(rss)} | "
                  f"{rss / total:.2f} | {mib(rss - total)} |", flush=True)


if __name__ == "__main__":
    main()

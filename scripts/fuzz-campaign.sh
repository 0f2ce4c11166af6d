#!/usr/bin/env bash
# Long fuzzing campaign: every target to FUZZ_RUNS executions (default 10⁶), one fuzzer at a time, release build,
# then keeps the new inputs that add coverage, minimised, in Fuzz/found/<target>/ (replayed by
# ReliabilityFuzzRegressionTests in every test run) and any crash in Fuzz/crashers/<target>/.
# Usage: scripts/fuzz-campaign.sh [target ...]   (default: every target)
# Environment: FUZZ_RUNS (default 1000000), FUZZ_MAX_TIME (seconds per target, default 7200: a cap, not a goal),
#   FUZZ_NICE (default 19; the campaign yields to everything else), FUZZ_KEEP_MAX_BYTES (largest input kept in
#   found/, default 2048).
# Prints one line per target (executions, cov, ft, crashes) for docs/reliability.md; full logs in
# Fuzz/.work/<target>.log.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${FUZZ_RUNS:-1000000}"
max_time="${FUZZ_MAX_TIME:-7200}"
keep_max="${FUZZ_KEEP_MAX_BYTES:-2048}"
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(safetensors bert_config adapter_config wordpiece_vocab tokenizer_json bpe_files tokenize_text composition dataset)
# Build once up front (scripts/fuzz.sh's own build is then a no-op), to know the binary for the merge step.
flags=(-c release -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library)
(cd Fuzz && swift build "${flags[@]}" --product AdapterDropFuzz)
bin="$(cd Fuzz && swift build "${flags[@]}" --show-bin-path)/AdapterDropFuzz"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0}" SWIFT_BACKTRACE="${SWIFT_BACKTRACE:-enable=no}"
status=0
for t in "${targets[@]}"; do
    # The campaign itself (scripts/fuzz.sh: same flags, corpus in Fuzz/.work/<t>; seeds and found/<t> read).
    set +e
    FUZZ_CONFIGURATION=release FUZZ_RUNS="$runs" nice -n "${FUZZ_NICE:-19}" \
        bash scripts/fuzz.sh "$max_time" "$t" | grep -E "^$t:"
    result=$?
    set -e
    log="Fuzz/.work/$t.log"
    crashes=$(ls Fuzz/.work/artifacts/ 2>/dev/null | grep -c "^$t-" || true)
    if [ "$crashes" -gt 0 ]; then
        mkdir -p "Fuzz/crashers/$t"
        for f in Fuzz/.work/artifacts/"$t"-*; do cp "$f" "Fuzz/crashers/$t/"; done
        status=1
    fi
    # Keep what adds coverage beyond the seeds and earlier found inputs: set-cover merge of the campaign's corpus into a copy of
    # seeds + found (a small set of inputs with the same coverage), then move the new files to found/<t>.
    merged="$(mktemp -d)"
    cp Fuzz/corpus/"$t"/* "$merged"/ 2>/dev/null || true
    [ -d "Fuzz/found/$t" ] && cp Fuzz/found/"$t"/* "$merged"/ 2>/dev/null || true
    before="$(ls "$merged")"
    (cd Fuzz && FUZZ_TARGET="$t" FUZZ_FIXTURES="$PWD/../Tests/Fixtures" "$bin" -set_cover_merge=1 "$merged" ".work/$t" \
        -max_len="$keep_max" >/dev/null 2>&1) || true
    mkdir -p "Fuzz/found/$t"
    kept=0
    for f in $(ls "$merged"); do
        if ! grep -qxF "$f" <<<"$before"; then
            if [ "$(stat -c %s "$merged/$f")" -le "$keep_max" ]; then cp "$merged/$f" "Fuzz/found/$t/"; kept=$((kept + 1)); fi
        fi
    done
    rm -rf "$merged"
    last=$(grep -E '^#[0-9]+' "$log" | tail -n 1 | grep -oE 'cov: [0-9]+ ft: [0-9]+' || echo "cov: ? ft: ?")
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo ?)
    echo "campaign $t: $execs executions, $last, $crashes crash files, $kept new inputs kept in Fuzz/found/$t (exit $result)"
done
exit $status

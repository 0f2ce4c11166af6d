#!/usr/bin/env bash
# Builds the libFuzzer harnesses (Fuzz/, -sanitize=fuzzer,address) and runs every target for a bounded time.
# Usage: scripts/fuzz.sh [seconds per target, default 60] [target ...]
# Targets: safetensors bert_config adapter_config wordpiece_vocab tokenizer_json bpe_files tokenize_text composition dataset
# FUZZ_RUNS=N stops each target after N executions (the time limit still applies as a cap).
# The seed corpora (Fuzz/corpus/<target>, made by Fuzz/make_corpus.py, and Fuzz/found/<target>, kept by
# scripts/fuzz-campaign.sh) are read only; new inputs go to
# Fuzz/.work/<target> (git-ignored). A crash leaves crash-*/timeout-*/oom-* in Fuzz/.work/artifacts and fails
# the script; copy it into Fuzz/crashers/<target>/ so ReliabilityFuzzRegressionTests replays it.
# Each run's last libFuzzer status line (execs, cov, ft) is printed; figures go to docs/reliability.md.
set -euo pipefail
cd "$(dirname "$0")/../Fuzz"
seconds="${1:-60}"; shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(safetensors bert_config adapter_config wordpiece_vocab tokenizer_json bpe_files tokenize_text composition dataset)
# FUZZ_CONFIGURATION=release fuzzes optimized code (many more executions per second; longer build).
flags=(-c "${FUZZ_CONFIGURATION:-debug}" -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library)
swift build "${flags[@]}" --product AdapterDropFuzz
bin="$(swift build "${flags[@]}" --show-bin-path)/AdapterDropFuzz"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0}"   # leaks are checked by scripts/sanitize.sh instead
export SWIFT_BACKTRACE="${SWIFT_BACKTRACE:-enable=no}"  # the Swift backtracer trips ASan on a crash
mkdir -p .work/artifacts
status=0
for t in "${targets[@]}"; do
    case "$t" in
        # Inputs are capped so one execution stays cheap: the tokenizer-file seeds are cut to ≈ 3–5 KB
        # (Fuzz/make_corpus.py); larger files add no new code paths, only time per execution.
        safetensors) maxlen=65536 ;;
        tokenizer_json|bpe_files) maxlen=8192 ;;
        *) maxlen=4096 ;;
    esac
    mkdir -p ".work/$t"
    log=".work/$t.log"
    runs=(); [ -n "${FUZZ_RUNS:-}" ] && runs=(-runs="$FUZZ_RUNS")
    seeds=("corpus/$t"); [ -d "found/$t" ] && seeds+=("found/$t")  # found/: kept by scripts/fuzz-campaign.sh
    if FUZZ_TARGET="$t" FUZZ_FIXTURES="$PWD/../Tests/Fixtures" "$bin" ".work/$t" "${seeds[@]}" "${runs[@]}" \
        -max_total_time="$seconds" -max_len="$maxlen" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix=".work/artifacts/$t-" >"$log" 2>&1; then
        result=ok
    else
        result="FAILED (see Fuzz/$log)"; status=1
    fi
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo ?)
    last=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
    echo "$t: $result, $execs executions in ${seconds}s; $last"
done
exit $status

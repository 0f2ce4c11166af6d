#!/usr/bin/env bash
# The reliability part of CI (called by .ci/run after scripts/test.sh), bounded in time:
#   1. sanitizers: a debug build with AddressSanitizer (+ LeakSanitizer) on everything and UndefinedBehaviorSanitizer
#      on the C kernels, in its own scratch folder (.build-ci-sanitize), running a bounded subset of the tests:
#      the C kernel tests, the core ops, the file/text parsers and loaders, and the reliability suites.
#   2. fuzzing: a short libFuzzer pass over every target of Fuzz/ (debug fuzz build + ASan by default: it compiles
#      far faster than release and a few seconds per target replay the corpus; CI_FUZZ_CONFIGURATION=release for
#      more executions per second), CI_FUZZ_SECONDS each.
# The full sanitizer runs (whole suite, TSan) are scripts/sanitize.sh; long fuzzing is scripts/fuzz.sh.
# Environment: CI_FUZZ_SECONDS (per target, default 6: 9 targets ≈ 1 min), CI_RELIABILITY_TIMEOUT (seconds per
# step, default 1200), CI_SKIP_FUZZ=1 / CI_SKIP_SANITIZE=1 to leave a step out.
# Each step prints its wall time; measured figures: docs/reliability.md ("CI").
set -euo pipefail
cd "$(dirname "$0")/.."
limit="${CI_RELIABILITY_TIMEOUT:-1200}"
fuzz_seconds="${CI_FUZZ_SECONDS:-6}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
supp="$(mktemp)"; trap 'rm -f "$supp"' EXIT
# XCTest's runner leaks two small objects at exit; Foundation's Process.run leaks one 32 B weak-reference side
# table per launched process (tests that run the built CLI). Both are toolchain code (docs/reliability.md).
printf 'leak:XCTest\nleak:Foundation7ProcessC3run\n' >"$supp"
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$supp:print_suppressions=0}"
export SWIFT_BACKTRACE="${SWIFT_BACKTRACE:-enable=no}"  # let the sanitizer report crashes, not the Swift backtracer

step() { echo "== ci-reliability: $1 ($(date -u +%H:%M:%S), load $(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo ?))"; }
elapsed() { echo "== ci-reliability: $1 took $(( $(date +%s) - $2 )) s"; }

if [ "${CI_SKIP_SANITIZE:-0}" != 1 ]; then
    # swiftc has no UBSan mode on Linux: the C kernels get it through clang, its runtime through the clang linker.
    flags=(--sanitize=address -Xcc -fsanitize=undefined -Xcc -fno-sanitize-recover=undefined
           -Xswiftc -Xclang-linker -Xswiftc -fsanitize=undefined --scratch-path .build-ci-sanitize)
    # Kernels, core ops, parsers/loaders, reliability suites (incl. 20 load/run/unload cycles under LeakSanitizer,
    # ReliabilityLeakTests). Left to scripts/test.sh (unsanitized): the real-MiniLM tests, throughput tests, and
    # the SIGKILL tests (a fork or a CLI run per kill; slow under ASan, no extra code path).
    filter='CKernelsTests|AdapterCoreTests|Checkpoint|Tokeniz|Composition|AdapterFiles|Dataset|Reliability'
    skip=(--skip 'miniLMMatchesTransformers' --skip 'all-MiniLM-L6-v2' --skip 'Throughput' --skip 'sigkillDuring'
          --skip 'killsDuringCheckpointing')
    step "sanitizer build (ASan + UBSan on C)"; t=$(date +%s)
    timeout "$limit" swift build --build-tests "${flags[@]}"
    elapsed "sanitizer build" "$t"
    step "sanitizer tests"; t=$(date +%s)
    timeout "$limit" swift test --skip-build "${flags[@]}" --filter "$filter" "${skip[@]}"
    elapsed "sanitizer tests" "$t"
fi

if [ "${CI_SKIP_FUZZ:-0}" != 1 ]; then
    step "fuzz pass, ${fuzz_seconds} s per target"; t=$(date +%s)
    FUZZ_CONFIGURATION="${CI_FUZZ_CONFIGURATION:-debug}" timeout "$limit" bash scripts/fuzz.sh "$fuzz_seconds"
    elapsed "fuzz build + pass" "$t"
fi

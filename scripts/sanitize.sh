#!/usr/bin/env bash
# Runs the test suite under sanitizers, each in its own scratch folder (git-ignored .build-<name>):
#   address    all tests (Swift code and the C kernels) under AddressSanitizer (+ LeakSanitizer)
#   undefined  all tests with the C kernels under UndefinedBehaviorSanitizer (halts on the first report)
#   thread     the concurrency tests (ComputeContext, serving, tokenizers, thread-count tests) under TSan
# Usage: scripts/sanitize.sh [address] [undefined] [thread]    (default: all three)
# Environment: SANITIZE_TIMEOUT (seconds per sanitizer, build + tests; default 2400).
# The real-MiniLM parity tests (enabled only after scripts/fetch-model.sh) are skipped: in a debug
# sanitized build they take minutes and add no code paths beyond the tiny fixtures.
# Measured times and findings: docs/reliability.md.
set -euo pipefail
cd "$(dirname "$0")/.."
limit="${SANITIZE_TIMEOUT:-2400}"
sanitizers=("$@")
[ ${#sanitizers[@]} -eq 0 ] && sanitizers=(address undefined thread)
skip=(--skip 'miniLMMatchesTransformers' --skip 'all-MiniLM-L6-v2')
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}"
# XCTest's runner (started by `swift test` before Swift Testing) leaks two small objects at exit; not ours.
supp="$(mktemp)"; trap 'rm -f "$supp"' EXIT
printf 'leak:XCTest\nleak:Foundation7ProcessC3run\n' >"$supp"   # toolchain leaks, docs/reliability.md
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$supp:print_suppressions=0}"
export SWIFT_BACKTRACE="${SWIFT_BACKTRACE:-enable=no}"  # let the sanitizer report crashes, not the Swift backtracer
status=0
for s in "${sanitizers[@]}"; do
    case "$s" in
        address)   scratch=.build-asan; filter=(); flags=(--sanitize=address) ;;
        # swiftc has no -sanitize=undefined on Linux (SwiftPM's --sanitize=undefined fails with "unsupported
        # option"), so UBSan instruments the C kernels through clang and links its runtime via the clang linker.
        undefined) scratch=.build-ubsan; filter=()
                   flags=(-Xcc -fsanitize=undefined -Xcc -fno-sanitize-recover=undefined
                          -Xswiftc -Xclang-linker -Xswiftc -fsanitize=undefined) ;;
        thread)    scratch=.build-tsan; flags=(--sanitize=thread)
                   filter=(--filter 'Reliability|ComputeContext|Concurren|Thread|thread|Parallel|parallel') ;;
        *) echo "unknown sanitizer: $s" >&2; exit 2 ;;
    esac
    echo "== $s: $(date -u +%H:%M:%S), load $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo ?)"
    start=$(date +%s)
    if timeout "$limit" swift build --build-tests "${flags[@]}" --scratch-path "$scratch" &&
       timeout "$limit" swift test --skip-build "${flags[@]}" --scratch-path "$scratch" "${filter[@]}" "${skip[@]}"; then
        echo "== $s: passed in $(( $(date +%s) - start )) s"
    else
        echo "== $s: FAILED (exit $?) after $(( $(date +%s) - start )) s" >&2
        status=1
    fi
done
exit $status

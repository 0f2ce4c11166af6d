#!/usr/bin/env bash
# The test command: system set-up, then the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
swift test --parallel

#!/usr/bin/env bash
# The test command: system set-up, the pinned real model (for the parity tests), then the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/fetch-model.sh
swift test --parallel

#!/usr/bin/env bash
# The main job: system set-up, the pinned model and data, a release build, then `adapterdrop demo`.
# Arguments are passed through to `adapterdrop demo` (e.g. --quick, --run NAME, --threads 2; see --help).
# Writes results/<run>/report.md, results.json, the plots and the trained adapters, and prints a summary.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/fetch-model.sh
bash scripts/fetch-data.sh
swift build -c release --product adapterdrop
exec .build/release/adapterdrop demo "$@"

#!/usr/bin/env bash
# The README's test command: set up what the tests need, then run every test in the
# workspace (unit, integration, end-to-end through the binary, headless-browser report).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo test --workspace --all-targets "$@"

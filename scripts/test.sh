#!/usr/bin/env bash
# The README's test command: set up what the tests need, then run every test in the
# workspace (unit, integration, end-to-end through the binary, headless-browser report),
# and close with one line totalling every test binary: `tests: N passed, M failed`
# (--no-fail-fast, so a failure in one binary does not hide the others' results).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --all-targets --no-fail-fast "$@" 2>&1 | tee "$log" || status=$?
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"

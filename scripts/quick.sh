#!/usr/bin/env bash
# The README's main command: set up, build in release mode, and run the quick suite against
# the embedded server. Results and the report land in bench-results/quick-<UTC time>/, and
# bench-results/latest points there. Extra arguments go to `feedbench run`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release --locked
exec target/release/feedbench run --suite quick "$@"
